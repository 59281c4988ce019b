//! The modelled DB connection pool: `max` slots, a FIFO queue of waiters, and the checkout
//! instant of every slot, so the figures it reports are true rather than flags.
//!
//! It also keeps the `poison` fault's state, under the same lock as the slots: the trigger
//! turns connections that requests already hold into deadlocked ones, and that must happen
//! in one step with the checkouts and returns it races against.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::poison::PoisonFault;

/// The pool's figures at one instant (the `db_pool` of docs/contracts.md, plus the stuck counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolFigures {
    /// Capacity.
    pub max: u32,
    /// Connections checked out (by requests, deadlocked queries or poisoned requests).
    pub in_use: u32,
    /// Tasks queued for a connection.
    pub waiting: u32,
    /// Age of the longest-held checked-out connection (zero when none is out).
    pub oldest_checkout: Duration,
    /// Connections held (or queued for) by deadlocked queries: the `deadlock` fault.
    pub deadlocked: u32,
    /// Connections held by deadlocked requests of the poisoned Val: the `poison` fault.
    /// (Its requests still queued for a connection count in `waiting`.)
    pub poisoned: u32,
}

/// Who holds a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    /// A request being served; `ticket` is set on a request of the poisoned Val.
    Request { ticket: Option<u64> },
    /// A deadlocked query: never returns its connection until released.
    Deadlocked,
    /// A poisoned Val request's deadlocked query: kept until released, whether or not the
    /// request is still there (a deadlocked query does not notice its client leaving).
    Poisoned,
}

#[derive(Clone, Copy, Debug)]
struct Checkout {
    /// Tells this checkout from a later one of the same slot, so a stale lease returns nothing.
    id: u64,
    since: Instant,
    holder: Holder,
}

/// What a queued request is handed.
#[derive(Debug)]
enum Grant {
    Slot {
        idx: usize,
        checkout: u64,
    },
    /// The request is poisoned: its connection went straight to a deadlocked query.
    Poisoned,
}

#[derive(Debug)]
enum WaiterKind {
    Request {
        tx: oneshot::Sender<Grant>,
        ticket: Option<u64>,
    },
    Deadlocked,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    kind: WaiterKind,
}

/// Where a request of the poisoned Val stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Counted toward the trigger of this arming; served normally until it fires.
    Armed(u64),
    /// The deadlock triggered: its connection (held now, or when its turn comes) is stuck.
    Poisoned,
    /// Its deadlock was released.
    Released,
}

/// The `poison` fault in force, with its trigger.
#[derive(Debug)]
struct Arming {
    fault: PoisonFault,
    /// Changes whenever the trigger re-arms, so requests counted before no longer count.
    id: u64,
    triggered: bool,
}

#[derive(Debug)]
struct State {
    slots: Vec<Option<Checkout>>,
    free: Vec<usize>,
    queue: VecDeque<Waiter>,
    next_id: u64,
    poison: Option<Arming>,
    /// The live requests of the poisoned Val (their tickets), by ticket id.
    tickets: HashMap<u64, Phase>,
}

impl State {
    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn take(&mut self, holder: Holder, now: Instant) -> Option<(usize, u64)> {
        let idx = self.free.pop()?;
        let id = self.next_id();
        self.slots[idx] = Some(Checkout {
            id,
            since: now,
            holder,
        });
        Some((idx, id))
    }

    /// Returns a slot and hands free slots to the queue in FIFO order.
    fn put_back(&mut self, idx: usize, now: Instant) {
        if self.slots[idx].take().is_some() {
            self.free.push(idx);
        }
        self.grant(now);
    }

    /// Whether a request's checkout still holds its slot (not poisoned, not yet returned).
    fn holds(&self, idx: usize, checkout: u64) -> bool {
        self.slots[idx]
            .is_some_and(|c| c.id == checkout && matches!(c.holder, Holder::Request { .. }))
    }

