//! Counters a test can read: how many Val and health requests a host saw, and its answers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::pool::PoolFigures;

/// A snapshot of a host's counters and pool figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Val requests received (every path but `/healthz` and `/_sim/*`).
    pub val_requests: u64,
    /// `GET /healthz` requests received (probes).
    pub health_requests: u64,
    /// `/_sim/*` control requests received.
    pub control_requests: u64,
    /// Val responses sent, by status code.
    pub responses: BTreeMap<u16, u64>,
    /// Connections reset by the `reset` fault.
    pub resets: u64,
    /// Val requests dropped before they were answered: the client hung up (or the host shut down).
    pub abandoned: u64,
    /// Requests hung right now (by `hang` or `health_hangs`).
    pub hung: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// How many times the `poison` fault's deadlock triggered on this host: non-zero once the
    /// poisoned Val's parallel requests have reached it.
    pub poison_triggered: u64,
    /// WebSockets accepted (the echo endpoint; each handshake is also a Val request).
    pub websockets: u64,
    /// WebSockets open right now.
    pub websockets_open: u64,
    /// Pool capacity.
    pub max: u32,
    /// Connections checked out.
    pub in_use: u32,
    /// Tasks waiting for a connection.
    pub waiting: u32,
    /// Age of the longest-held checked-out connection.
    pub oldest_checkout: Duration,
    /// Connections held or awaited by deadlocked queries.
    pub deadlocked: u32,
    /// Connections held by poisoned requests (the `poison` fault).
    pub poisoned: u32,
}

impl SimStats {
    /// Val responses sent with this status.
    pub fn responses_with(&self, status: u16) -> u64 {
        self.responses.get(&status).copied().unwrap_or(0)
    }

    /// The pool figures inside this snapshot.
    pub fn pool(&self) -> PoolFigures {
        PoolFigures {
            max: self.max,
            in_use: self.in_use,
            waiting: self.waiting,
            oldest_checkout: self.oldest_checkout,
            deadlocked: self.deadlocked,
            poisoned: self.poisoned,
        }
    }

    /// The snapshot as JSON (for `GET /_sim/stats`).
    pub fn to_json(&self) -> serde_json::Value {
        let responses: serde_json::Map<String, serde_json::Value> = self
            .responses
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        serde_json::json!({
            "val_requests": self.val_requests,
            "health_requests": self.health_requests,
            "control_requests": self.control_requests,
            "responses": responses,
            "resets": self.resets,
            "abandoned": self.abandoned,
            "hung": self.hung,
            "connections": self.connections,
            "poison_triggered": self.poison_triggered,
            "websockets": self.websockets,
            "websockets_open": self.websockets_open,
            "db_pool": {
                "max": self.max,
                "in_use": self.in_use,
                "waiting": self.waiting,
                "oldest_checkout_ms": millis(self.oldest_checkout),
                "deadlocked": self.deadlocked,
                "poisoned": self.poisoned,
            },
        })
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

const STATUS_SLOTS: usize = 600;

/// The live counters: lock-free, fixed size (no allocation per request).
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) val_requests: AtomicU64,
    pub(crate) health_requests: AtomicU64,
    pub(crate) control_requests: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) abandoned: AtomicU64,
    pub(crate) hung: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) poison_triggered: AtomicU64,
    pub(crate) websockets: AtomicU64,
    pub(crate) websockets_open: AtomicU64,
    by_status: Box<[AtomicU64]>,
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            val_requests: AtomicU64::new(0),
            health_requests: AtomicU64::new(0),
            control_requests: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            hung: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            poison_triggered: AtomicU64::new(0),
            websockets: AtomicU64::new(0),
            websockets_open: AtomicU64::new(0),
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub(crate) fn record_status(&self, status: u16) {
        if let Some(c) = self.by_status.get(usize::from(status)) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, pool: PoolFigures) -> SimStats {
        let responses = self
            .by_status
            .iter()
            .enumerate()
            .filter_map(|(code, c)| {
                let n = c.load(Relaxed);
                (n > 0).then(|| (u16::try_from(code).unwrap_or(u16::MAX), n))
            })
            .collect();
        SimStats {
            val_requests: self.val_requests.load(Relaxed),
            health_requests: self.health_requests.load(Relaxed),
            control_requests: self.control_requests.load(Relaxed),
            responses,
            resets: self.resets.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            hung: self.hung.load(Relaxed),
            connections: self.connections.load(Relaxed),
            poison_triggered: self.poison_triggered.load(Relaxed),
            websockets: self.websockets.load(Relaxed),
            websockets_open: self.websockets_open.load(Relaxed),
            max: pool.max,
            in_use: pool.in_use,
            waiting: pool.waiting,
            oldest_checkout: pool.oldest_checkout,
            deadlocked: pool.deadlocked,
            poisoned: pool.poisoned,
        }
    }
}

/// Counts one of something (a hung request, an open WebSocket) for as long as it lives.
pub(crate) struct LiveGuard<'a>(&'a AtomicU64);

impl<'a> LiveGuard<'a> {
    pub(crate) fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Relaxed);
        LiveGuard(counter)
    }
}

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Counts a Val request dropped before it was answered, unless disarmed.
pub(crate) struct AbandonGuard<'a> {
    counter: &'a AtomicU64,
    armed: bool,
}

impl<'a> AbandonGuard<'a> {
    pub(crate) fn new(counter: &'a AtomicU64) -> Self {
        AbandonGuard {
            counter,
            armed: true,
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.counter.fetch_add(1, Relaxed);
        }
    }
}
