//! Property tests of the ring's invariants on random host sets, weights and
//! ejection orders. Case counts are small so the suite runs in seconds.

use std::collections::HashSet;
use std::sync::Arc;

use proptest::prelude::*;
use ringward_core::{
    Admission, BoundedLoads, HostId, HostSpec, KeyHash, NoLoads, Ring, SkipReason, Snapshot,
};

fn hosts_strategy(max: usize) -> impl Strategy<Value = Vec<HostSpec>> {
    prop::collection::btree_map("[a-z]{1,6}-[0-9]{1,3}", 1u32..5, 2..max)
        .prop_map(|m| m.into_iter().map(|(n, w)| HostSpec::new(n, w)).collect())
}

fn keys(n: usize) -> Vec<KeyHash> {
    (0..n)
        .map(|i| KeyHash::of(format!("val-{i}").as_bytes()))
        .collect()
}

fn route_all(snap: &Snapshot, keys: &[KeyHash]) -> Vec<Option<HostId>> {
    keys.iter()
        .map(|&k| snap.route(k, &NoLoads, &BoundedLoads::default()))
        .collect()
}

fn snapshot(ring: &Arc<Ring>, ejected: &HashSet<HostId>) -> Snapshot {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Ejecting moves exactly the ejected host's keys; restoring, in any order
    /// relative to other ejections, moves exactly those keys back.
    #[test]
    fn eject_and_restore_remap_minimally(
        hosts in hosts_strategy(24),
        eject_seed in any::<u64>(),
        restore_seed in any::<u64>(),
    ) {
        let ring = Arc::new(Ring::try_new(hosts).unwrap());
        let n = ring.len();
        let keys = keys(400);
        // Eject up to n-1 hosts in a seed-derived order, restore in another.
        let count = 1 + (eject_seed as usize % (n - 1));
        let mut order: Vec<HostId> = ring.hosts().map(|(id, _)| id).collect();
        order.sort_by_key(|id| (u64::from(id.0) + 1).wrapping_mul(eject_seed | 1).rotate_left(17));
        let ejected_order: Vec<HostId> = order[..count].to_vec();
        let mut restore_order = ejected_order.clone();
        restore_order.sort_by_key(|id| (u64::from(id.0) + 1).wrapping_mul(restore_seed | 1).rotate_left(23));

        let mut ejected = HashSet::new();
        let original = route_all(&snapshot(&ring, &ejected), &keys);
        let mut before = original.clone();
        for &x in &ejected_order {
            ejected.insert(x);
            let after = route_all(&snapshot(&ring, &ejected), &keys);
            for (b, a) in before.iter().zip(&after) {
                if b == a {
                    prop_assert_ne!(*a, Some(x));
                } else {
                    prop_assert_eq!(*b, Some(x), "a key not on the ejected host moved");
                }
            }
            before = after;
        }
        for &x in &restore_order {
            ejected.remove(&x);
            let after = route_all(&snapshot(&ring, &ejected), &keys);
            for (b, a) in before.iter().zip(&after) {
                if b != a {
                    prop_assert_eq!(*a, Some(x), "a key moved to a host not restored");
                }
            }
            before = after;
        }
        prop_assert_eq!(before, original, "restore did not bring exactly the keys back");
    }

    /// The ring depends on the host set, never on the listing order.
    #[test]
    fn listing_order_does_not_matter(hosts in hosts_strategy(30), seed in any::<u64>()) {
        let mut shuffled = hosts.clone();
        shuffled.sort_by_key(|h| h.name.len() as u64 ^ seed.rotate_left(h.name.len() as u32));
        shuffled.reverse();
        let a = Ring::try_new(hosts).unwrap();
        let b = Ring::try_new(shuffled).unwrap();
        prop_assert_eq!(a.slot_counts(), b.slot_counts());
        for k in keys(300) {
            prop_assert!(a.candidates(k).eq(b.candidates(k)));
        }
    }

    /// The walk yields every host exactly once.
    #[test]
    fn walk_is_a_permutation(hosts in hosts_strategy(40), k in any::<u64>()) {
        let ring = Ring::try_new(hosts).unwrap();
        let walk: Vec<HostId> = ring.candidates(KeyHash(k)).collect();
        prop_assert_eq!(walk.len(), ring.len());
        let distinct: HashSet<HostId> = walk.iter().copied().collect();
        prop_assert_eq!(distinct.len(), ring.len());
    }

    /// Each host's share of the table follows its weight: never above 1.06x
    /// its exact quota, and not far below.
    #[test]
    fn slots_follow_weights(hosts in hosts_strategy(40)) {
        let ring = Ring::try_new(hosts).unwrap();
        let total: u32 = ring.hosts().map(|(_, h)| h.weight).sum();
        let counts = ring.slot_counts();
        for (id, h) in ring.hosts() {
            let quota = ring.slots() as f64 * f64::from(h.weight) / f64::from(total);
            let share = f64::from(counts[id.index()]) / quota;
            prop_assert!(share <= 1.06 + 1.0 / quota, "{}: {share:.3}", h.name);
            prop_assert!(share >= 0.85, "{}: {share:.3}", h.name);
        }
    }

    /// Adding a host moves little beyond what the new host takes.
    #[test]
    fn adding_a_host_moves_near_its_share(hosts in hosts_strategy(30), w in 1u32..4) {
        let before = Ring::try_new(hosts.clone()).unwrap();
        let mut grown = hosts;
        grown.push(HostSpec::new("zz-new", w));
        let after = Ring::try_new(grown).unwrap();
        let keys = keys(4000);
        let new = after.host_id("zz-new").unwrap();
        let (mut moved, mut to_new) = (0usize, 0usize);
        for &k in &keys {
            let a = &before.host(before.primary(k)).name;
            let b = &after.host(after.primary(k)).name;
            if a != b {
                moved += 1;
                to_new += usize::from(after.primary(k) == new);
            }
        }
        prop_assert!(to_new >= moved * 8 / 10, "moved {moved}, only {to_new} to the new host");
    }
}

