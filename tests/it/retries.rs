//! Safe retries only: a refused connection goes to the next preference (nothing was sent);
//! a reset before any response byte is retried once for idempotent methods, never for POST.

use std::net::SocketAddr;

use ringward_tests::Fleet;
use ringward_tests::client;

use crate::support::{config_for, host_of, mapping, start};

/// A loopback address nothing listens on.
async fn dead_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}

#[tokio::test]
async fn a_refused_connection_moves_to_the_next_preference() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let mut config = config_for(&fleet);
    config.hosts.push(ringward::config::HostConfig {
        name: "dead".into(),
        addr: dead_addr().await.into(),
        weight: 1,
    });
    let router = start(config).await;
    // Every key is served (the dead host's keys by their next preference), GET and POST alike.
    for i in 0..30 {
        let key = format!("key-{i}");
        assert_ne!(host_of(&router, &key).await, "dead");
        let post = client::post(
            router.listen_addr(),
            "/v/x/run",
            &[("x-val", &key)],
            "payload",
        )
        .await
        .expect("answer");
        // A POST with a body cannot be re-sent once handed to a connection attempt, so it may
        // be 502 for the dead host's keys; it must never be anything but 200 or 502.
        assert!(post.status == 200 || post.status == 502, "{}", post.status);
    }
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_reset_is_retried_once_for_get_but_not_for_post() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let before = mapping(&router, 20).await;
    let (key, flaky) = before[0].clone();
    fleet.by_name(&flaky).expect("host").faults().reset(true);

    let get = client::get_with(router.listen_addr(), "/v/x/run", &[("x-val", &key)])
        .await
        .expect("answer");
    assert_eq!(get.status, 200, "{}", get.text());
    assert_ne!(
        get.header("x-ringward-host"),
        Some(flaky.as_str()),
        "served by the next preference"
    );

    let post = client::post(router.listen_addr(), "/v/x/run", &[("x-val", &key)], "once")
        .await
        .expect("answer");
    assert_eq!(post.status, 502, "{}", post.text());
    assert_eq!(post.json()["host"], flaky.as_str());
    router.shutdown().await;
    fleet.shutdown().await;
}
