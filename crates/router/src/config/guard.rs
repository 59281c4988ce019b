//! `[guard]`: the cascade guard's keys (`health::guard::GuardConfig`).

use health::guard::GuardConfig;

use super::passive::push_rule_errors;
use super::reader::{Errors, Section};

/// The keys of `[guard]`.
const KEYS: [&str; 14] = [
    "enabled",
    "dominant_share",
    "implicated_share",
    "overrepresentation",
    "min_in_flight",
    "stuck_after",
    "stuck_latency_multiple",
    "window",
    "quarantine",
    "quarantine_max",
    "forget_after",
    "max_quarantined",
    "baseline_half_life",
    "top_k",
];

/// Reads `[guard]`, then lets the health crate check its rules.
pub(super) fn read(root: &mut Section<'_>, errors: &mut Errors) -> GuardConfig {
    let mut s = root.table("guard", errors);
    let d = GuardConfig::default();
    let config = GuardConfig {
        enabled: s.boolean("enabled", d.enabled, errors),
        dominant_share: s.share("dominant_share", d.dominant_share, errors),
        implicated_share: s.share("implicated_share", d.implicated_share, errors),
        overrepresentation: s.float("overrepresentation", d.overrepresentation, errors),
        min_in_flight: s.positive_u32("min_in_flight", d.min_in_flight, errors),
        stuck_after: s.duration("stuck_after", d.stuck_after, errors),
        stuck_latency_multiple: s.positive_u32(
            "stuck_latency_multiple",
            d.stuck_latency_multiple,
            errors,
        ),
        window: s.duration("window", d.window, errors),
        quarantine: s.duration("quarantine", d.quarantine, errors),
        quarantine_max: s.duration("quarantine_max", d.quarantine_max, errors),
        forget_after: s.duration("forget_after", d.forget_after, errors),
        max_quarantined: s.u32_or("max_quarantined", d.max_quarantined as u32, errors) as usize,
        baseline_half_life: s.duration("baseline_half_life", d.baseline_half_life, errors),
        top_k: s.positive_u32("top_k", d.top_k as u32, errors) as usize,
    };
    if let Err(list) = config.validate() {
        push_rule_errors(&s, errors, &KEYS, list);
    }
    s.finish(errors);
    config
}
