//! The ring: an immutable, weight-balanced slot table built from a host set.
//!
//! Construction (see `docs/ring.md` for the reasoning and the measurements):
//! 1. Hosts are sorted by name; a host's [`HostId`] is its position, so the
//!    result never depends on the order hosts were listed in.
//! 2. Each host places `points_per_weight x weight` vnode points on a 64-bit
//!    circle (a SplitMix64 stream seeded with the XXH3 hash of its name).
//! 3. The circle is cut into `M = 2^20` equal slots. A slot's natural
//!    owner is the host of the first point at or after the slot's start.
//! 4. Slots are filled in order, each by its natural owner unless that host
//!    already holds `ceil(1.06 x M x weight / total_weight)` slots, in which
//!    case the slot jumps to the natural owner of a pseudo-random other slot
//!    ("consistent hashing with bounded loads", applied once, at build time).
//!
//! Lookup is then `table[hash >> shift]`: one hash, one shift, one load.

use crate::error::RingError;
use crate::hash::{host_seed, mix, stream};
use crate::host::{HostId, HostSpec, MAX_HOSTS};

/// Table slots: 2^20 slots of 2 bytes is 2 MiB. Fixed, whatever the host
/// count: a table size that followed the host count would reshuffle slots
/// each time it doubled.
const SLOTS: usize = 1 << 20;
/// Vnode points per unit of weight; more points, less natural imbalance.
const POINTS_PER_WEIGHT: u64 = 2048;
/// Build-time budget of vnode points; beyond it points per weight halve.
const MAX_POINTS: u64 = 1 << 21;
/// The slot cap is `ceil(CAP_NUM / CAP_DEN x quota)`: 1.06 x the exact share.
const CAP_NUM: u128 = 106;
const CAP_DEN: u128 = 100;
/// Top bits that bucket vnode points before the per-slot minimum.
const BUCKET_BITS: u32 = 8;
/// Pseudo-random jumps tried for an overflowing slot before a linear scan.
const MAX_JUMPS: u64 = 64;

/// An immutable consistent-hash ring over a set of weighted hosts.
///
/// Rebuilt only when membership or weights change; eligibility (ejection,
/// draining, load) is applied at lookup by the caller or by
/// [`Snapshot::route`](crate::Snapshot::route).
#[derive(Debug, Clone)]
pub struct Ring {
    /// Hosts sorted by name; the index is the [`HostId`].
    hosts: Box<[HostSpec]>,
    /// Slot -> host id.
    table: Box<[u16]>,
    /// `64 - log2(table.len())`: a hash's top 20 bits select its slot.
    shift: u32,
}

