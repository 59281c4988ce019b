//! The incident's core: a host whose DB pool deadlocks loses its keys within a second, the
//! other keys stay put, and exactly the moved keys come back once it recovers.

use std::time::Duration;

use ringward_tests::Fleet;
use ringward_tests::client;
use ringward_tests::eventually_async;
use tokio::time::Instant;

use crate::support::{fast_config_for, get_key, host_of, mapping, start, state_of};

#[tokio::test]
async fn deadlocked_host_loses_its_keys_within_a_second_and_gets_exactly_them_back() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(fast_config_for(&fleet)).await;
    let before = mapping(&router, 30).await;
    let sick = before[0].1.clone();
    let sick_keys: Vec<&str> = before
        .iter()
        .filter(|(_, h)| *h == sick)
        .map(|(k, _)| k.as_str())
        .collect();
    assert!(sick_keys.len() >= 3, "enough keys on {sick}: {sick_keys:?}");

    // The incident: every pool slot held by a deadlocked query; requests queue forever.
    let host = fleet.by_name(&sick).expect("sick host");
    let deadlocked_at = Instant::now();
    host.faults().deadlock(host.config().pool_size);

    // Requests caught on the sick host: idempotent, so they are rescued on ejection.
    let addr = router.listen_addr();
    let caught: Vec<_> = sick_keys
        .iter()
        .take(3)
        .map(|k| {
            let key = (*k).to_owned();
            tokio::spawn(async move {
                let started = Instant::now();
                let r = client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", &key)]).await;
                (r, started.elapsed())
            })
        })
        .collect();

    // Its keys move within 1 s.
    let moved_key = sick_keys[0].to_owned();
    eventually_async(Duration::from_secs(1), "the sick host's key moves", || {
        let router = &router;
        let key = moved_key.clone();
        let sick = sick.clone();
        async move {
            let r = client::get_with(router.listen_addr(), &format!("/v/{key}/run"), &[("x-val", &key)])
                .await;
            matches!(r, Ok(reply) if reply.status == 200 && reply.header("x-ringward-host") != Some(&sick))
        }
    })
    .await;
    let moved_after = deadlocked_at.elapsed();
    assert!(
        moved_after < Duration::from_secs(1),
        "moved after {moved_after:?}"
    );
    assert_eq!(state_of(&router, &sick).await, "ejected");

    for task in caught {
        let (reply, took) = task.await.expect("task");
        let reply = reply.expect("a caught request is answered");
        assert_eq!(reply.status, 200, "rescued: {}", reply.text());
        assert_ne!(reply.header("x-ringward-host"), Some(sick.as_str()));
        assert!(
            took < Duration::from_secs(2),
            "a caught request took {took:?}"
        );
    }

    // The others stay; the sick host's keys go elsewhere.
    for (key, host) in &before {
        let now = host_of(&router, key).await;
        if *host == sick {
            assert_ne!(now, sick, "{key} still on the sick host");
        } else {
            assert_eq!(&now, host, "{key} moved although its host is healthy");
        }
    }

    // Release: the pool frees, probes pass, probation lets the host's keys back gradually
    // (it needs real successes, so traffic keeps flowing on its keys meanwhile).
    host.faults().release();
    // Keep traffic on its keys so probation sees real successes.
    let recovered = wait_for_healthy(&router, &sick, &sick_keys).await;
    assert!(recovered, "{sick} back to healthy");
    for (key, host) in &before {
        assert_eq!(
            &host_of(&router, key).await,
            host,
            "{key} is back where it was"
        );
    }
    router.shutdown().await;
    fleet.shutdown().await;
}

/// Drives traffic on `keys` until `name` is healthy again (bounded by 10 s).
async fn wait_for_healthy(router: &ringward::Router, name: &str, keys: &[&str]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for key in keys {
            let _ = get_key(router, key).await;
        }
        if state_of(router, name).await == "healthy" {
            return true;
        }
    }
    false
}
