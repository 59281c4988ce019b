//! Fleet mode end to end: a real etcd, three `ringward` processes watching one prefix, real
//! simulated hosts registered in etcd as a worker would register itself. The routers agree
//! on every key, follow membership changes moving only the keys the ring says, share
//! operator commands and health ejections, and ride out etcd going away.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ringward_testkit::eventually_async;
use support::{Lab, host_states, route_all};

/// Keys compared across routers.
const KEYS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_routers_agree_on_every_key_and_follow_membership_with_minimal_moves() {
    let lab = Lab::start(4, &[]).await;
    for i in 0..3 {
        lab.register(i).await;
    }
    lab.wait_hosts(&["host-0", "host-1", "host-2"]).await;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("val-{i}")).collect();
    let before = lab.agreed_routes(&keys).await;

    // A fourth host registers: every router picks it up; only keys it now owns move.
    let registered = Instant::now();
    lab.register(3).await;
    lab.wait_hosts(&["host-0", "host-1", "host-2", "host-3"])
        .await;
    eprintln!(
        "a registration reached every router within {:?}",
        registered.elapsed()
    );
    let after = lab.agreed_routes(&keys).await;
    let moved: Vec<&String> = keys.iter().filter(|k| before[*k] != after[*k]).collect();
    assert!(
        moved.iter().all(|k| after[*k] == "host-3"),
        "a key moved between old hosts"
    );
    let ideal = KEYS as f64 / 4.0;
    eprintln!(
        "{} of {KEYS} keys moved to the new host (ideal {ideal})",
        moved.len()
    );
    assert!(
        (moved.len() as f64) <= 1.1 * ideal,
        "{} keys moved for an ideal {ideal}",
        moved.len()
    );

    // host-1's key is deleted: after remove_delay, gone everywhere; only its keys move.
    lab.deregister(1).await;
    lab.wait_hosts(&["host-0", "host-2", "host-3"]).await;
    let last = lab.agreed_routes(&keys).await;
    for k in &keys {
        if after[k] != "host-1" {
            assert_eq!(last[k], after[k], "{k} moved but its host stayed");
        }
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_flaps_within_the_remove_delay_never_leaves_the_ring() {
    let lab = Lab::start(2, &[]).await;
    lab.register(0).await;
    lab.register(1).await;
    lab.wait_hosts(&["host-0", "host-1"]).await;
    let generation = lab.metric(0, "ringward_discovery_events_total").await;
    // Deleted and back within the delay (a restart): the ring never loses it.
    lab.deregister(1).await;
    lab.register(1).await;
    eventually_async(Duration::from_secs(10), "both changes seen", || async {
        lab.metric(0, "ringward_discovery_events_total").await >= generation + 2
    })
    .await;
    for r in 0..3 {
        let names: Vec<String> = host_states(&lab.hosts_json(r).await).into_keys().collect();
        assert_eq!(names.len(), 2, "router {r}: {names:?}");
    }
    let log = lab.log(0);
    assert!(
        !log.contains("-host-1"),
        "router 0 dropped host-1 during the flap:\n{log}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_drain_on_one_router_reaches_the_others_and_so_does_restore() {
    let lab = Lab::start(3, &[]).await;
    for i in 0..3 {
        lab.register(i).await;
    }
    lab.wait_hosts(&["host-0", "host-1", "host-2"]).await;
    let started = Instant::now();
    assert_eq!(lab.operator(0, "host-1", "drain").await, 200);
    lab.wait_state("host-1", "draining").await;
    let reached = started.elapsed();
    assert_eq!(lab.operator(2, "host-1", "restore").await, 200);
    lab.wait_state("host-1", "healthy").await;
    eprintln!("a drain reached every router in {reached:?}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_routers_health_ejection_reaches_the_others() {
    // Routers 1 and 2 probe once a minute and get no traffic: they learn of the sick host
    // only from router 0, which probes every 200 ms.
    let lab = Lab::start(
        3,
        &[
            (1, "[health.active]\ninterval = \"1m\"\ntimeout = \"1s\"\n"),
            (2, "[health.active]\ninterval = \"1m\"\ntimeout = \"1s\"\n"),
        ],
    )
    .await;
    for i in 0..3 {
        lab.register(i).await;
    }
    lab.wait_hosts(&["host-0", "host-1", "host-2"]).await;
    // host-2's health endpoint stops answering: router 0's probes time out twice.
    lab.sim(2)
        .faults()
        .apply(&simhost::FaultPatch {
            health_hangs: Some(true),
            ..simhost::FaultPatch::default()
        })
        .expect("fault");
    let started = Instant::now();
    eventually_async(
        Duration::from_secs(10),
        "router 0 ejects host-2",
        || async {
            host_states(&lab.hosts_json(0).await)
                .get("host-2")
                .map(|s| s.0.as_str())
                == Some("ejected")
        },
    )
    .await;
    for r in [1, 2] {
        eventually_async(
            Duration::from_secs(10),
            "the ejection reaches the others",
            || async {
                host_states(&lab.hosts_json(r).await).get("host-2")
                    == Some(&("ejected".to_owned(), Some("peer".to_owned())))
            },
        )
        .await;
    }
    eprintln!(
        "a shared ejection reached every router {:?} after the fault",
        started.elapsed()
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_stopped_no_request_fails_and_the_routers_converge_when_it_returns() {
    let mut lab = Lab::start(3, &[]).await;
    lab.register(0).await;
    lab.register(1).await;
    lab.wait_hosts(&["host-0", "host-1"]).await;
    let keys: Vec<String> = (0..200).map(|i| format!("val-{i}")).collect();
    let (failed_up, p50_up) = lab.traffic(&keys).await;
    assert_eq!(failed_up, 0);

    lab.etcd.stop();
    for r in 0..3 {
        eventually_async(Duration::from_secs(15), "the routers notice", || async {
            lab.readyz(r).await.contains("etcd unreachable")
        })
        .await;
    }
    let (failed_down, p50_down) = lab.traffic(&keys).await;
    assert_eq!(failed_down, 0, "requests failed while etcd was down");
    eprintln!("p50 with etcd up {p50_up:?}, down {p50_down:?}");
    let json = lab.hosts_json(0).await;
    assert_eq!(json["etcd"]["connected"], false, "{json}");
    assert_eq!(host_states(&json).len(), 2, "the last membership is kept");

    lab.etcd.resume();
    lab.register(2).await;
    lab.wait_hosts(&["host-0", "host-1", "host-2"]).await;
    for r in 0..3 {
        eventually_async(Duration::from_secs(15), "connected again", || async {
            lab.readyz(r).await == "ready\n"
        })
        .await;
    }
    let routes = lab.agreed_routes(&keys).await;
    assert!(routes.values().any(|h| h == "host-2"));
    let _: HashMap<_, _> = routes;
    lab.stop().await;
}

#[tokio::test]
async fn route_all_answers_for_every_key() {
    // The helper the tests above lean on, checked against a single router.
    let lab = Lab::start(1, &[]).await;
    lab.register(0).await;
    lab.wait_hosts(&["host-0"]).await;
    let keys = vec!["a".to_owned(), "b".to_owned()];
    let routes = route_all(lab.admin(0), &keys).await;
    assert_eq!(routes.len(), 2);
    assert!(routes.values().all(|h| h == "host-0"));
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_val_quarantined_on_one_router_is_quarantined_on_all_and_released_on_all() {
    let lab = Lab::start(2, &[]).await;
    lab.register(0).await;
    lab.register(1).await;
    lab.wait_hosts(&["host-0", "host-1"]).await;
    assert_eq!(lab.val_command(1, "alice-hello", "quarantine").await, 200);
    lab.wait_val("alice-hello", "quarantined").await;
    assert_eq!(lab.val_command(2, "alice-hello", "release").await, 200);
    lab.wait_val("alice-hello", "normal").await;
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routers_started_while_etcd_is_down_pick_the_hosts_up_when_it_comes() {
    let mut lab = Lab::start_with_etcd_down(2).await;
    for r in 0..3 {
        let ready = lab.readyz(r).await;
        assert!(ready.contains("no eligible host"), "router {r}: {ready}");
    }
    lab.etcd.resume();
    lab.register(0).await;
    lab.register(1).await;
    lab.wait_hosts(&["host-0", "host-1"]).await;
    for r in 0..3 {
        eventually_async(Duration::from_secs(15), "ready with etcd", || async {
            lab.readyz(r).await == "ready\n"
        })
        .await;
    }
    let (failed, _) = lab.traffic(&["a".to_owned(), "b".to_owned()]).await;
    assert_eq!(failed, 0);
    lab.stop().await;
}
