//! The router-wide in-flight counter and its cap (`limits.global_in_flight`), shared by every
//! ring generation. Per-host counts, ages and the Val of each request in flight are
//! `ringward_embed::HostLoads`, the same accounting an embedding proxy uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

#[cfg(test)]
mod tests {
    use super::*;

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
