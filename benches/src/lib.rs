//! Shared inputs for Ringward's benchmarks, and the ring quality report.
//!
//! The ring bench (`benches/ring.rs`) times lookups and builds with criterion;
//! [`quality`] measures what timing cannot: balance, weight honour and
//! how many keys move on ejection and membership changes, for Ringward's ring
//! and for the peers (`hashring` 0.3 and `pingora-ketama` 0.9, 160 points per
//! host). Run it with `RING_QUALITY=1 cargo bench -p ringward-benches --bench ring`.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use router_core::{
    Admission, BoundedLoads, HostId, HostSpec, KeyHash, NoLoads, Ring, SkipReason, Snapshot,
};

/// Length of every generated key: about the size of a Val name.
pub const KEY_LEN: usize = 24;

/// `n` random 24-byte alphanumeric keys, deterministic for a seed.
pub fn keys(n: usize, seed: u64) -> Vec<[u8; KEY_LEN]> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut k = [0u8; KEY_LEN];
            for b in &mut k {
                *b = ALPHABET[rng.random_range(0..ALPHABET.len())];
            }
            k
        })
        .collect()
}

/// `n` hosts named `host-0000..`, all weight 1.
pub fn hosts(n: usize) -> Vec<HostSpec> {
    (0..n).map(|i| HostSpec::new(host_name(i), 1)).collect()
}

/// `n` hosts with weights cycling 1, 2, 3.
pub fn weighted_hosts(n: usize) -> Vec<HostSpec> {
    (0..n)
        .map(|i| HostSpec::new(host_name(i), 1 + (i % 3) as u32))
        .collect()
}

/// The name of host `i`.
pub fn host_name(i: usize) -> String {
    format!("host-{i:04}")
}

/// A distinct address per host name, for ketama (which hashes addresses).
pub fn host_addr(name: &str) -> SocketAddr {
    let i: u32 = name.trim_start_matches("host-").parse().unwrap_or(0);
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(0x0A00_0000 + i), 8080))
}

/// Points per host for the peers (nginx/ketama's 160 per unit of weight).
pub const PEER_POINTS: usize = 160;

/// A hashring virtual node: `PEER_POINTS x weight` per host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VNode {
    /// The host.
    pub host: u32,
    /// The point index.
    pub point: u32,
}

impl Hash for VNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Hash the name-derived identity, as a user of hashring would.
        host_name(self.host as usize).hash(state);
        self.point.hash(state);
    }
}

/// A `hashring` ring over `hosts` with `PEER_POINTS x weight` vnodes each.
pub fn hashring_of(hosts: &[HostSpec]) -> hashring::HashRing<VNode> {
    let mut ring = hashring::HashRing::new();
    let mut nodes = Vec::new();
    for h in hosts {
        let host: u32 = h.name.trim_start_matches("host-").parse().unwrap_or(0);
        for point in 0..PEER_POINTS as u32 * h.weight {
            nodes.push(VNode { host, point });
        }
    }
    ring.batch_add(nodes);
    ring
}

/// A `pingora-ketama` continuum over `hosts` (160 points per weight unit).
pub fn ketama_of(hosts: &[HostSpec]) -> pingora_ketama::Continuum {
    let buckets: Vec<pingora_ketama::Bucket> = hosts
        .iter()
        .map(|h| pingora_ketama::Bucket::new(host_addr(&h.name), h.weight))
        .collect();
    pingora_ketama::Continuum::new(&buckets)
}

/// A snapshot of `ring` with the hosts in `ejected` closed.
pub fn snapshot_with_ejected(ring: &Arc<Ring>, ejected: &HashSet<HostId>) -> Snapshot {
    let admission = ring
        .hosts()
        .map(|(id, _)| {
            if ejected.contains(&id) {
                Admission::Closed(SkipReason::Ejected)
            } else {
                Admission::Open
            }
        })
        .collect();
    Snapshot::new(Arc::clone(ring), admission, 0)
}

/// Every `stride`-th host id: a spread-out set to eject.
pub fn every_nth(ring: &Ring, stride: usize) -> HashSet<HostId> {
    ring.hosts()
        .map(|(id, _)| id)
        .filter(|id| id.index() % stride == 0)
        .collect()
}

/// Routes one key through a snapshot with no load (the benches' `route`).
pub fn route(snap: &Snapshot, key: &[u8]) -> Option<HostId> {
    snap.route(KeyHash::of(key), &NoLoads, &BoundedLoads::default())
}

