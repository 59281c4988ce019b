//! Timeouts on by default: a hanging host answers 504 at the timeout and is then ejected;
//! a client that never finishes its request head is cut off (no slowloris).

use std::time::Duration;

use ringward_tests::Fleet;
use ringward_tests::client;
use ringward_tests::eventually_async;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::support::{fast_config_for, host_of, mapping, read_until_closed, start, state_of};

#[tokio::test]
async fn hanging_host_gives_504_at_the_timeout_then_is_ejected() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    config.upstream.response_header_timeout = Duration::from_millis(300);
    let router = start(config).await;
    let before = mapping(&router, 20).await;
    let (key, sick) = before[0].clone();
    fleet.by_name(&sick).expect("host").faults().hang(true);

    // POST is not idempotent: no rescue, no retry, so the client sees the timeout itself.
    let started = Instant::now();
    let reply = client::post(
        router.listen_addr(),
        "/v/x/run",
        &[("x-val", &key)],
        "payload",
    )
    .await
    .expect("an answer");
    let took = started.elapsed();
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert!(
        took >= Duration::from_millis(300),
        "answered before the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "the timeout did not bound it: {took:?}"
    );
    let body = reply.json();
    assert_eq!(body["host"], sick.as_str());
    assert_eq!(body["key"], key.as_str());
    assert_eq!(reply.header("x-ringward-host"), Some(sick.as_str()));

    // Timeouts are failures: more of them eject the host, and its keys go elsewhere.
    let addr = router.listen_addr();
    let sick_name = sick.clone();
    let k = key.clone();
    eventually_async(
        Duration::from_secs(5),
        "the hanging host is ejected",
        || {
            let k = k.clone();
            let sick = sick_name.clone();
            let router = &router;
            async move {
                let _ = client::post(addr, "/v/x/run", &[("x-val", &k)], "payload").await;
                state_of(router, &sick).await == "ejected"
            }
        },
    )
    .await;
    assert_ne!(host_of(&router, &key).await, sick);
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    config.listen.header_read_timeout = Duration::from_millis(200);
    let router = start(config).await;
    let mut stream = tokio::net::TcpStream::connect(router.listen_addr())
        .await
        .expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("partial head");
    let started = Instant::now();
    // The router closes the connection (possibly after a 408); reading reaches EOF or an error.
    let closed = read_until_closed(&mut stream, &mut Vec::new(), Duration::from_secs(3)).await;
    assert!(closed, "the slow client was not cut off");
    assert!(started.elapsed() >= Duration::from_millis(150));
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_hanging_probe_never_delays_the_other_hosts_probes() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(fast_config_for(&fleet)).await;
    let names: Vec<String> = fleet.named_addrs().into_iter().map(|(n, _)| n).collect();
    fleet
        .by_name(&names[0])
        .expect("host")
        .faults()
        .health_hangs(true);
    // The hanging host fails its probes (timeouts) and is ejected...
    eventually_async(
        Duration::from_secs(3),
        "the host whose probe hangs is ejected",
        || async { state_of(&router, &names[0]).await == "ejected" },
    )
    .await;
    // ...while the others keep being probed every interval (100 ms here).
    for _ in 0..5 {
        for name in &names[1..] {
            let entry = crate::support::host_entry(&router, name).await;
            let age = entry["last_probe_ms"].as_u64().expect("probed");
            assert!(age < 400, "{name} last probed {age} ms ago");
            assert_eq!(entry["state"], "healthy");
        }
    }
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    config.listen.header_read_timeout = Duration::from_millis(200);
    let router = start(config).await;
    // Not a single byte: hyper's protocol detection has no timer of its own.
    let mut stream = tokio::net::TcpStream::connect(router.listen_addr())
        .await
        .expect("connect");
    let started = Instant::now();
    let closed = read_until_closed(&mut stream, &mut Vec::new(), Duration::from_secs(3)).await;
    assert!(closed, "the silent connection was not closed");
    assert!(started.elapsed() >= Duration::from_millis(150));
    router.shutdown().await;
    fleet.shutdown().await;
}
