//! Fleet scale (docs/fleet-scale.md): the ring and the routing snapshot at 100, 1k and 10k
//! hosts, for fleet mode (10k hosts, 100 routers sharing membership through etcd).
//!
//! ```text
//! cargo bench -p ringward-benches --bench fleet_scale -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! Groups:
//! - `fleet_build/N`: `Ring::try_new` at 100, 1000, 10000 and `MAX_HOSTS` (65535) hosts.
//! - `fleet_change_10k/*`: what every router pays per membership change at 10k hosts (a
//!   rebuild with one host added, one removed), against what an admission change (an
//!   ejection, a drain) costs: a new `Snapshot` over the same ring, no rebuild.
//! - `fleet_lookup/*`: `Ring::primary` and `Snapshot::route` at 100 and 10k hosts, with no
//!   loads and with the router's real in-flight counters (`ringward_embed::HostLoads`), and
//!   the bounded-load slow path (a hot host's key: the cap reads `InFlight::total`, a sum
//!   over every host).
//!
//! Before the timings it prints the movement of one added (and one removed) host at 10k
//! hosts, over 100k keys and over all 2^20 slots, against the ideal share (1/N);
//! `FLEET_MOVED_ONLY=1` prints only that.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{BatchSize, BenchmarkId, Criterion};
use ringward_benches::{KEY_LEN, host_name, hosts, keys};
use ringward_embed::HostLoads;
use router_core::{
    Admission, BoundedLoads, HostId, HostSpec, InFlight, KeyHash, MAX_HOSTS, NoLoads, Ring,
    SkipReason, Snapshot,
};

/// Keys cycled through by each timed lookup (a power of two for masking).
const POOL: usize = 1 << 16;
/// The router's default `limits.per_host_in_flight` (its `HostLoads` slots per host).
const PER_HOST_IN_FLIGHT: u32 = 256;
/// The fleet sizes compared.
const SMALL: usize = 100;
const LARGE: usize = 10_000;
/// `M`, the ring's slot count, and the shift that selects a slot (docs/ring.md).
const SLOTS: u64 = 1 << 20;
const SLOT_SHIFT: u32 = 44;

/// The name of a ring host.
fn name_of(ring: &Ring, id: HostId) -> &str {
    &ring.host(id).name
}

/// Keys (out of `keys`) and slots (out of all 2^20) whose own host differs between two
/// rings, compared by host name (host ids shift when a name sorts in between).
fn moved(a: &Ring, b: &Ring, keys: &[[u8; KEY_LEN]]) -> (usize, usize) {
    let keys_moved = keys
        .iter()
        .filter(|k| {
            let h = KeyHash::of(&k[..]);
            name_of(a, a.primary(h)) != name_of(b, b.primary(h))
        })
        .count();
    let slots_moved = (0..SLOTS)
        .filter(|s| {
            let h = KeyHash(s << SLOT_SHIFT);
            name_of(a, a.primary(h)) != name_of(b, b.primary(h))
        })
        .count();
    (keys_moved, slots_moved)
}

/// Prints the movement of one host added to (and one removed from) a 10k-host ring.
fn print_movement() {
    let base = hosts(LARGE);
    let keys = keys(100_000, 11);
    let t = Instant::now();
    let ring = Ring::try_new(base.clone()).expect("valid hosts");
    let built = t.elapsed();
    let mut plus = base.clone();
    plus.push(HostSpec::new(host_name(LARGE), 1));
    let added = Ring::try_new(plus).expect("valid hosts");
    let mut minus = base;
    minus.remove(LARGE / 2);
    let removed = Ring::try_new(minus).expect("valid hosts");
    println!(
        "fleet_scale: one membership change at {LARGE} hosts (moved / ideal share; 100k keys, \
         all 2^20 slots; build {:.1} ms)",
        built.as_secs_f64() * 1e3
    );
    for (what, other, n) in [("add", &added, LARGE + 1), ("remove", &removed, LARGE)] {
        let (k, s) = moved(&ring, other, &keys);
        let ideal_k = keys.len() as f64 / n as f64;
        let ideal_s = SLOTS as f64 / n as f64;
        println!(
            "  {what:6} keys moved {k} (ideal {ideal_k:.1}, {:.3}x)   slots moved {s} (ideal \
             {ideal_s:.1}, {:.3}x)",
            k as f64 / ideal_k,
            s as f64 / ideal_s
        );
    }
}

