//! The router's own per-request pieces, each against the least that step can cost, run in
//! the same process (this machine is noisy: read the ratios, not the nanoseconds):
//!
//! - **key extraction** (`ringward::extract_key`, the default sources `header:x-val` then
//!   `path_segment:1`) against splitting the path by hand;
//! - **route with bounded loads** (`Snapshot::route` over `ringward_embed::HostLoads` with
//!   requests in flight, the router's default factor 1.25) against the ring's bare primary;
//! - **in-flight accounting** (a permit taken with the request's Val, then dropped) against
//!   one atomic increment and decrement.
//!
//! Outcome recording, the fourth piece, is `benches/health.rs` (`Health::record_outcome`).
//!
//! `cargo bench -p ringward-benches --bench request_path -- --measurement-time 2 --warm-up-time 1`
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use criterion::Criterion;
use http::Request;
use ringward::{KeySource, extract_key};
use ringward_embed::HostLoads;
use router_core::{Admission, BoundedLoads, HostId, HostSpec, KeyHash, Ring, Snapshot};

const HOSTS: u32 = 20;
const KEYS: usize = 1000;

fn requests() -> Vec<Request<()>> {
    (0..KEYS)
        .map(|i| {
            Request::get(format!("/v/val{i}/run"))
                .header("host", "edge.example")
                .header("user-agent", "wrk")
                .body(())
                .expect("request")
        })
        .collect()
}

fn key_extraction(c: &mut Criterion) {
    let sources = [
        KeySource::parse("header:x-val").expect("source"),
        KeySource::parse("path_segment:1").expect("source"),
    ];
    let reqs = requests();
    let mut g = c.benchmark_group("key_extraction");
    let mut i = 0;
    g.bench_function("baseline_split_path", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(black_box(&reqs[i]).uri().path().split('/').nth(2))
        })
    });
    g.bench_function("ringward_default_sources", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(extract_key(&sources, black_box(&reqs[i])))
        })
    });
    g.finish();
}

fn route(c: &mut Criterion) {
    let ring = Arc::new(
        Ring::try_new((0..HOSTS).map(|i| HostSpec {
            name: format!("host-{i}"),
            weight: 1,
        }))
        .expect("ring"),
    );
    let snapshot = Snapshot::new(Arc::clone(&ring), vec![Admission::Open; HOSTS as usize], 1);
    #[allow(clippy::disallowed_methods)] // the loads' origin only
    let now = Instant::now();
    let loads = Arc::new(HostLoads::new(HOSTS as usize, Some(256), now));
    // A busy fleet: 8 requests in flight on each host, 40 on one (it spills).
    let mut held = Vec::new();
    for h in 0..HOSTS {
        let n = if h == 0 { 40 } else { 8 };
        for _ in 0..n {
            held.push(loads.try_acquire(HostId(h), now).expect("permit"));
        }
    }
    let hashes: Vec<KeyHash> = (0..KEYS)
        .map(|i| KeyHash::of(format!("val{i}").as_bytes()))
        .collect();
    let bounded = BoundedLoads {
        factor: 1.25,
        floor: 16,
    };
    let mut g = c.benchmark_group("route");
    let mut i = 0;
    g.bench_function("baseline_ring_primary", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(ring.primary(black_box(hashes[i])))
        })
    });
    g.bench_function("ringward_route_bounded_loads", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(snapshot.route(black_box(hashes[i]), &*loads, &bounded))
        })
    });
    g.finish();
    drop(held);
}

fn in_flight(c: &mut Criterion) {
    #[allow(clippy::disallowed_methods)] // the loads' origin only
    let now = Instant::now();
    let loads = Arc::new(HostLoads::new(HOSTS as usize, Some(256), now));
    let counter = AtomicU32::new(0);
    let hash = KeyHash::of(b"alice-hello").0;
    let mut g = c.benchmark_group("in_flight");
    g.bench_function("baseline_atomic_inc_dec", |b| {
        b.iter(|| {
            counter.fetch_add(1, Ordering::AcqRel);
            black_box(&counter);
            counter.fetch_sub(1, Ordering::AcqRel);
        })
    });
    g.bench_function("ringward_permit_with_val", |b| {
        b.iter(|| {
            let permit = loads.try_acquire_for(HostId(3), now, Some((hash, "alice-hello")));
            black_box(permit)
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    key_extraction(&mut c);
    route(&mut c);
    in_flight(&mut c);
    c.final_summary();
}
