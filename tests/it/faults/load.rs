//! Load: a slow fleet at its caps sheds with fast 503s (row 5), a fleet that is all sick
//! answers fast under its panic policy (row 11), twice the capacity is shed, not queued (row 12).

use std::time::Duration;

use ringward::Router;
use ringward_tests::client::{self, Reply};
use ringward_tests::simhost::ServiceTime;
use ringward_tests::{Fleet, eventually_async};
use tokio::time::Instant;

use super::{config, ms, quantile};
use crate::support::{host_entry, mapping, routed_by_admin, start};

/// Fires `n` GETs for distinct keys, `concurrency` at a time; returns each reply and latency.
async fn burst(router: &Router, n: usize, concurrency: usize, tag: &str) -> Vec<(Reply, Duration)> {
    let addr = router.listen_addr();
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(concurrency) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|i| {
                let key = format!("{tag}-{i}");
                tokio::spawn(async move {
                    let started = Instant::now();
                    let r = client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", &key)])
                        .await
                        .expect("an answer");
                    (r, started.elapsed())
                })
            })
            .collect();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
    }
    out
}

/// The bound on the p99 of answers the router gives without waiting (issue 7, rows 5 and 11).
const FAST: Duration = Duration::from_millis(50);

/// Windows measured at most before a p99 over [`FAST`] fails the test.
const WINDOWS: usize = 3;

