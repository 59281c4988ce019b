//! What the routing snapshot lets through for each host, and why it skips one.

use std::fmt;

use crate::KeyHash;

/// A host's admission in a routing snapshot (set by the router from health).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Admission {
    /// Takes its own keys and spill from other hosts.
    Open,
    /// Degraded: keeps the keys whose walk reaches it first (rank 0) but takes
    /// no spill from other hosts, and its bounded-load cap is scaled down.
    OwnKeysOnly,
    /// Probation: like `OwnKeysOnly`, but of its own keys it takes only those
    /// whose [`ramp_bucket`] is below this many per mille, so its Vals come
    /// back gradually. A growing value only adds keys. The others are skipped
    /// with [`SkipReason::Probation`].
    Ramp(u16),
    /// Takes nothing; the reason is reported by explain.
    Closed(SkipReason),
}

/// Where a key falls on a probation ramp, 0..1000: a host in
/// [`Admission::Ramp(n)`](Admission::Ramp) takes its own keys with a bucket below `n`.
#[inline]
pub fn ramp_bucket(hash: KeyHash) -> u16 {
    // The low bits: the slot index uses the high ones, so a host's own keys
    // spread evenly over the buckets.
    (hash.0 % 1000) as u16
}

impl Admission {
    /// Whether the host can take any request at all.
    #[inline]
    pub fn is_eligible(self) -> bool {
        !matches!(self, Admission::Closed(_))
    }
}

/// Why the walk passed over a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Ejected by health.
    Ejected,
    /// Being drained by an operator.
    Draining,
    /// On probation and not admitting this key.
    Probation,
    /// Degraded: reached as spill from another host's key.
    Degraded,
    /// At its hard in-flight limit.
    AtCapacity,
    /// Above its bounded-load cap (c x weighted average in flight).
    OverBalance,
    /// Panic mode with a fail-closed policy.
    PanicFailClosed,
    /// No address: the host is configured by a DNS name that has not resolved yet.
    Unresolved,
}

impl SkipReason {
    /// The snake_case name used in explain output and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Ejected => "ejected",
            SkipReason::Draining => "draining",
            SkipReason::Probation => "probation",
            SkipReason::Degraded => "degraded",
            SkipReason::AtCapacity => "at_capacity",
            SkipReason::OverBalance => "over_balance",
            SkipReason::PanicFailClosed => "panic_fail_closed",
            SkipReason::Unresolved => "unresolved",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_display_snake_case() {
        assert_eq!(SkipReason::AtCapacity.to_string(), "at_capacity");
        assert_eq!(SkipReason::PanicFailClosed.to_string(), "panic_fail_closed");
        assert_eq!(SkipReason::OverBalance.to_string(), "over_balance");
        assert_eq!(SkipReason::Unresolved.to_string(), "unresolved");
        assert!(!Admission::Closed(SkipReason::Ejected).is_eligible());
        assert!(Admission::OwnKeysOnly.is_eligible());
        assert!(Admission::Ramp(0).is_eligible());
        assert!(ramp_bucket(KeyHash(1999)) == 999);
    }
}
