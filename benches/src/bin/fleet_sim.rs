//! Fleet-mode scale study (docs/fleet-scale.md): 10k hosts, 100 routers sharing membership
//! through etcd v3 (each host a leased key `/ringward/hosts/{name}`, every router watching the
//! prefix through etcd's JSON gateway, as `crates/router/src/control/etcd` does).
//!
//! ```text
//! cargo run --release -p ringward-benches --bin fleet_sim
//! cargo run --release -p ringward-benches --bin fleet_sim -- --etcd http://127.0.0.1:2379 --etcd-pid PID
//! ```
//!
//! Deterministic (fixed seeds) wherever it does not time something, and bounded (about 15 s,
//! 30 s more with `--etcd`). It prints markdown tables:
//!
//! 1. the ring at 100 / 1k / 10k / 65535 hosts: build time, `memory_bytes`, heap allocated
//!    during the build, RSS growth (each in a fresh child process), slot balance; the
//!    65536-host refusal;
//! 2. movement at 10k hosts (ten adds, ten removes, over all 2^20 slots; one add over 1M and
//!    100k keys), the host-id shift, and a points-per-weight halving step (8192 -> 8193);
//! 3. what one router pays per membership event at 10k hosts: the ring, the router's
//!    per-host in-flight arrays (`HostLoads`, real), `Health::set_hosts`/`snapshot` and
//!    `ringward_embed::admissions` (real), and replicas of the router's `pub(crate)`
//!    name-matching loops (`reload::rebuild_if_hosts_changed`, `Fleet::build`,
//!    `Fleet::inherit_loads`, copied loop for loop), against the same steps done with a
//!    name index (the proposed fix, measured the same way);
//! 4. the admin API's `/admin/hosts` document and `/metrics` at 10k hosts;
//! 5. watch event bytes (etcd 3.4's JSON gateway, and gRPC's protobuf framing);
//! 6. with `--etcd URL` (a scratch etcd: it writes, then deletes, keys under
//!    `/ringward-fleet-sim/`): bytes per event on the wire, etcd's CPU per write and per
//!    event delivered to 100 gateway watchers (`--etcd-pid`: read from `/proc/PID/stat`),
//!    the full-prefix list at 10k keys, lease keep-alives, the txn and request-size limits;
//! 7. a discrete-event simulation of churn (steady 1%/min restarts, a rolling deploy, a zone
//!    loss, scale-out) against one router's apply policy, and etcd's fan-out to 100 routers;
//! 8. the limits, ordered by headroom: what breaks first.
#![forbid(unsafe_code)]

use std::alloc::System;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use health::{Health, HealthConfig};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use ringward_benches::{KEY_LEN, host_name, hosts, keys};
use ringward_embed::HostLoads;
use router_core::{HostSpec, KeyHash, MAX_HOSTS, Ring, RingError, Snapshot};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The fleet studied.
const HOSTS: usize = 10_000;
const ROUTERS: usize = 100;
/// Router defaults: `limits.per_host_in_flight`, `health.probe_interval`,
/// `discovery.etcd.remove_delay`.
const PER_HOST_IN_FLIGHT: u32 = 256;
const PROBE_INTERVAL_S: f64 = 0.5;
const REMOVE_DELAY_S: f64 = 5.0;
/// The ring's slot count and slot shift, and its points-per-weight rule (docs/ring.md).
const SLOTS: u64 = 1 << 20;
const SLOT_SHIFT: u32 = 44;
const POINTS_PER_WEIGHT: u64 = 2048;
const MAX_POINTS: u64 = 1 << 21;
/// etcd defaults: `--max-request-bytes`, `--max-txn-ops`, the recommended ceiling of
/// `--quota-backend-bytes`, expired leases revoked per second (`leaseRevokeRate`).
const ETCD_MAX_REQUEST: usize = 1536 * 1024;
const ETCD_MAX_TXN_OPS: usize = 128;
const ETCD_DB_RECOMMENDED: f64 = 8.0 * 1024.0 * 1024.0 * 1024.0;
const ETCD_LEASE_REVOKE_RATE: f64 = 1000.0;
/// A proxied request's CPU cost, for scale: Ringward's requests per CPU-second in
/// docs/benchmarks.md's peer table (about 24k-30k).
const REQ_PER_CPU_S: f64 = 30_000.0;
/// Simulated fleet time per scenario.
const SIM_SECONDS: f64 = 600.0;

// ---------------------------------------------------------------------------------------
// Measuring helpers.

/// The best (least disturbed) of `runs` timings of `f`, in milliseconds, and its last result.
fn best_ms<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        // Opaque, so the work cannot be moved past the clock read.
        let out = std::hint::black_box(f());
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        last = Some(out);
    }
    (best, last.expect("at least one run"))
}

/// `VmRSS` and `VmHWM` of this process, in bytes (0 where /proc is missing).
fn rss() -> (usize, usize) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// Heap bytes allocated (in total) and still held after `f`, from the counting allocator.
fn heap<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    let s = region.change();
    let held = s.bytes_allocated.saturating_sub(s.bytes_deallocated);
    (out, s.bytes_allocated, held)
}

/// Points per unit of weight at a total weight (the ring's halving rule, docs/ring.md).
fn points_per_weight(total_weight: u64) -> u64 {
    let mut p = POINTS_PER_WEIGHT;
    while p > 1 && p.saturating_mul(total_weight) > MAX_POINTS {
        p /= 2;
    }
    p
}

fn name_at(ring: &Ring, hash: KeyHash) -> &str {
    &ring.host(ring.primary(hash)).name
}

/// Slots whose own host (by name) differs between two rings.
fn slots_moved(a: &Ring, b: &Ring) -> usize {
    (0..SLOTS)
        .filter(|s| {
            let h = KeyHash(s << SLOT_SHIFT);
            name_at(a, h) != name_at(b, h)
        })
        .count()
}

/// Keys whose own host (by name) differs between two rings.
fn keys_moved(a: &Ring, b: &Ring, keys: &[KeyHash]) -> usize {
    keys.iter()
        .filter(|&&h| name_at(a, h) != name_at(b, h))
        .count()
}

/// The child-process measurements: `--child ring N` builds a ring of N hosts, `--child
/// loads N` the router's in-flight arrays for N hosts; both print `RSS before, RSS after,
/// peak RSS` in bytes. A fresh process, so nothing freed earlier is reused.
fn child(what: &str, n: usize) {
    let (before, _) = rss();
    #[allow(clippy::disallowed_methods)] // the counters' origin only
    let base = Instant::now();
    let held: Box<dyn std::any::Any> = match what {
        "ring" => Box::new(Ring::try_new(hosts(n)).expect("valid hosts")),
        _ => Box::new(HostLoads::new(n, Some(PER_HOST_IN_FLIGHT), base)),
    };
    let (after, peak) = rss();
    println!("{before} {after} {peak}");
    drop(held);
}

