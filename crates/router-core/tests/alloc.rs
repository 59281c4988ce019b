//! Counts heap allocations on the hot path: `route` must make none.

use std::alloc::System;
use std::sync::Arc;

use ringward_core::{
    Admission, BoundedLoads, HostId, HostSpec, InFlight, KeyHash, Ring, SkipReason, Snapshot,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn route_and_walk_do_not_allocate() {
    let ring = Arc::new(
        Ring::try_new((0..200).map(|i| HostSpec::new(format!("host-{i}"), 1 + i % 3))).unwrap(),
    );
    // A mix that exercises every branch: ejected, degraded, hard-capped, hot.
    let mut admission = vec![Admission::Open; ring.len()];
    for i in (0..ring.len()).step_by(7) {
        admission[i] = Admission::Closed(SkipReason::Ejected);
    }
    for i in (3..ring.len()).step_by(11) {
        admission[i] = Admission::OwnKeysOnly;
    }
    let snap = Snapshot::new(Arc::clone(&ring), admission, 1);
    // Every fifth host is at its hard cap of 40.
    let loads = Loads {
        counts: (0..ring.len())
            .map(|i| if i % 5 == 0 { 40 } else { 3 })
            .collect(),
        cap: 40,
    };
    let keys: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("val-{i:08}").into_bytes())
        .collect();
    let bounded = BoundedLoads::default();
    let mut chosen = 0u64;

    let region = Region::new(GLOBAL);
    for k in &keys {
        let h = KeyHash::of(k);
        if let Some(host) = snap.route(h, &loads, &bounded) {
            chosen += u64::from(host.0);
        }
        chosen += ring
            .candidates(h)
            .take(12)
            .map(|h| u64::from(h.0))
            .sum::<u64>();
        chosen += u64::from(ring.primary(h).0);
    }
    let stats = region.change();
    assert!(chosen > 0);
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "the hot path allocated: {stats:?}"
    );
}

/// Fixed in-flight counts with a hard cap, as a router's counters would report them.
struct Loads {
    counts: Vec<u32>,
    cap: u32,
}

impl InFlight for Loads {
    fn in_flight(&self, host: HostId) -> u32 {
        self.counts[host.index()]
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    fn hard_limit(&self, _host: HostId) -> Option<u32> {
        Some(self.cap)
    }
}