impl Ring {
    /// Builds the ring for a host set.
    ///
    /// The result depends only on the set (names and weights), not on the
    /// order the hosts are given in.
    ///
    /// # Errors
    /// [`RingError`] if the set is empty or too large, a weight is 0, or a
    /// name repeats.
    pub fn try_new(hosts: impl IntoIterator<Item = HostSpec>) -> Result<Ring, RingError> {
        let mut hosts: Vec<HostSpec> = hosts.into_iter().collect();
        if hosts.is_empty() {
            return Err(RingError::NoHosts);
        }
        if hosts.len() > MAX_HOSTS {
            return Err(RingError::TooManyHosts { count: hosts.len() });
        }
        if let Some(h) = hosts.iter().find(|h| h.weight == 0) {
            return Err(RingError::ZeroWeight {
                name: h.name.clone(),
            });
        }
        hosts.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = hosts.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(RingError::DuplicateName {
                name: w[0].name.clone(),
            });
        }
        let shift = 64 - SLOTS.trailing_zeros();
        let table = build_table(&hosts, SLOTS, shift);
        Ok(Ring {
            hosts: hosts.into_boxed_slice(),
            table,
            shift,
        })
    }

    /// A ring with no host, for a fleet whose membership has none yet (a router in fleet
    /// mode before any host registered): it routes nothing. Every walk over it is empty and
    /// [`Snapshot::route`](crate::Snapshot::route) finds no host; [`Ring::primary`] must not
    /// be asked (check [`Ring::is_empty`]).
    pub fn empty() -> Ring {
        Ring {
            hosts: Box::default(),
            table: Box::default(),
            shift: 63,
        }
    }

    /// The number of hosts.
    #[inline]
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether the ring has no host ([`Ring::empty`]; [`Ring::try_new`] refuses none).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The spec of a host.
    ///
    /// # Panics
    /// If `id` is not an id of this ring.
    #[inline]
    pub fn host(&self, id: HostId) -> &HostSpec {
        &self.hosts[id.index()]
    }

    /// The id of the host with this name.
    pub fn host_id(&self, name: &str) -> Option<HostId> {
        self.hosts
            .binary_search_by(|h| h.name.as_str().cmp(name))
            .ok()
            .map(|i| HostId(i as u32))
    }

    /// All hosts with their ids, in id (name) order.
    pub fn hosts(&self) -> impl Iterator<Item = (HostId, &HostSpec)> {
        self.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (HostId(i as u32), h))
    }

    /// The key's own host (the first candidate): the cheapest lookup.
    ///
    /// # Panics
    /// On an empty ring ([`Ring::empty`]).
    #[inline]
    pub fn primary(&self, hash: crate::KeyHash) -> HostId {
        HostId(u32::from(self.slot_host(hash.0)))
    }

    /// The number of slots in the lookup table.
    pub fn slots(&self) -> usize {
        self.table.len()
    }

    /// Slots owned by each host, indexed by [`HostId::index`].
    pub fn slot_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.hosts.len()];
        for &h in self.table.iter() {
            counts[usize::from(h)] += 1;
        }
        counts
    }

    /// Heap bytes held by the ring (table, host table and names).
    pub fn memory_bytes(&self) -> usize {
        self.table.len() * std::mem::size_of::<u16>()
            + self.hosts.len() * std::mem::size_of::<HostSpec>()
            + self.hosts.iter().map(|h| h.name.capacity()).sum::<usize>()
    }

    /// The host of the slot a 64-bit hash falls in.
    #[inline]
    pub(crate) fn slot_host(&self, hash: u64) -> u16 {
        self.table[self.slot_of(hash)]
    }

    /// The slot a 64-bit hash falls in.
    #[inline]
    pub(crate) fn slot_of(&self, hash: u64) -> usize {
        // `shift` is 44, so the index is below `table.len()`.
        (hash >> self.shift) as usize
    }

    /// The host of a slot.
    ///
    /// # Panics
    /// If `slot` is out of range (callers derive it from `slot_of`).
    #[inline]
    pub(crate) fn host_at(&self, slot: usize) -> u16 {
        self.table[slot]
    }
}

