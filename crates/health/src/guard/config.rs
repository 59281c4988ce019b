//! The cascade guard's settings and their defaults (`[guard]` in the router's config).

use std::time::Duration;

use crate::error::{ConfigError, Rules};

/// Settings of the cascade guard. `docs/cascade-guard.md` explains each default.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// Off: nothing is attributed, suspected or quarantined (operator commands still work).
    pub enabled: bool,
    /// A Val holding at least this share of a failing host's in-flight time is quarantined
    /// at once. Default 0.5.
    pub dominant_share: f64,
    /// A Val holding at least this share is implicated: a suspect, quarantined when it is
    /// implicated on a second host within `window`. Default 0.25.
    pub implicated_share: f64,
    /// How many times its baseline share (the in-flight time of its answered requests) a
    /// Val's share must be to be implicated: a popular or slow Val holds the same share in
    /// both, a stuck one far more. Default 3.
    pub overrepresentation: f64,
    /// Stuck requests of the Val on the host at the failure, at least. Default 2.
    pub min_in_flight: u32,
    /// A request in flight counts as stuck once it is this old... Default 100 ms.
    pub stuck_after: Duration,
    /// ...and this many times the host's mean answered latency. Default 4.
    pub stuck_latency_multiple: u32,
    /// A suspect stays one this long after its last implication; two implications on
    /// different hosts within it quarantine. Default 60 s.
    pub window: Duration,
    /// The first quarantine's length. Default 30 s.
    pub quarantine: Duration,
    /// The longest quarantine, repeat offences doubling up to it. Default 10 min.
    pub quarantine_max: Duration,
    /// Offences are forgotten after this long without one. Default 1 h.
    pub forget_after: Duration,
    /// Vals quarantined automatically at once, at most: a safety cap like the hosts'
    /// max ejected share (operator quarantines do not count). Default 64.
    pub max_quarantined: usize,
    /// Half-life of the baseline: each Val's share of the requests a host answered, and of
    /// the time they took. Default 30 s.
    pub baseline_half_life: Duration,
    /// Vals tracked per host in each sketch. Default 32.
    pub top_k: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            enabled: true,
            dominant_share: 0.5,
            implicated_share: 0.25,
            overrepresentation: 3.0,
            min_in_flight: 2,
            stuck_after: Duration::from_millis(100),
            stuck_latency_multiple: 4,
            window: Duration::from_secs(60),
            quarantine: Duration::from_secs(30),
            quarantine_max: Duration::from_secs(600),
            forget_after: Duration::from_secs(3600),
            max_quarantined: 64,
            baseline_half_life: Duration::from_secs(30),
            top_k: 32,
        }
    }
}

impl GuardConfig {
    /// Checks every rule and returns every broken one (fields named as in `[guard]`).
    ///
    /// # Errors
    /// One `InvalidConfig` per broken rule.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut rules = Rules::default();
        let mut check = |ok: bool, field: &'static str, rule: &'static str| {
            rules.check(ok, field, rule);
        };
        let positive = "must be greater than 0";
        check(
            self.dominant_share > 0.0 && self.dominant_share <= 1.0,
            "dominant_share",
            "must be greater than 0 and at most 1",
        );
        check(
            self.implicated_share > 0.0 && self.implicated_share <= self.dominant_share,
            "implicated_share",
            "must be greater than 0 and at most dominant_share",
        );
        check(
            self.overrepresentation >= 1.0 && self.overrepresentation.is_finite(),
            "overrepresentation",
            "must be at least 1",
        );
        check(self.min_in_flight > 0, "min_in_flight", positive);
        check(!self.stuck_after.is_zero(), "stuck_after", positive);
        check(
            self.stuck_latency_multiple > 0,
            "stuck_latency_multiple",
            positive,
        );
        check(!self.window.is_zero(), "window", positive);
        check(!self.quarantine.is_zero(), "quarantine", positive);
        check(
            self.quarantine_max >= self.quarantine,
            "quarantine_max",
            "must be at least quarantine",
        );
        check(!self.forget_after.is_zero(), "forget_after", positive);
        check(
            !self.baseline_half_life.is_zero(),
            "baseline_half_life",
            positive,
        );
        check(
            (4..=1024).contains(&self.top_k),
            "top_k",
            "must be between 4 and 1024",
        );
        rules.finish()
    }

    /// The quarantine for the `offences`-th offence (1 = first): doubled per repeat.
    pub fn quarantine_for(&self, offences: u32) -> Duration {
        let doublings = offences.saturating_sub(1).min(31);
        self.quarantine
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.quarantine_max)
            .min(self.quarantine_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(GuardConfig::default().validate(), Ok(()));
        let bad = GuardConfig {
            dominant_share: 0.2,
            quarantine_max: Duration::from_secs(1),
            top_k: 1,
            ..GuardConfig::default()
        };
        let fields: Vec<_> = bad
            .validate()
            .unwrap_err()
            .iter()
            .filter_map(|e| e.field())
            .collect();
        assert_eq!(fields, ["implicated_share", "quarantine_max", "top_k"]);
    }

    #[test]
    fn repeat_offences_double_up_to_the_cap() {
        let c = GuardConfig::default();
        assert_eq!(c.quarantine_for(1), Duration::from_secs(30));
        assert_eq!(c.quarantine_for(2), Duration::from_secs(60));
        assert_eq!(c.quarantine_for(5), Duration::from_secs(480));
        assert_eq!(c.quarantine_for(6), Duration::from_secs(600));
        assert_eq!(c.quarantine_for(u32::MAX), Duration::from_secs(600));
    }
}
