//! Backpressure instead of queues: when every candidate is at its cap, 503 + Retry-After at once.

use std::time::Duration;

use ringward_tests::Fleet;
use ringward_tests::client;
use ringward_tests::eventually_async;
use tokio::time::Instant;

use crate::support::{fast_config_for, host_entry, mapping, start};

#[tokio::test]
async fn all_hosts_at_their_cap_gives_immediate_503_with_retry_after() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    config.limits.per_host_in_flight = 1;
    let router = start(config).await;
    let before = mapping(&router, 10).await;
    let names: Vec<String> = fleet.named_addrs().into_iter().map(|(n, _)| n).collect();

    // Occupy each host's single slot with a request that hangs.
    for host in fleet.hosts() {
        host.faults().hang(true);
    }
    let addr = router.listen_addr();
    let mut holders = Vec::new();
    for name in &names {
        let key = before
            .iter()
            .find(|(_, h)| h == name)
            .expect("a key per host")
            .0
            .clone();
        holders.push(tokio::spawn(async move {
            let _ = client::post(addr, "/v/x/run", &[("x-val", &key)], "hold").await;
        }));
    }
    for name in &names {
        eventually_async(Duration::from_secs(2), "the slot is taken", || async {
            host_entry(&router, name).await["in_flight"] == 1
        })
        .await;
    }

    let started = Instant::now();
    let reply = client::get_with(addr, "/v/k/run", &[("x-val", "any-key")])
        .await
        .expect("an answer");
    let took = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.text());
    let retry_after: u64 = reply
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    assert_eq!(reply.json()["key"], "any-key");
    assert!(took < Duration::from_millis(500), "not immediate: {took:?}");

    for h in holders {
        h.abort();
    }
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_router_wide_cap_also_answers_503_at_once() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    config.limits.global_in_flight = 1;
    let router = start(config).await;
    let (key, host) = mapping(&router, 1).await[0].clone();
    fleet.by_name(&host).expect("host").faults().hang(true);
    let addr = router.listen_addr();
    let holder = tokio::spawn(async move {
        let _ = client::post(addr, "/v/x/run", &[("x-val", &key)], "hold").await;
    });
    eventually_async(Duration::from_secs(2), "the one slot is taken", || async {
        host_entry(&router, &host).await["in_flight"] == 1
    })
    .await;
    let reply = client::get_with(addr, "/v/k/run", &[("x-val", "other")])
        .await
        .expect("answer");
    assert_eq!(reply.status, 503);
    assert!(reply.header("retry-after").is_some());
    holder.abort();
    router.shutdown().await;
    fleet.shutdown().await;
}
