//! The one mapping from a host's health to its routing admission.

use health::{HealthSnapshot, HostHealth, Routing, StateKind};
use router_core::{Admission, SkipReason};

/// What the routing snapshot should say about a host in this health state.
///
/// - [`Routing::Full`] is [`Admission::Open`];
/// - [`Routing::OwnKeysOnly`] with an admitted share below 1 (probation) is
///   [`Admission::Ramp`] with that share in per mille, so a host in probation takes back a
///   growing share of its own keys, decided by the snapshot itself;
/// - [`Routing::OwnKeysOnly`] otherwise (degraded) is [`Admission::OwnKeysOnly`];
/// - [`Routing::None`] is [`Admission::Closed`] with the reason explain reports: draining,
///   probation, degraded, or ejected (also for a healthy host closed by panic mode's
///   fail-closed policy).
///
/// ```
/// # let now = tokio::time::Instant::now().into_std();
/// use health::{HostHealth, Routing, StateKind};
/// use router_core::Admission;
///
/// let probation = HostHealth {
///     host: "host-a",
///     state: StateKind::Probation,
///     reason: None,
///     since: now,
///     until: None,
///     strikes: 1,
///     pool: None,
///     last_probe: None,
///     routing: Routing::OwnKeysOnly,
///     admit_share: 0.25,
/// };
/// assert_eq!(ringward_embed::admission(&probation), Admission::Ramp(250));
/// ```
pub fn admission<K>(h: &HostHealth<K>) -> Admission {
    match h.routing {
        Routing::Full => Admission::Open,
        Routing::OwnKeysOnly if h.admit_share() < 1.0 => {
            Admission::Ramp((h.admit_share().clamp(0.0, 1.0) * 1000.0) as u16)
        }
        Routing::OwnKeysOnly => Admission::OwnKeysOnly,
        Routing::None => Admission::Closed(match h.state {
            StateKind::Draining => SkipReason::Draining,
            StateKind::Probation => SkipReason::Probation,
            StateKind::Degraded => SkipReason::Degraded,
            StateKind::Ejected | StateKind::Healthy => SkipReason::Ejected,
        }),
    }
}

