//! Counts heap allocations on the hot path: `route` must make none.

use std::alloc::System;
use std::sync::Arc;

use ringward_core::{
    Admission, BoundedLoads, HostId, HostSpec, InFlightCounters, KeyHash, Ring, SkipReason,
    Snapshot,
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
    let loads = InFlightCounters::new(ring.len(), Some(40));
    let mut held = Vec::new();
    for i in (0..ring.len()).step_by(5) {
        for _ in 0..40 {
            held.push(loads.try_acquire(HostId(i as u32)).unwrap());
        }
    }
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
        if let Some(g) = loads.try_acquire(ring.primary(h)) {
            chosen += u64::from(g.host().0);
        }
    }
    let stats = region.change();
    assert!(chosen > 0);
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "the hot path allocated: {stats:?}"
    );
    drop(held);
}
