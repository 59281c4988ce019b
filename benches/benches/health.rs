//! The health hot path: `Health::record_outcome` (one request's outcome), against two
//! baselines run in the same process: a plain per-host atomic increment (the least any
//! outcome recording can cost) and a `HashMap`-keyed per-host counter (the naive keyed
//! variant).
//!
//! `cargo bench -p ringward-benches --bench health -- --measurement-time 2 --warm-up-time 1`
//!
//! That `record_outcome` does not allocate is proven by
//! `crates/health/tests/alloc.rs` (a counting global allocator).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use health::{GatewayFailure, Health, HealthConfig, Outcome};

const HOSTS: u32 = 100;

/// The mix of outcomes recorded: mostly successes, some 5xx, a rare gateway failure.
fn outcome(n: u64) -> Outcome {
    match n % 50 {
        0 => Outcome::GatewayFailure(GatewayFailure::Reset),
        1..=4 => Outcome::ServerError {
            latency: Duration::from_millis(3),
        },
        _ => Outcome::Success {
            latency: Duration::from_micros(1000 + n % 20_000),
        },
    }
}

fn record_outcome(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_outcome");
    #[allow(clippy::disallowed_methods)] // the origin only: time then advances by hand
    let t0 = Instant::now();

    let counters: Vec<AtomicU64> = (0..HOSTS).map(|_| AtomicU64::new(0)).collect();
    let mut n = 0u64;
    group.bench_function("baseline_atomic_increment", |b| {
        b.iter(|| {
            n += 1;
            let host = black_box((n % u64::from(HOSTS)) as usize);
            counters[host].fetch_add(1, Ordering::Relaxed)
        })
    });

    let mut map: HashMap<u32, (u64, u64)> = (0..HOSTS).map(|h| (h, (0, 0))).collect();
    let mut n = 0u64;
    group.bench_function("baseline_hashmap_counter", |b| {
        b.iter(|| {
            n += 1;
            let host = black_box((n % u64::from(HOSTS)) as u32);
            let failed = !matches!(black_box(outcome(n)), Outcome::Success { .. });
            if let Some((total, failures)) = map.get_mut(&host) {
                *total += 1;
                *failures += u64::from(failed);
            }
        })
    });

    for (name, hosts) in [("health_3_hosts", 3), ("health_100_hosts", HOSTS)] {
        let mut health = Health::new(HealthConfig::default());
        health.set_hosts(0..hosts, t0);
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                // 10 µs of simulated time per outcome: the window rolls as in production.
                let now = t0 + Duration::from_micros(n * 10);
                let host = black_box((n % u64::from(hosts)) as u32);
                health.record_outcome(host, black_box(outcome(n)), now)
            })
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    record_outcome(&mut criterion);
    criterion.final_summary();
}