/// Measures up to [`WINDOWS`] windows of 100 requests (`window(i)` runs one, checks its
/// answers and returns the latencies) until one has a p99 under [`FAST`]; returns that
/// window's p50 and p99 and how many windows it took, or fails with every window's p99.
///
/// Why more than one: on the shared 2-core machine a parallel run of the `it` binary can
/// stall any 100-request window for tens of milliseconds. A router that queues instead of
/// answering at once fails every window (each request would wait for a held slot or an
/// upstream timeout, 300 ms and more), so the best of three still proves the row.
async fn fast_window<F, Fut>(mut window: F) -> (Duration, Duration, usize)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Vec<Duration>>,
{
    let mut seen = Vec::new();
    for i in 0..WINDOWS {
        let mut lat = window(i).await;
        let p50 = quantile(&mut lat, 0.5);
        let p99 = quantile(&mut lat, 0.99);
        if p99 < FAST {
            return (p50, p99, i + 1);
        }
        seen.push(p99);
    }
    panic!("p99 over {FAST:?} in each of {WINDOWS} windows: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row05_a_slow_fleet_at_its_caps_sheds_with_fast_503_and_retry_after() {
    const CAP: u32 = 4;
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[
            ("limits", "per_host_in_flight = 4"),
            // The holders below stay in flight on purpose: not a hang to detect here.
            ("health", "hung_after = \"60s\""),
        ],
    ))
    .await;
    let _ = mapping(&router, 4).await;
    for h in fleet.hosts() {
        h.faults().hang(true);
    }
    // Fill every slot of both hosts (the walk spills a full host's keys to the other).
    let addr = router.listen_addr();
    let holders: Vec<_> = (0..2 * CAP)
        .map(|i| {
            let key = format!("hold-{i}");
            tokio::spawn(async move {
                client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", &key)]).await
            })
        })
        .collect();
    for (name, _) in fleet.named_addrs() {
        eventually_async(Duration::from_secs(3), "every slot taken", || async {
            host_entry(&router, &name).await["in_flight"] == CAP
        })
        .await;
    }
    let router_ref = &router;
    let (p50, p99, windows) = fast_window(|i| async move {
        let replies = burst(router_ref, 100, 10, &format!("over{i}")).await;
        let mut lat: Vec<Duration> = Vec::new();
        for (r, took) in &replies {
            assert_eq!(r.status, 503, "{}", r.text());
            let ra: u64 = r
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .expect("seconds");
            assert!(ra >= 1);
            lat.push(*took);
        }
        lat
    })
    .await;
    for h in fleet.hosts() {
        assert!(
            h.stats().hung <= u64::from(CAP),
            "a host got more than its cap"
        );
    }
    fleet.clear_faults();
    for h in holders {
        let r = h.await.expect("holder").expect("holder answered");
        assert_eq!(r.status, 200);
    }
    println!(
        "FIGURE row 5: 100 overflow requests (10 concurrent) with both hosts at their cap of {CAP}: all 503 + Retry-After, p50 {:.1} ms, p99 {:.1} ms (window {windows} of at most {WINDOWS})",
        ms(p50),
        ms(p99)
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row11_all_hosts_sick_fail_closed_answers_503_fast() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[
            ("health", "panic_policy = \"fail_closed\""),
            // Full pools with no waiters are exhausted once their checkouts are this old.
            ("health", "stuck_after = \"500ms\""),
            ("upstream", "response_header_timeout = \"300ms\""),
        ],
    ))
    .await;
    let _ = mapping(&router, 6).await;
    for h in fleet.hosts() {
        h.faults().deadlock(h.config().pool_size);
    }
    // Every probe now reports an exhausted pool: some hosts are ejected, the fleet panics,
    // and fail-closed leaves no host to route to.
    eventually_async(Duration::from_secs(5), "no host for any key", || async {
        let mut none = true;
        for k in ["a", "b", "c", "d"] {
            none &= routed_by_admin(&router, k).await.is_none();
        }
        none
    })
    .await;
    let router_ref = &router;
    let (_, p99, windows) = fast_window(|i| async move {
        let replies = burst(router_ref, 100, 10, &format!("sick{i}")).await;
        for (r, _) in &replies {
            assert_eq!(r.status, 503, "{}", r.text());
            assert!(r.header("retry-after").is_some());
        }
        replies.iter().map(|r| r.1).collect()
    })
    .await;
    println!(
        "FIGURE row 11 (fail_closed, every pool deadlocked): 100 requests, all 503 + Retry-After, p99 {:.1} ms (window {windows} of at most {WINDOWS})",
        ms(p99)
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row11_all_hosts_sick_fail_open_still_routes_and_answers_fast() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(&fleet.hosts_toml(), &[])).await;
    let _ = mapping(&router, 6).await;
    for h in fleet.hosts() {
        h.faults().error_rate(1.0);
    }
    // Failing fast everywhere: the failure rate ejects up to the cap, then panic mode
    // (fail_open, the default) routes to every host again.
    let warm = burst(&router, 120, 10, "warm").await;
    assert!(warm.iter().all(|(r, _)| r.status == 500 || r.status == 503));
    let router_ref = &router;
    let routed = std::sync::atomic::AtomicUsize::new(0);
    let routed_ref = &routed;
    let (_, p99, windows) = fast_window(|i| async move {
        let replies = burst(router_ref, 100, 10, &format!("sick{i}")).await;
        let n500 = replies.iter().filter(|(r, _)| r.status == 500).count();
        for (r, _) in &replies {
            assert!(
                r.status == 500 || r.status == 503,
                "{} {}",
                r.status,
                r.text()
            );
        }
        assert!(
            n500 >= 90,
            "fail_open routes to the sick hosts: {n500} of 100 reached one"
        );
        routed_ref.store(n500, std::sync::atomic::Ordering::Relaxed);
        replies.iter().map(|r| r.1).collect()
    })
    .await;
    let n500 = routed.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "FIGURE row 11 (fail_open, every host failing with 500): 100 requests, {n500} routed (500 from the host), p99 {:.1} ms (window {windows} of at most {WINDOWS})",
        ms(p99)
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row12_twice_the_capacity_is_shed_not_queued() {
    const POOL: u32 = 4;
    const SERVICE: Duration = Duration::from_millis(100);
    let fleet = Fleet::start_with((0..2).map(|i| ringward_tests::simhost::SimConfig {
        pool_size: POOL,
        service_time: ServiceTime::Fixed(SERVICE),
        ..Fleet::test_config(i)
    }))
    .await
    .expect("fleet");
    let router = start(config(
        &fleet.hosts_toml(),
        &[("limits", "per_host_in_flight = 4")],
    ))
    .await;
    let _ = mapping(&router, 4).await;
    // Capacity: 2 hosts x 4 connections / 100 ms = 80 requests/s. Offer twice that, open loop.
    let capacity = 2.0 * f64::from(POOL) / SERVICE.as_secs_f64();
    let rate = 2.0 * capacity;
    const PHASES: usize = 3;
    const PHASE: Duration = Duration::from_millis(1000);
    let addr = router.listen_addr();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut rss = Vec::new();
    let mut i = 0u64;
    for phase in 1..=PHASES {
        let end = started + PHASE * phase as u32;
        while Instant::now() < end {
            tick.tick().await;
            i += 1;
            let key = format!("load-{}", i % 500);
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", &key)]).await;
                (
                    r.map(|r| r.status.as_u16()).unwrap_or(0),
                    t.elapsed(),
                    Instant::now(),
                )
            }));
        }
        rss.push(rss_kib());
    }
    let offered_for = started.elapsed();
    let mut ok = 0u64;
    let mut shed = 0u64;
    let mut other = 0u64;
    let mut ok_lat = Vec::new();
    // Goodput in the steady window: from the first possible completion to the end of the offer.
    let window = (started + SERVICE, started + offered_for);
    let mut ok_in_window = 0u64;
    for t in tasks {
        let (status, took, done) = t.await.expect("task");
        match status {
            200 => {
                ok += 1;
                ok_lat.push(took);
                if done >= window.0 && done <= window.1 {
                    ok_in_window += 1;
                }
            }
            503 => shed += 1,
            _ => other += 1,
        }
    }
    let goodput = ok_in_window as f64 / (window.1 - window.0).as_secs_f64();
    let p99_ok = quantile(&mut ok_lat, 0.99);
    let growth = rss[PHASES - 1].saturating_sub(rss[0]);
    assert_eq!(other, 0, "only 200 or 503");
    assert!(shed > 0, "nothing shed");
    assert!(
        goodput >= 0.9 * capacity,
        "goodput {goodput:.0}/s of a capacity of {capacity:.0}/s"
    );
    // Served requests never wait in a queue: at most one service time plus overhead.
    assert!(p99_ok < SERVICE * 3, "served p99 {p99_ok:?}: queued");
    assert!(growth < 64 * 1024, "RSS grew {growth} KiB over the run");
    println!(
        "FIGURE row 12: offered {rate:.0}/s for {:.1} s against a capacity of {capacity:.0}/s: {ok} served, {shed} shed (503); goodput {goodput:.0}/s = {:.0}% of capacity; served p99 {:.0} ms; RSS {} -> {} KiB",
        offered_for.as_secs_f64(),
        100.0 * goodput / capacity,
        ms(p99_ok),
        rss[0],
        rss[PHASES - 1]
    );
    router.shutdown().await;
    fleet.shutdown().await;
}