/// Runs `child` in a fresh process: (RSS growth held, peak RSS growth), bytes.
fn rss_in_child(what: &str, n: usize) -> Option<(usize, usize)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .args(["--child", what, &n.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<usize> = text
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    match v[..] {
        [before, after, peak] => Some((after.saturating_sub(before), peak.saturating_sub(before))),
        _ => None,
    }
}

/// All results the later sections reuse.
#[derive(Default)]
struct Measured {
    /// Ring build at 10k hosts (one added), ms.
    rebuild_ms: f64,
    /// A new snapshot over the same ring (an admission change), ms.
    snapshot_ms: f64,
    /// Per host event, as the router does it today: the membership diff, ms; the rebuild
    /// that follows when the set changed, ms.
    diff_ms: f64,
    apply_ms: f64,
    /// The same with a name index (the fix): the rebuild, ms (the diff is then negligible).
    indexed_apply_ms: f64,
    indexed_diff_ms: f64,
    /// `HostLoads::total` at 100 and 10k hosts, microseconds.
    total_us: (f64, f64),
    /// Heap of the 10k-host `HostLoads`, bytes.
    loads_bytes: usize,
    /// Worst add movement at 10k hosts, slots moved / ideal.
    add_worst: f64,
    /// Movement crossing the 8192 halving step, slots moved / ideal.
    step_moved: f64,
    /// Slot balance at 10k: max / mean, min / mean.
    balance: (f64, f64),
    /// `/admin/hosts` and `/metrics` bytes at 10k hosts, and the series count.
    admin_hosts_bytes: usize,
    metrics_bytes: usize,
    metrics_series: usize,
    /// Watch event bytes: (JSON gateway incl. chunk framing, gRPC) for a host put, a host
    /// delete, an ejection put, an ejection delete.
    event_bytes: [(usize, usize); 4],
    /// A full list of the 10k-host prefix: (JSON gateway, protobuf) bytes.
    list_bytes: (usize, usize),
    /// From a live etcd, if given: CPU microseconds per write, per watch event delivered,
    /// per keep-alive, per full list.
    etcd_us_per_write: Option<f64>,
    etcd_us_per_delivery: Option<f64>,
    etcd_us_per_keepalive: Option<f64>,
    etcd_ms_per_list: Option<f64>,
}

// ---------------------------------------------------------------------------------------
// 1. The ring at scale.

fn ring_at_scale(m: &mut Measured) {
    println!("## 1. The ring at scale (measured)\n");
    println!(
        "| hosts | points/weight | build ms (best of 3) | vs 1k | memory_bytes | heap allocated during build | RSS held / peak (fresh process) | slots per host | slot max/mean | slot min/mean |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut build_1k = None;
    for n in [100, 1000, HOSTS, MAX_HOSTS] {
        let set = hosts(n);
        let (ring, allocated, _) = heap(|| Ring::try_new(set.clone()).expect("valid hosts"));
        let (ms, _) = best_ms(3, || Ring::try_new(set.clone()).expect("valid hosts"));
        if n == 1000 {
            build_1k = Some(ms);
        }
        let counts = ring.slot_counts();
        let mean = SLOTS as f64 / n as f64;
        let max = f64::from(*counts.iter().max().unwrap_or(&0)) / mean;
        let min = f64::from(*counts.iter().min().unwrap_or(&0)) / mean;
        if n == HOSTS {
            m.balance = (max, min);
        }
        let rss = rss_in_child("ring", n).map_or("-".into(), |(held, peak)| {
            format!("{:.1} / {:.1} MiB", mib(held as f64), mib(peak as f64))
        });
        println!(
            "| {n} | {} | {ms:.1} | {} | {:.2} MiB | {:.1} MiB | {rss} | {mean:.1} | {max:.3} | {min:.3} |",
            points_per_weight(n as u64),
            build_1k.map_or("-".into(), |b| format!("{:.2}x", ms / b)),
            mib(ring.memory_bytes() as f64),
            mib(allocated as f64),
        );
    }
    match Ring::try_new(hosts(MAX_HOSTS + 1)) {
        Err(RingError::TooManyHosts { count }) => {
            println!("\n{count} hosts: refused (`RingError::TooManyHosts`; host ids are u16).")
        }
        other => println!(
            "\n{} hosts: unexpected {:?}",
            MAX_HOSTS + 1,
            other.map(|r| r.len())
        ),
    }
    println!();
}

// ---------------------------------------------------------------------------------------
// 2. Movement at 10k hosts.

fn movement(m: &mut Measured) {
    println!("## 2. Movement of one membership change (measured)\n");
    let base = hosts(HOSTS);
    let ring = Ring::try_new(base.clone()).expect("valid hosts");
    let mut adds = Vec::new();
    let mut removes = Vec::new();
    let mut first_add = None;
    for i in 0..10 {
        let mut plus = base.clone();
        plus.push(HostSpec::new(host_name(HOSTS + i), 1));
        let t = Instant::now();
        let r = Ring::try_new(plus).expect("valid hosts");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        m.rebuild_ms = if i == 0 { ms } else { m.rebuild_ms.min(ms) };
        adds.push(slots_moved(&ring, &r) as f64 / (SLOTS as f64 / (HOSTS + 1) as f64));
        if i == 0 {
            first_add = Some(r);
        }
        let mut minus = base.clone();
        minus.remove(i * (HOSTS / 10) + 7);
        let r = Ring::try_new(minus).expect("valid hosts");
        removes.push(slots_moved(&ring, &r) as f64 / (SLOTS as f64 / HOSTS as f64));
    }
    let stats = |v: &[f64]| {
        let worst = v.iter().copied().fold(0.0, f64::max);
        (worst, v.iter().sum::<f64>() / v.len() as f64)
    };
    let (aw, am) = stats(&adds);
    let (rw, rm) = stats(&removes);
    m.add_worst = aw;
    let added = first_add.expect("ten adds");
    let key_hashes: Vec<KeyHash> = keys(1_000_000, 11)
        .iter()
        .map(|k: &[u8; KEY_LEN]| KeyHash::of(&k[..]))
        .collect();
    let k1m = keys_moved(&ring, &added, &key_hashes);
    let k100k = keys_moved(&ring, &added, &key_hashes[..100_000]);
    // Host ids are positions in name order: a name that sorts in between shifts every id
    // after it, so per-host arrays indexed by HostId must be remapped by name.
    let shifted = ring
        .hosts()
        .filter(|(id, h)| added.host(*id).name != h.name)
        .count();

    // Crossing a points-per-weight halving step: every host's points change.
    let step = 8192;
    let below = Ring::try_new(hosts(step)).expect("valid hosts");
    let above = Ring::try_new(hosts(step + 1)).expect("valid hosts");
    let step_moved = slots_moved(&below, &above) as f64 / (SLOTS as f64 / (step + 1) as f64);
    m.step_moved = step_moved;

    println!("| change at {HOSTS} hosts | moved / ideal share (1/N) |");
    println!("|---|---|");
    println!("| add one host, over all 2^20 slots (10 adds) | worst {aw:.3}, mean {am:.3} |");
    println!("| remove one host, over all 2^20 slots (10 removes) | worst {rw:.3}, mean {rm:.3} |");
    println!(
        "| add `{}`, 1M keys | {k1m} moved, ideal {:.1}: {:.3} |",
        host_name(HOSTS),
        1e6 / (HOSTS + 1) as f64,
        k1m as f64 / (1e6 / (HOSTS + 1) as f64)
    );
    println!(
        "| same add, 100k keys | {k100k} moved, ideal {:.1}: {:.3} (10 keys a host: noise) |",
        1e5 / (HOSTS + 1) as f64,
        k100k as f64 / (1e5 / (HOSTS + 1) as f64)
    );
    println!(
        "| {step} -> {} hosts (points/weight {} -> {}) | {step_moved:.0} ({:.0}% of all slots) |",
        step + 1,
        points_per_weight(step as u64),
        points_per_weight(step as u64 + 1),
        100.0 * step_moved / (step + 1) as f64
    );
    println!(
        "\nHost ids shifted by that add: {shifted} of {HOSTS} ({:.0}%). Ring rebuild with one host \
         added: {:.1} ms (best of 10).\n",
        100.0 * shifted as f64 / HOSTS as f64,
        m.rebuild_ms
    );
}

// ---------------------------------------------------------------------------------------
// 3. What one router pays per membership event.

/// The fields of the router's `HostConfig` (name, address, weight).
#[derive(Clone)]
struct HostConfigLike {
    name: String,
    addr: SocketAddr,
    weight: u32,
}

fn host_addr(i: usize) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(0x0A00_0000 + i as u32),
        8080,
    ))
}

fn config_of(n: usize) -> Vec<HostConfigLike> {
    let mut config: Vec<HostConfigLike> = (0..n)
        .map(|i| HostConfigLike {
            name: host_name(i),
            addr: host_addr(i),
            weight: 1,
        })
        .collect();
    config.sort_by(|a, b| a.name.cmp(&b.name));
    config
}

