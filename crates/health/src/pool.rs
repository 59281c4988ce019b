//! Pool verdicts (docs/contracts.md: the host health report) and the persistence that separates a stuck pool from a busy one.

use std::time::{Duration, Instant};

use crate::config::HealthConfig;
use crate::report::PoolReport;

/// The verdict on one pool report, judged from the figures whatever `status` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolVerdict {
    /// Nothing wrong (or no pool: `max == 0`).
    Ok,
    /// A checkout older than `stuck_after` while the pool is not full.
    StuckSlots,
    /// `in_use >= max` and (`waiting > 0` or a checkout older than `stuck_after`).
    Exhausted,
}

impl PoolVerdict {
    /// Judges one report against `stuck_after` (the default verdicts of docs/contracts.md).
    pub fn judge(report: &PoolReport, stuck_after: Duration) -> PoolVerdict {
        if report.max == 0 {
            return PoolVerdict::Ok;
        }
        let stuck = report.oldest_checkout >= stuck_after;
        if report.in_use >= report.max && (report.waiting > 0 || stuck) {
            PoolVerdict::Exhausted
        } else if stuck {
            PoolVerdict::StuckSlots
        } else {
            PoolVerdict::Ok
        }
    }
}

/// What the pool reports, taken together over time, say about a host.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PoolTracker {
    /// The latest report and when it arrived.
    pub(crate) last: Option<(PoolReport, Instant)>,
    /// Start of the current run of consecutive exhausted reports.
    exhausted_since: Option<Instant>,
    /// The exhaustion is confirmed: eject.
    pub(crate) firing: bool,
    /// The latest report shows stuck slots in a pool that is not full.
    pub(crate) stuck: bool,
}

impl PoolTracker {
    /// Folds in one report.
    ///
    /// Exhaustion alone also happens on a busy host, so it ejects only when confirmed:
    /// at once if a checkout is older than `stuck_after`; otherwise when every report for
    /// `exhausted_for` said exhausted *and* the oldest checkout is at least that old too
    /// (a busy pool turns its connections over, so its oldest checkout stays young).
    pub(crate) fn observe(&mut self, report: PoolReport, now: Instant, config: &HealthConfig) {
        self.last = Some((report, now));
        match PoolVerdict::judge(&report, config.stuck_after) {
            PoolVerdict::Exhausted => {
                let since = *self.exhausted_since.get_or_insert(now);
                let run = now.saturating_duration_since(since);
                let held = report.oldest_checkout;
                self.firing = held >= config.stuck_after
                    || (run >= config.exhausted_for && held >= config.exhausted_for);
                self.stuck = false;
            }
            verdict => {
                self.exhausted_since = None;
                self.firing = false;
                self.stuck = verdict == PoolVerdict::StuckSlots;
            }
        }
    }

    /// Forgets the judgement (keeping the latest figures for display).
    pub(crate) fn forget_run(&mut self) {
        self.exhausted_since = None;
        self.firing = false;
        self.stuck = false;
    }

    /// Whether a report arrived after `since`.
    pub(crate) fn fresh_since(&self, since: Instant) -> bool {
        self.last.is_some_and(|(_, at)| at > since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(in_use: u32, waiting: u32, oldest_ms: u64) -> PoolReport {
        PoolReport {
            max: 10,
            in_use,
            waiting,
            oldest_checkout: Duration::from_millis(oldest_ms),
        }
    }

    #[test]
    fn verdicts_of_the_documented_pool_report() {
        let stuck = Duration::from_secs(10);
        assert_eq!(PoolVerdict::judge(&pool(4, 0, 35), stuck), PoolVerdict::Ok);
        assert_eq!(PoolVerdict::judge(&pool(10, 0, 35), stuck), PoolVerdict::Ok);
        assert_eq!(
            PoolVerdict::judge(&pool(10, 3, 35), stuck),
            PoolVerdict::Exhausted
        );
        assert_eq!(
            PoolVerdict::judge(&pool(10, 0, 10_000), stuck),
            PoolVerdict::Exhausted
        );
        assert_eq!(
            PoolVerdict::judge(&pool(3, 0, 10_000), stuck),
            PoolVerdict::StuckSlots
        );
        let none = PoolReport {
            max: 0,
            in_use: 5,
            waiting: 5,
            oldest_checkout: stuck,
        };
        assert_eq!(PoolVerdict::judge(&none, stuck), PoolVerdict::Ok);
    }

    #[test]
    fn exhaustion_fires_only_when_it_persists_with_an_old_checkout() {
        let config = HealthConfig::default();
        let t0 = crate::test_origin();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut busy = PoolTracker::default();
        for ms in (0..3000).step_by(50) {
            busy.observe(pool(10, 4, 80), at(ms), &config);
            assert!(!busy.firing, "a busy pool turns over: never fires");
        }
        let mut stuck = PoolTracker::default();
        stuck.observe(pool(10, 1, 0), at(0), &config);
        stuck.observe(pool(10, 2, 450), at(450), &config);
        assert!(!stuck.firing);
        stuck.observe(pool(10, 3, 500), at(500), &config);
        assert!(stuck.firing);
        stuck.observe(pool(9, 0, 550), at(550), &config);
        assert!(!stuck.firing, "a report that is not exhausted ends the run");
    }
}
