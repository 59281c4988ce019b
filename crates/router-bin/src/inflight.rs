//! In-flight accounting: per-host counts with a hard cap, a router-wide count with its own cap,
//! and the start instant of every in-flight request so the health task can see how old the
//! oldest one is (a stuck host shows up as requests that never finish).
//!
//! All lock-free: a permit is a compare-and-swap on a counter plus one slot in a fixed array
//! of start times (the array has one slot per allowed request, so a permit always finds one).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use router_core::{HostId, InFlight};

/// In-flight state of one host.
#[derive(Debug)]
struct HostLoad {
    count: AtomicU32,
    /// Start of each in-flight request, as nanoseconds since `Loads::base` plus one; 0 = free.
    starts: Box<[AtomicU64]>,
    /// Where to start looking for a free slot (spreads contention).
    hint: AtomicUsize,
}

/// In-flight counts of one ring generation's hosts. A host that stays across a
/// reload keeps its counters, so requests in flight keep counting (against
/// its cap, for bounded loads and for the hung-request age) whatever generation
/// they started in.
#[derive(Debug)]
pub struct Loads {
    hosts: Box<[Arc<HostLoad>]>,
    per_host_cap: u32,
    base: Instant,
}

/// The router-wide in-flight counter and cap (shared by every ring generation).
#[derive(Debug)]
pub struct GlobalLoad {
    count: AtomicU64,
    cap: AtomicU64,
}

impl GlobalLoad {
    /// A counter with room for `cap` requests.
    pub fn new(cap: u32) -> Self {
        GlobalLoad {
            count: AtomicU64::new(0),
            cap: AtomicU64::new(u64::from(cap)),
        }
    }

    /// Changes the cap (hot reload); requests already in flight are not affected.
    pub fn set_cap(&self, cap: u32) {
        self.cap.store(u64::from(cap), Ordering::Relaxed);
    }

    /// Requests in flight through the router now.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Takes a router-wide slot; None when the router is at its cap.
    pub fn try_acquire(self: &Arc<Self>) -> Option<GlobalPermit> {
        let cap = self.cap.load(Ordering::Relaxed);
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                (c < cap).then_some(c + 1)
            })
            .ok()?;
        Some(GlobalPermit(Arc::clone(self)))
    }
}

/// One router-wide in-flight slot; released on drop.
#[derive(Debug)]
pub struct GlobalPermit(Arc<GlobalLoad>);

impl Drop for GlobalPermit {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HostLoad {
    fn new(per_host_cap: u32) -> Arc<Self> {
        Arc::new(HostLoad {
            count: AtomicU32::new(0),
            starts: (0..per_host_cap).map(|_| AtomicU64::new(0)).collect(),
            hint: AtomicUsize::new(0),
        })
    }
}

impl Loads {
    /// Counters for `hosts` hosts, each capped at `per_host_cap`.
    pub fn new(hosts: usize, per_host_cap: u32, base: Instant) -> Self {
        let hosts = (0..hosts).map(|_| HostLoad::new(per_host_cap)).collect();
        Loads {
            hosts,
            per_host_cap,
            base,
        }
    }

    /// Counters for a new ring generation: host `i` keeps the counters of
    /// `previous` host `from[i]` where that is `Some` (a host that stays), and
    /// starts at zero otherwise. A host that keeps its counters keeps its
    /// start-time slots too; if `per_host_cap` grew, requests beyond the old
    /// number of slots are counted but not aged.
    pub fn carry_over(previous: &Loads, per_host_cap: u32, from: &[Option<usize>]) -> Self {
        let hosts = from
            .iter()
            .map(|old| match old.and_then(|i| previous.hosts.get(i)) {
                Some(load) => Arc::clone(load),
                None => HostLoad::new(per_host_cap),
            })
            .collect();
        Loads {
            hosts,
            per_host_cap,
            base: previous.base,
        }
    }

    /// Takes an in-flight slot on `host`, started at `now`; None when the host is at its cap.
    pub fn try_acquire(self: &Arc<Self>, host: HostId, now: Instant) -> Option<HostPermit> {
        let load = self.hosts.get(host.index())?;
        let cap = self.per_host_cap;
        load.count
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |c| {
                (c < cap).then_some(c + 1)
            })
            .ok()?;
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
        Some(HostPermit {
            load: Arc::clone(load),
            slot,
        })
    }