/// A ring under test, seen as "key -> host name, skipping `down` hosts".
trait Placement {
    fn build(hosts: &[HostSpec]) -> Self;
    /// The host index (as in `host-NNNN`) a key maps to, skipping `down`.
    fn place(&self, key: &[u8], down: &HashSet<u32>) -> Option<u32>;
    /// Whether `place` can skip a down host without a rebuild.
    const SKIPS: bool;
}

fn host_index(name: &str) -> u32 {
    name.trim_start_matches("host-").parse().unwrap_or(u32::MAX)
}

struct Ringward {
    ring: Ring,
    index: Vec<u32>,
}

impl Placement for Ringward {
    const SKIPS: bool = true;
    fn build(hosts: &[HostSpec]) -> Self {
        let ring = Ring::try_new(hosts.to_vec()).expect("valid hosts");
        let index = ring.hosts().map(|(_, h)| host_index(&h.name)).collect();
        Ringward { ring, index }
    }
    fn place(&self, key: &[u8], down: &HashSet<u32>) -> Option<u32> {
        self.ring
            .candidates(KeyHash::of(key))
            .map(|id| self.index[id.index()])
            .find(|i| !down.contains(i))
    }
}

impl Placement for pingora_ketama::Continuum {
    const SKIPS: bool = true;
    fn build(hosts: &[HostSpec]) -> Self {
        ketama_of(hosts)
    }
    fn place(&self, key: &[u8], down: &HashSet<u32>) -> Option<u32> {
        // node_iter walks points, so a host repeats; bound the walk.
        self.node_iter(key)
            .take(100_000)
            .map(|a| match a {
                SocketAddr::V4(v4) => u32::from(*v4.ip()) - 0x0A00_0000,
                SocketAddr::V6(_) => u32::MAX,
            })
            .find(|i| !down.contains(i))
    }
}

impl Placement for hashring::HashRing<VNode> {
    const SKIPS: bool = false;
    fn build(hosts: &[HostSpec]) -> Self {
        hashring_of(hosts)
    }
    fn place(&self, key: &[u8], _down: &HashSet<u32>) -> Option<u32> {
        self.get(&key).map(|v| v.host)
    }
}

/// Per-host key counts (indexed by host number) and the keys' placements.
fn placements<P: Placement>(p: &P, keys: &[[u8; KEY_LEN]], down: &HashSet<u32>) -> Vec<u32> {
    keys.iter()
        .map(|k| p.place(k, down).unwrap_or(u32::MAX))
        .collect()
}

fn counts(placed: &[u32], n: usize) -> Vec<u64> {
    let mut c = vec![0u64; n + 1];
    for &p in placed {
        if (p as usize) < c.len() {
            c[p as usize] += 1;
        }
    }
    c
}

