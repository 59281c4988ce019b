//! In-flight accounting: per-host counts with a hard cap, a router-wide count with its own cap,
//! and the start instant of every in-flight request so the health task can see how old the
//! oldest one is (a stuck host shows up as requests that never finish).
//!
//! All lock-free: a permit is a compare-and-swap on a counter plus one slot in a fixed array
//! of start times (the array has one slot per allowed request, so a permit always finds one).
//! Each slot also carries the request's Val (its key hash, and the first bytes of the key in
//! atomic words), so the cascade guard can tell which Vals a failing host was serving
//! without a lock or an allocation on the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use router_core::{HostId, InFlight};

/// Bytes of a Val's key kept per slot (longer keys are kept as a prefix).
const NAME_WORDS: usize = 6;
const NAME_BYTES: usize = NAME_WORDS * 8;

/// The Val of the request in one slot: its key hash (0 = none) and the key's first bytes.
/// Written by the permit's owner after it claims the slot; read by the health task, which
/// checks the bytes against the hash (a slot being rewritten reads as unknown, never wrong).
#[derive(Debug, Default)]
struct SlotVal {
    hash: AtomicU64,
    len: AtomicU32,
    name: [AtomicU64; NAME_WORDS],
}

impl SlotVal {
    fn store(&self, hash: u64, key: &str) {
        let bytes = key.as_bytes();
        let mut words = [0u8; NAME_BYTES];
        let n = bytes.len().min(NAME_BYTES);
        words[..n].copy_from_slice(&bytes[..n]);
        for (word, chunk) in self.name.iter().zip(words.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        self.len.store(
            u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
        self.hash.store(hash, Ordering::Release);
    }

    /// The key, if the slot holds `hash` and its bytes still match it. A key longer than
    /// the slot keeps only its prefix, which cannot be checked: it ends in `…`.
    fn name(&self, hash: u64) -> Option<String> {
        if self.hash.load(Ordering::Acquire) != hash {
            return None;
        }
        let len = self.len.load(Ordering::Relaxed) as usize;
        let mut bytes = Vec::with_capacity(NAME_BYTES);
        for word in &self.name {
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        if len > NAME_BYTES {
            let mut prefix = String::from_utf8_lossy(&bytes).into_owned();
            prefix.push('…');
            return Some(prefix);
        }
        bytes.truncate(len);
        (router_core::KeyHash::of(&bytes).0 == hash)
            .then(|| String::from_utf8(bytes).ok())
            .flatten()
    }
}

/// In-flight state of one host.
#[derive(Debug)]
struct HostLoad {
    count: AtomicU32,
    /// Start of each in-flight request, as nanoseconds since `Loads::base` plus one; 0 = free.
    starts: Box<[AtomicU64]>,
    /// The Val of each slot's request.
    vals: Box<[SlotVal]>,
    /// Where to start looking for a free slot (spreads contention).
    hint: AtomicUsize,
}

/// In-flight counts of one ring generation's hosts. A host that stays across a
/// reload keeps its counters, so requests in flight keep counting (against
/// its cap, for bounded loads and for the hung-request age) whatever generation
/// they started in.
#[derive(Debug)]
pub(crate) struct Loads {
    hosts: Box<[Arc<HostLoad>]>,
    per_host_cap: u32,
    base: Instant,
}

/// The router-wide in-flight counter and cap (shared by every ring generation).
#[derive(Debug)]
pub(crate) struct GlobalLoad {
    count: AtomicU64,
    cap: AtomicU64,
}

impl GlobalLoad {
    /// A counter with room for `cap` requests.
    pub(crate) fn new(cap: u32) -> Self {
        GlobalLoad {
            count: AtomicU64::new(0),
            cap: AtomicU64::new(u64::from(cap)),
        }
    }

    /// Changes the cap (hot reload); requests already in flight are not affected.
    pub(crate) fn set_cap(&self, cap: u32) {
        self.cap.store(u64::from(cap), Ordering::Relaxed);
    }

    /// Requests in flight through the router now.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Takes a router-wide slot; None when the router is at its cap.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<GlobalPermit> {
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
pub(crate) struct GlobalPermit(Arc<GlobalLoad>);

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
            vals: (0..per_host_cap).map(|_| SlotVal::default()).collect(),
            hint: AtomicUsize::new(0),
        })
    }
}

