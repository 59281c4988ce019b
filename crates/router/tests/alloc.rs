//! Heap allocations per proxied request, counted through the real router: Ringward may add
//! only a small, fixed number over a bare hyper-util proxy in front of the same host (the
//! floor any hyper proxy pays). Its own binary, so the global allocator counts nothing else.
//! The figures and their breakdown: docs/benchmarks.md, "Allocations on the request path".

use std::alloc::System;
use std::net::SocketAddr;
use std::time::Duration;

use ringward::{Config, Router};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[path = "support/hop.rs"]
mod hop;
use hop::{connect, get, start_bare_proxy, start_instant_host};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What the router may add per request over the bare proxy (11.4 measured with the request ID
/// and the access log on, 6.4 without them; the breakdown is in docs/benchmarks.md).
const BUDGET: f64 = 13.0;

/// Allocations per request over `n` requests, after `n` of warm-up.
async fn per_request(addr: SocketAddr, n: u32) -> f64 {
    let mut sender = connect(addr).await;
    let host = addr.to_string();
    for _ in 0..n {
        get(&mut sender, &host).await;
    }
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        get(&mut sender, &host).await;
    }
    region.change().allocations as f64 / f64::from(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_adds_a_small_fixed_number_of_allocations_per_request() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let host = start_instant_host().await;
    let bare = start_bare_proxy(host.addr()).await;
    let mut config = Config::for_hosts(loopback, loopback, &[("host-a".to_owned(), host.addr())]);
    // Probes allocate on their own schedule: keep them out of a count that a slow machine
    // (fewer requests per second) would otherwise inflate.
    config.health.active.interval = Duration::from_secs(3600);
    // The access log on (it is off by default), into a sink: its formatting and hand-over
    // count.
    config.access_log.enabled = true;
    config.access_log.path = ringward::config::AccessLogPath::File("/dev/null".into());
    let router = Router::start(config).await.expect("router");

    let n = 500;
    let floor = per_request(bare, n).await;
    let ringward = per_request(router.listen_addr(), n).await;
    let added = ringward - floor;
    eprintln!(
        "allocations per request: bare proxy {floor:.1}, ringward {ringward:.1}, added {added:.1}"
    );
    assert!(
        added <= BUDGET,
        "ringward {ringward:.1} - bare proxy {floor:.1} = {added:.1} allocations per request, over {BUDGET}"
    );
    // The count is real: a proxied request does allocate (hyper, the pool, the host).
    assert!(floor > 10.0, "{floor}");

    router.shutdown().await;
    host.shutdown().await;
}