fn apply_cost(m: &mut Measured) {
    println!("## 3. One membership event at 10k hosts, as one router applies it\n");
    let n = HOSTS;
    // The registered hosts after one joined (`Membership::hosts` sorts them by name).
    let config = config_of(n + 1);
    let specs: Vec<HostSpec> = config
        .iter()
        .map(|h| HostSpec::new(h.name.clone(), h.weight))
        .collect();
    let previous = Ring::try_new(hosts(n)).expect("valid hosts");
    let (ring_ms, ring) = best_ms(3, || Ring::try_new(specs.clone()).expect("valid hosts"));

    // Every host event: `Membership::hosts` (clone and sort), then
    // `rebuild_if_hosts_changed` (crates/router/src/control/reload.rs): for each host
    // `fleet.id_of` (a binary search), then for each fleet host
    // `hosts.iter().any(|h| h.name == f.name)`.
    let present: BTreeMap<String, HostConfigLike> =
        config.iter().map(|h| (h.name.clone(), h.clone())).collect();
    let (diff_ms, changed) = best_ms(3, || {
        let mut hosts: Vec<HostConfigLike> = present.values().cloned().collect();
        hosts.sort_by(|a, b| a.name.cmp(&b.name));
        let mut changes = 0usize;
        for h in &hosts {
            if previous.host_id(&h.name).is_none() {
                changes += 1;
            }
        }
        for (_, f) in previous.hosts() {
            if !hosts.iter().any(|h| h.name == f.name) {
                changes += 1;
            }
        }
        changes
    });
    let (indexed_diff_ms, indexed_changed) = best_ms(3, || {
        let hosts: Vec<&HostConfigLike> = present.values().collect();
        let names: HashSet<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
        let added = hosts
            .iter()
            .filter(|h| previous.host_id(&h.name).is_none())
            .count();
        added
            + previous
                .hosts()
                .filter(|(_, f)| !names.contains(f.name.as_str()))
                .count()
    });
    assert_eq!(changed, indexed_changed);

    // `Fleet::build`: for each ring host, in id order, `hosts.iter().find(|h| h.name ==
    // spec.name)`.
    let (find_ms, found) = best_ms(3, || {
        let mut sum = 0usize;
        for (_, spec) in ring.hosts() {
            let host = config
                .iter()
                .find(|h| h.name == spec.name)
                .expect("every ring host is configured");
            sum += usize::from(host.addr.port()) + host.weight as usize;
        }
        sum
    });
    let (indexed_find_ms, indexed_found) = best_ms(3, || {
        let index: HashMap<&str, &HostConfigLike> =
            config.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut sum = 0usize;
        for (_, spec) in ring.hosts() {
            let host = index[spec.name.as_str()];
            sum += usize::from(host.addr.port()) + host.weight as usize;
        }
        sum
    });
    assert_eq!(found, indexed_found);

    // ... then fresh in-flight counters for every host (`HostLoads::new`), which
    // `inherit_loads` replaces: `previous.hosts.iter().position(|p| p.name == h.name)` for
    // every host, then `HostLoads::carry_over`.
    #[allow(clippy::disallowed_methods)] // the counters' origin only
    let base = Instant::now();
    let ((loads_ms, loads), _, loads_bytes) = heap(|| {
        best_ms(1, || {
            HostLoads::new(ring.len(), Some(PER_HOST_IN_FLIGHT), base)
        })
    });
    drop(loads);
    m.loads_bytes = loads_bytes;
    let loads_rss = rss_in_child("loads", n);
    let old_loads = HostLoads::new(previous.len(), Some(PER_HOST_IN_FLIGHT), base);
    // The bounded-load cap's `InFlight::total` (router-core's slow path): one counter per
    // host, each behind its own allocation.
    let small = HostLoads::new(100, Some(PER_HOST_IN_FLIGHT), base);
    let per_call = |loads: &HostLoads, calls: u32| {
        let (ms, _) = best_ms(3, || {
            (0..calls)
                .map(|_| router_core::InFlight::total(std::hint::black_box(loads)))
                .sum::<u64>()
        });
        ms * 1e3 / f64::from(calls)
    };
    m.total_us = (per_call(&small, 100_000), per_call(&old_loads, 200));
    drop(small);
    let (inherit_ms, carried) = best_ms(3, || {
        let from: Vec<Option<usize>> = ring
            .hosts()
            .map(|(_, h)| previous.hosts().position(|(_, p)| p.name == h.name))
            .collect();
        HostLoads::carry_over(&old_loads, Some(PER_HOST_IN_FLIGHT), &from)
    });
    drop(carried);
    let (indexed_inherit_ms, carried) = best_ms(3, || {
        let from: Vec<Option<usize>> = ring
            .hosts()
            .map(|(_, h)| previous.host_id(&h.name).map(|id| id.index()))
            .collect();
        HostLoads::carry_over(&old_loads, Some(PER_HOST_IN_FLIGHT), &from)
    });
    drop(carried);

    // The health task: `set_hosts` and a snapshot (health crate), then
    // `ringward_embed::admissions`, which looks each fleet host up in the snapshot (ordered
    // by the stable HostKey, handed out in order of first appearance: the new host's key is
    // the largest, its name sorts in the middle).
    let mut keys_by_name: BTreeMap<String, u32> =
        (0..n).map(|i| (host_name(i), i as u32)).collect();
    keys_by_name.insert(host_name(n), n as u32);
    let fleet_keys: Vec<u32> = ring
        .hosts()
        .map(|(_, h)| keys_by_name[h.name.as_str()])
        .collect();
    let mut health: Health<u32> = Health::new(HealthConfig::default());
    health.set_hosts(0..n as u32, base);
    let (set_hosts_ms, ()) = best_ms(1, || health.set_hosts(fleet_keys.iter().copied(), base));
    let (health_snapshot_ms, snapshot) = best_ms(3, || health.snapshot(base));
    let (admissions_ms, admissions) = best_ms(3, || {
        ringward_embed::admissions(fleet_keys.iter().copied(), &snapshot)
    });
    // The same lookups with an index from key to snapshot position.
    let (indexed_admissions_ms, indexed) = best_ms(3, || {
        let at: HashMap<u32, usize> = snapshot
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.host, i))
            .collect();
        fleet_keys
            .iter()
            .map(|k| at.get(k).map(|&i| &snapshot.hosts[i]))
            .filter(|h| h.is_some())
            .count()
    });
    assert_eq!(indexed, admissions.len());
    let ring = Arc::new(ring);
    let (snapshot_ms, published) = best_ms(3, || {
        Snapshot::new(Arc::clone(&ring), admissions.clone(), 2)
    });
    std::hint::black_box(published.generation());
    m.snapshot_ms = snapshot_ms;

    let common = ring_ms + set_hosts_ms + health_snapshot_ms + snapshot_ms;
    let apply = common + find_ms + loads_ms + inherit_ms + admissions_ms;
    let indexed_apply = common + indexed_find_ms + indexed_inherit_ms + indexed_admissions_ms;
    m.diff_ms = diff_ms;
    m.apply_ms = apply;
    m.indexed_diff_ms = indexed_diff_ms;
    m.indexed_apply_ms = indexed_apply;
    let row = |what: &str, ms: f64, fixed: Option<f64>, note: &str| {
        println!(
            "| {what} | {ms:.2} | {:.2}x | {} | {note} |",
            ms / ring_ms,
            fixed.map_or("same".into(), |f| format!("{f:.2}"))
        )
    };
    println!(
        "| step (10k hosts, one joins) | today, ms (best of 3) | vs ring build | with a name index, ms | note |"
    );
    println!("|---|---|---|---|---|");
    row(
        "every host event: membership diff (replica)",
        diff_ms,
        Some(indexed_diff_ms),
        "`rebuild_if_hosts_changed`: `hosts.iter().any` per fleet host, O(N^2); paid even when nothing changed (a delete held by `remove_delay`)",
    );
    row("`Ring::try_new`", ring_ms, None, "router-core");
    row(
        "`Fleet::build` name match (replica)",
        find_ms,
        Some(indexed_find_ms),
        "`hosts.iter().find` per ring host: O(N^2)",
    );
    row(
        "`HostLoads::new` (fresh counters)",
        loads_ms,
        Some(0.0),
        &format!(
            "{:.1} MiB heap ({} slots x 72 B a host){}; dropped at once by `inherit_loads`",
            mib(loads_bytes as f64),
            PER_HOST_IN_FLIGHT,
            loads_rss.map_or(String::new(), |(held, _)| format!(
                ", {:.1} MiB RSS",
                mib(held as f64)
            ))
        ),
    );
    row(
        "`inherit_loads` (replica) + `HostLoads::carry_over`",
        inherit_ms,
        Some(indexed_inherit_ms),
        "`previous.hosts.iter().position` per host: O(N^2)",
    );
    row(
        "`Health::set_hosts`",
        set_hosts_ms,
        None,
        "health crate, real",
    );
    row(
        "`Health::snapshot`",
        health_snapshot_ms,
        None,
        "health crate, real",
    );
    row(
        "`ringward_embed::admissions`",
        admissions_ms,
        Some(indexed_admissions_ms),
        "real: a linear search per host once key order and name order differ, O(N^2)",
    );
    row("`Snapshot::new`", snapshot_ms, None, "router-core");
    println!(
        "| **a membership change (diff + rebuild)** | **{:.1}** | **{:.1}x** | **{:.1}** | one core; {:.0}x less with the index |",
        diff_ms + apply,
        (diff_ms + apply) / ring_ms,
        indexed_diff_ms + indexed_apply,
        (diff_ms + apply) / (indexed_diff_ms + indexed_apply)
    );
    println!(
        "\nAn admission change (ejection, drain, restore) needs only `Snapshot::new`: {:.3} ms, \
         {:.0}x cheaper than a ring build.",
        snapshot_ms,
        ring_ms / snapshot_ms
    );
    println!(
        "On the request path, `InFlight::total` over the router's counters (read by \
         `Snapshot::route` whenever the key's host is at the bounded-load floor or degraded): \
         {:.2} us at 100 hosts, {:.1} us at {n} ({:.0}x).\n",
        m.total_us.0,
        m.total_us.1,
        m.total_us.1 / m.total_us.0
    );
}

// ---------------------------------------------------------------------------------------
// 4. The admin API at 10k hosts.

