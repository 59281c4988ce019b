//! Snapshot, route, bounded-load and explain tests.

use std::sync::Arc;

use crate::*;

fn fleet(n: usize) -> Arc<Ring> {
    Arc::new(Ring::try_new((0..n).map(|i| HostSpec::new(format!("host-{i}"), 1))).unwrap())
}

/// In-flight counts set by hand.
struct Loads {
    per_host: Vec<u32>,
    hard: Option<u32>,
}

impl InFlight for Loads {
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

fn key(i: u32) -> KeyHash {
    KeyHash::of(format!("val-{i}").as_bytes())
}

#[test]
fn open_fleet_routes_to_primary() {
    let ring = fleet(10);
    let snap = Snapshot::all_open(Arc::clone(&ring), 0);
    for i in 0..500 {
        let k = key(i);
        assert_eq!(
            snap.route(k, &NoLoads, &BoundedLoads::default()),
            Some(ring.primary(k))
        );
    }
}

#[test]
fn closed_and_degraded_hosts_are_skipped_with_reasons() {
    let ring = fleet(5);
    let k = key(1);
    let walk: Vec<HostId> = ring.candidates(k).collect();
    let mut admission = vec![Admission::Open; 5];
    admission[walk[0].index()] = Admission::Closed(SkipReason::Ejected);
    admission[walk[1].index()] = Admission::OwnKeysOnly;
    admission[walk[2].index()] = Admission::Closed(SkipReason::Draining);
    let snap = Snapshot::new(ring, admission, 7);
    let b = BoundedLoads::default();
    assert_eq!(snap.route(k, &NoLoads, &b), Some(walk[3]));
    let e = snap.explain(k, &NoLoads, &b);
    assert_eq!(e.chosen, Some(walk[3]));
    let reasons: Vec<Option<SkipReason>> = e.walk.iter().map(|s| s.skipped).collect();
    assert_eq!(
        reasons,
        vec![
            Some(SkipReason::Ejected),
            Some(SkipReason::Degraded),
            Some(SkipReason::Draining),
            None
        ]
    );
    assert_eq!(e.walk.iter().map(|s| s.host).collect::<Vec<_>>(), walk[..4]);
}

#[test]
fn degraded_host_keeps_its_own_keys_under_a_scaled_cap() {
    let ring = fleet(4);
    let k = key(2);
    let own = ring.primary(k);
    let mut admission = vec![Admission::Open; 4];
    admission[own.index()] = Admission::OwnKeysOnly;
    let snap = Snapshot::new(Arc::clone(&ring), admission, 0);
    let b = BoundedLoads::default();
    let mut loads = Loads {
        per_host: vec![0; 4],
        hard: None,
    };
    assert_eq!(snap.route(k, &loads, &b), Some(own), "rank 0 stays");
    // Floor 16 scaled by 0.5: at 8 in flight the degraded host is full.
    loads.per_host[own.index()] = 8;
    let e = snap.explain(k, &loads, &b);
    assert_eq!(e.walk[0].skipped, Some(SkipReason::OverBalance));
    assert_ne!(e.chosen, Some(own));
    // An open host at 8 would still take it (floor 16).
    let open = Snapshot::all_open(ring, 0);
    assert_eq!(open.route(k, &loads, &b), Some(own));
}

#[test]
fn light_load_never_spills() {
    let ring = fleet(10);
    let snap = Snapshot::all_open(Arc::clone(&ring), 0);
    let b = BoundedLoads::default();
    // Only the key's host is busy: 15 in flight, far above 1.25 x average
    // (1.6), but below the floor.
    for i in 0..200 {
        let k = key(i);
        let mut loads = Loads {
            per_host: vec![0; 10],
            hard: None,
        };
        loads.per_host[ring.primary(k).index()] = b.floor - 1;
        assert_eq!(snap.route(k, &loads, &b), Some(ring.primary(k)));
    }
}

#[test]
fn hot_host_overflows_to_next_preference() {
    let ring = fleet(10);
    let snap = Snapshot::all_open(Arc::clone(&ring), 0);
    let b = BoundedLoads::default();
    let k = key(3);
    let walk: Vec<HostId> = ring.candidates(k).collect();
    // 100 in flight in total, 40 on the key's host: cap = ceil(1.25 x 10.1) = 13... floor 16.
    let mut loads = Loads {
        per_host: vec![6; 10],
        hard: None,
    };
    loads.per_host[walk[0].index()] = 46;
    let e = snap.explain(k, &loads, &b);
    assert_eq!(e.walk[0].skipped, Some(SkipReason::OverBalance));
    assert_eq!(e.chosen, Some(walk[1]));
    // Just under the cap it stays: total 100 -> cap max(16, ceil(1.25 x 10.1)) = 16.
    loads.per_host[walk[0].index()] = 15;
    assert_eq!(snap.route(k, &loads, &b), Some(walk[0]));
    // Off: no spill at any load.
    loads.per_host[walk[0].index()] = 1000;
    assert_eq!(snap.route(k, &loads, &BoundedLoads::OFF), Some(walk[0]));
}

#[test]
fn hard_limit_skips_and_all_full_is_none() {
    let ring = fleet(3);
    let snap = Snapshot::all_open(Arc::clone(&ring), 0);
    let k = key(4);
    let walk: Vec<HostId> = ring.candidates(k).collect();
    let mut loads = Loads {
        per_host: vec![0; 3],
        hard: Some(2),
    };
    loads.per_host[walk[0].index()] = 2;
    let e = snap.explain(k, &loads, &BoundedLoads::OFF);
    assert_eq!(e.walk[0].skipped, Some(SkipReason::AtCapacity));
    assert_eq!(e.chosen, Some(walk[1]));
    loads.per_host = vec![2; 3];
    assert_eq!(snap.route(k, &loads, &BoundedLoads::OFF), None);
    let e = snap.explain(k, &loads, &BoundedLoads::OFF);
    assert_eq!(e.chosen, None);
    assert_eq!(e.walk.len(), 3);
}

#[test]
fn every_host_over_balance_falls_back_to_the_first() {
    let ring = fleet(3);
    // Only one degraded host left: its scaled cap is below the load.
    let k = key(5);
    let walk: Vec<HostId> = ring.candidates(k).collect();
    let mut admission = vec![Admission::Closed(SkipReason::Ejected); 3];
    admission[walk[0].index()] = Admission::OwnKeysOnly;
    let snap = Snapshot::new(ring, admission, 0);
    let loads = Loads {
        per_host: vec![100, 100, 100],
        hard: None,
    };
    let e = snap.explain(k, &loads, &BoundedLoads::default());
    assert_eq!(e.chosen, Some(walk[0]));
    assert_eq!(
        e.walk,
        vec![WalkStep {
            host: walk[0],
            skipped: None
        }]
    );
    assert_eq!(
        snap.route(k, &loads, &BoundedLoads::default()),
        Some(walk[0])
    );
}

#[test]
fn nothing_eligible_is_none() {
    let ring = fleet(4);
    let admission = vec![Admission::Closed(SkipReason::PanicFailClosed); 4];
    let snap = Snapshot::new(ring, admission, 0);
    assert_eq!(snap.route(key(1), &NoLoads, &BoundedLoads::default()), None);
    let e = snap.explain(key(1), &NoLoads, &BoundedLoads::default());
    assert_eq!(e.walk.len(), 4);
    assert!(
        e.walk
            .iter()
            .all(|s| s.skipped == Some(SkipReason::PanicFailClosed))
    );
}

#[test]
#[should_panic(expected = "one admission per host")]
fn admission_length_must_match() {
    let _ = Snapshot::new(fleet(2), vec![Admission::Open], 0);
}

/// Placement is part of the ring version: these must never change without
/// bumping `RING_VERSION`.
#[test]
fn pinned_placement() {
    let print = std::env::var_os("RINGWARD_PRINT_PINNED").is_some();
    let sets: Vec<Vec<HostSpec>> = vec![
        vec![
            HostSpec::new("host-a", 1),
            HostSpec::new("host-b", 1),
            HostSpec::new("host-c", 1),
        ],
        vec![
            HostSpec::new("w1", 1),
            HostSpec::new("w2", 2),
            HostSpec::new("w3", 3),
        ],
        (0..100)
            .map(|i| HostSpec::new(format!("host-{i:03}"), 1))
            .collect(),
    ];
    let keys = ["alice-hello", "bob-cron", "", "val/42", "x"];
    let mut got = Vec::new();
    for (s, set) in sets.iter().enumerate() {
        let ring = Ring::try_new(set.clone()).unwrap();
        for k in keys {
            let walk: Vec<String> = ring
                .candidates(KeyHash::of(k.as_bytes()))
                .take(3)
                .map(|h| ring.host(h).name.clone())
                .collect();
            got.push((s, k, walk));
        }
    }
    if print {
        for g in &got {
            println!("{g:?},");
        }
    }
    let expected: Vec<(usize, &str, Vec<&str>)> = PINNED
        .iter()
        .map(|(s, k, w)| (*s, *k, w.to_vec()))
        .collect();
    let got: Vec<(usize, &str, Vec<&str>)> = got
        .iter()
        .map(|(s, k, w)| (*s, *k, w.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        got, expected,
        "placement changed: bump RING_VERSION and re-pin"
    );
}

const PINNED: &[(usize, &str, &[&str])] = &[
    (0, "alice-hello", &["host-a", "host-c", "host-b"]),
    (0, "bob-cron", &["host-c", "host-a", "host-b"]),
    (0, "", &["host-b", "host-c", "host-a"]),
    (0, "val/42", &["host-a", "host-c", "host-b"]),
    (0, "x", &["host-b", "host-a", "host-c"]),
    (1, "alice-hello", &["w2", "w3", "w1"]),
    (1, "bob-cron", &["w2", "w3", "w1"]),
    (1, "", &["w1", "w3", "w2"]),
    (1, "val/42", &["w2", "w1", "w3"]),
    (1, "x", &["w3", "w1", "w2"]),
    (2, "alice-hello", &["host-061", "host-099", "host-041"]),
    (2, "bob-cron", &["host-087", "host-019", "host-033"]),
    (2, "", &["host-013", "host-075", "host-084"]),
    (2, "val/42", &["host-039", "host-095", "host-062"]),
    (2, "x", &["host-020", "host-053", "host-038"]),
];

#[test]
fn above_the_floor_the_cap_is_factor_times_average() {
    let ring = fleet(10);
    let snap = Snapshot::all_open(Arc::clone(&ring), 0);
    let b = BoundedLoads::default();
    let k = key(6);
    let walk: Vec<HostId> = ring.candidates(k).collect();
    // 9 hosts at 97 plus the key's host: cap = ceil(1.25 x (total + 1) / 10).
    let mut loads = Loads {
        per_host: vec![97; 10],
        hard: None,
    };
    loads.per_host[walk[0].index()] = 127; // total 1000: cap ceil(125.125) = 126
    assert_eq!(snap.route(k, &loads, &b), Some(walk[1]));
    loads.per_host[walk[0].index()] = 125; // total 998: cap ceil(124.875) = 125
    assert_eq!(snap.route(k, &loads, &b), Some(walk[1]));
    loads.per_host[walk[0].index()] = 124; // total 997: cap ceil(124.75) = 125
    assert_eq!(snap.route(k, &loads, &b), Some(walk[0]));
}

#[test]
fn a_host_on_a_probation_ramp_takes_only_its_share_of_its_own_keys() {
    let ring = fleet(4);
    let host = HostId(2);
    let b = BoundedLoads::default();
    let own: Vec<KeyHash> = (0..4000)
        .map(key)
        .filter(|k| ring.primary(*k) == host)
        .collect();
    let spill: Vec<KeyHash> = (0..4000)
        .map(key)
        .filter(|k| ring.candidates(*k).nth(1) == Some(host))
        .collect();
    let mut taken_before: Vec<KeyHash> = Vec::new();
    for per_mille in [0, 250, 500, 750, 1000] {
        let mut admission = vec![Admission::Open; 4];
        admission[host.index()] = Admission::Ramp(per_mille);
        let snap = Snapshot::new(Arc::clone(&ring), admission, 1);
        let taken: Vec<KeyHash> = own
            .iter()
            .copied()
            .filter(|k| snap.route(*k, &NoLoads, &b) == Some(host))
            .collect();
        // Exactly the keys below the ramp, and route agrees with explain.
        for k in &own {
            let admitted = ramp_bucket(*k) < per_mille;
            assert_eq!(taken.contains(k), admitted, "per mille {per_mille}");
            let e = snap.explain(*k, &NoLoads, &b);
            assert_eq!(e.chosen, snap.route(*k, &NoLoads, &b));
            let first = e.walk[0];
            assert_eq!(first.host, host);
            let expected = (!admitted).then_some(SkipReason::Probation);
            assert_eq!(first.skipped, expected);
        }
        // The share is about right, and a growing ramp only adds keys.
        let share = taken.len() as f64 / own.len() as f64;
        assert!(
            (share - f64::from(per_mille) / 1000.0).abs() < 0.08,
            "{per_mille}: {share}"
        );
        assert!(taken_before.iter().all(|k| taken.contains(k)));
        taken_before = taken;
        // No spill from other hosts' keys while on the ramp.
        for k in &spill {
            assert_ne!(snap.route(*k, &NoLoads, &b), Some(host));
        }
    }
}
