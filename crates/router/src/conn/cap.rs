//! The client connection cap (`limits.max_connections`): one semaphore permit per open
//! connection, taken at accept and held until the connection ends.
//!
//! When every permit is taken, a new connection is accepted and closed at once instead of
//! being left in the kernel's accept queue: the client learns immediately (an EOF, which a
//! load balancer or client retries elsewhere), the accept queue never fills with connections
//! that would be served seconds later, and the refusal is counted. docs/operations.md says
//! why in full.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connection counts, for metrics.
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    open: AtomicU64,
    refused: AtomicU64,
    max: AtomicU64,
}

impl ConnStats {
    /// Client connections open now.
    pub(crate) fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections closed at accept because the cap was reached.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The cap (0 before a listener is started).
    pub(crate) fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }
}

/// At most `max` connections at once.
#[derive(Debug, Clone)]
pub(crate) struct ConnCap {
    permits: Arc<Semaphore>,
    stats: Arc<ConnStats>,
}

impl ConnCap {
    /// A cap of `max` connections (at least 1), counted in `stats`.
    pub(crate) fn new(max: usize, stats: Arc<ConnStats>) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        stats.max.store(max as u64, Ordering::Relaxed);
        ConnCap {
            permits: Arc::new(Semaphore::new(max)),
            stats,
        }
    }

    /// A slot for one connection, or None (counted as refused) when the cap is reached.
    pub(crate) fn try_admit(&self) -> Option<ConnPermit> {
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                self.stats.open.fetch_add(1, Ordering::Relaxed);
                Some(ConnPermit {
                    _permit: permit,
                    stats: Arc::clone(&self.stats),
                })
            }
            Err(_) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }
}

/// One connection's slot; dropping it (when the connection ends) frees the slot.
#[derive(Debug)]
pub(crate) struct ConnPermit {
    _permit: OwnedSemaphorePermit,
    stats: Arc<ConnStats>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_takes_a_slot_and_gives_it_back() {
        let stats = Arc::new(ConnStats::default());
        let cap = ConnCap::new(1, Arc::clone(&stats));
        let first = cap.try_admit().expect("a free slot");
        assert!(cap.try_admit().is_none(), "the cap holds");
        assert_eq!((stats.open(), stats.refused()), (1, 1));
        drop(first);
        assert!(
            cap.try_admit().is_some(),
            "a slot frees when its connection ends"
        );
    }

    #[test]
    fn the_cap_holds_and_slots_come_back() {
        let stats = Arc::new(ConnStats::default());
        let cap = ConnCap::new(3, Arc::clone(&stats));
        let held: Vec<_> = (0..3).map(|_| cap.try_admit().expect("slot")).collect();
        assert_eq!(stats.open(), 3);
        for _ in 0..5 {
            assert!(cap.try_admit().is_none());
        }
        assert_eq!(stats.refused(), 5);
        drop(held);
        assert_eq!(stats.open(), 0);
        assert!(cap.try_admit().is_some());
        assert_eq!(stats.max(), 3);
    }

    #[test]
    fn a_cap_of_zero_is_one() {
        let cap = ConnCap::new(0, Arc::new(ConnStats::default()));
        let one = cap.try_admit();
        assert!(one.is_some());
        assert!(cap.try_admit().is_none());
    }
}
