//! In-flight request counts: read by bounded loads, owned by the caller.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::host::HostId;

/// Read access to per-host in-flight counts.
pub trait InFlight {
    /// Requests in flight to `host` now.
    fn in_flight(&self, host: HostId) -> u32;
    /// Requests in flight to all hosts now.
    fn total(&self) -> u64;
    /// Hard per-host cap (the router's `limits.per_host_in_flight`); `None` = no cap.
    fn hard_limit(&self, _host: HostId) -> Option<u32> {
        None
    }
}

impl<T: InFlight + ?Sized> InFlight for &T {
    fn in_flight(&self, host: HostId) -> u32 {
        (**self).in_flight(host)
    }
    fn total(&self) -> u64 {
        (**self).total()
    }
    fn hard_limit(&self, host: HostId) -> Option<u32> {
        (**self).hard_limit(host)
    }
}

impl<T: InFlight + ?Sized> InFlight for Arc<T> {
    fn in_flight(&self, host: HostId) -> u32 {
        (**self).in_flight(host)
    }
    fn total(&self) -> u64 {
        (**self).total()
    }
    fn hard_limit(&self, host: HostId) -> Option<u32> {
        (**self).hard_limit(host)
    }
}

/// No load anywhere: for explain without traffic, and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLoads;

impl InFlight for NoLoads {
    fn in_flight(&self, _host: HostId) -> u32 {
        0
    }
    fn total(&self) -> u64 {
        0
    }
}

/// Lock-free per-host in-flight counters with an optional hard per-host limit.
///
/// Indexed by [`HostId`]; build a new one when the ring's host set changes.
#[derive(Debug)]
pub struct InFlightCounters {
    per_host: Box<[AtomicU32]>,
    total: AtomicU64,
    hard_limit: Option<u32>,
}

impl InFlightCounters {
    /// Counters for `n_hosts` hosts, all at zero.
    pub fn new(n_hosts: usize, hard_limit: Option<u32>) -> InFlightCounters {
        InFlightCounters {
            per_host: (0..n_hosts).map(|_| AtomicU32::new(0)).collect(),
            total: AtomicU64::new(0),
            hard_limit,
        }
    }

    /// The number of hosts counted.
    pub fn len(&self) -> usize {
        self.per_host.len()
    }

    /// True when no host is counted.
    pub fn is_empty(&self) -> bool {
        self.per_host.is_empty()
    }

    /// Counts one more request to `host` unless it is at the hard limit.
    ///
    /// Returns false (and counts nothing) at the limit or for an unknown host.
    /// Pair every `true` with one [`release`](Self::release).
    pub fn try_acquire_raw(&self, host: HostId) -> bool {
        let Some(count) = self.per_host.get(host.index()) else {
            return false;
        };
        let ok = match self.hard_limit {
            Some(limit) => count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                    (c < limit).then_some(c + 1)
                })
                .is_ok(),
            None => {
                count.fetch_add(1, Ordering::AcqRel);
                true
            }
        };
        if ok {
            self.total.fetch_add(1, Ordering::AcqRel);
        }
        ok
    }

    /// Ends one request to `host` counted by [`try_acquire_raw`](Self::try_acquire_raw).
    pub fn release(&self, host: HostId) {
        if let Some(count) = self.per_host.get(host.index()) {
            // Saturate: a stray release must not wrap the count.
            if count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1))
                .is_ok()
            {
                self.total.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// A permit for one request to `host`, released on drop; `None` at the limit.
    pub fn try_acquire(&self, host: HostId) -> Option<InFlightGuard<'_>> {
        // Lazily: building a guard for a refused permit would release on drop.
        self.try_acquire_raw(host).then(|| InFlightGuard {
            counters: self,
            host,
        })
    }

    /// An owned permit (holds an `Arc`), for permits that outlive a borrow.
    pub fn try_acquire_owned(self: &Arc<Self>, host: HostId) -> Option<OwnedInFlightGuard> {
        self.try_acquire_raw(host).then(|| OwnedInFlightGuard {
            counters: Arc::clone(self),
            host,
        })
    }
}

impl InFlight for InFlightCounters {
    #[inline]
    fn in_flight(&self, host: HostId) -> u32 {
        self.per_host
            .get(host.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
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

/// A borrowed in-flight permit; dropping it ends the request.
#[derive(Debug)]
#[must_use = "dropping the guard releases the permit at once"]
pub struct InFlightGuard<'a> {
    counters: &'a InFlightCounters,
    host: HostId,
}

impl InFlightGuard<'_> {
    /// The host this permit counts against.
    pub fn host(&self) -> HostId {
        self.host
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.counters.release(self.host);
    }
}

/// An owned in-flight permit; dropping it ends the request.
#[derive(Debug)]
#[must_use = "dropping the guard releases the permit at once"]
pub struct OwnedInFlightGuard {
    counters: Arc<InFlightCounters>,
    host: HostId,
}

impl OwnedInFlightGuard {
    /// The host this permit counts against.
    pub fn host(&self) -> HostId {
        self.host
    }
}

impl Drop for OwnedInFlightGuard {
    fn drop(&mut self) {
        self.counters.release(self.host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_release() {
        let c = InFlightCounters::new(2, Some(2));
        let a = c.try_acquire(HostId(0)).unwrap();
        let b = c.try_acquire(HostId(0)).unwrap();
        assert!(c.try_acquire(HostId(0)).is_none(), "hard limit holds");
        assert_eq!((c.in_flight(HostId(0)), c.total()), (2, 2));
        drop(a);
        assert_eq!((c.in_flight(HostId(0)), c.total()), (1, 1));
        drop(b);
        assert_eq!(c.total(), 0);
        assert!(c.try_acquire(HostId(7)).is_none(), "unknown host");
    }

    #[test]
    fn concurrent_permits_respect_the_limit() {
        let c = Arc::new(InFlightCounters::new(1, Some(3)));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Some(g) = c.try_acquire(HostId(0)) {
                            assert!(c.in_flight(HostId(0)) <= 3);
                            drop(g);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((c.in_flight(HostId(0)), c.total()), (0, 0));
    }

    #[test]
    fn owned_guard_and_stray_release() {
        let c = Arc::new(InFlightCounters::new(1, None));
        let g = c.try_acquire_owned(HostId(0)).unwrap();
        assert_eq!(c.in_flight(HostId(0)), 1);
        drop(g);
        c.release(HostId(0));
        assert_eq!((c.in_flight(HostId(0)), c.total()), (0, 0));
    }
}
