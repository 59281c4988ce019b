//! Ring lookups and builds, Ringward against `hashring` 0.3 and
//! `pingora-ketama` 0.9 (160 points per host), xxh3 alone and hash-mod-N.
//!
//! `cargo bench -p ringward-benches --bench ring -- --measurement-time 2 --warm-up-time 1`
//! times them; `RING_QUALITY=1 cargo bench -p ringward-benches --bench ring`
//! prints the quality table (balance, movement, build, memory) instead.
#![forbid(unsafe_code)]

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;

use criterion::Criterion;
use ringward_benches::{
    KEY_LEN, every_nth, hashring_of, hosts, ketama_of, keys, quality, quality_table, route,
    snapshot_with_ejected,
};
use router_core::{KeyHash, RING_SEED, Ring};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xxhash_rust::xxh3::xxh3_64_with_seed;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const HOSTS: usize = 1000;
/// Keys cycled through by each timed lookup (a power of two for masking).
const POOL: usize = 1 << 16;

fn lookups(c: &mut Criterion) {
    let keys = keys(POOL, 7);
    let hosts = hosts(HOSTS);
    let ring = Arc::new(Ring::try_new(hosts.clone()).expect("valid hosts"));
    let open = snapshot_with_ejected(&ring, &Default::default());
    let ejected = snapshot_with_ejected(&ring, &every_nth(&ring, 10));
    let hashring = hashring_of(&hosts);
    let ketama = ketama_of(&hosts);
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();

    let mut g = c.benchmark_group("lookup_1000_hosts");
    fn each<'k>(keys: &'k [[u8; KEY_LEN]]) -> impl FnMut() -> &'k [u8] {
        let mut i = 0usize;
        move || {
            i = (i + 1) & (POOL - 1);
            &keys[i]
        }
    }
    let mut next = each(&keys);
    g.bench_function("ringward", |b| {
        b.iter(|| ring.primary(KeyHash::of(black_box(next()))))
    });
    let mut next = each(&keys);
    g.bench_function("ringward_route", |b| {
        b.iter(|| route(&open, black_box(next())))
    });
    let mut next = each(&keys);
    g.bench_function("ringward_route_10pct_ejected", |b| {
        b.iter(|| route(&ejected, black_box(next())))
    });
    let mut next = each(&keys);
    g.bench_function("hashring", |b| {
        b.iter(|| hashring.get(&black_box(next())).map(|v| v.host))
    });
    let mut next = each(&keys);
    g.bench_function("pingora_ketama", |b| {
        b.iter(|| ketama.node(black_box(next())))
    });
    let mut next = each(&keys);
    g.bench_function("xxh3_only", |b| {
        b.iter(|| xxh3_64_with_seed(black_box(next()), RING_SEED))
    });
    let mut next = each(&keys);
    g.bench_function("hash_mod_n", |b| {
        b.iter(|| names[(xxh3_64_with_seed(black_box(next()), RING_SEED) % HOSTS as u64) as usize])
    });
    g.finish();
}

fn builds(c: &mut Criterion) {
    let hosts = hosts(HOSTS);
    let mut g = c.benchmark_group("build_1000_hosts");
    g.sample_size(10);
    g.bench_function("ringward", |b| {
        b.iter(|| Ring::try_new(black_box(hosts.clone())))
    });
    g.bench_function("pingora_ketama", |b| {
        b.iter(|| ketama_of(black_box(&hosts)))
    });
    g.bench_function("hashring", |b| b.iter(|| hashring_of(black_box(&hosts))));
    g.finish();
}

/// Every timed group, with criterion configured from the command line.
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    lookups(&mut c);
    builds(&mut c);
    c.final_summary();
}

/// Heap bytes `f` leaves allocated.
fn held_bytes(f: &mut dyn FnMut()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let s = region.change();
    s.bytes_allocated.saturating_sub(s.bytes_deallocated) + s.bytes_reallocated.max(0) as usize
}

fn main() {
    if std::env::var_os("RING_QUALITY").is_some() {
        let n = std::env::var("RING_QUALITY_HOSTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(HOSTS);
        let rows = quality(n, 1_000_000, &held_bytes);
        println!("{n} hosts, 1M random 24-byte keys\n");
        print!("{}", quality_table(&rows));
        return;
    }
    benches();
}
