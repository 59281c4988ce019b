//! The post-mortem incident with default settings: one host's DB pool fills with deadlocked
//! connections while its health check stays shallow. Ringward must move that host's Vals
//! within about a second and keep every idempotent request under 2 s, with no tuning.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ringward_tests::Fleet;
use ringward_tests::client;
use tokio::time::Instant;

use crate::support::{config_for, mapping, start, state_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_settings_end_the_incident_in_a_second() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let keys = mapping(&router, 24).await;
    let sick = keys[0].1.clone();
    let addr = router.listen_addr();

    // Steady traffic over all keys from four clients.
    let stop = Arc::new(AtomicBool::new(false));
    let slowest_ms = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..4 {
        let keys: Vec<String> = keys
            .iter()
            .skip(w)
            .step_by(4)
            .map(|(k, _)| k.clone())
            .collect();
        let (stop, slowest_ms, failures) = (
            Arc::clone(&stop),
            Arc::clone(&slowest_ms),
            Arc::clone(&failures),
        );
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            // Bounded: at most 100k requests per worker, and the stop flag.
            while !stop.load(Ordering::Relaxed) && n < 100_000 {
                let key = &keys[(n as usize) % keys.len()];
                let started = Instant::now();
                let r = client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", key)]).await;
                let ms = started.elapsed().as_millis() as u64;
                slowest_ms.fetch_max(ms, Ordering::Relaxed);
                if !matches!(&r, Ok(reply) if reply.status == 200) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
            n
        }));
    }

    // The incident: every slot deadlocked, and /healthz says a shallow "pass".
    let host = fleet.by_name(&sick).expect("sick host");
    host.faults().health_shallow(true);
    let started = Instant::now();
    host.faults().deadlock(host.config().pool_size);
    let mut ejected_after = None;
    // Watch the host's state while the traffic runs: until 1.5 s after the ejection (at most 3 s).
    while started.elapsed() < Duration::from_secs(3) {
        let state = state_of(&router, &sick).await;
        if ejected_after.is_none() && state == "ejected" {
            ejected_after = Some(started.elapsed());
        }
        if ejected_after.is_some_and(|t| started.elapsed() > t + Duration::from_millis(1500)) {
            assert_eq!(state, "ejected", "still out while its pool is deadlocked");
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }
    let ejected_after = ejected_after.expect("the sick host was ejected");
    eprintln!(
        "incident: ejected after {ejected_after:?}, slowest {} ms, {total} requests",
        slowest_ms.load(Ordering::Relaxed)
    );
    assert!(
        ejected_after <= Duration::from_millis(1200),
        "ejected after {ejected_after:?}"
    );
    let slowest = Duration::from_millis(slowest_ms.load(Ordering::Relaxed));
    assert!(
        slowest < Duration::from_secs(2),
        "slowest idempotent request took {slowest:?}"
    );
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "every request answered 200 ({total} sent)"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}