/// Ring builds at growing host counts.
fn builds(c: &mut Criterion) {
    let mut g = c.benchmark_group("fleet_build");
    g.sample_size(10);
    for n in [SMALL, 1000, LARGE, MAX_HOSTS] {
        let set = hosts(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &set, |b, set| {
            b.iter_batched(
                || set.clone(),
                |s| Ring::try_new(black_box(s)),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// One membership change at 10k hosts (a rebuild) against one admission change (no rebuild).
fn changes(c: &mut Criterion) {
    let base = hosts(LARGE);
    let ring = Arc::new(Ring::try_new(base.clone()).expect("valid hosts"));
    let mut plus = base.clone();
    plus.push(HostSpec::new(host_name(LARGE), 1));
    let mut minus = base;
    minus.remove(LARGE / 2);
    let mut admission = vec![Admission::Open; ring.len()];
    admission[LARGE / 2] = Admission::Closed(SkipReason::Ejected);

    let mut g = c.benchmark_group("fleet_change_10k");
    g.sample_size(10);
    g.bench_function("rebuild_add_one", |b| {
        b.iter_batched(
            || plus.clone(),
            |s| Ring::try_new(black_box(s)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("rebuild_remove_one", |b| {
        b.iter_batched(
            || minus.clone(),
            |s| Ring::try_new(black_box(s)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("snapshot_eject_one", |b| {
        b.iter_batched(
            || admission.clone(),
            |a| Snapshot::new(Arc::clone(&ring), black_box(a), 1),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Hashes that land in the slots of `host` (a hot host's keys), `n` of them.
fn hashes_of(ring: &Ring, host: HostId, n: usize) -> Vec<KeyHash> {
    let slots: Vec<u64> = (0..SLOTS)
        .filter(|s| ring.primary(KeyHash(s << SLOT_SHIFT)) == host)
        .collect();
    (0..n as u64)
        .map(|i| {
            let slot = slots[(i as usize) % slots.len()];
            // Any low bits: the slot is the top 20.
            let low = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
            KeyHash((slot << SLOT_SHIFT) | low)
        })
        .collect()
}

/// Lookups at 100 and 10k hosts.
fn lookups(c: &mut Criterion) {
    let keys: Vec<KeyHash> = keys(POOL, 7).iter().map(|k| KeyHash::of(&k[..])).collect();
    let bounded = BoundedLoads::default();
    let mut g = c.benchmark_group("fleet_lookup");
    for n in [SMALL, LARGE] {
        let ring = Arc::new(Ring::try_new(hosts(n)).expect("valid hosts"));
        let snap = Snapshot::all_open(Arc::clone(&ring), 1);
        #[allow(clippy::disallowed_methods)] // the counters' origin only
        let base = Instant::now();
        let loads = Arc::new(HostLoads::new(n, Some(PER_HOST_IN_FLIGHT), base));

        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("primary", n), |b| {
            b.iter(|| {
                i = (i + 1) & (POOL - 1);
                ring.primary(black_box(keys[i]))
            })
        });
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("route_no_loads", n), |b| {
            b.iter(|| {
                i = (i + 1) & (POOL - 1);
                snap.route(black_box(keys[i]), &NoLoads, &bounded)
            })
        });
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("route_host_loads", n), |b| {
            b.iter(|| {
                i = (i + 1) & (POOL - 1);
                snap.route(black_box(keys[i]), &*loads, &bounded)
            })
        });

        // A hot host: at the bounded-load floor (16 in flight), so its keys take the slow
        // path, whose cap reads the total in flight over every host.
        let hot = ring.primary(keys[0]);
        let permits: Vec<_> = (0..bounded.floor)
            .map(|_| loads.try_acquire(hot, base).expect("under the hard limit"))
            .collect();
        let hot_keys = hashes_of(&ring, hot, POOL);
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("route_hot_host_key", n), |b| {
            b.iter(|| {
                i = (i + 1) & (POOL - 1);
                snap.route(black_box(hot_keys[i]), &*loads, &bounded)
            })
        });
        g.bench_function(BenchmarkId::new("host_loads_total", n), |b| {
            b.iter(|| black_box(&*loads).total())
        });
        drop(permits);
    }
    g.finish();
}

fn main() {
    print_movement();
    if std::env::var_os("FLEET_MOVED_ONLY").is_some() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    builds(&mut c);
    changes(&mut c);
    lookups(&mut c);
    c.final_summary();
}
