//! Graceful shutdown and reload keep in-flight requests; a stalled body is cut by the idle timeout.

use std::time::Duration;

use http_body_util::BodyExt;
use ringward_tests::Fleet;
use ringward_tests::client;
use ringward_tests::eventually_async;

use crate::support::{config_for, fast_config_for, host_entry, mapping, start};

#[tokio::test]
async fn shutdown_and_reload_finish_in_flight_requests() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let before = mapping(&router, 10).await;
    let (key, host) = before[0].clone();
    fleet
        .by_name(&host)
        .expect("host")
        .faults()
        .slow(Some(Duration::from_millis(400)));
    let addr = router.listen_addr();
    let k = key.clone();
    let in_flight =
        tokio::spawn(async move { client::get_with(addr, "/v/x/run", &[("x-val", &k)]).await });
    eventually_async(
        Duration::from_secs(2),
        "the request is in flight",
        || async { host_entry(&router, &host).await["in_flight"] == 1 },
    )
    .await;
    // A reload that removes its host, and a shutdown, both let it finish.
    let mut without = config_for(&fleet);
    without.hosts.retain(|h| h.name != host);
    router.reload(without).expect("reload");
    assert_ne!(
        crate::support::routed_by_admin(&router, &key)
            .await
            .as_deref(),
        Some(host.as_str())
    );
    router.shutdown().await;
    let reply = in_flight.await.expect("task").expect("answered");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-ringward-host"), Some(host.as_str()));
    assert!(client::get(addr, "/").await.is_err(), "no longer accepting");
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_stalled_response_body_is_cut_by_the_idle_timeout() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    config.upstream.body_idle_timeout = Duration::from_millis(200);
    let router = start(config).await;
    let (key, host) = mapping(&router, 4).await[0].clone();
    fleet
        .by_name(&host)
        .expect("host")
        .faults()
        .stall_body(true);
    let req = client::request(http::Method::GET, "/v/x/run")
        .header("x-val", key.as_str())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let resp = client::send_head(router.listen_addr(), req)
        .await
        .expect("head arrives");
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(3), resp.into_body().collect()).await;
    assert!(
        matches!(body, Ok(Err(_))),
        "the stalled body ends with an error, not a hang"
    );
    eventually_async(Duration::from_secs(2), "the permit is released", || async {
        host_entry(&router, &host).await["in_flight"] == 0
    })
    .await;
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_releases_its_slot() {
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    use crate::faults::rawhost::{Action, RawHost};

    const BIG: usize = 8 << 20;
    let big = {
        let mut r = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n").into_bytes();
        r.resize(r.len() + BIG, b'x');
        Arc::new(r)
    };
    let host = RawHost::start(Arc::new(move |_, _: &str| {
        Action::Reply(big.as_ref().clone())
    }))
    .await;
    let router = start(crate::faults::config(
        &crate::faults::hosts_toml(&[("raw".into(), host.addr())]),
        &[("upstream", "body_idle_timeout = \"300ms\"")],
    ))
    .await;
    // Ask for 8 MiB and read none of it: the router's writes stall.
    let mut s = tokio::net::TcpStream::connect(router.listen_addr())
        .await
        .expect("connect");
    s.write_all(b"GET /v/k/run HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    eventually_async(
        Duration::from_secs(2),
        "the request is in flight",
        || async { host_entry(&router, "raw").await["in_flight"] == 1 },
    )
    .await;
    // Its slot comes back although the client never reads (stall limit = body idle timeout).
    eventually_async(Duration::from_secs(3), "the slot is released", || async {
        host_entry(&router, "raw").await["in_flight"] == 0
    })
    .await;
    drop(s);
    router.shutdown().await;
    host.stop();
}

#[tokio::test]
async fn during_the_drain_readyz_answers_503_and_the_proxy_accepts_nothing_new() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let (key, host) = mapping(&router, 1).await[0].clone();
    fleet
        .by_name(&host)
        .expect("host")
        .faults()
        .slow(Some(Duration::from_millis(1500)));
    let (addr, admin) = (router.listen_addr(), router.admin_addr());
    let in_flight =
        tokio::spawn(async move { client::get_with(addr, "/v/x/run", &[("x-val", &key)]).await });
    eventually_async(
        Duration::from_secs(2),
        "the request is in flight",
        || async { host_entry(&router, &host).await["in_flight"] == 1 },
    )
    .await;
    assert_eq!(
        client::get(admin, "/readyz").await.expect("readyz").status,
        200
    );

    let draining = tokio::spawn(router.shutdown());
    eventually_async(
        Duration::from_secs(1),
        "/readyz says 503 while draining",
        || async { matches!(client::get(admin, "/readyz").await, Ok(r) if r.status == 503) },
    )
    .await;
    assert!(!in_flight.is_finished(), "the drain is still under way");
    assert!(
        client::get(addr, "/").await.is_err(),
        "the proxy accepts nothing new"
    );

    let reply = in_flight.await.expect("task").expect("answered");
    assert_eq!(reply.status, 200, "the in-flight request finished");
    draining.await.expect("shutdown");
    assert!(
        client::get(admin, "/readyz").await.is_err(),
        "admin closed after the drain"
    );
    fleet.shutdown().await;
}