fn moved(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// Permanent membership changes measured (each an add and a remove).
pub const CHANGES: usize = 10;

/// One row of the quality table.
#[derive(Debug, Clone, Default)]
pub struct Quality {
    /// Ring name.
    pub name: &'static str,
    /// Max keys on one host / mean (equal weights).
    pub max_over_mean: f64,
    /// Min keys on one host / mean (equal weights).
    pub min_over_mean: f64,
    /// Worst weight class: keys per unit of weight / overall, as |x - 1|.
    pub weight_error: f64,
    /// Worst single host of the weighted fleet: |keys / (weight share) - 1|.
    pub weight_error_host: f64,
    /// Eject one host: keys moved / that host's keys (mean of several hosts).
    pub eject_moved_over_share: f64,
    /// Eject: keys that moved but were not on the ejected host.
    pub eject_other_moved: usize,
    /// Eject in the weighted fleet: worst class of received keys per weight / expected.
    pub eject_spread_error: f64,
    /// Restore in a different order than ejected: keys not back where they were.
    pub restore_not_exact: usize,
    /// Add a host: keys moved / ideal share (worst of [`CHANGES`]).
    pub add_moved_over_ideal: f64,
    /// Add a host: the mean of the same ratios.
    pub add_mean: f64,
    /// Remove a host: the mean of the ratios.
    pub remove_mean: f64,
    /// Remove a host: keys moved / ideal share (worst of [`CHANGES`]).
    pub remove_moved_over_ideal: f64,
    /// Whether the result is the same for a reversed host listing.
    pub order_independent: bool,
    /// Build time (best of three).
    pub build_ms: f64,
    /// Heap bytes held by the built structure.
    pub memory_bytes: usize,
}

/// Measures one ring type on `n` hosts and the given keys.
fn measure<P: Placement>(
    name: &'static str,
    n: usize,
    keys: &[[u8; KEY_LEN]],
    memory: impl Fn(&[HostSpec]) -> usize,
) -> Quality {
    let none = HashSet::new();
    let hosts = hosts(n);
    let mut build_ms = f64::INFINITY;
    let mut ring = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = P::build(&hosts);
        build_ms = build_ms.min(t.elapsed().as_secs_f64() * 1e3);
        ring = Some(r);
    }
    let ring = ring.expect("built");
    let base = placements(&ring, keys, &none);
    let c = counts(&base, n);
    let mean = keys.len() as f64 / n as f64;
    let max_over_mean = c[..n].iter().copied().max().unwrap_or(0) as f64 / mean;
    let min_over_mean = c[..n].iter().copied().min().unwrap_or(0) as f64 / mean;

    // Weight honour on a 1/2/3-weighted fleet.
    let whosts = weighted_hosts(n);
    let wring = P::build(&whosts);
    let wbase = placements(&wring, keys, &none);
    let wc = counts(&wbase, n);
    let total_weight: u64 = whosts.iter().map(|h| u64::from(h.weight)).sum();
    let per_unit = keys.len() as f64 / total_weight as f64;
    let mut weight_error: f64 = 0.0;
    let mut weight_error_host: f64 = 0.0;
    for w in 1..=3u32 {
        let (k, units) = whosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.weight == w)
            .fold((0u64, 0u64), |(k, u), (i, h)| {
                (k + wc[i], u + u64::from(h.weight))
            });
        weight_error = weight_error.max((k as f64 / units as f64 / per_unit - 1.0).abs());
    }
    for (i, h) in whosts.iter().enumerate() {
        let expected = per_unit * f64::from(h.weight);
        weight_error_host = weight_error_host.max((wc[i] as f64 / expected - 1.0).abs());
    }

    // Eject: a few hosts one at a time, then several and restore in another order.
    let mut eject_ratio = 0.0;
    let mut eject_other_moved = 0;
    let mut eject_spread_error: f64 = 0.0;
    let (mut got, mut expected) = ([0u64; 4], [0f64; 4]);
    let mut restore_not_exact = 0;
    let victims: Vec<u32> = (0..10).map(|i| (i * 97 + 3) % n as u32).collect();
    for &v in &victims {
        let down: HashSet<u32> = [v].into();
        let (after, wafter) = if P::SKIPS {
            (
                placements(&ring, keys, &down),
                placements(&wring, keys, &down),
            )
        } else {
            let keep = |hs: &[HostSpec]| -> Vec<HostSpec> {
                hs.iter()
                    .filter(|h| host_index(&h.name) != v)
                    .cloned()
                    .collect()
            };
            (
                placements(&P::build(&keep(&hosts)), keys, &none),
                placements(&P::build(&keep(&whosts)), keys, &none),
            )
        };
        let m = moved(&base, &after);
        eject_ratio += m as f64 / c[v as usize].max(1) as f64 / victims.len() as f64;
        eject_other_moved += base
            .iter()
            .zip(&after)
            .filter(|(b, a)| b != a && **b != v)
            .count();
        // Where the weighted fleet's keys of `v` went, per weight class.
        let mut left = 0u64;
        for (b, a) in wbase.iter().zip(&wafter) {
            if *b == v && *a != v && (*a as usize) < n {
                got[whosts[*a as usize].weight as usize] += 1;
                left += 1;
            }
        }
        let others: u64 = total_weight - u64::from(whosts[v as usize].weight);
        for w in 1..=3u32 {
            let units: u64 = whosts
                .iter()
                .enumerate()
                .filter(|(i, h)| h.weight == w && *i as u32 != v)
                .map(|(_, h)| u64::from(h.weight))
                .sum();
            expected[w as usize] += left as f64 * units as f64 / others as f64;
        }
    }
    for w in 1..=3 {
        if expected[w] > 0.0 {
            eject_spread_error = eject_spread_error.max((got[w] as f64 / expected[w] - 1.0).abs());
        }
    }
    if P::SKIPS {
        // Eject ten hosts in one order, restore them in another, step by step.
        let order: Vec<u32> = (0..10).map(|i| (i * 97 + 13) % n as u32).collect();
        let mut down = HashSet::new();
        for &v in &order {
            down.insert(v);
        }
        for &v in order.iter().rev().step_by(2).chain(order.iter().step_by(2)) {
            down.remove(&v);
        }
        restore_not_exact = moved(&base, &placements(&ring, keys, &down));
    }

    // Permanent changes: add a new host, remove an existing one.
    let (mut add_sum, mut remove_sum) = (0.0, 0.0);
    let mut add_worst: f64 = 0.0;
    let mut remove_worst: f64 = 0.0;
    for t in 0..CHANGES {
        let mut grown = hosts.clone();
        grown.push(HostSpec::new(host_name(n + t), 1));
        let after = placements(&P::build(&grown), keys, &none);
        let ideal = keys.len() as f64 / (n + 1) as f64;
        let r = moved(&base, &after) as f64 / ideal;
        add_sum += r / CHANGES as f64;
        add_worst = add_worst.max(r);

        let gone = (t * 331 + 5) % n;
        let shrunk: Vec<HostSpec> = hosts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != gone)
            .map(|(_, h)| h.clone())
            .collect();
        let after = placements(&P::build(&shrunk), keys, &none);
        let ideal = keys.len() as f64 / n as f64;
        let r = moved(&base, &after) as f64 / ideal;
        remove_sum += r / CHANGES as f64;
        remove_worst = remove_worst.max(r);
    }

    let mut reversed = hosts.clone();
    reversed.reverse();
    let order_independent = placements(&P::build(&reversed), keys, &none) == base;

    Quality {
        name,
        max_over_mean,
        min_over_mean,
        weight_error,
        weight_error_host,
        eject_moved_over_share: eject_ratio,
        eject_other_moved,
        eject_spread_error,
        restore_not_exact,
        add_moved_over_ideal: add_worst,
        remove_moved_over_ideal: remove_worst,
        add_mean: add_sum,
        remove_mean: remove_sum,
        order_independent,
        build_ms,
        memory_bytes: memory(&hosts),
    }
}