/// The admission of each host of `hosts`, in that order (for a ring, its
/// [`HostId`](router_core::HostId) order), from a health snapshot. A host the snapshot does
/// not know is [`Admission::Open`]. The snapshot is looked up by position, then by binary
/// search (`Health::snapshot` lists hosts in key order), so thousands of hosts cost
/// `O(n log n)`, not `O(n^2)`.
pub fn admissions<K: Ord>(
    hosts: impl IntoIterator<Item = K>,
    health: &HealthSnapshot<K>,
) -> Vec<Admission> {
    hosts
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            // Often the snapshot lists the hosts in the same order: one look.
            health
                .hosts
                .get(i)
                .filter(|h| h.host == key)
                .or_else(|| {
                    let sorted = health.hosts.binary_search_by(|h| h.host.cmp(&key));
                    sorted.ok().map(|j| &health.hosts[j])
                })
                // A snapshot in another order (built by hand): a scan.
                .or_else(|| health.hosts.iter().find(|h| h.host == key))
                .map_or(Admission::Open, admission)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use health::{GatewayFailure, Health, HealthConfig, Outcome, PanicPolicy};

    use super::*;

    fn host(state: StateKind, routing: Routing, admit_share: f64) -> HostHealth<u32> {
        let since = crate::shared::now(); // an origin; only the fields are read
        HostHealth {
            host: 7,
            state,
            reason: None,
            since,
            until: None,
            strikes: 0,
            pool: None,
            last_probe: None,
            routing,
            admit_share,
        }
    }

    #[test]
    fn full_routing_is_open() {
        assert_eq!(
            admission(&host(StateKind::Healthy, Routing::Full, 1.0)),
            Admission::Open
        );
        // Panic mode's fail-open routes to a sick host in full.
        assert_eq!(
            admission(&host(StateKind::Ejected, Routing::Full, 1.0)),
            Admission::Open
        );
    }

    #[test]
    fn degraded_keeps_its_own_keys() {
        assert_eq!(
            admission(&host(StateKind::Degraded, Routing::OwnKeysOnly, 1.0)),
            Admission::OwnKeysOnly
        );
    }

    #[test]
    fn probation_is_a_ramp_in_per_mille() {
        for (share, per_mille) in [(0.0, 0), (0.25, 250), (0.5, 500), (0.75, 750), (0.999, 999)] {
            assert_eq!(
                admission(&host(StateKind::Probation, Routing::OwnKeysOnly, share)),
                Admission::Ramp(per_mille),
                "share {share}"
            );
        }
        // Out of range shares are clamped.
        assert_eq!(
            admission(&host(StateKind::Probation, Routing::OwnKeysOnly, -0.5)),
            Admission::Ramp(0)
        );
    }

    #[test]
    fn closed_hosts_carry_the_reason_explain_reports() {
        let closed = |state| admission(&host(state, Routing::None, 0.0));
        assert_eq!(
            closed(StateKind::Ejected),
            Admission::Closed(SkipReason::Ejected)
        );
        assert_eq!(
            closed(StateKind::Draining),
            Admission::Closed(SkipReason::Draining)
        );
        assert_eq!(
            closed(StateKind::Probation),
            Admission::Closed(SkipReason::Probation)
        );
        assert_eq!(
            closed(StateKind::Degraded),
            Admission::Closed(SkipReason::Degraded)
        );
        // Panic mode fail-closed can close a host whatever its state says.
        assert_eq!(
            closed(StateKind::Healthy),
            Admission::Closed(SkipReason::Ejected)
        );
    }

    #[test]
    fn admissions_follow_the_given_order_and_default_to_open() {
        let snapshot = HealthSnapshot {
            hosts: vec![
                HostHealth {
                    host: 1,
                    ..host(StateKind::Ejected, Routing::None, 0.0)
                },
                HostHealth {
                    host: 2,
                    ..host(StateKind::Probation, Routing::OwnKeysOnly, 0.5)
                },
            ],
            panic: None,
        };
        assert_eq!(
            admissions([2, 9, 1], &snapshot),
            vec![
                Admission::Ramp(500),
                Admission::Open,
                Admission::Closed(SkipReason::Ejected)
            ]
        );
    }

    /// The mapping over a real state machine: ejection, then the probation ramp, then back.
    #[test]
    fn a_real_ejection_closes_then_ramps_then_opens() {
        let t0 = crate::shared::now(); // the origin of a simulated timeline
        let config = HealthConfig {
            panic_policy: PanicPolicy::FailClosed,
            ..HealthConfig::default()
        };
        let mut health = Health::new(config.clone());
        health.set_hosts([0u32, 1, 2], t0);
        for _ in 0..config.consecutive_gateway_failures {
            health.record_outcome(0, Outcome::GatewayFailure(GatewayFailure::Reset), t0);
        }
        let of = |health: &Health<u32>, now| admissions([0, 1, 2], &health.snapshot(now));
        assert_eq!(
            of(&health, t0),
            vec![
                Admission::Closed(SkipReason::Ejected),
                Admission::Open,
                Admission::Open
            ]
        );
        // The ejection ends: probation, with the first step's share.
        let t1 = t0 + config.ejection_base;
        health.handle_timeout(t1, &mut Vec::new());
        let first = 1000 / (config.probation_steps + 1);
        assert_eq!(of(&health, t1)[0], Admission::Ramp(first as u16));
        // Quiet steps with a passing probe walk the ramp up, then the host is healthy.
        health.record_probe(0, health::ProbeResult::Pass(Default::default()), t1);
        let mut now = t1;
        let mut seen = vec![of(&health, now)[0]];
        for _ in 0..=config.probation_steps {
            now += config.probation_quiet_step + Duration::from_millis(1);
            health.record_probe(0, health::ProbeResult::Pass(Default::default()), now);
            health.handle_timeout(now, &mut Vec::new());
            seen.push(of(&health, now)[0]);
        }
        assert_eq!(
            seen,
            vec![
                Admission::Ramp(250),
                Admission::Ramp(500),
                Admission::Ramp(750),
                Admission::Open,
                Admission::Open
            ]
        );
    }
}
