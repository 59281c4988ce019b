//! Lock-free in-flight accounting: per-host counts with an optional hard limit, the start time
//! of every in-flight request so the driver can see how old the oldest one is (a host whose
//! DB pool is stuck shows up as requests that never finish), and the Val of each one so the
//! cascade guard can tell which Vals a failing host was serving.
//!
//! A permit is a compare-and-swap on the host's counter plus one slot in a fixed array of
//! start times; no lock, no allocation. Every host's state sits behind its own `Arc`, so a
//! new host set (a reload) can keep the counters of the hosts that stay
//! ([`HostLoads::carry_over`]): their requests in flight keep counting against the limit
//! and keep their age whatever generation they started in.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use router_core::{HostId, InFlight};

use crate::val_slot::ValSlot;

/// Start-time slots kept per host when there is no hard limit (or a larger one): requests
/// beyond this many at once on one host are counted but not aged.
pub const AGE_SLOTS: u32 = 1024;

/// In-flight state of one host.
#[derive(Debug)]
struct HostLoad {
    count: AtomicU32,
    /// Start of each aging request, as nanoseconds since `HostLoads::base` plus one; 0 = free.
    starts: Box<[AtomicU64]>,
    /// The Val of each slot's request.
    vals: Box<[ValSlot]>,
    /// Where to start looking for a free slot (spreads contention).
    hint: AtomicUsize,
}

impl HostLoad {
    fn new(hard_limit: Option<u32>) -> Arc<HostLoad> {
        let slots = hard_limit.map_or(AGE_SLOTS, |l| l.min(AGE_SLOTS)) as usize;
        Arc::new(HostLoad {
            count: AtomicU32::new(0),
            starts: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            vals: (0..slots).map(|_| ValSlot::default()).collect(),
            hint: AtomicUsize::new(0),
        })
    }
}

/// Per-host in-flight counters (lock-free atomics), implementing [`InFlight`] for
/// [`Snapshot::route`](router_core::Snapshot::route) and bounded loads.
///
/// Each request holds a [`Permit`], which records when it started (and, if given, its Val);
/// the driver reads the age of every host's oldest unanswered request from them. Indexed by
/// [`HostId`].
#[derive(Debug)]
pub struct HostLoads {
    hosts: Box<[Arc<HostLoad>]>,
    hard_limit: Option<u32>,
    base: Instant,
}

impl HostLoads {
    /// Counters for `hosts` hosts, each limited to `hard_limit` requests at once (`None`: no
    /// limit); `base` is an instant no later than any request's start.
    pub fn new(hosts: usize, hard_limit: Option<u32>, base: Instant) -> HostLoads {
        HostLoads {
            hosts: (0..hosts).map(|_| HostLoad::new(hard_limit)).collect(),
            hard_limit,
            base,
        }
    }

    /// Counters for a new host set: host `i` keeps the counters of `previous` host `from[i]`
    /// where that is `Some` (a host that stays) and starts at zero otherwise. A host that
    /// stays keeps its start-time slots too; if `hard_limit` grew, requests beyond the old
    /// number of slots are counted but not aged.
    pub fn carry_over(
        previous: &HostLoads,
        hard_limit: Option<u32>,
        from: &[Option<usize>],
    ) -> HostLoads {
        let hosts = from
            .iter()
            .map(|old| match old.and_then(|i| previous.hosts.get(i)) {
                Some(load) => Arc::clone(load),
                None => HostLoad::new(hard_limit),
            })
            .collect();
        HostLoads {
            hosts,
            hard_limit,
            base: previous.base,
        }
    }

    /// The number of hosts counted.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when no host is counted.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Counts one more request to `host`, started at `now`; `None` when the host is at its
    /// hard limit (nothing is counted then) or unknown. Lock-free and allocation-free.
    pub fn try_acquire(self: &Arc<Self>, host: HostId, now: Instant) -> Option<Permit> {
        self.try_acquire_for(host, now, None)
    }