impl Loads {
    /// Counters for `hosts` hosts, each capped at `per_host_cap`.
    pub(crate) fn new(hosts: usize, per_host_cap: u32, base: Instant) -> Self {
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
    pub(crate) fn carry_over(previous: &Loads, per_host_cap: u32, from: &[Option<usize>]) -> Self {
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

    /// Takes an in-flight slot on `host`, started at `now`, for a request of no known Val;
    /// None when the host is at its cap.
    #[cfg(test)]
    pub(crate) fn try_acquire(self: &Arc<Self>, host: HostId, now: Instant) -> Option<HostPermit> {
        self.try_acquire_for(host, now, None)
    }

    /// Takes an in-flight slot on `host`, started at `now`, for a request of `val` (its key
    /// hash and key); None when the host is at its cap.
    pub(crate) fn try_acquire_for(
        self: &Arc<Self>,
        host: HostId,
        now: Instant,
        val: Option<(u64, &str)>,
    ) -> Option<HostPermit> {
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
        if let Some(i) = slot {
            let (hash, key) = val.unwrap_or((0, ""));
            load.vals[i].store(hash, key);
        }
        Some(HostPermit {
            load: Arc::clone(load),
            slot,
        })
    }

    /// Count of in-flight requests on `index` and the age of the oldest at `now`.
    pub(crate) fn oldest(&self, index: usize, now: Instant) -> (u32, Option<Duration>) {
        let Some(load) = self.hosts.get(index) else {
            return (0, None);
        };
        let oldest = load
            .starts
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&s| s != 0)
            .min()
            .map(|s| self.age(s, now));
        (load.count.load(Ordering::Relaxed), oldest)
    }

    /// The age at `now` of the request whose start stamp (never 0) is `stamp`.
    fn age(&self, stamp: u64, now: Instant) -> Duration {
        now.saturating_duration_since(self.base + Duration::from_nanos(stamp - 1))
    }

    /// Like [`Loads::oldest`], and fills `out` with (Val key hash, age) of every aging
    /// request of a known Val (the cascade guard's sample).
    pub(crate) fn sample(
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

    /// The key of Val `hash` if one of its requests is in flight on `index` (first bytes
    /// only for a long key).
    pub(crate) fn name_of(&self, index: usize, hash: u64) -> Option<String> {
        let load = self.hosts.get(index)?;
        load.starts
            .iter()
            .zip(load.vals.iter())
            .filter(|(s, _)| s.load(Ordering::Acquire) != 0)
            .find_map(|(_, v)| v.name(hash))
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
pub(crate) struct HostPermit {
    load: Arc<HostLoad>,
    slot: Option<usize>,
}

impl HostPermit {
    /// The host sent its response head: it is not hung, whatever the body takes, so this
    /// request stops counting towards the oldest in-flight age (it still counts as in flight).
    pub(crate) fn answered(&mut self) {
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
    fn a_sample_names_the_vals_in_flight() {
        let base = Instant::now();
        let loads = Arc::new(Loads::new(1, 4, base));
        let alice = router_core::KeyHash::of(b"alice").0;
        let long = "x".repeat(100);
        let long_hash = router_core::KeyHash::of(long.as_bytes()).0;
        let _a = loads
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
        assert_eq!(prefix, format!("{}…", "x".repeat(NAME_BYTES)));
        assert_eq!(loads.name_of(0, 12345), None);
        drop(_a);
        assert_eq!(loads.name_of(0, alice), None, "no longer in flight");
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