fn admin_api(m: &mut Measured) {
    println!("## 4. The admin API at 10k hosts (formatted here, same fields)\n");
    // `/admin/hosts` (crates/router/src/admin/routes.rs `hosts_json`), compact JSON.
    let (hosts_ms, doc) = best_ms(3, || {
        let mut s = String::from("{\"hosts\":[");
        for i in 0..HOSTS {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(
                s,
                "{{\"addr\":\"{}\",\"db_pool\":{{\"in_use\":{},\"max\":20,\"oldest_checkout_ms\":{},\"waiting\":0}},\
                 \"in_flight\":{},\"last_probe_ms\":{},\"name\":\"{}\",\"reason\":null,\"since_ms\":{},\
                 \"source\":\"etcd\",\"state\":\"healthy\",\"weight\":1}}",
                host_addr(i),
                i % 7,
                i % 40,
                i % 5,
                100 + i % 400,
                host_name(i),
                3_600_000 + i * 13
            );
        }
        s.push_str("]}");
        s
    });
    m.admin_hosts_bytes = doc.len();

    // `/metrics`: the per-host series of docs/operations.md, as the exposition writes them.
    const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    const LE: [&str; 14] = [
        "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
        "30", "+Inf",
    ];
    const STATES: [&str; 5] = ["healthy", "degraded", "ejected", "probation", "draining"];
    let (metrics_ms, (text, series)) = best_ms(3, || {
        let mut s = String::new();
        let mut series = 0usize;
        let mut line = |s: &mut String, name: &str, labels: &str, v: &str| {
            let _ = writeln!(s, "{name}{{{labels}}} {v}");
            series += 1;
        };
        for i in 0..HOSTS {
            let h = format!("host=\"{}\"", host_name(i));
            for c in CLASSES {
                line(
                    &mut s,
                    "ringward_requests_total",
                    &format!("{h},class=\"{c}\""),
                    "123456",
                );
            }
            for le in LE {
                line(
                    &mut s,
                    "ringward_request_duration_seconds_bucket",
                    &format!("{h},le=\"{le}\""),
                    "12345",
                );
            }
            line(
                &mut s,
                "ringward_request_duration_seconds_sum",
                &h,
                "1234.567",
            );
            line(
                &mut s,
                "ringward_request_duration_seconds_count",
                &h,
                "123456",
            );
            line(&mut s, "ringward_host_in_flight", &h, "2");
            line(
                &mut s,
                "ringward_host_oldest_in_flight_seconds",
                &h,
                "0.012",
            );
            for st in STATES {
                line(
                    &mut s,
                    "ringward_host_state",
                    &format!("{h},state=\"{st}\""),
                    "0",
                );
            }
            for r in health::Reason::EJECTIONS.map(health::Reason::as_str) {
                line(
                    &mut s,
                    "ringward_ejections_total",
                    &format!("{h},reason=\"{r}\""),
                    "0",
                );
            }
            for g in ["max", "in_use", "waiting"] {
                line(&mut s, &format!("ringward_db_pool_{g}"), &h, "20");
            }
            line(
                &mut s,
                "ringward_db_pool_oldest_checkout_seconds",
                &h,
                "0.004",
            );
            line(&mut s, "ringward_probe_age_seconds", &h, "0.213");
            line(
                &mut s,
                "ringward_last_probe_timestamp_seconds",
                &h,
                "1767225600.123",
            );
        }
        (s, series)
    });
    m.metrics_bytes = text.len();
    m.metrics_series = series;
    println!("| endpoint at {HOSTS} hosts | size | format time here | note |");
    println!("|---|---|---|---|");
    println!(
        "| `GET /admin/hosts` | {:.2} MiB ({} B a host) | {hosts_ms:.1} ms | a lower bound: the router builds a `serde_json::Value` tree first |",
        mib(doc.len() as f64),
        doc.len() / HOSTS
    );
    println!(
        "| `GET /metrics` (per-host series only) | {:.1} MiB, {series} series ({} a host) | {metrics_ms:.1} ms | x {ROUTERS} routers = {:.0} M series for Prometheus |",
        mib(text.len() as f64),
        series / HOSTS,
        (series * ROUTERS) as f64 / 1e6
    );
    println!();
}

// ---------------------------------------------------------------------------------------
// 5. Watch event bytes.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(B64[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A host's registration under `{prefix}hosts/` (`records::host`).
fn host_value(i: usize) -> String {
    format!("{{\"addr\":\"{}\",\"weight\":1}}", host_addr(i))
}

/// A health ejection under `{prefix}ejections/{host}/{router}` (`records::ejection_value`).
fn ejection_value() -> String {
    "{\"reason\":\"probe_failures\",\"by\":\"router-042\",\"until_ms\":1767225630123}".to_owned()
}

/// The ids in a watch response: cluster, member, lease (random 64-bit numbers), raft term.
#[derive(Clone, Copy)]
struct Ids {
    cluster: u64,
    member: u64,
    lease: u64,
    term: u64,
}

/// Realistic ids, as a live etcd 3.4 shows them.
const IDS: Ids = Ids {
    cluster: 2_755_613_793_311_995_676,
    member: 9_829_954_754_940_738_069,
    lease: 7_587_862_072_383_582_730,
    term: 7,
};

/// One watch response as etcd 3.4's JSON gateway streams it (one line each), for a put
/// (`Some(value)`, at its first version) or a delete.
fn json_event(ids: Ids, key: &str, value: Option<&str>, revision: u64) -> String {
    let header = format!(
        "{{\"cluster_id\":\"{}\",\"member_id\":\"{}\",\"revision\":\"{revision}\",\"raft_term\":\"{}\"}}",
        ids.cluster, ids.member, ids.term
    );
    let event = match value {
        Some(v) => format!(
            "{{\"kv\":{{\"key\":\"{}\",\"create_revision\":\"{revision}\",\"mod_revision\":\"{revision}\",\"version\":\"1\",\"value\":\"{}\",\"lease\":\"{}\"}}}}",
            base64(key.as_bytes()),
            base64(v.as_bytes()),
            ids.lease
        ),
        None => format!(
            "{{\"type\":\"DELETE\",\"kv\":{{\"key\":\"{}\",\"mod_revision\":\"{revision}\"}}}}",
            base64(key.as_bytes())
        ),
    };
    format!("{{\"result\":{{\"header\":{header},\"events\":[{event}]}}}}\n")
}

/// HTTP/1.1 chunk framing around one payload: hex size, CRLF, payload, CRLF.
fn chunked(payload: usize) -> usize {
    format!("{payload:x}").len() + 2 + payload + 2
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Protobuf bytes of a varint field (0 omitted) and of a length-delimited field.
fn pb_varint(v: u64) -> usize {
    if v == 0 { 0 } else { 1 + varint_len(v) }
}
fn pb_bytes(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// One `WatchResponse` with one event as gRPC sends it: protobuf, the 5-byte gRPC message
/// prefix and a 9-byte HTTP/2 DATA frame header.
fn grpc_event(key: &str, value: Option<&str>, revision: u64) -> usize {
    let header =
        pb_varint(IDS.cluster) + pb_varint(IDS.member) + pb_varint(revision) + pb_varint(IDS.term);
    let kv = pb_bytes(key.len())
        + match value {
            Some(v) => {
                pb_varint(revision)
                    + pb_varint(revision)
                    + pb_varint(1)
                    + pb_bytes(v.len())
                    + pb_varint(IDS.lease)
            }
            None => pb_varint(revision),
        };
    let event = pb_varint(u64::from(value.is_none())) + pb_bytes(kv);
    let response = pb_bytes(header) + pb_varint(1) + pb_bytes(event);
    response + 5 + 9
}

/// One key-value of a range response: (the gateway's JSON, protobuf) bytes.
fn list_entry(i: usize) -> (usize, usize) {
    let key = format!("/ringward/hosts/{}", host_name(i));
    let value = host_value(i);
    let rev = 1_000_000 + i as u64;
    let pb = pb_bytes(
        pb_bytes(key.len())
            + pb_varint(rev)
            + pb_varint(rev)
            + pb_varint(1)
            + pb_bytes(value.len())
            + pb_varint(IDS.lease),
    );
    let json = format!(
        "{{\"key\":\"{}\",\"create_revision\":\"{rev}\",\"mod_revision\":\"{rev}\",\"version\":\"1\",\"value\":\"{}\",\"lease\":\"{}\"}},",
        base64(key.as_bytes()),
        base64(value.as_bytes()),
        IDS.lease
    );
    (json.len(), pb)
}

fn event_sizes(m: &mut Measured) {
    println!("## 5. Watch event bytes (etcd 3.4 formats, computed)\n");
    let i = 3916;
    let rev = 48_213_577;
    let host_key = format!("/ringward/hosts/{}", host_name(i));
    let eject_key = format!("/ringward/ejections/{}/router-042", host_name(i));
    let hv = host_value(i);
    let ev = ejection_value();
    let rows = [
        ("host put (register)", &host_key, Some(hv.as_str())),
        ("host delete (lease gone)", &host_key, None),
        ("ejection put", &eject_key, Some(ev.as_str())),
        ("ejection delete (its lease ends)", &eject_key, None),
    ];
    println!(
        "| event | key B | value B | JSON gateway line B | + HTTP chunk framing | gRPC (protobuf + frames) B |"
    );
    println!("|---|---|---|---|---|---|");
    for (slot, (what, key, value)) in rows.iter().enumerate() {
        let json = json_event(IDS, key, *value, rev);
        let grpc = grpc_event(key, *value, rev);
        m.event_bytes[slot] = (chunked(json.len()), grpc);
        println!(
            "| {what} | {} | {} | {} | {} | {grpc} |",
            key.len(),
            value.map_or(0, str::len),
            json.len(),
            chunked(json.len())
        );
    }
    let (json, pb) = (0..HOSTS).fold((0, 0), |(j, p), i| {
        let (a, b) = list_entry(i);
        (j + a, p + b)
    });
    m.list_bytes = (json, pb);
    println!(
        "\nA host put's envelope (all but the {} value bytes): {} B on the JSON gateway (base64 \
         adds a third to key and value, the ids and revisions are decimal strings), {} B on gRPC.",
        hv.len(),
        m.event_bytes[0].0 - hv.len(),
        m.event_bytes[0].1 - hv.len()
    );
    println!(
        "Full list of the prefix at {HOSTS} hosts (a router's start, and its re-read after a \
         compacted or broken watch): {:.2} MiB JSON, {:.2} MiB protobuf.\n",
        mib(json as f64),
        mib(pb as f64),
    );
}

// ---------------------------------------------------------------------------------------
// 6. Live etcd (optional).

/// A minimal HTTP/1.1 client over one keep-alive connection (the JSON gateway needs no more).
struct Http {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Bytes read off the socket.
    wire: usize,
}

impl Http {
    fn connect(addr: &str) -> io::Result<Http> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Http {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            wire: 0,
        })
    }

    fn send(&mut self, method: &str, path: &str, body: &str) -> io::Result<()> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.writer.write_all(head.as_bytes())?;
        self.writer.write_all(body.as_bytes())
    }

    fn line(&mut self) -> io::Result<String> {
        let mut s = String::new();
        let n = self.reader.read_line(&mut s)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.wire += n;
        Ok(s.trim_end().to_owned())
    }

    /// Reads a response head: the status, and the body's length unless it is chunked.
    fn head(&mut self) -> io::Result<(u16, Option<usize>)> {
        let status: u16 = self
            .line()?
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = None;
        loop {
            let l = self.line()?;
            if l.is_empty() {
                return Ok((status, length));
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().ok();
            }
        }
    }

    /// The next chunk of a chunked body (empty at its end).
    fn chunk(&mut self) -> io::Result<Vec<u8>> {
        let size = usize::from_str_radix(self.line()?.trim(), 16)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut buf = vec![0u8; size];
        self.reader.read_exact(&mut buf)?;
        self.wire += size;
        self.line()?;
        Ok(buf)
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
        self.send(method, path, body)?;
        let (status, length) = self.head()?;
        let body = match length {
            Some(n) => {
                let mut buf = vec![0u8; n];
                self.reader.read_exact(&mut buf)?;
                self.wire += n;
                buf
            }
            None => {
                let mut all = Vec::new();
                loop {
                    let c = self.chunk()?;
                    if c.is_empty() {
                        break;
                    }
                    all.extend(c);
                }
                all
            }
        };
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }

    fn post(&mut self, path: &str, body: &str) -> io::Result<(u16, String)> {
        self.call("POST", path, body)
    }
}

