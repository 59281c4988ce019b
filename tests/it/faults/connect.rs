//! Row 2: a host whose connect hangs (a listener whose accept queue is full, so the kernel
//! drops the SYNs): the connect timeout fires and the request goes to the next preference,
//! with at most one retry per request.

use std::time::Duration;

use ringward_tests::{Fleet, client};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::{config, hosts_toml, metric, ms};
use crate::support::{routed_by_admin, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row02_a_connect_that_hangs_times_out_and_moves_to_the_next_preference_once() {
    const CONNECT: Duration = Duration::from_millis(200);
    // A listener with the smallest backlog that nobody accepts from; fill its queue.
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(0).expect("listen");
    let stuck = listener.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(100), TcpStream::connect(stuck)).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    let hangs = tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(stuck)).await;
    assert!(
        hangs.is_err(),
        "the accept queue did not fill: connects do not hang here"
    );

    let fleet = Fleet::start(2).await.expect("fleet");
    let mut hosts = fleet.named_addrs();
    hosts.push(("stuck".into(), stuck));
    let router = start(config(
        &hosts_toml(&hosts),
        &[
            ("upstream", "connect_timeout = \"200ms\""),
            // Probes would also time out and eject it; keep them out of this row.
            ("health.active", "interval = \"10s\""),
            ("health.active", "timeout = \"5s\""),
        ],
    ))
    .await;
    let mut keys = Vec::new();
    for i in 0..300 {
        let k = format!("key-{i}");
        if routed_by_admin(&router, &k).await.as_deref() == Some("stuck") {
            keys.push(k);
        }
        if keys.len() == 8 {
            break;
        }
    }
    assert!(keys.len() >= 5, "{keys:?}");
    // A POST with a small body meets the hanging connect first: nothing reached the host,
    // and the body was read whole (the retry buffer), so it moves to the next preference
    // and is served there exactly once.
    let served_before = fleet.val_requests().iter().sum::<u64>();
    let post = client::post(
        router.listen_addr(),
        "/v/x/run",
        &[("x-val", &keys[0])],
        "body",
    )
    .await
    .expect("answer");
    assert_eq!(post.status, 200, "{}", post.text());
    assert_eq!(
        fleet.val_requests().iter().sum::<u64>(),
        served_before + 1,
        "the POST reached exactly one host"
    );
    let retries_before = metric(&router, "ringward_retries_total").await;
    let mut slowest = Duration::ZERO;
    let mut timed_out = 0;
    let total = |f: &Fleet| f.val_requests().iter().sum::<u64>();
    for key in &keys {
        let t = total(&fleet);
        let started = Instant::now();
        let r = client::get_with(
            router.listen_addr(),
            &format!("/v/{key}/run"),
            &[("x-val", key)],
        )
        .await
        .expect("answer");
        let took = started.elapsed();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_ne!(r.header("x-ringward-host"), Some("stuck"));
        assert_eq!(total(&fleet) - t, 1, "served exactly once");
        if took >= CONNECT {
            timed_out += 1;
        }
        assert!(took < CONNECT + Duration::from_millis(200), "{took:?}");
        slowest = slowest.max(took);
    }
    let retries = metric(&router, "ringward_retries_total").await - retries_before;
    assert!(timed_out >= 1, "no request met the hanging connect");
    assert!(
        retries <= keys.len() as u64,
        "{retries} retries for {} requests",
        keys.len()
    );
    assert_eq!(
        retries, timed_out,
        "one retry per request that met the hanging connect"
    );
    println!(
        "FIGURE row 2: {} GETs for the stuck host's keys: all 200 from the next preference, {timed_out} met the 200 ms connect timeout, {retries} retries (at most 1 per request), slowest {:.0} ms; a POST with a small body met it first and got {} from the next preference",
        keys.len(),
        ms(slowest),
        post.status
    );
    router.shutdown().await;
    fleet.shutdown().await;
    drop(fillers);
    drop(listener);
}
