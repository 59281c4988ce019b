//! Row 14: drain a host under load, then restore it: in-flight requests finish, nothing
//! fails, and the ring afterwards is the one before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use ringward_tests::client::{self, request};
use ringward_tests::simhost::ServiceTime;
use ringward_tests::{Fleet, eventually_async};

use super::config;
use crate::support::{TOKEN, host_entry, routed_by_admin, start, state_of};

async fn admin_post(router: &ringward::Router, path: &str) -> u16 {
    let req = request(Method::POST, path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    client::send(router.admin_addr(), req)
        .await
        .expect("admin answers")
        .status
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row14_drain_then_restore_under_load_loses_nothing_and_restores_the_ring() {
    let fleet = Fleet::start_with((0..3).map(|i| ringward_tests::simhost::SimConfig {
        service_time: ServiceTime::Fixed(Duration::from_millis(60)),
        ..Fleet::test_config(i)
    }))
    .await
    .expect("fleet");
    let router = start(config(&fleet.hosts_toml(), &[])).await;
    let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    let mut before = Vec::new();
    for k in &keys {
        before.push(routed_by_admin(&router, k).await);
    }
    let target = "host-1";

    let stop = Arc::new(AtomicBool::new(false));
    let addr = router.listen_addr();
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let stop = Arc::clone(&stop);
            let keys = keys.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut i = w;
                while !stop.load(Ordering::SeqCst) && statuses.len() < 10_000 {
                    let key = &keys[i % keys.len()];
                    let path = format!("/v/{key}/run");
                    let r = if i % 2 == 0 {
                        client::post(addr, &path, &[("x-val", key)], "body").await
                    } else {
                        client::get_with(addr, &path, &[("x-val", key)]).await
                    };
                    statuses.push(r.map(|r| r.status.as_u16()).unwrap_or(0));
                    i += 7;
                }
                statuses
            })
        })
        .collect();

    // Drain while requests are in flight on the host.
    eventually_async(
        Duration::from_secs(3),
        "requests in flight on host-1",
        || async {
            host_entry(&router, target).await["in_flight"]
                .as_u64()
                .unwrap_or(0)
                >= 1
        },
    )
    .await;
    let caught = host_entry(&router, target).await["in_flight"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        admin_post(&router, &format!("/admin/hosts/{target}/drain")).await,
        200
    );
    assert_eq!(state_of(&router, target).await, "draining");
    eventually_async(
        Duration::from_secs(3),
        "in-flight requests on the drained host finish",
        || async { host_entry(&router, target).await["in_flight"] == 0 },
    )
    .await;
    let host = fleet.by_name(target).expect("host");
    let served_when_drained = host.stats().val_requests;
    // Nothing new reaches it while it is drained (a few more rounds of the load).
    let others: u64 = fleet.val_requests().iter().sum::<u64>();
    eventually_async(
        Duration::from_secs(3),
        "the load goes on elsewhere",
        || async { fleet.val_requests().iter().sum::<u64>() >= others + 30 },
    )
    .await;
    assert_eq!(
        host.stats().val_requests,
        served_when_drained,
        "traffic reached a drained host"
    );

    assert_eq!(
        admin_post(&router, &format!("/admin/hosts/{target}/restore")).await,
        200
    );
    eventually_async(Duration::from_secs(5), "host-1 healthy again", || async {
        state_of(&router, target).await == "healthy"
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut statuses = Vec::new();
    for w in workers {
        statuses.extend(w.await.expect("worker"));
    }
    let errors = statuses.iter().filter(|s| **s != 200).count();
    let mut after = Vec::new();
    for k in &keys {
        after.push(routed_by_admin(&router, k).await);
    }
    assert_eq!(errors, 0, "{errors} of {} requests failed", statuses.len());
    assert_eq!(after, before, "the ring after restore differs");
    println!(
        "FIGURE row 14: {} requests (half POST) across drain and restore, {caught} in flight on the host at the drain; errors = {errors}; traffic to the drained host = 0; ring after restore identical for 40 keys",
        statuses.len()
    );
    router.shutdown().await;
    fleet.shutdown().await;
}