/// In-flight counts drawn by the test.
struct Drawn {
    per_host: Vec<u32>,
    hard: Option<u32>,
}

impl ringward_core::InFlight for Drawn {
    fn in_flight(&self, host: HostId) -> u32 {
        self.per_host[host.index()]
    }
    fn total(&self) -> u64 {
        self.per_host.iter().map(|&n| u64::from(n)).sum()
    }
    fn hard_limit(&self, _host: HostId) -> Option<u32> {
        self.hard
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// `route` (with its fast paths) and `explain` always make the same choice.
    #[test]
    fn route_agrees_with_explain(
        hosts in hosts_strategy(20),
        states in prop::collection::vec(0u8..6, 20),
        loads in prop::collection::vec(0u32..40, 20),
        hard in prop::option::of(10u32..40),
        factor in prop::sample::select(vec![0.0, 1.1, 1.25, 2.0]),
        floor in 0u32..20,
    ) {
        let ring = Arc::new(Ring::try_new(hosts).unwrap());
        let n = ring.len();
        let admission = (0..n)
            .map(|i| match states[i] {
                0 => Admission::Closed(SkipReason::Ejected),
                1 => Admission::OwnKeysOnly,
                _ => Admission::Open,
            })
            .collect();
        let snap = Snapshot::new(Arc::clone(&ring), admission, 0);
        let drawn = Drawn { per_host: loads[..n].to_vec(), hard };
        let bounded = BoundedLoads { factor, floor };
        for k in keys(300) {
            let e = snap.explain(k, &drawn, &bounded);
            prop_assert_eq!(snap.route(k, &drawn, &bounded), e.chosen);
            if let Some(c) = e.chosen {
                prop_assert_eq!(e.walk.last().map(|s| (s.host, s.skipped)), Some((c, None)));
            }
        }
    }
}