/// A number a JSON answer gives as `"field":"123"` (the gateway's 64-bit integers).
fn field(json: &str, name: &str) -> Option<u64> {
    json.split(&format!("\"{name}\":\""))
        .nth(1)?
        .split('"')
        .next()?
        .parse()
        .ok()
}

/// utime + stime of a process, in seconds (Linux `/proc/PID/stat`, USER_HZ = 100).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

const LIVE_PREFIX: &str = "/ringward-fleet-sim/";

fn live_key(i: usize) -> String {
    format!("{LIVE_PREFIX}hosts/{}", host_name(i))
}

fn put_body(key: &str, value: &str, lease: Option<u64>) -> String {
    format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"{}}}",
        base64(key.as_bytes()),
        base64(value.as_bytes()),
        lease.map_or(String::new(), |l| format!(",\"lease\":\"{l}\""))
    )
}

fn delete_body(key: &str) -> String {
    format!("{{\"key\":\"{}\"}}", base64(key.as_bytes()))
}

fn prefix_range() -> String {
    let end = format!("{}0", LIVE_PREFIX.trim_end_matches('/'));
    format!(
        "{{\"key\":\"{}\",\"range_end\":\"{}\"}}",
        base64(LIVE_PREFIX.as_bytes()),
        base64(end.as_bytes())
    )
}

/// Opens a watch on the live prefix (as the router's link does); returns once etcd
/// confirmed it.
fn open_watch(addr: &str) -> io::Result<Http> {
    let mut w = Http::connect(addr)?;
    let range = prefix_range();
    w.send(
        "POST",
        "/v3/watch",
        &format!(
            "{{\"create_request\":{},\"progress_notify\":true}}}}",
            range.trim_end_matches('}')
        ),
    )?;
    w.head()?;
    let created = w.chunk()?;
    if !String::from_utf8_lossy(&created).contains("\"created\":true") {
        return Err(io::Error::other("watch not created"));
    }
    w.wire = 0;
    Ok(w)
}

/// Reads watch responses until `events` events arrived; returns (events, wire bytes).
fn drain_watch(mut w: Http, events: usize) -> io::Result<(usize, usize)> {
    let mut seen = 0;
    while seen < events {
        let c = w.chunk()?;
        let text = String::from_utf8_lossy(&c);
        seen += text.matches("\"mod_revision\"").count();
    }
    Ok((seen, w.wire))
}

