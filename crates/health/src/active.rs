//! Active probe results, taken together over time.

use std::time::Instant;

/// What one probe said, for the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeVerdict {
    /// `pass` (or no status): evidence of health.
    Pass,
    /// `warn`: not a failure, but no evidence of health either.
    Warn,
    /// Fail, timeout or refused.
    Fail,
}

/// Consecutive probe failures, whether the latest probe passed, and when it arrived.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProbeTracker {
    pub(crate) consecutive_failures: u32,
    pub(crate) last_at: Option<Instant>,
    /// The latest probe said `pass`.
    pub(crate) last_passed: bool,
}

impl ProbeTracker {
    /// Notes one probe result.
    pub(crate) fn observe(&mut self, verdict: ProbeVerdict, now: Instant) {
        self.last_at = Some(now);
        self.last_passed = verdict == ProbeVerdict::Pass;
        self.consecutive_failures = if verdict == ProbeVerdict::Fail {
            self.consecutive_failures.saturating_add(1)
        } else {
            0
        };
    }

    /// The probes have failed `threshold` times in a row, the latest after `since`.
    pub(crate) fn failing_since(&self, since: Instant, threshold: u32) -> bool {
        self.consecutive_failures >= threshold && self.last_at.is_some_and(|at| at > since)
    }

    /// The latest probe passed and arrived after `since`.
    pub(crate) fn passed_since(&self, since: Instant) -> bool {
        self.last_passed && self.last_at.is_some_and(|at| at > since)
    }
}