    /// Count of in-flight requests on `index` and the age of the oldest at `now`.
    pub fn oldest(&self, index: usize, now: Instant) -> (u32, Option<Duration>) {
        let Some(load) = self.hosts.get(index) else {
            return (0, None);
        };
        let oldest = load
            .starts
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&s| s != 0)
            .min()
            .map(|s| {
                let started = self.base + Duration::from_nanos(s - 1);
                now.saturating_duration_since(started)
            });
        (load.count.load(Ordering::Relaxed), oldest)
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when there are no hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

impl InFlight for Loads {
    fn in_flight(&self, host: HostId) -> u32 {
        self.hosts
            .get(host.index())
            .map_or(0, |h| h.count.load(Ordering::Relaxed))
    }

    fn total(&self) -> u64 {
        self.hosts
            .iter()
            .map(|h| u64::from(h.count.load(Ordering::Relaxed)))
            .sum()
    }

    fn hard_limit(&self, _host: HostId) -> Option<u32> {
        Some(self.per_host_cap)
    }
}

/// One in-flight request on one host; released on drop (when the response body ends).
#[derive(Debug)]
pub struct HostPermit {
    load: Arc<HostLoad>,
    slot: Option<usize>,
}

impl HostPermit {
    /// The host sent its response head: it is not hung, whatever the body takes, so this
    /// request stops counting towards the oldest in-flight age (it still counts as in flight).
    pub fn answered(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.load.starts[slot].store(0, Ordering::Release);
        }
    }
}

impl Drop for HostPermit {
    fn drop(&mut self) {
        let load = &self.load;
        if let Some(slot) = self.slot {
            load.starts[slot].store(0, Ordering::Release);
        }
        load.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_that_stays_across_a_reload_keeps_its_requests_in_flight() {
        let base = Instant::now();
        let old = Arc::new(Loads::new(2, 2, base));
        let a = old.try_acquire(HostId(0), base).expect("a");
        let _b = old.try_acquire(HostId(1), base).expect("b");
        // The new generation: old host 1 is new host 0, old host 0 is gone, host 1 is new.
        let new = Arc::new(Loads::carry_over(&old, 2, &[Some(1), None]));
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
            .expect("one more fits under the cap of 2");
        assert!(
            new.try_acquire(HostId(0), now).is_none(),
            "the cap counts both generations"
        );
        drop(a);
        assert_eq!(
            new.in_flight(HostId(0)),
            2,
            "the dropped host's permit is not this host's"
        );
    }

    #[test]
    fn per_host_cap_and_release() {
        let base = Instant::now();
        let loads = Arc::new(Loads::new(2, 2, base));
        let a = loads.try_acquire(HostId(0), base).expect("first");
        let b = loads.try_acquire(HostId(0), base).expect("second");
        assert!(loads.try_acquire(HostId(0), base).is_none(), "cap of 2");
        assert!(
            loads.try_acquire(HostId(1), base).is_some(),
            "other host unaffected"
        );
        assert_eq!(loads.in_flight(HostId(0)), 2);
        drop(a);
        assert_eq!(loads.in_flight(HostId(0)), 1);
        drop(b);
        assert_eq!(loads.in_flight(HostId(0)), 0);
        assert!(loads.try_acquire(HostId(9), base).is_none(), "unknown host");
    }

    #[test]
    fn oldest_age_tracks_the_longest_running_request() {
        let base = Instant::now();
        let loads = Arc::new(Loads::new(1, 4, base));
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
            "answered: in flight, but not aging"
        );
        drop(streaming);
        assert_eq!(loads.oldest(0, now), (0, None));
    }

    #[test]
    fn global_cap() {
        let g = Arc::new(GlobalLoad::new(1));
        let p = g.try_acquire().expect("room for one");
        assert!(g.try_acquire().is_none());
        assert_eq!(g.count(), 1);
        drop(p);
        assert!(g.try_acquire().is_some());
        g.set_cap(0);
        assert!(g.try_acquire().is_none());
    }
}
