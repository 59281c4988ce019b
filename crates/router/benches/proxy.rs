//! The router's overhead on one request: the same GET over a kept-alive HTTP/1.1 connection,
//! straight to a simulated host (the baseline), through a bare hyper-util proxy (the floor any
//! hyper proxy pays: a server connection plus the pooled legacy client, no logic), and through
//! Ringward in front of the same host, all in the same process. Report the ratios, not the
//! absolute times (loopback, shared CPU). Ringward runs three ways: with its defaults (the
//! cascade guard on, nothing restricted), with the guard off, and with 64 other Vals
//! quarantined (so every request's guard lookup finds a non-empty set).
//!
//! Before timing, it counts heap allocations per request on each path (the whole process:
//! client, proxy and host). Ringward minus the bare proxy is what the router's own code adds.
//!
//! `cargo bench -p ringward --bench proxy -- --measurement-time 2 --warm-up-time 1`

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::alloc::System;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use ringward::{Config, Router};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[path = "../tests/support/hop.rs"]
mod hop;
use hop::{connect, get, start_bare_proxy, start_instant_host};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Requests counted per path (after a warm-up of the same size).
const COUNTED: u32 = 2000;

/// Heap allocations per request (whole process), after a warm-up.
fn allocations_per_request(
    rt: &tokio::runtime::Runtime,
    sender: &mut SendRequest<Empty<Bytes>>,
    host: &str,
) -> (f64, f64) {
    rt.block_on(async {
        for _ in 0..COUNTED {
            get(sender, host).await;
        }
        let region = Region::new(GLOBAL);
        for _ in 0..COUNTED {
            get(sender, host).await;
        }
        let stats = region.change();
        let n = f64::from(COUNTED);
        (
            stats.allocations as f64 / n,
            stats.bytes_allocated as f64 / n,
        )
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let (host, bare, routers) = rt.block_on(async {
        let host = start_instant_host().await;
        let bare = start_bare_proxy(host.addr()).await;
        let config = Config::for_hosts(loopback, loopback, &[("host-a".to_owned(), host.addr())]);
        let router = Router::start(config.clone()).await.expect("router");
        let mut off = config.clone();
        off.guard.enabled = false;
        let unguarded = Router::start(off).await.expect("router");
        let mut with_token = config;
        with_token.admin.token = Some(ringward::config::AdminToken::new("bench"));
        let busy = Router::start(with_token).await.expect("router");
        quarantine_others(busy.admin_addr(), 64).await;
        (host, bare, [router, unguarded, busy])
    });
    let paths = [
        ("direct to the host", host.addr()),
        ("through a bare hyper-util proxy", bare),
        ("through ringward", routers[0].listen_addr()),
        ("through ringward, guard off", routers[1].listen_addr()),
        (
            "through ringward, 64 Vals quarantined",
            routers[2].listen_addr(),
        ),
    ];
    let mut senders = Vec::new();
    let mut counted = Vec::new();
    for (name, addr) in paths {
        let mut sender = rt.block_on(connect(addr));
        let host_header = addr.to_string();
        let (allocs, bytes) = allocations_per_request(&rt, &mut sender, &host_header);
        counted.push((name, allocs, bytes));
        senders.push((name, addr, host_header, sender));
    }
    // The router's own background (health ticks, probes) allocates with or without traffic:
    // measured idle, so it can be told apart from the per-request figure.
    let idle = Duration::from_secs(1);
    let background = rt.block_on(async {
        let region = Region::new(GLOBAL);
        tokio::time::sleep(idle).await;
        region.change().allocations as f64 / idle.as_secs_f64()
    });
    println!("allocations per request (whole process, {COUNTED} requests each):");
    for (name, allocs, bytes) in &counted {
        println!("  {name:<40} {allocs:>7.1} allocations {bytes:>9.0} bytes");
    }
    println!(
        "  ringward minus the bare proxy            {:>7.1} allocations {:>9.0} bytes",
        counted[2].1 - counted[1].1,
        counted[2].2 - counted[1].2
    );
    println!("  ringward idle, no traffic                {background:>7.1} allocations per second");

    let mut group = c.benchmark_group("one GET, kept-alive");
    for (name, addr, host_header, sender) in &mut senders {
        // A fresh connection: the one counted above may have idled past the router's
        // keep-alive timeout (listen.header_read_timeout) while the other paths ran.
        *sender = rt.block_on(connect(*addr));
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        get(sender, host_header).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
    rt.block_on(async {
        for router in routers {
            router.shutdown().await;
        }
        host.shutdown().await;
    });
}

/// Quarantines `n` Vals other than the benchmarked one, by hand through the admin API.
async fn quarantine_others(admin: SocketAddr, n: usize) {
    let mut sender = connect(admin).await;
    for i in 0..n {
        let request = http::Request::post(format!("/admin/vals/other-{i}/quarantine"))
            .header("host", admin.to_string())
            .header("authorization", "Bearer bench")
            .body(Empty::<Bytes>::new())
            .expect("request");
        sender.ready().await.expect("admin connection");
        let response = sender.send_request(request).await.expect("admin answers");
        assert_eq!(response.status(), 200, "quarantine other-{i}");
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
