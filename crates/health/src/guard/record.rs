//! What the guard says about a Val: its state, why, and the evidence.

use std::fmt;
use std::time::{Duration, Instant};

/// A Val's state in the cascade guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValState {
    /// Routed as usual.
    Normal,
    /// Implicated once: routed to its own host only (no retry, rescue or spill to another).
    Suspect,
    /// Not routed at all: answered 503 + Retry-After at once.
    Quarantined,
}

impl ValState {
    /// The snake_case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ValState::Normal => "normal",
            ValState::Suspect => "suspect",
            ValState::Quarantined => "quarantined",
        }
    }
}

impl fmt::Display for ValState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a Val is in its state, or why it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValReason {
    /// It held at least `dominant_share` of a failing host's in-flight time.
    Dominant,
    /// Implicated on two hosts within `window`.
    ImplicatedTwice,
    /// Implicated on one host (a suspect).
    Implicated,
    /// Its requests hold most of the stuck time of a host that has not failed (yet): kept
    /// on that host (a suspect), before any failure.
    Stuck,
    /// An operator's command.
    Operator,
    /// The quarantine (or suspicion) ran out.
    Expired,
    /// Automatic quarantines are at `max_quarantined`: kept a suspect instead.
    CapReached,
    /// Another router of the fleet quarantined it (shared through etcd), and this router
    /// adopted the quarantine.
    Peer,
}

impl ValReason {
    /// The snake_case name used in JSON, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ValReason::Dominant => "dominant",
            ValReason::ImplicatedTwice => "implicated_twice",
            ValReason::Implicated => "implicated",
            ValReason::Stuck => "stuck",
            ValReason::Operator => "operator",
            ValReason::Expired => "expired",
            ValReason::CapReached => "cap_reached",
            ValReason::Peer => "peer",
        }
    }
}

impl fmt::Display for ValReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The evidence against a Val on one failing host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Implication<H> {
    /// The host that failed.
    pub host: H,
    /// When.
    pub at: Instant,
    /// The Val's share of the host's stuck in-flight time (0..=1).
    pub share: f64,
    /// Its share of the in-flight time of the host's answered requests (its normal share).
    pub baseline_share: f64,
    /// Its requests in flight on the host at the failure.
    pub in_flight: u32,
    /// How many of them were stuck.
    pub stuck: u32,
    /// The age of the oldest of them.
    pub oldest: Duration,
}

impl<H> Implication<H> {
    /// The evidence of `share` against its Val on `host` at `at`.
    pub(crate) fn of<V>(host: H, at: Instant, share: &super::trace::ValShare<V>) -> Self {
        Implication {
            host,
            at,
            share: share.share,
            baseline_share: share.baseline_share,
            in_flight: share.in_flight,
            stuck: share.stuck,
            oldest: share.oldest,
        }
    }
}

/// A Val's change of state.
#[derive(Debug, Clone, PartialEq)]
pub struct ValTransition<H, V> {
    /// The Val.
    pub val: V,
    /// Its name, where known.
    pub name: Option<String>,
    /// State before.
    pub from: ValState,
    /// State after.
    pub to: ValState,
    /// Why.
    pub reason: ValReason,
    /// The implication that moved it (none for operator commands and expiry).
    pub evidence: Option<Implication<H>>,
    /// When the new state ends by itself (none: until an operator or the hosts decide).
    pub until: Option<Instant>,
}

/// Everything the guard knows about one Val (for the admin API).
#[derive(Debug, Clone, PartialEq)]
pub struct ValInfo<H, V> {
    /// The Val.
    pub val: V,
    /// Its name, where known.
    pub name: Option<String>,
    /// Its state.
    pub state: ValState,
    /// Why it is in it.
    pub reason: ValReason,
    /// Since when.
    pub since: Instant,
    /// When it ends by itself, if it does.
    pub until: Option<Instant>,
    /// Quarantines so far (repeat offences lengthen the next one).
    pub offences: u32,
    /// Recent implications, oldest first.
    pub implications: Vec<Implication<H>>,
}
