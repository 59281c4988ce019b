//! What the request path, the prober, the admin API and reloads tell the health task: outcomes
//! and reports (bounded, never awaited on the request path), and rare control messages
//! (operator commands, reloads) that must not be dropped.

use health::guard::ValState;
use health::{HealthReport, OperatorCommand, Outcome, ProbeResult, StateKind};
use tokio::sync::oneshot;

use crate::control::fleet::HostKey;

/// An observation from the request path or the prober.
#[derive(Debug)]
pub(crate) enum HealthEvent {
    /// A proxied request's outcome.
    Outcome {
        /// The host.
        host: HostKey,
        /// The request's Val (its key hash).
        val: u64,
        /// What happened.
        outcome: Outcome,
    },
    /// An in-band (ORCA) report.
    Report {
        /// The host.
        host: HostKey,
        /// What it said.
        report: HealthReport,
    },
    /// An active probe's result.
    Probe {
        /// The host.
        host: HostKey,
        /// What the probe saw.
        result: ProbeResult,
    },
    /// Outcomes and reports gathered by a proxy worker's outbox, in order.
    Batch(Vec<HealthEvent>),
}

/// What an operator command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperatorReply {
    /// Applied; the host's state now.
    Done(StateKind),
    /// No host by that name.
    UnknownHost,
}

/// Where an operator command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// This router's admin API: the fleet hears of it (in fleet mode).
    Local,
    /// Another router of the fleet, by name (through etcd): applied here, not passed on.
    Peer(String),
}

/// An operator's command on a Val.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValCommand {
    /// Quarantine it until released.
    Quarantine,
    /// End its quarantine or suspicion now.
    Release,
}

/// A Val's quarantine or release as the fleet shares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValShare {
    /// Quarantined for this much longer, or until released (`None`: an operator's).
    Quarantine(Option<std::time::Duration>),
    /// Released by an operator.
    Release,
}

/// Rare messages that must not be dropped.
#[derive(Debug)]
pub(crate) enum Control {
    /// An operator command from the admin API.
    Operator {
        /// Host name.
        host: String,
        /// Drain, eject or restore.
        command: OperatorCommand,
        /// Where the result goes.
        reply: oneshot::Sender<OperatorReply>,
        /// This router's admin API, or a peer's.
        origin: Origin,
    },
    /// Another router ejected a host by its detectors (fleet mode): adopted here within the
    /// ejected-share cap (`Health::adopt_peer_ejection`).
    PeerEjection {
        /// Host name.
        host: String,
        /// Why the peer ejected it.
        reason: health::Reason,
        /// The peer's name.
        by: String,
        /// How long the ejection has left.
        remaining: std::time::Duration,
    },
    /// An operator command on a Val from the admin API.
    Val {
        /// The Val's key.
        key: String,
        /// Quarantine or release.
        command: ValCommand,
        /// Where its state after the command goes.
        reply: oneshot::Sender<ValState>,
        /// This router's admin API, or a peer's.
        origin: Origin,
    },
    /// Another router quarantined or released a Val (fleet mode).
    PeerVal {
        /// The Val's key hash.
        val: u64,
        /// Its key, as far as the peer knew it.
        name: Option<String>,
        /// What it did.
        share: ValShare,
        /// The peer's name.
        by: String,
    },
    /// A reload applied. Its passive-health and guard settings apply only after a restart
    /// (the reload's log line says so), so none travel with it.
    Reloaded,
    /// The fleet changed (reload): re-read it now.
    FleetChanged,
}
