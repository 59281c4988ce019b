//! Counts heap allocations around the hot path: `record_outcome` must not allocate, in any
//! state it can drive a host through (successes, failures, an ejection, probation).
//!
//! Its own test binary, with one test, so that no other test allocates concurrently.

use std::alloc::System;
use std::time::{Duration, Instant};

use ringward_health::{GatewayFailure, Health, HealthConfig, Outcome};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn record_outcome_does_not_allocate() {
    #[allow(clippy::disallowed_methods)] // the origin only; time then advances by hand
    let t0 = Instant::now();
    let mut health = Health::new(HealthConfig::default());
    health.set_hosts(0..100u32, t0);
    let outcomes = [
        Outcome::Success {
            latency: Duration::from_millis(12),
        },
        Outcome::ServerError {
            latency: Duration::from_millis(3),
        },
        Outcome::Success {
            latency: Duration::from_millis(40),
        },
        Outcome::GatewayFailure(GatewayFailure::Reset),
        Outcome::Timeout {
            elapsed: Duration::from_secs(30),
        },
    ];
    let mut transitions = 0;
    let region = Region::new(GLOBAL);
    for i in 0..20_000u32 {
        let now = t0 + Duration::from_micros(u64::from(i) * 700);
        // Host 7 only fails: it is ejected (and later back in probation) along the way.
        let (host, outcome) = if i % 10 == 0 {
            (7, Outcome::GatewayFailure(GatewayFailure::ConnectRefused))
        } else {
            (i % 100, outcomes[(i % 5) as usize])
        };
        transitions += usize::from(health.record_outcome(host, outcome, now).is_some());
        // An unknown host is a lookup miss, also without allocation.
        let _ = health.record_outcome(1000, outcome, now);
    }
    let stats = region.change();
    assert!(transitions > 0, "the run must exercise transitions too");
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "record_outcome allocated: {stats:?}"
    );
}
