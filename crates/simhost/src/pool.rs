//! The modelled DB connection pool: `max` slots, a FIFO queue of waiters, and the checkout
//! instant of every slot, so the figures it reports are true rather than flags.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

/// The pool's figures at one instant (contract 1's `db_pool`, plus the stuck count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// Capacity.
    pub max: u32,
    /// Connections checked out (by requests or by deadlocked queries).
    pub in_use: u32,
    /// Tasks queued for a connection.
    pub waiting: u32,
    /// Age of the longest-held checked-out connection (zero when none is out).
    pub oldest_checkout: Duration,
    /// Connections held (or queued for) by deadlocked queries: the `deadlock` fault.
    pub deadlocked: u32,
}

/// Who holds a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Request,
    /// A deadlocked query: never returns its connection until released.
    Deadlocked,
}

#[derive(Clone, Copy, Debug)]
struct Checkout {
    since: Instant,
    holder: Holder,
}

#[derive(Debug)]
enum WaiterKind {
    Request(oneshot::Sender<usize>),
    Deadlocked,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    kind: WaiterKind,
}

#[derive(Debug)]
struct State {
    slots: Vec<Option<Checkout>>,
    free: Vec<usize>,
    queue: VecDeque<Waiter>,
    next_id: u64,
}

impl State {
    fn take(&mut self, holder: Holder, now: Instant) -> Option<usize> {
        let idx = self.free.pop()?;
        self.slots[idx] = Some(Checkout { since: now, holder });
        Some(idx)
    }

    /// Returns a slot and hands free slots to the queue in FIFO order.
    fn put_back(&mut self, idx: usize, now: Instant) {
        if self.slots[idx].take().is_some() {
            self.free.push(idx);
        }
        self.grant(now);
    }

    fn grant(&mut self, now: Instant) {
        // Each pass either empties the queue or uses a free slot, so this ends.
        while !self.free.is_empty() {
            let Some(waiter) = self.queue.pop_front() else {
                return;
            };
            match waiter.kind {
                WaiterKind::Deadlocked => {
                    self.take(Holder::Deadlocked, now);
                }
                WaiterKind::Request(tx) => {
                    if let Some(idx) = self.take(Holder::Request, now) {
                        if tx.send(idx).is_err() {
                            // The waiter is gone; the slot goes to the next one.
                            self.slots[idx] = None;
                            self.free.push(idx);
                        }
                    }
                }
            }
        }
    }

