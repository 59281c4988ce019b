//! Counts heap allocations on the request path: `Balancer::route` and dropping its `Pick`
//! must make none.

use std::alloc::System;
use std::net::SocketAddr;

use ringward_embed::router_core::InFlight;
use ringward_embed::{Balancer, Host};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn route_and_release_do_not_allocate() {
    let hosts = (0..50).map(|i| {
        Host::new(
            format!("host-{i}"),
            SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
        )
        .with_weight(1 + i % 3)
    });
    // A hard limit of 4, so some keys walk on past full hosts (and some find none).
    let (balancer, _driver) = Balancer::builder(hosts)
        .per_host_limit(Some(4))
        .build()
        .unwrap();
    let keys: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("val-{i:08}").into_bytes())
        .collect();
    let mut held = Vec::with_capacity(150);
    // Warm up (thread-local state of the snapshot's ArcSwap).
    drop(balancer.route(&keys[0]));

    let region = Region::new(GLOBAL);
    let mut routed = 0u64;
    for (i, key) in keys.iter().enumerate() {
        if let Some(pick) = balancer.route(key) {
            routed += pick.index() as u64 + u64::from(pick.addr().port() > 0);
            if i % 100 == 0 && held.len() < held.capacity() {
                held.push(pick); // stays in flight
            }
        }
    }
    held.clear();
    let stats = region.change();
    assert!(routed > 0);
    assert_eq!(
        (stats.allocations, stats.reallocations),
        (0, 0),
        "route allocated: {stats:?}"
    );
    assert_eq!(balancer.loads().total(), 0);
}
