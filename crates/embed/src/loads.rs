//! Lock-free in-flight accounting: per-host counts with an optional hard limit, and the start
//! time of in-flight requests so the driver can see how old the oldest one is (a host whose
//! DB pool is stuck shows up as requests that never finish).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use router_core::{HostId, InFlight};

/// Start-time slots kept per host when there is no hard limit (or a larger one): requests
/// beyond this many at once on one host are counted but not aged.
pub const AGE_SLOTS: u32 = 1024;

/// In-flight state of one host.
#[derive(Debug)]
struct HostLoad {
    count: AtomicU32,
    /// Start of each aging request, as nanoseconds since `HostLoads::base` plus one; 0 = free.
    starts: Box<[AtomicU64]>,
    /// Where to start looking for a free slot (spreads contention).
    hint: AtomicUsize,
}

/// Per-host in-flight counters (lock-free atomics), implementing [`InFlight`] for
/// [`Snapshot::route`](router_core::Snapshot::route) and bounded loads.
///
/// Each request holds a [`Permit`], which records when it started; the driver reads the age
/// of every host's oldest unanswered request from them. Indexed by [`HostId`].
#[derive(Debug)]
pub struct HostLoads {
    hosts: Box<[HostLoad]>,
    total: AtomicU64,
    hard_limit: Option<u32>,
    base: Instant,
}

impl HostLoads {
    /// Counters for `hosts` hosts, each limited to `hard_limit` requests at once (`None`: no
    /// limit); `base` is an instant no later than any request's start.
    pub fn new(hosts: usize, hard_limit: Option<u32>, base: Instant) -> HostLoads {
        let slots = hard_limit.map_or(AGE_SLOTS, |l| l.min(AGE_SLOTS)) as usize;
        let hosts = (0..hosts)
            .map(|_| HostLoad {
                count: AtomicU32::new(0),
                starts: (0..slots).map(|_| AtomicU64::new(0)).collect(),
                hint: AtomicUsize::new(0),
            })
            .collect();
        HostLoads {
            hosts,
            total: AtomicU64::new(0),
            hard_limit,
            base,
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
        self.total.fetch_add(1, Ordering::AcqRel);
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
        Some(Permit {
            loads: Arc::clone(self),
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
            .map(|s| now.saturating_duration_since(self.base + Duration::from_nanos(s - 1)));
        (load.count.load(Ordering::Relaxed), oldest)
    }

    fn release(&self, host: HostId, slot: Option<usize>) {
        if let Some(load) = self.hosts.get(host.index()) {
            if let Some(slot) = slot {
                load.starts[slot].store(0, Ordering::Release);
            }
            load.count.fetch_sub(1, Ordering::AcqRel);
            self.total.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl InFlight for HostLoads {
    #[inline]
    fn in_flight(&self, host: HostId) -> u32 {
        self.hosts
            .get(host.index())
            .map_or(0, |h| h.count.load(Ordering::Relaxed))
    }

    #[inline]
    fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    #[inline]
    fn hard_limit(&self, _host: HostId) -> Option<u32> {
        self.hard_limit
    }
}

/// One request in flight on one host: counted from [`HostLoads::try_acquire`] until dropped.
#[derive(Debug)]
#[must_use = "dropping the permit ends the request at once"]
pub struct Permit {
    loads: Arc<HostLoads>,
    host: HostId,
    slot: Option<usize>,
}

impl Permit {
    /// The host this permit counts against.
    pub fn host(&self) -> HostId {
        self.host
    }

    /// The host sent its response head: it is not hung, however long the body takes, so the
    /// request stops counting towards the oldest in-flight age (it still counts in flight).
    pub fn answered(&mut self) {
        if let Some(slot) = self.slot.take() {
            if let Some(load) = self.loads.hosts.get(self.host.index()) {
                load.starts[slot].store(0, Ordering::Release);
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.loads.release(self.host, self.slot);
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
}
