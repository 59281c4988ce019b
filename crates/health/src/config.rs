//! The health knobs and their defaults (see `docs/health.md` for the reasoning).

use std::time::Duration;

use crate::error::{ConfigError, Rules};

/// What to do when too many hosts are sick at once (below `panic_threshold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PanicPolicy {
    /// Route to every host that is not drained or ejected by an operator, ignoring health
    /// (Envoy's panic routing). The default: when most of the fleet looks sick the cause is
    /// shared (the database, the network, or the detector itself), so ejecting no longer
    /// isolates anything, while per-host in-flight caps and timeouts still bound the damage.
    #[default]
    FailOpen,
    /// Keep every sick host out (the ejected-share cap is lifted); the rest serve alone and
    /// the router answers 503 + Retry-After when they are full or none is left.
    FailClosed,
}

/// The health configuration. `Default` gives the documented defaults, chosen so that the
/// post-mortem incident ejects the host within 1 s with no tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// A checkout older than this is a stuck slot (docs/contracts.md: the host health report). Default 10 s.
    pub stuck_after: Duration,
    /// A full pool with waiters must stay so across reports for this long, with a checkout
    /// held at least this long, before it ejects. Default 500 ms.
    pub exhausted_for: Duration,
    /// Gateway failures (and timeouts) in a row that eject. Default 5.
    pub consecutive_gateway_failures: u32,
    /// Failure share (5xx, gateway failures, timeouts) over the window that ejects. Default 0.5.
    pub failure_rate: f64,
    /// Requests needed in the window before the failure rate is judged. Default 20.
    pub failure_rate_min_requests: u32,
    /// The failure-rate window (ten fixed buckets). Default 5 s.
    pub failure_rate_window: Duration,
    /// Floor of the hung-request threshold. Default 500 ms.
    pub hung_after: Duration,
    /// The hung threshold is at least this many times the normal latency (fleet or host,
    /// whichever is slower). Default 8.
    pub hung_latency_multiple: u32,
    /// In-flight requests needed before a host can be judged hung. Default 2.
    pub hung_min_in_flight: u32,
    /// Failed or timed-out probes in a row that eject. Default 2.
    pub probe_failures: u32,
    /// First ejection time; doubles with each strike. Default 5 s.
    pub ejection_base: Duration,
    /// Longest ejection time (also the length of an operator's eject). Default 300 s.
    pub ejection_max: Duration,
    /// Each period this long spent healthy forgives one strike. Default 60 s.
    pub strike_decay: Duration,
    /// Share of hosts that health may eject at once; at least one host may always be
    /// ejected while another remains. Default 0.34.
    pub max_ejected_share: f64,
    /// Panic when the share of available hosts falls below this. Default 0.5.
    pub panic_threshold: f64,
    /// What panic does. Default `FailOpen`.
    pub panic_policy: PanicPolicy,
    /// Probation ramp steps; the host gets `(step + 1) / (steps + 1)` of its keys. Default 3.
    pub probation_steps: u32,
    /// Minimum time on each probation step. Default 1 s.
    pub probation_step: Duration,
    /// Real successful requests needed on each probation step. Default 5.
    pub probation_successes: u32,
    /// A probation step with too little traffic to earn its successes also ends after this
    /// long with no failure, provided the latest probe passed and the pool (if reported)
    /// is neither exhausted nor stuck. At least `probation_step`. Default 3 s.
    pub probation_quiet_step: Duration,
    /// Gateway failures (and timeouts) in a row that re-eject a host in probation. Default 2.
    pub probation_failures: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            stuck_after: Duration::from_secs(10),
            exhausted_for: Duration::from_millis(500),
            consecutive_gateway_failures: 5,
            failure_rate: 0.5,
            failure_rate_min_requests: 20,
            failure_rate_window: Duration::from_secs(5),
            hung_after: Duration::from_millis(500),
            hung_latency_multiple: 8,
            hung_min_in_flight: 2,
            probe_failures: 2,
            ejection_base: Duration::from_secs(5),
            ejection_max: Duration::from_secs(300),
            strike_decay: Duration::from_secs(60),
            max_ejected_share: 0.34,
            panic_threshold: 0.5,
            panic_policy: PanicPolicy::FailOpen,
            probation_steps: 3,
            probation_step: Duration::from_secs(1),
            probation_successes: 5,
            probation_quiet_step: Duration::from_secs(3),
            probation_failures: 2,
        }
    }
}