fn live(m: &mut Measured, url: &str, pid: Option<u32>) -> io::Result<()> {
    println!("## 6. Live etcd at {url}\n");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut c = Http::connect(&addr)?;
    let (_, version) = c.call("GET", "/version", "")?;
    println!("etcd: `{}`; etcd process: {pid:?}.\n", version.trim());
    c.post("/v3/kv/deleterange", &prefix_range())?;
    let cpu = || pid.and_then(cpu_seconds);
    let (_, grant) = c.post("/v3/lease/grant", "{\"TTL\":120}")?;
    let lease = field(&grant, "ID").unwrap_or(0);

    println!("| measured | figure |\n|---|---|");
    // Bytes per event on the wire, one watcher, against the computed format.
    let w = open_watch(&addr)?;
    let k = live_key(3916);
    let v = host_value(3916);
    let (_, put) = c.post("/v3/kv/put", &put_body(&k, &v, Some(lease)))?;
    c.post("/v3/kv/deleterange", &delete_body(&k))?;
    let (_, wire) = drain_watch(w, 2)?;
    let ids = Ids {
        cluster: field(&put, "cluster_id").unwrap_or(0),
        member: field(&put, "member_id").unwrap_or(0),
        lease,
        term: field(&put, "raft_term").unwrap_or(0),
    };
    let rev = field(&put, "revision").unwrap_or(0);
    let computed = chunked(json_event(ids, &k, Some(&v), rev).len())
        + chunked(json_event(ids, &k, None, rev + 1).len());
    println!(
        "| a host's put + delete ({} B key, {} B value) on one watch stream | {wire} B (computed: {computed} B) |",
        k.len(),
        v.len()
    );

    // Fan-out: the same writes with no watcher, then with ROUTERS watchers.
    const WRITES: usize = 1000;
    let write_all = |c: &mut Http| -> io::Result<f64> {
        let t = Instant::now();
        for i in 0..WRITES / 2 {
            let k = live_key(i);
            c.post("/v3/kv/put", &put_body(&k, &host_value(i), Some(lease)))?;
            c.post("/v3/kv/deleterange", &delete_body(&k))?;
        }
        Ok(t.elapsed().as_secs_f64())
    };
    let c0 = cpu();
    let alone = write_all(&mut c)?;
    let c1 = cpu();
    let watchers: Vec<Http> = (0..ROUTERS)
        .map(|_| open_watch(&addr))
        .collect::<io::Result<_>>()?;
    let barrier = Arc::new(Barrier::new(ROUTERS + 1));
    let handles: Vec<_> = watchers
        .into_iter()
        .map(|w| {
            let b = Arc::clone(&barrier);
            std::thread::spawn(move || {
                b.wait();
                drain_watch(w, WRITES)
            })
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    let c2 = cpu();
    let fanned = write_all(&mut c)?;
    let mut delivered = 0;
    let mut wire = 0;
    for h in handles {
        let (n, b) = h
            .join()
            .map_err(|_| io::Error::other("watcher panicked"))??;
        delivered += n;
        wire += b;
    }
    let all_in = t.elapsed().as_secs_f64();
    let c3 = cpu();
    println!(
        "| {WRITES} writes (put, delete), one client, no watcher | {alone:.2} s ({:.0} writes/s) |",
        WRITES as f64 / alone
    );
    println!(
        "| the same with {ROUTERS} gateway watchers | writes {fanned:.2} s; all {delivered} deliveries in {all_in:.2} s ({:.0}/s), {:.1} MiB on the wire ({:.0} B each) |",
        delivered as f64 / all_in,
        mib(wire as f64),
        wire as f64 / delivered.max(1) as f64
    );
    if let (Some(c0), Some(c1), Some(c2), Some(c3)) = (c0, c1, c2, c3) {
        let per_write = (c1 - c0) / WRITES as f64 * 1e6;
        let per_delivery = ((c3 - c2) - (c1 - c0)) / delivered.max(1) as f64 * 1e6;
        m.etcd_us_per_write = Some(per_write);
        m.etcd_us_per_delivery = Some(per_delivery);
        println!(
            "| etcd CPU per write (no watcher) | {per_write:.0} us |\n| etcd CPU per watch delivery ({ROUTERS} gateway watchers, less the writes' own) | {per_delivery:.1} us |"
        );
    }

    // The full list at HOSTS keys, written in txns of ETCD_MAX_TXN_OPS puts.
    for batch in (0..HOSTS).collect::<Vec<_>>().chunks(ETCD_MAX_TXN_OPS) {
        let ops: Vec<String> = batch
            .iter()
            .map(|&i| {
                format!(
                    "{{\"request_put\":{}}}",
                    put_body(&live_key(i), &host_value(i), Some(lease))
                )
            })
            .collect();
        c.post(
            "/v3/kv/txn",
            &format!("{{\"success\":[{}]}}", ops.join(",")),
        )?;
    }
    let (ms, (status, body)) = best_ms(3, || {
        c.post("/v3/kv/range", &prefix_range())
            .unwrap_or((0, String::new()))
    });
    let lists = 10;
    let l0 = cpu();
    for _ in 0..lists {
        c.post("/v3/kv/range", &prefix_range())?;
    }
    let l1 = cpu();
    let per_list = match (l0, l1) {
        (Some(a), Some(b)) => {
            let ms = (b - a) / f64::from(lists) * 1e3;
            m.etcd_ms_per_list = Some(ms);
            format!(", etcd CPU {ms:.0} ms a list")
        }
        _ => String::new(),
    };
    println!(
        "| range of the prefix at {HOSTS} keys (a router's full read) | {status}: {:.2} MiB (computed {:.2} MiB), {ms:.0} ms{per_list} |",
        mib(body.len() as f64),
        mib(m.list_bytes.0 as f64),
    );

    // Lease keep-alives through the gateway.
    let n = 1000;
    let k0 = cpu();
    let t = Instant::now();
    for _ in 0..n {
        c.post("/v3/lease/keepalive", &format!("{{\"ID\":\"{lease}\"}}"))?;
    }
    let wall = t.elapsed().as_secs_f64();
    let k1 = cpu();
    let per = match (k0, k1) {
        (Some(a), Some(b)) => {
            let us = (b - a) / f64::from(n) * 1e6;
            m.etcd_us_per_keepalive = Some(us);
            format!(", etcd CPU {us:.0} us each")
        }
        _ => String::new(),
    };
    println!(
        "| {n} lease keep-alives (gateway, one connection) | {:.2} ms each{per} |",
        wall * 1e3 / f64::from(n)
    );

    // Limits.
    let ops: Vec<String> = (0..=ETCD_MAX_TXN_OPS)
        .map(|i| format!("{{\"request_put\":{}}}", put_body(&live_key(i), "x", None)))
        .collect();
    let (status, body) = c.post(
        "/v3/kv/txn",
        &format!("{{\"success\":[{}]}}", ops.join(",")),
    )?;
    let error = |body: &str| {
        body.split("\"error\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("accepted")
            .to_owned()
    };
    println!(
        "| a txn of {} puts | {status}: {} |",
        ETCD_MAX_TXN_OPS + 1,
        error(&body)
    );
    let big = "x".repeat(ETCD_MAX_REQUEST + 64 * 1024);
    let (_, body) = c.post("/v3/kv/put", &put_body(&live_key(0), &big, None))?;
    println!(
        "| a put of a {:.2} MiB value | {} |",
        mib(big.len() as f64),
        error(&body)
    );

    c.post("/v3/kv/deleterange", &prefix_range())?;
    c.post("/v3/lease/revoke", &format!("{{\"ID\":\"{lease}\"}}"))?;
    println!();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// 7. Churn: a discrete-event simulation.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    /// A host's key deleted (a graceful stop, or its lease expired and etcd revoked it).
    HostDelete(u32),
    /// A host's key put (registered).
    HostPut(u32),
    /// A health ejection written (by one router, or by each router that saw it), and its
    /// record's lease ending.
    EjectPut(u32),
    EjectDelete(u32),
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    /// (time in seconds, event), sorted by time.
    events: Vec<(f64, Ev)>,
}

/// Poisson arrivals at `per_s` over `[0, until)`.
fn arrivals(rng: &mut StdRng, per_s: f64, until: f64) -> Vec<f64> {
    let mut t = 0.0;
    let mut out = Vec::new();
    loop {
        let u: f64 = rng.random::<f64>().max(1e-12);
        t += -u.ln() / per_s;
        if t >= until {
            return out;
        }
        out.push(t);
    }
}

/// Background churn: `restart_per_min` of the hosts restart per minute (delete, then put
/// after 5-30 s down); 0.2% a minute are ejected by health, the record ending 10-120 s later.
fn churn(rng: &mut StdRng, restart_per_min: f64, events: &mut Vec<(f64, Ev)>) {
    let n = HOSTS as f64;
    for t in arrivals(rng, n * restart_per_min / 60.0, SIM_SECONDS) {
        let h = rng.random_range(0..HOSTS as u32);
        let down = rng.random_range(5.0..30.0);
        events.push((t, Ev::HostDelete(h)));
        events.push((t + down, Ev::HostPut(h)));
    }
    for t in arrivals(rng, n * 0.002 / 60.0, SIM_SECONDS) {
        let h = rng.random_range(0..HOSTS as u32);
        events.push((t, Ev::EjectPut(h)));
        events.push((t + rng.random_range(10.0..120.0), Ev::EjectDelete(h)));
    }
}

fn scenarios() -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut rng = StdRng::seed_from_u64(0xF1EE7);
    let mut events = Vec::new();
    churn(&mut rng, 0.01, &mut events);
    out.push(Scenario {
        name: "steady",
        what: "1% of hosts restart a minute (down 5-30 s); 0.2% a minute ejected by health",
        events,
    });

    let mut events = Vec::new();
    churn(&mut rng, 0.10, &mut events);
    out.push(Scenario {
        name: "deploy",
        what: "rolling deploy: 10% of hosts restart a minute (the fleet in 10 min)",
        events,
    });

    // A zone (a third of the hosts) drops off the network at t = 60 s: the routers' probes
    // eject them within 1-3 s; their leases (TTL 10 s) expire and etcd revokes at most 1000
    // a second; they come back at 240-270 s (a put each), their ejections ending 5-15 s on.
    let mut events = Vec::new();
    churn(&mut rng, 0.01, &mut events);
    let zone = HOSTS / 3;
    for k in 0..zone {
        let h = (k * 3) as u32;
        events.push((60.0 + rng.random_range(1.0..3.0), Ev::EjectPut(h)));
        let revoke = 70.0 + k as f64 / ETCD_LEASE_REVOKE_RATE;
        events.push((revoke, Ev::HostDelete(h)));
        let back = rng.random_range(240.0..270.0);
        events.push((back, Ev::HostPut(h)));
        events.push((back + rng.random_range(5.0..15.0), Ev::EjectDelete(h)));
    }
    out.push(Scenario {
        name: "zone loss",
        what: "a third of the hosts lost at t = 60 s (leases revoked from 70 s at 1000/s), back at 240-270 s; steady churn besides",
        events,
    });

    let mut events = Vec::new();
    churn(&mut rng, 0.01, &mut events);
    for (k, t) in arrivals(&mut rng, 2.0, SIM_SECONDS).into_iter().enumerate() {
        events.push((t, Ev::HostPut((HOSTS + k) as u32)));
    }
    out.push(Scenario {
        name: "scale-out",
        what: "steady churn plus 2 new hosts a second",
        events,
    });
    for s in &mut out {
        s.events.retain(|(t, _)| *t < SIM_SECONDS);
        s.events.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// How one router turns host events into work.
#[derive(Clone, Copy)]
struct Policy {
    label: &'static str,
    /// Seconds a deleted host stays in the ring (`remove_delay`); a put within it cancels.
    hold: f64,
    /// Seconds to gather changes before one rebuild (`None`: one rebuild per change).
    batch: Option<f64>,
    /// Work per host event whatever it changes (the membership diff), seconds.
    diff: f64,
    /// Work per rebuild, seconds.
    rebuild: f64,
}

#[derive(Default)]
struct Outcome {
    rebuilds: usize,
    /// CPU demanded by the work that became ready in each 1-second window, seconds.
    cpu: Vec<f64>,
    /// The longest a change waited before its rebuild finished, seconds.
    max_lag: f64,
    /// When the router's apply task is next free.
    busy_until: f64,
}

impl Outcome {
    /// One piece of work of `cost` seconds, ready at `ready`, for a change seen at `seen`.
    fn spend(&mut self, ready: f64, seen: f64, cost: f64) {
        let start = self.busy_until.max(ready);
        self.busy_until = start + cost;
        self.max_lag = self.max_lag.max(self.busy_until - seen);
        let w = (ready as usize).min(self.cpu.len() - 1);
        self.cpu[w] += cost;
    }
}

/// One router applying a scenario's events under `p`; `snap` is an admission change's cost.
///
/// Without batching, every host event (and every held removal that expires) pays the diff,
/// and every change of the ring's host set a rebuild. With batching, host events only
/// record what they say; the first one opens a window, and when it closes one diff runs,
/// followed by one rebuild if the host set changed in the meantime.
fn run(s: &Scenario, p: Policy, snap: f64) -> Outcome {
    let mut o = Outcome {
        cpu: vec![0.0; SIM_SECONDS as usize + 1],
        ..Outcome::default()
    };
    // Pass 1: host events (and expiries) as triggers, and when the ring's host set changes.
    // Hosts below HOSTS start in the ring.
    let mut in_ring: HashSet<u32> = (0..HOSTS as u32).collect();
    let mut held: HashMap<u32, f64> = HashMap::new();
    let mut changes: Vec<f64> = Vec::new();
    let mut triggers: Vec<f64> = Vec::new();
    // Admission changes: (time, cost).
    let mut work: Vec<(f64, f64)> = Vec::new();
    let expire = |held: &mut HashMap<u32, f64>,
                  in_ring: &mut HashSet<u32>,
                  changes: &mut Vec<f64>,
                  triggers: &mut Vec<f64>,
                  h: u32,
                  t: f64| {
        if let Some(&end) = held.get(&h)
            && end <= t
        {
            held.remove(&h);
            in_ring.remove(&h);
            changes.push(end);
            triggers.push(end);
        }
    };
    for &(t, ev) in &s.events {
        match ev {
            Ev::HostDelete(h) => {
                expire(&mut held, &mut in_ring, &mut changes, &mut triggers, h, t);
                triggers.push(t);
                if in_ring.contains(&h) && !held.contains_key(&h) {
                    if p.hold > 0.0 {
                        held.insert(h, t + p.hold);
                    } else {
                        in_ring.remove(&h);
                        changes.push(t);
                    }
                }
            }
            Ev::HostPut(h) => {
                expire(&mut held, &mut in_ring, &mut changes, &mut triggers, h, t);
                triggers.push(t);
                if held.remove(&h).is_none() && in_ring.insert(h) {
                    changes.push(t);
                }
            }
            Ev::EjectPut(_) | Ev::EjectDelete(_) => work.push((t, snap)),
        }
    }
    for end in held.into_values().filter(|&end| end < SIM_SECONDS) {
        changes.push(end);
        triggers.push(end);
    }
    changes.sort_by(f64::total_cmp);
    triggers.sort_by(f64::total_cmp);

    // Pass 2: the work, in time order: (ready, oldest event covered, cost).
    let mut items: Vec<(f64, f64, f64)> = work.iter().map(|&(t, c)| (t, t, c)).collect();
    match p.batch {
        None => {
            items.extend(triggers.iter().map(|&t| (t, t, p.diff)));
            items.extend(changes.iter().map(|&t| (t, t, p.rebuild)));
            o.rebuilds = changes.len();
        }
        Some(window) => {
            // A window opens at the first trigger after the last batch began; the batch runs
            // when it closes, or when the previous one ends, whichever is later.
            let mut free = 0.0f64;
            let (mut i, mut c) = (0, 0);
            while i < triggers.len() {
                let open = triggers[i];
                let fire = (open + window).max(free);
                while i < triggers.len() && triggers[i] <= fire {
                    i += 1;
                }
                let mut cost = p.diff;
                if c < changes.len() && changes[c] <= fire {
                    cost += p.rebuild;
                    o.rebuilds += 1;
                    while c < changes.len() && changes[c] <= fire {
                        c += 1;
                    }
                }
                items.push((fire, open, cost));
                free = fire + cost;
            }
        }
    }
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (ready, seen, cost) in items {
        o.spend(ready, seen, cost);
    }
    o
}

/// A headroom figure: two decimals, or enough to show it is not zero.
fn headroom(h: f64) -> String {
    if h.is_nan() {
        "-".into()
    } else if h >= 0.1 {
        format!("{h:.2}x")
    } else {
        format!("{h:.4}x")
    }
}

fn lag(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

/// Prints the simulation; returns the highest deliveries/s of any scenario's peak second.
fn simulate(m: &Measured) -> f64 {
    println!(
        "## 7. Churn at {HOSTS} hosts and {ROUTERS} routers (simulated, {SIM_SECONDS:.0} s each)\n"
    );
    let scenarios = scenarios();
    println!("### etcd: writes and the watch fan-out to {ROUTERS} routers\n");
    let us = m.etcd_us_per_delivery;
    println!(
        "| scenario | events | writes/s mean / peak 1 s | deliveries/s mean / peak | out of etcd (JSON gateway) mean / peak | gRPC peak | etcd CPU for the fan-out, mean / peak{} | peak deliveries/s if every router writes its own ejection |",
        us.map_or(String::from(" (needs --etcd)"), |us| format!(
            " ({us:.1} us a delivery)"
        ))
    );
    println!("|---|---|---|---|---|---|---|---|");
    let bytes_of = |ev: Ev| match ev {
        Ev::HostPut(_) => m.event_bytes[0],
        Ev::HostDelete(_) => m.event_bytes[1],
        Ev::EjectPut(_) => m.event_bytes[2],
        Ev::EjectDelete(_) => m.event_bytes[3],
    };
    let r = ROUTERS as f64;
    let mut highest = 0.0f64;
    for s in &scenarios {
        // Per second: events, JSON bytes, gRPC bytes, ejection events.
        let mut per_s = vec![(0usize, 0usize, 0usize, 0usize); SIM_SECONDS as usize + 1];
        for &(t, ev) in &s.events {
            let w = &mut per_s[t as usize];
            let (json, grpc) = bytes_of(ev);
            w.0 += 1;
            w.1 += json;
            w.2 += grpc;
            if matches!(ev, Ev::EjectPut(_) | Ev::EjectDelete(_)) {
                w.3 += 1;
            }
        }
        let n = s.events.len() as f64;
        let peak = per_s.iter().map(|w| w.0).max().unwrap_or(0) as f64;
        let peak_json = per_s.iter().map(|w| w.1).max().unwrap_or(0) as f64;
        let peak_grpc = per_s.iter().map(|w| w.2).max().unwrap_or(0) as f64;
        let peak_all_write = per_s
            .iter()
            .map(|w| (w.0 - w.3) as f64 * r + w.3 as f64 * r * r)
            .fold(0.0, f64::max);
        let json_total: usize = per_s.iter().map(|w| w.1).sum();
        highest = highest.max(peak * r);
        println!(
            "| {} | {} | {:.1} / {peak:.0} | {:.0} / {:.0} | {:.2} / {:.1} MiB/s | {:.1} MiB/s | {} | {:.0}k |",
            s.name,
            s.events.len(),
            n / SIM_SECONDS,
            n / SIM_SECONDS * r,
            peak * r,
            mib(json_total as f64 * r / SIM_SECONDS),
            mib(peak_json * r),
            mib(peak_grpc * r),
            us.map_or("-".into(), |us| format!(
                "{:.2} / {:.1} cores",
                n / SIM_SECONDS * r * us / 1e6,
                peak * r * us / 1e6
            )),
            peak_all_write / 1e3,
        );
    }

    let snap = m.snapshot_ms / 1e3;
    let today = |hold: f64, label| Policy {
        label,
        hold,
        batch: None,
        diff: m.diff_ms / 1e3,
        rebuild: m.apply_ms / 1e3,
    };
    let fixed = |hold: f64, batch: Option<f64>, label| Policy {
        label,
        hold,
        batch,
        diff: m.indexed_diff_ms / 1e3,
        rebuild: m.indexed_apply_ms / 1e3,
    };
    let policies = [
        today(REMOVE_DELAY_S, "today: remove_delay 5 s (default)"),
        today(60.0, "today: remove_delay 60 s"),
        fixed(0.0, None, "name index; no hold, a rebuild per change"),
        fixed(REMOVE_DELAY_S, None, "name index; hold 5 s"),
        fixed(
            REMOVE_DELAY_S,
            Some(0.1),
            "name index; hold 5 s, batched 100 ms",
        ),
        fixed(
            REMOVE_DELAY_S,
            Some(1.0),
            "name index; hold 5 s, batched 1 s",
        ),
        fixed(60.0, Some(1.0), "name index; hold 60 s, batched 1 s"),
    ];
    println!("\n### One router applying the stream\n");
    println!(
        "Costs (section 3): today {:.1} ms of diff per host event + {:.1} ms per rebuild; with a name \
         index {:.2} ms + {:.1} ms; an admission change {:.3} ms. CPU is of one core, demanded by the \
         work that arrived in each second: over 100% the router falls behind.\n",
        m.diff_ms, m.apply_ms, m.indexed_diff_ms, m.indexed_apply_ms, m.snapshot_ms
    );
    println!("| scenario | policy | rebuilds / min | CPU mean | CPU peak 1 s | worst lag |");
    println!("|---|---|---|---|---|---|");
    for s in &scenarios {
        for p in policies {
            let o = run(s, p, snap);
            let mean = o.cpu.iter().sum::<f64>() / SIM_SECONDS;
            let peak = o.cpu.iter().copied().fold(0.0, f64::max);
            println!(
                "| {} | {} | {:.1} | {:.1}% | {:.0}% | {} |",
                s.name,
                p.label,
                o.rebuilds as f64 / (SIM_SECONDS / 60.0),
                100.0 * mean,
                100.0 * peak,
                lag(o.max_lag)
            );
        }
    }
    println!("\nScenarios:");
    for s in &scenarios {
        println!("- {}: {} ({} events).", s.name, s.what, s.events.len());
    }
    println!();
    highest
}

// ---------------------------------------------------------------------------------------
// 8. The limits, by headroom.

fn limits(m: &Measured, peak_deliveries: f64) {
    println!("## 8. What breaks first ({HOSTS} hosts, {ROUTERS} routers)\n");
    let probes_per_router = HOSTS as f64 / PROBE_INTERVAL_S;
    let steady_events = HOSTS as f64 * 0.01 / 60.0 * 2.0;
    let today = steady_events * (m.diff_ms + m.apply_ms) / 1e3;
    let mut rows: Vec<(String, String, String, f64)> = vec![
        (
            "router CPU applying membership (today's code)".into(),
            format!(
                "{steady_events:.1} host events/s at 1%/min restarts: {:.0}% of a core",
                100.0 * today
            ),
            "one core".into(),
            1.0 / today,
        ),
        (
            "router CPU, zone loss (today's code)".into(),
            format!(
                "{ETCD_LEASE_REVOKE_RATE:.0} deletes/s x {:.0} ms of diff",
                m.diff_ms
            ),
            "one core".into(),
            1e3 / (ETCD_LEASE_REVOKE_RATE * m.diff_ms),
        ),
        (
            "router CPU, zone loss (name index, no batching)".into(),
            format!(
                "{ETCD_LEASE_REVOKE_RATE:.0} changes/s x {:.1} ms",
                m.indexed_apply_ms + m.indexed_diff_ms
            ),
            "one core".into(),
            1e3 / (ETCD_LEASE_REVOKE_RATE * (m.indexed_apply_ms + m.indexed_diff_ms)),
        ),
        (
            "ring movement crossing a points-per-weight step".into(),
            format!("{:.0}x the ideal share at 8192 -> 8193 hosts", m.step_moved),
            "docs/ring.md: <= 1.1x".into(),
            1.1 / m.step_moved,
        ),
        (
            "ring movement of one add".into(),
            format!("{:.2}x the ideal share (worst of 10)", m.add_worst),
            "docs/ring.md: <= 1.1x".into(),
            1.1 / m.add_worst,
        ),
        (
            "ring balance (slots per host)".into(),
            format!(
                "{:.0} slots a host, max/mean {:.3}, min/mean {:.3}",
                SLOTS as f64 / HOSTS as f64,
                m.balance.0,
                m.balance.1
            ),
            "docs/ring.md: balance degrades under 256 slots a host".into(),
            (SLOTS as f64 / HOSTS as f64) / 256.0,
        ),
        (
            "`/metrics` series, whole fleet".into(),
            format!(
                "{} series a router ({:.0} MiB a scrape), {:.0} M in all",
                m.metrics_series,
                mib(m.metrics_bytes as f64),
                (m.metrics_series * ROUTERS) as f64 / 1e6
            ),
            "~10 M active series for one Prometheus (order of magnitude)".into(),
            10e6 / (m.metrics_series as f64 * ROUTERS as f64),
        ),
        (
            "active probes (estimate)".into(),
            format!(
                "{probes_per_router:.0}/s a router ({:.2} of a core at ~{REQ_PER_CPU_S:.0} requests per CPU-s), {:.0}/s a host, {:.1} M/s in all",
                probes_per_router / REQ_PER_CPU_S,
                ROUTERS as f64 / PROBE_INTERVAL_S,
                probes_per_router * ROUTERS as f64 / 1e6
            ),
            "one core".into(),
            REQ_PER_CPU_S / probes_per_router,
        ),
        (
            "bounded-load slow path (a hot or degraded host's keys)".into(),
            format!(
                "{:.0} us a lookup: `InFlight::total` sums {HOSTS} hosts' counters (at 100 hosts: {:.2} us)",
                m.total_us.1, m.total_us.0
            ),
            format!(
                "a whole proxied request, ~{:.0} us of CPU",
                1e6 / REQ_PER_CPU_S
            ),
            (1e6 / REQ_PER_CPU_S) / m.total_us.1,
        ),
        (
            "router memory: in-flight arrays".into(),
            format!(
                "{:.0} MiB a router, twice that during each rebuild",
                mib(m.loads_bytes as f64)
            ),
            "1 GiB a router (an assumed budget)".into(),
            1024.0 / mib(2.0 * m.loads_bytes as f64),
        ),
        (
            "ring hosts (u16 host ids)".into(),
            format!("{HOSTS}"),
            format!("{MAX_HOSTS}"),
            MAX_HOSTS as f64 / HOSTS as f64,
        ),
        (
            "etcd DB size".into(),
            format!(
                "{:.1} MiB of live keys, plus history until compaction",
                mib(m.list_bytes.1 as f64)
            ),
            "8 GiB recommended ceiling".into(),
            ETCD_DB_RECOMMENDED / m.list_bytes.1 as f64,
        ),
        (
            "one etcd txn".into(),
            "a bulk write over many hosts".into(),
            format!(
                "{ETCD_MAX_TXN_OPS} ops, {:.1} MiB",
                mib(ETCD_MAX_REQUEST as f64)
            ),
            f64::NAN,
        ),
        (
            "`/admin/hosts`".into(),
            format!("{:.1} MiB a call", mib(m.admin_hosts_bytes as f64)),
            "(a person's tool; fine with jq, heavy for the status page)".into(),
            f64::NAN,
        ),
    ];
    if let (Some(us), Some(list_ms)) = (m.etcd_us_per_delivery, m.etcd_ms_per_list) {
        let zone_peak = peak_deliveries;
        rows.push((
            "etcd CPU: watch fan-out through the JSON gateway".into(),
            format!(
                "zone loss peak ~{:.0}k deliveries/s x {us:.0} us = {:.1} cores",
                zone_peak / 1e3,
                zone_peak * us / 1e6
            ),
            "an 8-core etcd member (assumed)".into(),
            8.0 / (zone_peak * us / 1e6),
        ));
        rows.push((
            "etcd CPU: every router re-reads the prefix at once".into(),
            format!(
                "{ROUTERS} x {list_ms:.0} ms = {:.1} CPU-s, {:.0} MiB out",
                ROUTERS as f64 * list_ms / 1e3,
                mib(m.list_bytes.0 as f64 * ROUTERS as f64)
            ),
            "the link's 3 s request_timeout, on an 8-core etcd member (assumed)".into(),
            3.0 / (ROUTERS as f64 * list_ms / 1e3 / 8.0),
        ));
    }
    if let Some(kus) = m.etcd_us_per_keepalive {
        let keepalives = HOSTS as f64 / (10.0 / 3.0);
        rows.push((
            "etcd CPU: host lease keep-alives (gateway)".into(),
            format!(
                "{keepalives:.0}/s (TTL 10 s, renewed every TTL/3) x {kus:.0} us = {:.2} cores",
                keepalives * kus / 1e6
            ),
            "an 8-core etcd member (assumed)".into(),
            8.0 / (keepalives * kus / 1e6),
        ));
    }
    println!("| resource | at {HOSTS} hosts / {ROUTERS} routers | limit | headroom |");
    println!("|---|---|---|---|");
    rows.sort_by(|a, b| {
        let key = |x: f64| if x.is_nan() { f64::INFINITY } else { x };
        key(a.3).total_cmp(&key(b.3))
    });
    for (what, value, limit, headroom_x) in rows {
        println!("| {what} | {value} | {limit} | {} |", headroom(headroom_x));
    }
    println!("\nUnder 1x is broken at this scale today.\n");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, what, n] = &args[..]
        && flag == "--child"
    {
        child(what, n.parse().unwrap_or(HOSTS));
        return;
    }
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let started = Instant::now();
    println!("# Ringward fleet scale: {HOSTS} hosts, {ROUTERS} routers\n");
    println!(
        "Machine: {} cores, load average {}.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut m = Measured::default();
    ring_at_scale(&mut m);
    movement(&mut m);
    apply_cost(&mut m);
    admin_api(&mut m);
    event_sizes(&mut m);
    if let Some(url) = flag("--etcd") {
        let pid = flag("--etcd-pid").and_then(|p| p.parse().ok());
        if let Err(e) = live(&mut m, &url, pid) {
            println!("live etcd measurement failed: {e}\n");
        }
    }
    let peak = simulate(&m);
    limits(&m, peak);
    println!("(ran in {:.1} s)", started.elapsed().as_secs_f64());
}