/// Measures Ringward's ring and the peers at `n` hosts with `n_keys` keys.
///
/// `held_bytes` runs a closure and returns the heap bytes it left allocated
/// (the bench binary implements it with a counting global allocator).
pub fn quality(
    n: usize,
    n_keys: usize,
    held_bytes: &dyn Fn(&mut dyn FnMut()) -> usize,
) -> Vec<Quality> {
    let keys = keys(n_keys, 0x5EED);
    if std::env::var("RING_QUALITY").as_deref() == Ok("ringward") {
        return vec![measure::<Ringward>("ringward", n, &keys, |h| {
            held(held_bytes, || Box::new(Ring::try_new(h.to_vec())))
        })];
    }
    vec![
        measure::<Ringward>("ringward", n, &keys, |h| {
            held(held_bytes, || Box::new(Ring::try_new(h.to_vec())))
        }),
        measure::<pingora_ketama::Continuum>("pingora-ketama 0.9", n, &keys, |h| {
            held(held_bytes, || Box::new(ketama_of(h)))
        }),
        measure::<hashring::HashRing<VNode>>("hashring 0.3", n, &keys, |h| {
            held(held_bytes, || Box::new(hashring_of(h)))
        }),
    ]
}

/// Heap bytes a built structure holds (its box included).
fn held(
    held_bytes: &dyn Fn(&mut dyn FnMut()) -> usize,
    build: impl Fn() -> Box<dyn std::any::Any>,
) -> usize {
    let mut keep: Option<Box<dyn std::any::Any>> = None;
    let bytes = held_bytes(&mut || keep = Some(build()));
    drop(keep);
    bytes
}

/// The quality table as Markdown.
pub fn quality_table(rows: &[Quality]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| ring | max/mean | min/mean | weight err (class / host) | eject moved/share | eject others moved | eject spread err | restore not exact | add moved/ideal (worst / mean) | remove moved/ideal (worst / mean) | order-indep. | build ms | memory |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.1}% / {:.1}% | {:.3} | {} | {:.1}% | {} | {:.3} / {:.3} | {:.3} / {:.3} | {} | {:.1} | {:.2} MiB |",
            r.name,
            r.max_over_mean,
            r.min_over_mean,
            r.weight_error * 100.0,
            r.weight_error_host * 100.0,
            r.eject_moved_over_share,
            r.eject_other_moved,
            r.eject_spread_error * 100.0,
            r.restore_not_exact,
            r.add_moved_over_ideal,
            r.add_mean,
            r.remove_moved_over_ideal,
            r.remove_mean,
            if r.order_independent { "yes" } else { "no" },
            r.build_ms,
            r.memory_bytes as f64 / (1024.0 * 1024.0),
        );
    }
    s
}