    /// Like [`try_acquire`](Self::try_acquire), for a request of a known Val: `val` is its
    /// key hash (`KeyHash::of(key).0`, never 0) and its key, of which the first
    /// [`VAL_NAME_BYTES`](crate::VAL_NAME_BYTES) are kept for [`name_of`](Self::name_of).
    pub fn try_acquire_for(
        self: &Arc<Self>,
        host: HostId,
        now: Instant,
        val: Option<(u64, &str)>,
    ) -> Option<Permit> {
        let load = self.hosts.get(host.index())?;
        match self.hard_limit {
            Some(limit) => load
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                    (c < limit).then_some(c + 1)
                })
                .ok()?,
            None => load.count.fetch_add(1, Ordering::AcqRel),
        };
        let stamp = now
            .checked_duration_since(self.base)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1))
            + 1;
        let n = load.starts.len();
        let first = load.hint.fetch_add(1, Ordering::Relaxed) % n.max(1);
        let slot = (0..n).map(|i| (first + i) % n).find(|&i| {
            load.starts[i]
                .compare_exchange(0, stamp, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(i) = slot {
            let (hash, key) = val.unwrap_or((0, ""));
            load.vals[i].store(hash, key);
        }
        Some(Permit {
            load: Arc::clone(load),
            host,
            slot,
        })
    }

    /// Requests in flight on host `index`, and the age at `now` of the oldest one not yet
    /// answered (`None` when none is aging).
    pub fn oldest(&self, index: usize, now: Instant) -> (u32, Option<Duration>) {
        let Some(load) = self.hosts.get(index) else {
            return (0, None);
        };
        let oldest = load
            .starts
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .filter(|&s| s != 0)
            .min()
            .map(|s| self.age(s, now));
        (load.count.load(Ordering::Relaxed), oldest)
    }

    /// Like [`oldest`](Self::oldest), and fills `out` with (Val key hash, age) of every aging
    /// request of a known Val: the cascade guard's sample.
    pub fn sample(
        &self,
        index: usize,
        now: Instant,
        out: &mut Vec<(u64, Duration)>,
    ) -> (u32, Option<Duration>) {
        out.clear();
        let Some(load) = self.hosts.get(index) else {
            return (0, None);
        };
        let mut oldest = None;
        for (start, val) in load.starts.iter().zip(load.vals.iter()) {
            let s = start.load(Ordering::Acquire);
            if s == 0 {
                continue;
            }
            let age = self.age(s, now);
            oldest = oldest.max(Some(age));
            let hash = val.hash.load(Ordering::Acquire);
            if hash != 0 {
                out.push((hash, age));
            }
        }
        (load.count.load(Ordering::Relaxed), oldest)
    }

    /// The key of Val `hash` if one of its requests is aging on host `index` (its first bytes
    /// only, ending in `…`, for a long key).
    pub fn name_of(&self, index: usize, hash: u64) -> Option<String> {
        let load = self.hosts.get(index)?;
        load.starts
            .iter()
            .zip(load.vals.iter())
            .filter(|(s, _)| s.load(Ordering::Acquire) != 0)
            .find_map(|(_, v)| v.name(hash))
    }

    /// The age at `now` of the request whose start stamp (never 0) is `stamp`.
    fn age(&self, stamp: u64, now: Instant) -> Duration {
        now.saturating_duration_since(self.base + Duration::from_nanos(stamp - 1))
    }
}

impl InFlight for HostLoads {
    #[inline]
    fn in_flight(&self, host: HostId) -> u32 {
        self.hosts
            .get(host.index())
            .map_or(0, |h| h.count.load(Ordering::Relaxed))
    }

    /// The sum over hosts (no shared counter for every request to contend on).
    #[inline]
    fn total(&self) -> u64 {
        self.hosts
            .iter()
            .map(|h| u64::from(h.count.load(Ordering::Relaxed)))
            .sum()
    }

    #[inline]
    fn hard_limit(&self, _host: HostId) -> Option<u32> {
        self.hard_limit
    }
}

/// One request in flight on one host: counted from [`HostLoads::try_acquire`] until dropped
/// (when the response body ends).
#[derive(Debug)]
#[must_use = "dropping the permit ends the request at once"]
pub struct Permit {
    load: Arc<HostLoad>,
    host: HostId,
    slot: Option<usize>,
}

impl Permit {
    /// The host this permit counts against (its index in the host set it was taken from).
    pub fn host(&self) -> HostId {
        self.host
    }

    /// The host sent its response head: it is not hung, however long the body takes, so the
    /// request stops counting towards the oldest in-flight age (it still counts in flight).
    pub fn answered(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.load.starts[slot].store(0, Ordering::Release);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.answered();
        self.load.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    #[test]
    fn permits_count_release_and_respect_the_hard_limit() {
        let base = origin();
        let loads = Arc::new(HostLoads::new(2, Some(2), base));
        let a = loads.try_acquire(HostId(0), base).expect("first");
        let b = loads.try_acquire(HostId(0), base).expect("second");
        assert!(loads.try_acquire(HostId(0), base).is_none(), "limit of 2");
        assert_eq!((loads.in_flight(HostId(0)), loads.total()), (2, 2));
        let c = loads.try_acquire(HostId(1), base).expect("other host");
        assert_eq!(c.host(), HostId(1));
        assert!(loads.try_acquire(HostId(9), base).is_none(), "unknown host");
        drop(a);
        assert_eq!((loads.in_flight(HostId(0)), loads.total()), (1, 2));
        drop((b, c));
        assert_eq!(loads.total(), 0);
        assert_eq!(loads.hard_limit(HostId(0)), Some(2));
    }

    #[test]
    fn oldest_age_tracks_the_longest_unanswered_request() {
        let base = origin();
        let loads = Arc::new(HostLoads::new(1, None, base));
        assert_eq!(loads.oldest(0, base), (0, None));
        let old = loads
            .try_acquire(HostId(0), base + Duration::from_secs(1))
            .unwrap();
        let young = loads
            .try_acquire(HostId(0), base + Duration::from_secs(5))
            .unwrap();
        let now = base + Duration::from_secs(8);
        assert_eq!(loads.oldest(0, now), (2, Some(Duration::from_secs(7))));
        drop(old);
        assert_eq!(loads.oldest(0, now), (1, Some(Duration::from_secs(3))));
        let mut streaming = young;
        streaming.answered();
        assert_eq!(
            loads.oldest(0, now),
            (1, None),
            "answered: counted, not aging"
        );
        drop(streaming);
        assert_eq!(loads.oldest(0, now), (0, None));
        assert_eq!(loads.oldest(5, now), (0, None), "unknown host");
    }

    #[test]
    fn requests_beyond_the_age_slots_count_without_aging() {
        let base = origin();
        let loads = Arc::new(HostLoads::new(1, None, base));
        let permits: Vec<_> = (0..AGE_SLOTS + 3)
            .map(|_| loads.try_acquire(HostId(0), base).unwrap())
            .collect();
        assert_eq!(loads.in_flight(HostId(0)), AGE_SLOTS + 3);
        assert_eq!(
            permits.iter().filter(|p| p.slot.is_none()).count(),
            3,
            "three without a slot"
        );
        drop(permits);
        assert_eq!((loads.in_flight(HostId(0)), loads.total()), (0, 0));
        assert!(
            loads.hosts[0]
                .starts
                .iter()
                .all(|s| s.load(Ordering::Relaxed) == 0)
        );
    }

    #[test]
    fn concurrent_permits_never_exceed_the_limit() {
        let base = origin();
        let loads = Arc::new(HostLoads::new(1, Some(3), base));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let loads = Arc::clone(&loads);
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Some(p) = loads.try_acquire(HostId(0), base) {
                            assert!(loads.in_flight(HostId(0)) <= 3);
                            drop(p);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((loads.in_flight(HostId(0)), loads.total()), (0, 0));
    }
    #[test]
    fn a_host_that_stays_in_a_new_host_set_keeps_its_requests_in_flight() {
        let base = origin();
        let old = Arc::new(HostLoads::new(2, Some(2), base));
        let a = old.try_acquire(HostId(0), base).expect("a");
        let _b = old.try_acquire(HostId(1), base).expect("b");
        // The new set: old host 1 is new host 0, old host 0 is gone, host 1 is new.
        let new = Arc::new(HostLoads::carry_over(&old, Some(2), &[Some(1), None]));
        assert_eq!(new.in_flight(HostId(0)), 1, "the old request still counts");
        assert_eq!(new.in_flight(HostId(1)), 0, "a new host starts empty");
        let now = base + Duration::from_secs(3);
        assert_eq!(
            new.oldest(0, now),
            (1, Some(Duration::from_secs(3))),
            "and keeps its age"
        );
        let _c = new
            .try_acquire(HostId(0), now)
            .expect("one more fits under the limit of 2");
        assert!(
            new.try_acquire(HostId(0), now).is_none(),
            "the limit counts both sets' requests"
        );
        drop(a);
        assert_eq!(
            new.in_flight(HostId(0)),
            2,
            "the dropped host's permit is not this host's"
        );
    }

    #[test]
    fn a_sample_names_the_vals_in_flight() {
        let base = origin();
        let loads = Arc::new(HostLoads::new(1, Some(4), base));
        let alice = router_core::KeyHash::of(b"alice").0;
        let long = "x".repeat(100);
        let long_hash = router_core::KeyHash::of(long.as_bytes()).0;
        let a = loads
            .try_acquire_for(HostId(0), base, Some((alice, "alice")))
            .unwrap();
        let _b = loads
            .try_acquire_for(
                HostId(0),
                base + Duration::from_secs(1),
                Some((long_hash, &long)),
            )
            .unwrap();
        let _anon = loads.try_acquire(HostId(0), base).unwrap();
        let mut out = Vec::new();
        let now = base + Duration::from_secs(3);
        assert_eq!(
            loads.sample(0, now, &mut out),
            (3, Some(Duration::from_secs(3)))
        );
        out.sort();
        let mut want = vec![
            (alice, Duration::from_secs(3)),
            (long_hash, Duration::from_secs(2)),
        ];
        want.sort();
        assert_eq!(out, want, "requests of no known Val are not attributed");
        assert_eq!(loads.name_of(0, alice).as_deref(), Some("alice"));
        let prefix = loads.name_of(0, long_hash).unwrap();
        assert_eq!(prefix, format!("{}…", "x".repeat(crate::VAL_NAME_BYTES)));
        assert_eq!(loads.name_of(0, 12345), None);
        drop(a);
        assert_eq!(loads.name_of(0, alice), None, "no longer in flight");
    }
}
