//! The `[health]` keys that configure the health state machine (`health::HealthConfig`).

use health::{HealthConfig, PanicPolicy};

use super::reader::{Errors, Section};

/// The passive-health keys of `[health]`.
const KEYS: [&str; 21] = [
    "stuck_after",
    "exhausted_for",
    "consecutive_gateway_failures",
    "failure_rate",
    "failure_rate_min_requests",
    "failure_rate_window",
    "hung_after",
    "hung_latency_multiple",
    "hung_min_in_flight",
    "probe_failures",
    "ejection_base",
    "ejection_max",
    "strike_decay",
    "max_ejected_share",
    "panic_threshold",
    "panic_policy",
    "probation_steps",
    "probation_step",
    "probation_successes",
    "probation_quiet_step",
    "probation_failures",
];

/// Reads every passive-health key of `[health]`, then lets the health crate check its rules.
pub(super) fn read(s: &mut Section<'_>, errors: &mut Errors) -> HealthConfig {
    let d = HealthConfig::default();
    let panic_policy = match s.string("panic_policy", errors) {
        None => d.panic_policy,
        Some("fail_open") => PanicPolicy::FailOpen,
        Some("fail_closed") => PanicPolicy::FailClosed,
        Some(other) => {
            errors.push(
                s.path_of("panic_policy"),
                format!("`{other}` is not a panic policy (use \"fail_open\" or \"fail_closed\")"),
            );
            d.panic_policy
        }
    };
    let config = HealthConfig {
        stuck_after: s.duration("stuck_after", d.stuck_after, errors),
        exhausted_for: s.duration("exhausted_for", d.exhausted_for, errors),
        consecutive_gateway_failures: s.positive_u32(
            "consecutive_gateway_failures",
            d.consecutive_gateway_failures,
            errors,
        ),
        failure_rate: s.share("failure_rate", d.failure_rate, errors),
        failure_rate_min_requests: s.positive_u32(
            "failure_rate_min_requests",
            d.failure_rate_min_requests,
            errors,
        ),
        failure_rate_window: s.duration("failure_rate_window", d.failure_rate_window, errors),
        hung_after: s.duration("hung_after", d.hung_after, errors),
        hung_latency_multiple: s.positive_u32(
            "hung_latency_multiple",
            d.hung_latency_multiple,
            errors,
        ),
        hung_min_in_flight: s.positive_u32("hung_min_in_flight", d.hung_min_in_flight, errors),
        probe_failures: s.positive_u32("probe_failures", d.probe_failures, errors),
        ejection_base: s.duration("ejection_base", d.ejection_base, errors),
        ejection_max: s.duration("ejection_max", d.ejection_max, errors),
        strike_decay: s.duration("strike_decay", d.strike_decay, errors),
        max_ejected_share: s.share("max_ejected_share", d.max_ejected_share, errors),
        panic_threshold: s.share("panic_threshold", d.panic_threshold, errors),
        panic_policy,
        probation_steps: s.positive_u32("probation_steps", d.probation_steps, errors),
        probation_step: s.duration("probation_step", d.probation_step, errors),
        probation_successes: s.positive_u32("probation_successes", d.probation_successes, errors),
        probation_quiet_step: s.duration("probation_quiet_step", d.probation_quiet_step, errors),
        probation_failures: s.positive_u32("probation_failures", d.probation_failures, errors),
    };
    if let Err(list) = config.validate() {
        push_rule_errors(s, errors, &KEYS, list);
    }
    config
}

/// Reports the rules a pure crate's config check found broken (`field: rule`) at their key
/// paths in section `s`, leaving out what the reader already reported and any rule that
/// names a key that failed to read (its default stood in for it, so a cross-key rule would
/// judge a value the user never wrote).
pub(super) fn push_rule_errors(
    s: &Section<'_>,
    errors: &mut Errors,
    keys: &[&str],
    list: Vec<health::ConfigError>,
) {
    let failed: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| errors.has_path(&s.path_of(k)))
        .collect();
    for e in list {
        // Rules the reader already enforced (positive, 0..1) would repeat; report the rest.
        let text = e.to_string();
        let (field, rule) = text.split_once(": ").unwrap_or(("", text.as_str()));
        let path = s.path_of(field);
        let names_a_failed_key = rule
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| failed.contains(&word));
        if !errors.has_path(&path) && !names_a_failed_key {
            errors.push(path, rule.to_owned());
        }
    }
}
