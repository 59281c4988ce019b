//! Host states, the reasons for moving between them, and the transitions reported.

use std::fmt;
use std::time::Instant;

/// Why a host is in its state, or why it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Reason {
    /// The pool was full with waiters (or a stuck checkout), confirmed over time.
    PoolExhausted,
    /// Checkouts older than `stuck_after` while the pool is not full.
    StuckSlots,
    /// Gateway failures (and timeouts) in a row.
    ConsecutiveGatewayFailures,
    /// Too many failures over the window.
    FailureRate,
    /// Requests in flight far longer than normal while the host completes nothing.
    HungRequests,
    /// Active probes failed or timed out in a row.
    ProbeFailures,
    /// An operator's command.
    Operator,
    /// Another router of the fleet ejected it (its detectors fired; shared through etcd),
    /// and this router adopted the ejection.
    Peer,
    /// The ejection time ran out: probation begins.
    EjectionExpired,
    /// Probation moved to its next, larger share.
    ProbationAdvanced,
    /// Probation completed with real successes: fully back.
    ProbationPassed,
    /// A probation step with too few real successes ended on time: it lasted
    /// `probation_quiet_step` with no failure, the latest probe passed and the pool (if
    /// reported) was neither exhausted nor stuck. Next step, or fully back after the last.
    ProbationQuiet,
    /// The condition that degraded the host has cleared.
    Recovered,
    /// The host joined the set.
    Added,
}

impl Reason {
    /// Every reason a host is ejected for (a [`Transition`] to [`StateKind::Ejected`]): the
    /// detectors, a re-ejection when the ejection ends, an operator's eject. (`StuckSlots`
    /// only degrades.) Checked by a debug assertion wherever a state is set.
    pub const EJECTIONS: [Reason; 7] = [
        Reason::PoolExhausted,
        Reason::HungRequests,
        Reason::ProbeFailures,
        Reason::ConsecutiveGatewayFailures,
        Reason::FailureRate,
        Reason::Operator,
        Reason::Peer,
    ];

    /// The reason named by [`Reason::as_str`], if any.
    pub fn from_name(name: &str) -> Option<Reason> {
        [
            Reason::PoolExhausted,
            Reason::StuckSlots,
            Reason::ConsecutiveGatewayFailures,
            Reason::FailureRate,
            Reason::HungRequests,
            Reason::ProbeFailures,
            Reason::Operator,
            Reason::Peer,
            Reason::EjectionExpired,
            Reason::ProbationAdvanced,
            Reason::ProbationPassed,
            Reason::ProbationQuiet,
            Reason::Recovered,
            Reason::Added,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }

    /// The snake_case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::PoolExhausted => "pool_exhausted",
            Reason::StuckSlots => "stuck_slots",
            Reason::ConsecutiveGatewayFailures => "consecutive_gateway_failures",
            Reason::FailureRate => "failure_rate",
            Reason::HungRequests => "hung_requests",
            Reason::ProbeFailures => "probe_failures",
            Reason::Operator => "operator",
            Reason::Peer => "peer",
            Reason::EjectionExpired => "ejection_expired",
            Reason::ProbationAdvanced => "probation_advanced",
            Reason::ProbationPassed => "probation_passed",
            Reason::ProbationQuiet => "probation_quiet",
            Reason::Recovered => "recovered",
            Reason::Added => "added",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A host's state, with the data each state needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HostState {
    /// Takes traffic.
    Healthy {
        /// When it became healthy.
        since: Instant,
    },
    /// Keeps its own keys but takes no new placements (no spill from other hosts).
    Degraded {
        /// When it became degraded.
        since: Instant,
        /// Stuck slots, or the reason it would have been ejected.
        reason: Reason,
        /// It should be ejected, but the ejected-share cap is reached.
        capped: bool,
    },
    /// Takes no traffic until `until`.
    Ejected {
        /// When it was ejected.
        since: Instant,
        /// When probation may begin.
        until: Instant,
        /// Strikes counted when ejected (sets the ejection time).
        strikes: u32,
        /// What ejected it.
        reason: Reason,
    },
    /// Back after an ejection, taking a growing share of its own keys while real
    /// requests succeed (or, with too little traffic for that, while quiet steps pass).
    Probation {
        /// When probation began.
        since: Instant,
        /// Ramp step, from 0 to `probation_steps - 1`.
        step: u32,
        /// When the current step began.
        step_since: Instant,
        /// Successes on the current step.
        successes: u32,
    },
    /// Taken out by an operator until restored.
    Draining {
        /// When draining began.
        since: Instant,
    },
}

impl HostState {
    /// The state without its data.
    pub fn kind(&self) -> StateKind {
        match self {
            HostState::Healthy { .. } => StateKind::Healthy,
            HostState::Degraded { .. } => StateKind::Degraded,
            HostState::Ejected { .. } => StateKind::Ejected,
            HostState::Probation { .. } => StateKind::Probation,
            HostState::Draining { .. } => StateKind::Draining,
        }
    }

    /// When the host entered this state.
    pub fn since(&self) -> Instant {
        match *self {
            HostState::Healthy { since }
            | HostState::Degraded { since, .. }
            | HostState::Ejected { since, .. }
            | HostState::Probation { since, .. }
            | HostState::Draining { since } => since,
        }
    }

    /// Ejected by health (not by an operator): counts against the ejected-share cap.
    pub(crate) fn is_health_ejected(&self) -> bool {
        matches!(self, HostState::Ejected { reason, .. } if *reason != Reason::Operator)
    }

    /// Sick enough to be out: ejected by health, or held back only by the cap.
    pub(crate) fn is_sick(&self) -> bool {
        self.is_health_ejected() || matches!(self, HostState::Degraded { capped: true, .. })
    }

    /// Out by an operator's decision (drained or ejected): never overridden by panic.
    pub(crate) fn is_operator_out(&self) -> bool {
        matches!(
            self,
            HostState::Draining { .. }
                | HostState::Ejected {
                    reason: Reason::Operator,
                    ..
                }
        )
    }
}

/// The name of a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StateKind {
    /// See [`HostState::Healthy`].
    Healthy,
    /// See [`HostState::Degraded`].
    Degraded,
    /// See [`HostState::Ejected`].
    Ejected,
    /// See [`HostState::Probation`].
    Probation,
    /// See [`HostState::Draining`].
    Draining,
}

impl StateKind {
    /// The snake_case name used in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Healthy => "healthy",
            StateKind::Degraded => "degraded",
            StateKind::Ejected => "ejected",
            StateKind::Probation => "probation",
            StateKind::Draining => "draining",
        }
    }
}

impl fmt::Display for StateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One host moving between states (or, for `Ejected -> Ejected` and
/// `Probation -> Probation`, an extended ejection or a probation step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition<K> {
    /// The host.
    pub host: K,
    /// The state it left.
    pub from: StateKind,
    /// The state it entered.
    pub to: StateKind,
    /// Why.
    pub reason: Reason,
    /// When.
    pub at: Instant,
}

/// What the router may do with a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Routing {
    /// Route to it normally.
    Full,
    /// Only the keys whose walk reaches it first (degraded), or a share of them (probation:
    /// see `admit_share`).
    OwnKeysOnly,
    /// Skip it.
    None,
}