/// Fills the slot table (steps 2-4 of the module docs).
fn build_table(hosts: &[HostSpec], slots: usize, shift: u32) -> Box<[u16]> {
    let total_weight: u64 = hosts.iter().map(|h| u64::from(h.weight)).sum();
    // Points per weight unit depend on the set only when the total weight is
    // large (halving steps), so small changes keep every other host's points.
    let mut per_weight = POINTS_PER_WEIGHT;
    while per_weight > 1 && per_weight.saturating_mul(total_weight) > MAX_POINTS {
        per_weight /= 2;
    }

    // The first point in each slot, as the point's offset within the slot
    // (its next 16 bits) above the host id: the smallest packed value is the
    // first point, and ties resolve by host id, deterministically.
    //
    // Points are first bucketed by their top bits (a counting sort, written
    // sequentially) so the per-slot minimum then works on a cache-sized
    // window of the table instead of scattering over all of it: the random
    // writes were most of the build time.
    let points = |host: &HostSpec| per_weight * u64::from(host.weight);
    let bucket_of = |pos: u64| (pos >> (64 - BUCKET_BITS)) as usize;
    let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
    for host in hosts {
        let seed = host_seed(&host.name);
        for j in 0..points(host) {
            starts[bucket_of(stream(seed, j)) + 1] += 1;
        }
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut cursor = starts.clone();
    let mut sorted = vec![0u64; starts[1 << BUCKET_BITS]];
    for (id, host) in hosts.iter().enumerate() {
        let seed = host_seed(&host.name);
        for j in 0..points(host) {
            let pos = stream(seed, j);
            let slot = pos >> shift;
            let offset = (pos >> (shift - 16)) & 0xFFFF;
            let b = bucket_of(pos);
            sorted[cursor[b]] = (slot << 32) | (offset << 16) | id as u64;
            cursor[b] += 1;
        }
    }
    drop(cursor);
    const EMPTY: u32 = u32::MAX;
    let mut first = vec![EMPTY; slots];
    for entry in sorted {
        let slot = &mut first[(entry >> 32) as usize];
        // Branch-free: which point comes first is a coin toss.
        *slot = (*slot).min(entry as u32);
    }

    // Natural owner: the host of the first point at or after the slot start,
    // wrapping around the circle.
    let wrap = first.iter().find(|&&p| p != EMPTY).copied().unwrap_or(0);
    let mut carry = (wrap & 0xFFFF) as u16;
    let mut natural = vec![0u16; slots];
    for s in (0..slots).rev() {
        if first[s] != EMPTY {
            carry = (first[s] & 0xFFFF) as u16;
        }
        natural[s] = carry;
    }
    drop(first);

    // Bounded loads on slots: no host holds more than 1.06 x its exact quota.
    let caps: Vec<u32> = hosts
        .iter()
        .map(|h| {
            let num = CAP_NUM * slots as u128 * u128::from(h.weight);
            let den = CAP_DEN * u128::from(total_weight);
            num.div_ceil(den) as u32
        })
        .collect();
    let mut load = vec![0u32; hosts.len()];
    let mut table = vec![0u16; slots];
    for s in 0..slots {
        let mut h = usize::from(natural[s]);
        let mut jump = 0;
        while load[h] >= caps[h] {
            jump += 1;
            h = if jump <= MAX_JUMPS {
                usize::from(natural[(stream(s as u64, jump) >> shift) as usize])
            } else {
                // Caps sum to more than the slot count, so some host has room.
                let start = (mix(s as u64) % hosts.len() as u64) as usize;
                (0..hosts.len())
                    .map(|i| (start + i) % hosts.len())
                    .find(|&i| load[i] < caps[i])
                    .unwrap_or(start)
            };
            if jump > MAX_JUMPS {
                break;
            }
        }
        load[h] += 1;
        table[s] = h as u16;
    }
    table.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::KeyHash;

    #[test]
    fn an_empty_ring_walks_and_routes_nowhere() {
        let ring = Arc::new(Ring::empty());
        assert!(ring.is_empty());
        assert_eq!(ring.candidates(KeyHash::of(b"k")).next(), None);
        assert!(ring.slot_counts().is_empty());
        let snapshot = crate::Snapshot::new(Arc::clone(&ring), Vec::new(), 0);
        let loads = crate::inflight::NoLoads;
        let bounded = crate::BoundedLoads::default();
        assert_eq!(snapshot.route(KeyHash::of(b"k"), &loads, &bounded), None);
    }

    fn fleet(n: usize) -> Vec<HostSpec> {
        (0..n)
            .map(|i| HostSpec::new(format!("host-{i}"), 1))
            .collect()
    }

    #[test]
    fn rejects_bad_sets() {
        assert_eq!(Ring::try_new(vec![]).unwrap_err(), RingError::NoHosts);
        let zero = vec![HostSpec::new("a", 1), HostSpec::new("b", 0)];
        assert_eq!(
            Ring::try_new(zero).unwrap_err(),
            RingError::ZeroWeight { name: "b".into() }
        );
        let dup = vec![HostSpec::new("a", 1), HostSpec::new("a", 2)];
        assert_eq!(
            Ring::try_new(dup).unwrap_err(),
            RingError::DuplicateName { name: "a".into() }
        );
    }

    #[test]
    fn ids_follow_name_order() {
        let ring = Ring::try_new(vec![HostSpec::new("b", 1), HostSpec::new("a", 1)]).unwrap();
        assert_eq!(ring.host_id("a"), Some(HostId(0)));
        assert_eq!(ring.host(HostId(1)).name, "b");
        assert_eq!(ring.host_id("c"), None);
    }

    #[test]
    fn slots_respect_caps_and_weights() {
        let mut hosts = fleet(40);
        hosts[3].weight = 3;
        let ring = Ring::try_new(hosts).unwrap();
        let counts = ring.slot_counts();
        let total_weight = 42.0;
        for (id, h) in ring.hosts() {
            let quota = ring.slots() as f64 * f64::from(h.weight) / total_weight;
            let share = f64::from(counts[id.index()]) / quota;
            assert!(share <= 1.061, "{} holds {share:.3} of its quota", h.name);
            assert!(share >= 0.80, "{} holds {share:.3} of its quota", h.name);
        }
    }

    #[test]
    fn one_host_owns_everything() {
        let ring = Ring::try_new(fleet(1)).unwrap();
        assert_eq!(ring.primary(KeyHash::of(b"k")), HostId(0));
        assert_eq!(ring.candidates(KeyHash::of(b"k")).count(), 1);
    }

    #[test]
    fn memory_is_bounded_at_1000_hosts() {
        let ring = Ring::try_new(fleet(1000)).unwrap();
        assert_eq!(ring.slots(), 1 << 20);
        assert!(ring.memory_bytes() <= 4 << 20, "{}", ring.memory_bytes());
    }
}
