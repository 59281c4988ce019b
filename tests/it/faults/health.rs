//! Health faults: a deadlocked DB pool (row 6), a hanging health endpoint (row 7), a shallow
//! health check that lies (row 8), probes that go straight to each host (row 9), a flapping
//! host (row 10).

use std::sync::Arc;
use std::time::Duration;

use ringward::Router;
use ringward_tests::client::{self, Reply};
use ringward_tests::{Fleet, eventually, eventually_async};
use tokio::time::Instant;

use super::rawhost::{Action, RawHost, ok_response};
use super::{config, hosts_toml, ms};
use crate::support::{host_entry, mapping, routed_by_admin, start, state_of};

fn keys_of(map: &[(String, String)], host: &str) -> Vec<String> {
    map.iter()
        .filter(|(_, h)| h == host)
        .map(|(k, _)| k.clone())
        .collect()
}

/// One wave: a request per key, concurrently (every `post_every`-th a POST); each reply with its latency.
async fn wave(router: &Router, keys: &[String], post_every: usize) -> Vec<(bool, Reply, Duration)> {
    let addr = router.listen_addr();
    let tasks: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let key = k.clone();
            let post = post_every > 0 && i % post_every == 0;
            tokio::spawn(async move {
                let started = Instant::now();
                let path = format!("/v/{key}/run");
                let r = if post {
                    client::post(addr, &path, &[("x-val", &key)], "p").await
                } else {
                    client::get_with(addr, &path, &[("x-val", &key)]).await
                };
                (post, r.expect("an answer"), started.elapsed())
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row06_a_deadlocked_pool_ends_requests_at_the_timeout_and_ejects_the_host() {
    const TIMEOUT: Duration = Duration::from_millis(1000);
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[("upstream", "response_header_timeout = \"1s\"")],
    ))
    .await;
    let before = mapping(&router, 30).await;
    let sick = before[0].1.clone();
    let mut keys = keys_of(&before, &sick);
    keys.truncate(4);
    // Two keys of the other hosts ride along: they must stay fast.
    keys.extend(
        before
            .iter()
            .filter(|(_, h)| *h != sick)
            .take(2)
            .map(|(k, _)| k.clone()),
    );
    let host = fleet.by_name(&sick).expect("host");
    host.faults().deadlock(host.config().pool_size);
    let t0 = Instant::now();
    // Waves of requests run while the admin API is watched for the ejection.
    let r = &router;
    let ws = {
        let keys = keys.clone();
        async move {
            let mut all = Vec::new();
            for _ in 0..3 {
                all.extend(wave(r, &keys, 3).await);
            }
            all
        }
    };
    let watch = async {
        eventually_async(
            Duration::from_secs(5),
            "the deadlocked host is ejected",
            || async { state_of(r, &sick).await == "ejected" },
        )
        .await;
        t0.elapsed()
    };
    let (results, ejected_after) = tokio::join!(ws, watch);
    let reason = host_entry(&router, &sick).await["reason"].clone();
    let worst = results.iter().map(|r| r.2).max().expect("results");
    for (post, reply, took) in &results {
        assert!(
            *took <= TIMEOUT + Duration::from_millis(150),
            "a request took {took:?} (post {post}, status {})",
            reply.status
        );
        assert!(
            reply.status == 200 || reply.status == 504,
            "{} {}",
            reply.status,
            reply.text()
        );
    }
    // None left pending: nothing in flight anywhere once the clients have their answers.
    for (name, _) in fleet.named_addrs() {
        eventually_async(Duration::from_secs(2), "nothing left in flight", || async {
            host_entry(&router, &name).await["in_flight"] == 0
        })
        .await;
    }
    let n504 = results.iter().filter(|r| r.1.status == 504).count();
    println!(
        "FIGURE row 6: {} requests, {n504} x 504, slowest {:.0} ms (timeout 1000 ms); ejected after {:.0} ms, reason {reason}; in flight afterwards: 0",
        results.len(),
        ms(worst),
        ms(ejected_after)
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row07_a_hanging_health_endpoint_fails_its_probes_and_the_others_keep_their_schedule() {
    const INTERVAL: Duration = Duration::from_millis(200);
    let a = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let b = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let fleet = Fleet::start(1).await.expect("fleet");
    let mut hosts = fleet.named_addrs();
    hosts.push(("raw-a".into(), a.addr()));
    hosts.push(("raw-b".into(), b.addr()));
    let router = start(config(
        &hosts_toml(&hosts),
        &[
            ("health.active", "interval = \"200ms\""),
            ("health.active", "timeout = \"150ms\""),
        ],
    ))
    .await;
    let sick = fleet[0].name().to_owned();
    fleet[0].faults().health_hangs(true);
    eventually_async(
        Duration::from_secs(3),
        "the host whose probe hangs is ejected",
        || async { state_of(&router, &sick).await == "ejected" },
    )
    .await;
    assert_eq!(host_entry(&router, &sick).await["reason"], "probe_failures");
    let from = Instant::now();
    const N: usize = 8;
    eventually(
        Duration::from_secs(5),
        "8 more probe intervals on each healthy host",
        || {
            [&a, &b]
                .iter()
                .all(|h| h.probes().iter().filter(|t| **t >= from).count() > N)
        },
    )
    .await;
    let mut worst = 0.0f64;
    for h in [&a, &b] {
        let times: Vec<Instant> = h.probes().into_iter().filter(|t| *t >= from).collect();
        for pair in times.windows(2).take(N) {
            let gap = pair[1] - pair[0];
            let off = (gap.as_secs_f64() - INTERVAL.as_secs_f64()).abs() / INTERVAL.as_secs_f64();
            worst = worst.max(off);
        }
    }
    assert!(worst < 0.10, "probe interval jitter {:.1}%", worst * 100.0);
    assert!(fleet[0].stats().health_requests >= 2);
    println!(
        "FIGURE row 7: with one host's health endpoint hanging (ejected: probe_failures), the other hosts' {N} probe intervals each deviate at most {:.1}% from 200 ms",
        worst * 100.0
    );
    router.shutdown().await;
    fleet.shutdown().await;
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row08_a_shallow_health_check_does_not_save_an_exhausted_host() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[
            ("upstream", "response_header_timeout = \"1s\""),
            // Long enough to count traffic while it is ejected.
            ("health", "ejection_base = \"10s\""),
            ("health", "ejection_max = \"20s\""),
        ],
    ))
    .await;
    let before = mapping(&router, 30).await;
    let sick = before[0].1.clone();
    let keys = keys_of(&before, &sick);
    let host = fleet.by_name(&sick).expect("host");
    // The incident's check: /healthz says pass with no pool figures; all but one connection
    // deadlocked, so responses still flow and carry the true figures in the ORCA header.
    host.faults().health_shallow(true);
    host.faults().deadlock(host.config().pool_size - 1);
    let t0 = Instant::now();
    // Steady load on its keys (closed loop, 8 clients), as in the incident: the one free
    // connection serves, the others queue, and every response reports the full pool.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = router.listen_addr();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let key = keys[w % keys.len()].clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut n = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) && n < 10_000 {
                    let _ =
                        client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", &key)]).await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    eventually_async(
        Duration::from_secs(5),
        "the exhausted host is ejected",
        || async { state_of(&router, &sick).await == "ejected" },
    )
    .await;
    let ejected_after = t0.elapsed();
    let reason = host_entry(&router, &sick).await["reason"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert_ne!(
        reason, "probe_failures",
        "the shallow probe passed all along"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut sent = 0;
    for w in workers {
        sent += w.await.expect("worker");
    }
    let at_ejection = host.stats().val_requests;
    for r in wave(&router, &keys, 0)
        .await
        .into_iter()
        .chain(wave(&router, &keys, 2).await)
    {
        assert_eq!(r.1.status, 200, "{}", r.1.text());
        assert_ne!(r.1.header("x-ringward-host"), Some(sick.as_str()));
    }
    let after = host.stats().val_requests - at_ejection;
    assert_eq!(after, 0, "traffic reached the host after its ejection");
    println!(
        "FIGURE row 8: shallow /healthz passing, pool exhausted: ejected after {:.0} ms ({sent} requests from 8 clients), reason {reason}; traffic to the host after ejection = {after} of {} requests",
        ms(ejected_after),
        2 * keys.len()
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row09_probes_go_straight_to_each_host_never_through_the_ring() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(&fleet.hosts_toml(), &[])).await;
    // host-1's health endpoint hangs: it is ejected, and its probes must still go to it
    // (a probe routed through the ring would land on its successor).
    fleet[1].faults().health_hangs(true);
    eventually_async(Duration::from_secs(3), "host-1 ejected", || async {
        state_of(&router, "host-1").await == "ejected"
    })
    .await;
    let start_counts = fleet.health_requests();
    let t0 = Instant::now();
    eventually(Duration::from_secs(3), "ten probe rounds", || {
        fleet.health_requests()[0] >= start_counts[0] + 10
    })
    .await;
    let elapsed = t0.elapsed();
    let counts: Vec<u64> = fleet
        .health_requests()
        .iter()
        .zip(&start_counts)
        .map(|(now, was)| now - was)
        .collect();
    let rounds = elapsed.as_secs_f64() / 0.1;
    for (i, n) in counts.iter().enumerate() {
        assert!(
            (*n as f64) >= rounds * 0.6 && (*n as f64) <= rounds + 2.0,
            "host-{i}: {n} probes in {rounds:.1} rounds ({counts:?})"
        );
    }
    assert_eq!(
        fleet.val_requests(),
        vec![0, 0, 0],
        "a probe went through the ring"
    );
    println!(
        "FIGURE row 9: over {:.0} ms ({rounds:.1} probe rounds of 100 ms) each host received its own probes {counts:?}, host-1 ejected and still probed; Val requests from probes: 0",
        ms(elapsed)
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

/// When `name` entered `state`, from the admin API's `since_ms` (now, if it is no longer in it).
async fn entered_state_at(router: &Router, name: &str, state: &str) -> Instant {
    let entry = host_entry(router, name).await;
    let now = Instant::now();
    match entry["since_ms"].as_u64() {
        Some(since) if entry["state"] == state => now - Duration::from_millis(since),
        _ => now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row10_a_flapping_host_is_ejected_for_longer_each_time_and_only_its_keys_move() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[
            ("health", "ejection_base = \"250ms\""),
            ("health", "probation_step = \"50ms\""),
        ],
    ))
    .await;
    let before = mapping(&router, 40).await;
    let sick = before[0].1.clone();
    let keys = keys_of(&before, &sick);
    let host = fleet.by_name(&sick).expect("host");
    let t0 = Instant::now();
    let mut lengths = Vec::new();
    let mut ejections = 0;
    let mut checked_while_ejected = 0;
    for _cycle in 0..3 {
        host.faults().reset(true);
        while state_of(&router, &sick).await != "ejected" {
            assert!(t0.elapsed() < Duration::from_secs(20), "not ejected");
            let _ = wave(&router, &keys, 0).await;
        }
        ejections += 1;
        // Ejection times come from the router's own `since_ms`, so the lookups below (slow
        // on a loaded machine) do not stretch them.
        let ejected_at = entered_state_at(&router, &sick, "ejected").await;
        // Only the flapping host's keys moved. On a loaded machine these 40 admin lookups
        // can outlast the first ejection (250 ms): a key of the flapping host routed back to
        // it is a failure only while the host is still ejected.
        let mut readmitted = false;
        for (key, was) in &before {
            let now = routed_by_admin(&router, key).await;
            if *was == sick {
                if readmitted {
                    continue;
                }
                if now.as_deref() == Some(sick.as_str()) {
                    assert_ne!(
                        state_of(&router, &sick).await,
                        "ejected",
                        "{key} routed to its ejected host"
                    );
                    readmitted = true;
                } else {
                    checked_while_ejected += 1;
                }
            } else {
                assert_eq!(now.as_deref(), Some(was.as_str()), "{key} moved");
            }
        }
        host.faults().reset(false);
        while state_of(&router, &sick).await == "ejected" {
            assert!(t0.elapsed() < Duration::from_secs(20), "never readmitted");
            tokio::time::sleep(ringward_tests::POLL_INTERVAL).await;
        }
        let readmitted_at = entered_state_at(&router, &sick, "probation").await;
        lengths.push(readmitted_at.saturating_duration_since(ejected_at));
        // Real traffic earns the probation back to healthy.
        while state_of(&router, &sick).await != "healthy" {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "never healthy again"
            );
            let _ = wave(&router, &keys, 0).await;
        }
        let back = mapping(&router, 40).await;
        assert_eq!(back, before, "the same keys came back, nothing else moved");
    }
    let total = t0.elapsed();
    for pair in lengths.windows(2) {
        assert!(
            pair[1] > pair[0].mul_f64(1.5),
            "ejection time does not grow: {lengths:?}"
        );
    }
    assert!(
        checked_while_ejected > 0,
        "no key of the flapping host was looked up while it was ejected"
    );
    // Doubling bounds the churn: k ejections take at least base * (2^k - 1) of ejected time,
    // so a host flapping as fast as it can is ejected at most log2(60 s / base + 1) times a minute.
    let bound = (60.0 / 0.25 + 1.0f64).log2().floor();
    println!(
        "FIGURE row 10: {ejections} flaps in {:.1} s: ejection lengths {:?} ms (each at least 1.5x the previous, base 250 ms), so at most {bound} ejections (ring changes) a minute; other hosts' keys moved: 0; the same keys returned each time",
        total.as_secs_f64(),
        lengths
            .iter()
            .map(|d| ms(*d).round() as u64)
            .collect::<Vec<_>>()
    );
    router.shutdown().await;
    fleet.shutdown().await;
}
