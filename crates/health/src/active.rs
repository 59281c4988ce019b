//! Active probe results, taken together over time.

use std::time::Instant;

/// Consecutive probe failures and when the last probe result arrived.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProbeTracker {
    pub(crate) consecutive_failures: u32,
    pub(crate) last_at: Option<Instant>,
}

impl ProbeTracker {
    /// Notes one probe result: `failed` for fail, timeout or refused.
    pub(crate) fn observe(&mut self, failed: bool, now: Instant) {
        self.last_at = Some(now);
        self.consecutive_failures = if failed {
            self.consecutive_failures.saturating_add(1)
        } else {
            0
        };
    }

    /// The probes have failed `threshold` times in a row, the latest after `since`.
    pub(crate) fn failing_since(&self, since: Instant, threshold: u32) -> bool {
        self.consecutive_failures >= threshold && self.last_at.is_some_and(|at| at > since)
    }
}