    fn phase(&self, ticket: Option<u64>) -> Option<Phase> {
        ticket.and_then(|t| self.tickets.get(&t).copied())
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
                WaiterKind::Request { tx, ticket } => {
                    if self.phase(ticket) == Some(Phase::Poisoned) {
                        // Deadlocks on the connection it gets; kept even if nobody hears it.
                        self.take(Holder::Poisoned, now);
                        let _ = tx.send(Grant::Poisoned);
                    } else if let Some((idx, checkout)) = self.take(Holder::Request { ticket }, now)
                    {
                        if tx.send(Grant::Slot { idx, checkout }).is_err() {
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

    fn poisoned(&self) -> u32 {
        count(
            self.slots
                .iter()
                .flatten()
                .filter(|c| c.holder == Holder::Poisoned)
                .count(),
        )
    }

    /// The deadlock fires: every request counted by `arming` is poisoned, and the connections
    /// they hold deadlock where they are (keeping their checkout instant). Those still queued
    /// deadlock on the connection they are granted, those not yet at the pool on the one
    /// they take.
    fn trigger(&mut self, arming: u64) {
        if let Some(a) = self.poison.as_mut() {
            a.triggered = true;
        }
        for phase in self.tickets.values_mut() {
            if *phase == Phase::Armed(arming) {
                *phase = Phase::Poisoned;
            }
        }
        for c in self.slots.iter_mut().flatten() {
            if let Holder::Request { ticket: Some(t) } = c.holder {
                if self.tickets.get(&t) == Some(&Phase::Poisoned) {
                    c.holder = Holder::Poisoned;
                }
            }
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What a request got from [`Pool::acquire`].
#[derive(Debug)]
pub(crate) enum Acquired {
    /// A connection, returned when the lease is dropped or finished.
    Lease(Lease),
    /// The request is poisoned: its connection is held by its deadlocked query, in the pool.
    Poisoned,
}

/// The pool. Shared by the host's request handlers and its fault control.
#[derive(Debug)]
pub(crate) struct Pool {
    max: u32,
    state: Mutex<State>,
    /// Bumped when the poison triggers or is released, to wake the requests it concerns.
    poison_events: watch::Sender<u64>,
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
                poison: None,
                tickets: HashMap::new(),
            }),
            poison_events: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this tiny lock leaves the state consistent enough to report.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn poison_event(&self) {
        self.poison_events.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Waits (FIFO) for a connection; `ticket` marks a request of the poisoned Val. `None`
    /// only if the pool dropped the request's place, which it never does on purpose.
    /// Cancel-safe: dropping the future leaves the queue (a connection already poisoned stays
    /// held).
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        ticket: Option<&PoisonTicket>,
    ) -> Option<Acquired> {
        let ticket = ticket.map(|t| t.id);
        let mut wait = {
            let mut st = self.lock();
            let now = Instant::now();
            if st.queue.is_empty() {
                if st.phase(ticket) == Some(Phase::Poisoned) {
                    if st.take(Holder::Poisoned, now).is_some() {
                        return Some(Acquired::Poisoned);
                    }
                } else if let Some((idx, checkout)) = st.take(Holder::Request { ticket }, now) {
                    return Some(Acquired::Lease(Lease {
                        pool: Arc::clone(self),
                        idx,
                        checkout,
                    }));
                }
            }
            let (tx, rx) = oneshot::channel();
            let id = st.next_id();
            st.queue.push_back(Waiter {
                id,
                kind: WaiterKind::Request { tx, ticket },
            });
            Wait {
                pool: Arc::clone(self),
                id,
                rx,
                done: false,
            }
        };
        let grant = (&mut wait.rx).await.ok();
        wait.done = true;
        grant.map(|grant| match grant {
            Grant::Slot { idx, checkout } => Acquired::Lease(Lease {
                pool: Arc::clone(self),
                idx,
                checkout,
            }),
            Grant::Poisoned => Acquired::Poisoned,
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
            poisoned: st.poisoned(),
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
                    let id = st.next_id();
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

    /// The `poison` fault in force.
    pub(crate) fn poison(&self) -> Option<PoisonFault> {
        self.lock().poison.as_ref().map(|a| a.fault.clone())
    }

    /// Sets (or, with `None`, disarms) the `poison` fault. A different fault starts a fresh
    /// count; the same one changes nothing. Connections already poisoned stay held: only
    /// [`Pool::release_poisoned`] gives them back.
    pub(crate) fn set_poison(&self, fault: Option<PoisonFault>) {
        let mut st = self.lock();
        if st.poison.as_ref().map(|a| &a.fault) == fault.as_ref() {
            return;
        }
        let id = st.next_id();
        st.poison = fault.map(|fault| Arming {
            fault,
            id,
            triggered: false,
        });
    }

    /// A request for Val `val` reaches the pool. For the poisoned Val it gets a ticket, which
    /// counts it as in flight until it is answered or gone, and a flag: whether this request
    /// fired the trigger. Once fired, every counted request is poisoned, and so is every
    /// later one until a release.
    pub(crate) fn poison_enter(self: &Arc<Self>, val: &str) -> Option<(PoisonTicket, bool)> {
        let (id, fired) = {
            let mut st = self.lock();
            let (arming, concurrency, triggered) = {
                let a = st.poison.as_ref().filter(|a| a.fault.val == val)?;
                (a.id, a.fault.concurrency, a.triggered)
            };
            let id = st.next_id();
            if triggered {
                st.tickets.insert(id, Phase::Poisoned);
                (id, false)
            } else {
                st.tickets.insert(id, Phase::Armed(arming));
                let in_flight = st
                    .tickets
                    .values()
                    .filter(|p| **p == Phase::Armed(arming))
                    .count();
                let fired = in_flight >= concurrency as usize;
                if fired {
                    st.trigger(arming);
                }
                (id, fired)
            }
        };
        if fired {
            self.poison_event();
        }
        let ticket = PoisonTicket {
            pool: Arc::clone(self),
            id,
        };
        Some((ticket, fired))
    }

    /// Gives back every poisoned connection (their requests then answer), serves the queue,
    /// and re-arms the trigger if it had fired. Returns how many connections were freed.
    pub(crate) fn release_poisoned(&self, now: Instant) -> u32 {
        let mut st = self.lock();
        let mut freed = 0;
        for idx in 0..st.slots.len() {
            if st.slots[idx].is_some_and(|c| c.holder == Holder::Poisoned) {
                st.slots[idx] = None;
                st.free.push(idx);
                freed += 1;
            }
        }
        let mut woken = false;
        for phase in st.tickets.values_mut() {
            if *phase == Phase::Poisoned {
                *phase = Phase::Released;
                woken = true;
            }
        }
        if st.poison.as_ref().is_some_and(|a| a.triggered) {
            let id = st.next_id();
            if let Some(a) = st.poison.as_mut() {
                a.id = id;
                a.triggered = false;
            }
        }
        st.grant(now);
        drop(st);
        if woken {
            self.poison_event();
        }
        freed
    }

    fn return_lease(&self, idx: usize, checkout: u64) {
        let mut st = self.lock();
        if st.holds(idx, checkout) {
            st.put_back(idx, Instant::now());
        }
    }
}

/// A checked-out connection; dropping it returns the connection to the pool, unless the
/// `poison` fault deadlocked it meanwhile.
#[derive(Debug)]
pub(crate) struct Lease {
    pool: Arc<Pool>,
    idx: usize,
    checkout: u64,
}

impl Lease {
    /// Returns the connection and retires the request's ticket in one step, so the trigger
    /// cannot poison a request that has just finished. `Err` with the ticket when the
    /// connection was poisoned meanwhile: the pool keeps it and the request must not answer.
    pub(crate) fn finish(self, ticket: Option<PoisonTicket>) -> Result<(), PoisonTicket> {
        let mut st = self.pool.lock();
        let returned = st.holds(self.idx, self.checkout);
        if returned {
            if let Some(t) = &ticket {
                st.tickets.remove(&t.id);
            }
            st.put_back(self.idx, Instant::now());
        }
        // Unlocked before the ticket and the lease drop: both lock the pool again.
        drop(st);
        match ticket {
            // Only a ticketed lease can be poisoned.
            Some(t) if !returned => Err(t),
            _ => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.return_lease(self.idx, self.checkout);
    }
}

/// A request of the poisoned Val, counted as in flight while it lives.
#[derive(Debug)]
pub(crate) struct PoisonTicket {
    pool: Arc<Pool>,
    id: u64,
}

impl PoisonTicket {
    /// Completes once the deadlock has poisoned this request.
    pub(crate) async fn poisoned(&self) {
        self.wait_for(Phase::Poisoned).await;
    }

    /// Completes once this request's deadlock has been released.
    pub(crate) async fn released(&self) {
        self.wait_for(Phase::Released).await;
    }

    async fn wait_for(&self, want: Phase) {
        // Subscribed before the check, so a change made after it is not missed.
        let mut events = self.pool.poison_events.subscribe();
        while self.phase() != Some(want) {
            if events.changed().await.is_err() {
                // Unreachable: the sender lives in the pool this ticket keeps alive.
                std::future::pending::<()>().await;
            }
        }
    }

    fn phase(&self) -> Option<Phase> {
        self.pool.lock().tickets.get(&self.id).copied()
    }
}

impl Drop for PoisonTicket {
    fn drop(&mut self) {
        self.pool.lock().tickets.remove(&self.id);
    }
}

/// A place in the queue; leaving it (timeout, shutdown, client gone) gives it up cleanly.
struct Wait {
    pool: Arc<Pool>,
    id: u64,
    rx: oneshot::Receiver<Grant>,
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
        } else if let Ok(Grant::Slot { idx, checkout }) = self.rx.try_recv() {
            // Granted under the lock just before we gave up: hand it on (unless poisoned
            // since; a poisoned grant stays with its deadlocked query).
            if st.holds(idx, checkout) {
                st.put_back(idx, Instant::now());
            }
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
        let a = poll_once(pin!(pool.acquire(None)));
        let Poll::Ready(Some(Acquired::Lease(a))) = a else {
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
        let Poll::Ready(Some(Acquired::Lease(held))) = poll_once(pin!(pool.acquire(None))) else {
            panic!()
        };
        let mut first = Box::pin(pool.acquire(None));
        let mut second = Box::pin(pool.acquire(None));
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        assert_eq!(pool.figures().waiting, 2);
        drop(held);
        // FIFO: the first waiter got it, the second still waits.
        assert_eq!(pool.figures().waiting, 1);
        assert!(poll_once(second.as_mut()).is_pending());
        let Poll::Ready(Some(Acquired::Lease(lease))) = poll_once(first.as_mut()) else {
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
        let Poll::Ready(Some(Acquired::Lease(held))) = poll_once(pin!(pool.acquire(None))) else {
            panic!()
        };
        let mut first = Box::pin(pool.acquire(None));
        assert!(poll_once(first.as_mut()).is_pending());
        let mut second = Box::pin(pool.acquire(None));
        assert!(poll_once(second.as_mut()).is_pending());
        drop(held); // granted to `first`, which has not been polled since
        drop(first);
        let Poll::Ready(Some(Acquired::Lease(_lease))) = poll_once(second.as_mut()) else {
            panic!("the slot must pass to the next waiter")
        };
        assert_eq!(pool.figures().in_use, 1);
    }

    #[test]
    fn deadlock_takes_slots_queues_the_rest_and_release_drains() {
        let pool = Pool::new(3);
        let now = Instant::now();
        let Poll::Ready(Some(Acquired::Lease(held))) = poll_once(pin!(pool.acquire(None))) else {
            panic!()
        };
        pool.set_deadlocked(3, now);
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.waiting, f.deadlocked), (3, 1, 3));
        let mut req = Box::pin(pool.acquire(None));
        assert!(poll_once(req.as_mut()).is_pending());
        // The request's lease returns: the queued deadlocked query takes it, not the request.
        drop(held);
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.waiting, f.deadlocked), (3, 1, 3));
        assert!(poll_once(req.as_mut()).is_pending());
        pool.set_deadlocked(0, now);
        let Poll::Ready(Some(Acquired::Lease(_l))) = poll_once(req.as_mut()) else {
            panic!("release drains")
        };
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.waiting, f.deadlocked), (1, 0, 0));
        // Clamped to capacity.
        pool.set_deadlocked(99, now);
        assert_eq!(pool.figures_at(now).deadlocked, 3);
    }

    fn enter(pool: &Arc<Pool>, val: &str) -> (PoisonTicket, bool) {
        pool.poison_enter(val)
            .expect("the poisoned Val gets a ticket")
    }

    #[test]
    fn poison_deadlocks_the_vals_requests_once_enough_are_in_flight() {
        let pool = Pool::new(4);
        let now = Instant::now();
        pool.set_poison(Some(PoisonFault::new("p")));
        assert!(pool.poison_enter("other").is_none(), "only the named Val");

        // One in flight: served normally, its connection comes back.
        let (t1, fired) = enter(&pool, "p");
        assert!(!fired);
        let Poll::Ready(Some(Acquired::Lease(l1))) = poll_once(pin!(pool.acquire(Some(&t1))))
        else {
            panic!()
        };
        assert!(poll_once(pin!(t1.poisoned())).is_pending());
        l1.finish(Some(t1)).expect("not poisoned");
        assert_eq!(pool.figures_at(now).in_use, 0);

        // Two at once: the second fires, and the first's connection deadlocks where it is.
        let (t1, _) = enter(&pool, "p");
        let Poll::Ready(Some(Acquired::Lease(l1))) = poll_once(pin!(pool.acquire(Some(&t1))))
        else {
            panic!()
        };
        let (t2, fired) = enter(&pool, "p");
        assert!(fired);
        assert!(poll_once(pin!(t1.poisoned())).is_ready());
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.poisoned, f.deadlocked), (1, 1, 0));
        let Poll::Ready(Some(Acquired::Poisoned)) = poll_once(pin!(pool.acquire(Some(&t2)))) else {
            panic!("a poisoned request's connection goes to its deadlocked query")
        };
        let t1 = l1
            .finish(Some(t1))
            .expect_err("the first request's connection is stuck");
        // Later requests are poisoned on arrival, without firing again.
        let (t3, fired) = enter(&pool, "p");
        assert!(!fired);
        let Poll::Ready(Some(Acquired::Poisoned)) = poll_once(pin!(pool.acquire(Some(&t3)))) else {
            panic!()
        };
        // Their requests going away gives nothing back.
        assert!(poll_once(pin!(t1.released())).is_pending());
        drop((t1, t2, t3));
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.poisoned), (3, 3));

        // Release frees them and re-arms: one request alone is served again.
        let (t4, _) = enter(&pool, "p");
        assert_eq!(pool.release_poisoned(now), 3);
        assert!(poll_once(pin!(t4.released())).is_ready());
        drop(t4);
        let (t5, fired) = enter(&pool, "p");
        assert!(!fired);
        let Poll::Ready(Some(Acquired::Lease(l5))) = poll_once(pin!(pool.acquire(Some(&t5))))
        else {
            panic!()
        };
        l5.finish(Some(t5)).expect("re-armed, not fired");
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.poisoned), (0, 0));
    }

    #[test]
    fn queued_poisoned_requests_deadlock_on_the_connection_they_are_granted() {
        let pool = Pool::new(1);
        let now = Instant::now();
        pool.set_deadlocked(1, now);
        pool.set_poison(Some(PoisonFault::new("p")));
        let (t1, _) = enter(&pool, "p");
        let mut a1 = Box::pin(pool.acquire(Some(&t1)));
        assert!(poll_once(a1.as_mut()).is_pending());
        let (t2, fired) = enter(&pool, "p");
        assert!(fired, "the queued request counts as in flight");
        let mut a2 = Box::pin(pool.acquire(Some(&t2)));
        assert!(poll_once(a2.as_mut()).is_pending());
        assert_eq!(pool.figures_at(now).waiting, 2);

        pool.set_deadlocked(0, now);
        let Poll::Ready(Some(Acquired::Poisoned)) = poll_once(a1.as_mut()) else {
            panic!("granted straight to its deadlocked query")
        };
        let f = pool.figures_at(now);
        assert_eq!((f.in_use, f.waiting, f.poisoned), (1, 1, 1));
        // A queued one that leaves (its client gone, cancel_on_disconnect) takes nothing.
        drop(a2);
        drop(t2);
        assert_eq!(pool.figures_at(now).waiting, 0);

        // Disarming does not release; release does.
        pool.set_poison(None);
        assert!(pool.poison_enter("p").is_none());
        assert_eq!(pool.figures_at(now).poisoned, 1);
        assert_eq!(pool.release_poisoned(now), 1);
        assert!(poll_once(pin!(t1.released())).is_ready());
        assert_eq!(pool.figures_at(now).in_use, 0);
    }

    #[test]
    fn concurrency_one_fires_on_the_first_request() {
        let pool = Pool::new(2);
        pool.set_poison(Some(PoisonFault {
            val: "p".to_owned(),
            concurrency: 1,
        }));
        let (t, fired) = enter(&pool, "p");
        assert!(fired);
        assert!(matches!(
            poll_once(pin!(pool.acquire(Some(&t)))),
            Poll::Ready(Some(Acquired::Poisoned))
        ));
        // Setting the same fault again keeps the trigger; another one starts afresh.
        pool.set_poison(Some(PoisonFault {
            val: "p".to_owned(),
            concurrency: 1,
        }));
        assert!(
            !enter(&pool, "p").1,
            "still fired: poisoned without firing again"
        );
        pool.set_poison(Some(PoisonFault {
            val: "q".to_owned(),
            concurrency: 1,
        }));
        assert!(enter(&pool, "q").1);
        assert_eq!(
            pool.figures().poisoned,
            1,
            "the old Val's connection stays held"
        );
    }
}