    fn deadlocked(&self) -> u32 {
        let held = self
            .slots
            .iter()
            .flatten()
            .filter(|c| c.holder == Holder::Deadlocked)
            .count();
        let queued = self
            .queue
            .iter()
            .filter(|w| matches!(w.kind, WaiterKind::Deadlocked))
            .count();
        count(held + queued)
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The pool. Shared by the host's request handlers and its fault control.
#[derive(Debug)]
pub(crate) struct Pool {
    max: u32,
    state: Mutex<State>,
}

impl Pool {
    /// A pool of `max` connections (at least 1).
    pub(crate) fn new(max: u32) -> Arc<Pool> {
        let max = max.max(1);
        let n = max as usize;
        Arc::new(Pool {
            max,
            state: Mutex::new(State {
                slots: vec![None; n],
                free: (0..n).rev().collect(),
                queue: VecDeque::new(),
                next_id: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this tiny lock leaves the state consistent enough to report.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (FIFO) for a connection. `None` only if the pool dropped the request's place,
    /// which it never does on purpose. Cancel-safe: dropping the future leaves the queue.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Option<Lease> {
        let mut wait = {
            let mut st = self.lock();
            let now = Instant::now();
            if st.queue.is_empty() {
                if let Some(idx) = st.take(Holder::Request, now) {
                    return Some(Lease {
                        pool: Arc::clone(self),
                        idx,
                    });
                }
            }
            let (tx, rx) = oneshot::channel();
            let id = st.next_id;
            st.next_id += 1;
            st.queue.push_back(Waiter {
                id,
                kind: WaiterKind::Request(tx),
            });
            Wait {
                pool: Arc::clone(self),
                id,
                rx,
                done: false,
            }
        };
        let idx = (&mut wait.rx).await.ok();
        wait.done = true;
        idx.map(|idx| Lease {
            pool: Arc::clone(self),
            idx,
        })
    }

    /// The figures now.
    pub(crate) fn figures(&self) -> PoolFigures {
        self.figures_at(Instant::now())
    }

    pub(crate) fn figures_at(&self, now: Instant) -> PoolFigures {
        let st = self.lock();
        let mut in_use = 0;
        let mut oldest = None::<Instant>;
        for c in st.slots.iter().flatten() {
            in_use += 1;
            oldest = Some(oldest.map_or(c.since, |o| o.min(c.since)));
        }
        PoolFigures {
            max: self.max,
            in_use,
            waiting: count(st.queue.len()),
            oldest_checkout: oldest.map_or(Duration::ZERO, |o| now.saturating_duration_since(o)),
            deadlocked: st.deadlocked(),
        }
    }

    /// Makes exactly `k` (at most `max`) connections deadlocked: new deadlocked queries take
    /// free connections or queue behind current waiters; lowering `k` releases some.
    pub(crate) fn set_deadlocked(&self, k: u32, now: Instant) {
        let k = k.min(self.max);
        let mut st = self.lock();
        let current = st.deadlocked();
        if k > current {
            for _ in current..k {
                if !st.queue.is_empty() || st.take(Holder::Deadlocked, now).is_none() {
                    let id = st.next_id;
                    st.next_id += 1;
                    st.queue.push_back(Waiter {
                        id,
                        kind: WaiterKind::Deadlocked,
                    });
                }
            }
            return;
        }
        let mut surplus = current - k;
        // Queued deadlocked queries go first (newest first), then held connections.
        let mut i = st.queue.len();
        while surplus > 0 && i > 0 {
            i -= 1;
            if matches!(st.queue[i].kind, WaiterKind::Deadlocked) {
                st.queue.remove(i);
                surplus -= 1;
            }
        }
        for idx in 0..st.slots.len() {
            if surplus == 0 {
                break;
            }
            if st.slots[idx].is_some_and(|c| c.holder == Holder::Deadlocked) {
                st.slots[idx] = None;
                st.free.push(idx);
                surplus -= 1;
            }
        }
        st.grant(now);
    }

    fn release_slot(&self, idx: usize) {
        self.lock().put_back(idx, Instant::now());
    }
}

/// A checked-out connection; dropping it returns the connection to the pool.
#[derive(Debug)]
pub(crate) struct Lease {
    pool: Arc<Pool>,
    idx: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.release_slot(self.idx);
    }
}

/// A place in the queue; leaving it (timeout, shutdown, client gone) gives it up cleanly.
struct Wait {
    pool: Arc<Pool>,
    id: u64,
    rx: oneshot::Receiver<usize>,
    done: bool,
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut st = self.pool.lock();
        if let Some(pos) = st.queue.iter().position(|w| w.id == self.id) {
            st.queue.remove(pos);
        } else if let Ok(idx) = self.rx.try_recv() {
            // Granted under the lock just before we gave up: hand it on.
            st.put_back(idx, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    fn poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn figures_track_checkouts_and_ages() {
        let pool = Pool::new(2);
        let t0 = Instant::now();
        let a = poll_once(pin!(pool.acquire()));
        let Poll::Ready(Some(a)) = a else {
            panic!("free slot must be immediate")
        };
        let f = pool.figures_at(t0 + Duration::from_secs(3));
        assert_eq!((f.max, f.in_use, f.waiting), (2, 1, 0));
        assert!(f.oldest_checkout >= Duration::from_secs(2), "{f:?}");
        drop(a);
        let f = pool.figures_at(t0 + Duration::from_secs(3));
        assert_eq!((f.in_use, f.oldest_checkout), (0, Duration::ZERO));
    }

    #[test]
    fn waiters_are_served_in_order_and_leave_cleanly() {
        let pool = Pool::new(1);
        let Poll::Ready(Some(held)) = poll_once(pin!(pool.acquire())) else {
            panic!()
        };
        let mut first = Box::pin(pool.acquire());
        let mut second = Box::pin(pool.acquire());
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        assert_eq!(pool.figures().waiting, 2);
        drop(held);
        // FIFO: the first waiter got it, the second still waits.
        assert_eq!(pool.figures().waiting, 1);
        assert!(poll_once(second.as_mut()).is_pending());
        let Poll::Ready(Some(lease)) = poll_once(first.as_mut()) else {
            panic!()
        };
        // The second gives up: the queue is empty again, and the slot is not leaked.
        drop(second);
        assert_eq!(pool.figures().waiting, 0);
        drop(lease);
        assert_eq!(pool.figures().in_use, 0);
    }

    #[test]
    fn a_waiter_granted_then_dropped_hands_the_slot_on() {
        let pool = Pool::new(1);
        let Poll::Ready(Some(held)) = poll_once(pin!(pool.acquire())) else {
            panic!()
        };
        let mut first = Box::pin(pool.acquire());
        assert!(poll_once(first.as_mut()).is_pending());
        let mut second = Box::pin(pool.acquire());
        assert!(poll_once(second.as_mut()).is_pending());
        drop(held); // granted to `first`, which has not been polled since
        drop(first);
        let Poll::Ready(Some(_lease)) = poll_once(second.as_mut()) else {
            panic!("the slot must pass to the next waiter")
        };
        assert_eq!(pool.figures().in_use, 1);
    }

    #[test]
    fn deadlock_takes_slots_queues_the_rest_and_release_drains() {
        let pool = Pool::new(3);
        let now = Instant::now();
        let Poll::Ready(Some(held)) = poll_once(pin!(pool.acquire())) else {
            panic!()
        };
        pool.set_deadlocked(3, now);
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.waiting, f.deadlocked), (3, 1, 3));
        let mut req = Box::pin(pool.acquire());
        assert!(poll_once(req.as_mut()).is_pending());
        // The request's lease returns: the queued deadlocked query takes it, not the request.
        drop(held);
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.waiting, f.deadlocked), (3, 1, 3));
        assert!(poll_once(req.as_mut()).is_pending());
        pool.set_deadlocked(0, now);
        let Poll::Ready(Some(_l)) = poll_once(req.as_mut()) else {
            panic!("release drains")
        };
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.waiting, f.deadlocked), (1, 0, 0));
        // Clamped to capacity.
        pool.set_deadlocked(99, now);
        assert_eq!(pool.figures_at(now).deadlocked, 3);
    }
}