impl HealthConfig {
    /// Checks every rule and returns every broken one.
    ///
    /// # Errors
    /// One `InvalidConfig` per broken rule, naming the field.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut rules = Rules::default();
        let mut check = |ok: bool, field: &'static str, rule: &'static str| {
            rules.check(ok, field, rule);
        };
        let positive = "must be greater than 0";
        check(!self.stuck_after.is_zero(), "stuck_after", positive);
        check(!self.exhausted_for.is_zero(), "exhausted_for", positive);
        check(
            self.consecutive_gateway_failures > 0,
            "consecutive_gateway_failures",
            positive,
        );
        check(
            self.failure_rate > 0.0 && self.failure_rate <= 1.0,
            "failure_rate",
            "must be greater than 0 and at most 1",
        );
        check(
            self.failure_rate_min_requests > 0,
            "failure_rate_min_requests",
            positive,
        );
        check(
            self.failure_rate_window >= Duration::from_millis(10),
            "failure_rate_window",
            "must be at least 10ms",
        );
        check(!self.hung_after.is_zero(), "hung_after", positive);
        check(
            self.hung_latency_multiple > 0,
            "hung_latency_multiple",
            positive,
        );
        check(self.hung_min_in_flight > 0, "hung_min_in_flight", positive);
        check(self.probe_failures > 0, "probe_failures", positive);
        check(!self.ejection_base.is_zero(), "ejection_base", positive);
        check(
            self.ejection_max >= self.ejection_base,
            "ejection_max",
            "must be at least ejection_base",
        );
        check(!self.strike_decay.is_zero(), "strike_decay", positive);
        check(
            (0.0..=1.0).contains(&self.max_ejected_share),
            "max_ejected_share",
            "must be between 0 and 1",
        );
        check(
            (0.0..=1.0).contains(&self.panic_threshold),
            "panic_threshold",
            "must be between 0 and 1",
        );
        check(self.probation_steps > 0, "probation_steps", positive);
        check(
            self.probation_successes > 0,
            "probation_successes",
            positive,
        );
        check(
            !self.probation_quiet_step.is_zero()
                && self.probation_quiet_step >= self.probation_step,
            "probation_quiet_step",
            "must be greater than 0 and at least probation_step",
        );
        check(self.probation_failures > 0, "probation_failures", positive);
        rules.finish()
    }

    /// Validates and returns the config.
    ///
    /// # Errors
    /// Every broken rule, as [`HealthConfig::validate`].
    pub fn try_new(config: HealthConfig) -> Result<HealthConfig, Vec<ConfigError>> {
        config.validate().map(|()| config)
    }

    /// How many hosts of `n` health may eject at once: `floor(n * max_ejected_share)`, but
    /// at least one while another host remains (so 1 of 2 or 3), and never all of them.
    pub fn max_ejected(&self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        // The epsilon keeps 100 * 0.34 at 34 despite binary floating point.
        let share = (n as f64 * self.max_ejected_share.clamp(0.0, 1.0) + 1e-9).floor() as usize;
        share.max(1).min(n - 1)
    }

    /// The ejection time for the given strike count (1 = first ejection).
    pub fn backoff(&self, strikes: u32) -> Duration {
        let doublings = strikes.saturating_sub(1).min(31);
        self.ejection_base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.ejection_max)
            .min(self.ejection_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(HealthConfig::default().validate(), Ok(()));
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_field() {
        let config = HealthConfig {
            max_ejected_share: 1.5,
            ejection_base: Duration::from_secs(10),
            ejection_max: Duration::from_secs(1),
            probe_failures: 0,
            probation_step: Duration::from_secs(2),
            probation_quiet_step: Duration::from_secs(1),
            ..HealthConfig::default()
        };
        let errors = HealthConfig::try_new(config).unwrap_err();
        let fields: Vec<_> = errors.iter().filter_map(|e| e.field()).collect();
        assert_eq!(
            fields,
            [
                "probe_failures",
                "ejection_max",
                "max_ejected_share",
                "probation_quiet_step"
            ]
        );
        assert_eq!(
            errors[2].to_string(),
            "max_ejected_share: must be between 0 and 1"
        );
    }

    #[test]
    fn a_zero_quiet_step_is_refused() {
        let config = HealthConfig {
            probation_step: Duration::ZERO,
            probation_quiet_step: Duration::ZERO,
            ..HealthConfig::default()
        };
        let errors = config.validate().unwrap_err();
        assert_eq!(
            errors.iter().filter_map(|e| e.field()).collect::<Vec<_>>(),
            ["probation_quiet_step"]
        );
    }

    #[test]
    fn cap_ejects_one_of_three_and_a_third_of_large_fleets() {
        let c = HealthConfig::default();
        assert_eq!(
            [1, 2, 3, 4, 10, 100].map(|n| c.max_ejected(n)),
            [0, 1, 1, 1, 3, 34]
        );
        let zero = HealthConfig {
            max_ejected_share: 0.0,
            ..c
        };
        assert_eq!(zero.max_ejected(10), 1, "at least one host may go");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = HealthConfig::default();
        let secs: Vec<u64> = [1, 2, 3, 4, 7, 8, 40]
            .map(|s| c.backoff(s).as_secs())
            .to_vec();
        assert_eq!(secs, [5, 10, 20, 40, 300, 300, 300]);
    }
}
