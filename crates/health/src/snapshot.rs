//! The view of every host, for the router's routing snapshot, the admin API and metrics.

use std::time::Instant;

use crate::config::PanicPolicy;
use crate::report::PoolReport;
use crate::state::{Reason, Routing, StateKind};

/// Every host's health at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSnapshot<K> {
    /// One entry per host, ordered by key.
    pub hosts: Vec<HostHealth<K>>,
    /// `Some(policy)` while in panic mode (too few hosts available): routing below already
    /// applies it.
    pub panic: Option<PanicPolicy>,
}

/// One host's health.
#[derive(Debug, Clone, PartialEq)]
pub struct HostHealth<K> {
    /// The host.
    pub host: K,
    /// Its state.
    pub state: StateKind,
    /// Why it is in this state (None if it never moved).
    pub reason: Option<Reason>,
    /// When it entered this state.
    pub since: Instant,
    /// When an ejection ends.
    pub until: Option<Instant>,
    /// Current strike count (ejection backoff).
    pub strikes: u32,
    /// The latest pool figures.
    pub pool: Option<PoolReport>,
    /// When the latest probe result arrived.
    pub last_probe: Option<Instant>,
    /// What the router may do with it (panic mode included).
    pub routing: Routing,
    /// Share (0..=1) of its own keys to send to it: below 1 during probation.
    pub admit_share: f64,
}

impl<K> HostHealth<K> {
    /// Share (0..=1) of the host's own keys the router should send it; map a key to it when
    /// `hash % 1000 < admit_share * 1000`.
    pub fn admit_share(&self) -> f64 {
        self.admit_share
    }

    /// The router may send it at least some traffic.
    pub fn is_eligible(&self) -> bool {
        self.routing != Routing::None
    }
}
