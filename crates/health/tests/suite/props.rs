//! Property tests: whatever the inputs, the snapshot keeps its invariants.

use std::time::Duration;

use proptest::prelude::*;
use ringward_health::{
    GatewayFailure, HealthConfig, HealthReport, OperatorCommand, Outcome, PanicPolicy, ProbeResult,
    Reason, Routing, StateKind,
};

use super::sim::{Sim, pool};

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Outcome(u32, u8, u64),
    InFlight(u32, u32, Option<u64>),
    Report(u32, u32, u32, u32, u64),
    Probe(u32, u8),
    Operator(u32, u8),
    SetHosts(u32),
}

fn op() -> impl Strategy<Value = Op> {
    // Hosts 0..14 with sets of 1..=12: some inputs name unknown hosts.
    let host = 0u32..14;
    prop_oneof![
        3 => (0u64..3000).prop_map(Op::Advance),
        6 => (host.clone(), 0u8..5, 0u64..3000).prop_map(|(h, k, l)| Op::Outcome(h, k, l)),
        2 => (host.clone(), 0u32..30, proptest::option::of(0u64..5000))
            .prop_map(|(h, c, a)| Op::InFlight(h, c, a)),
        4 => (host.clone(), 0u32..12, 0u32..14, 0u32..5, 0u64..15_000)
            .prop_map(|(h, m, u, w, o)| Op::Report(h, m, u, w, o)),
        3 => (host.clone(), 0u8..5).prop_map(|(h, k)| Op::Probe(h, k)),
        1 => (host, 0u8..3).prop_map(|(h, c)| Op::Operator(h, c)),
        1 => (1u32..=12).prop_map(Op::SetHosts),
    ]
}

fn apply(sim: &mut Sim, op: &Op) {
    let t = sim.now_ms;
    match *op {
        Op::Advance(ms) => sim.advance(t + ms),
        Op::Outcome(host, kind, latency) => {
            let latency = Duration::from_millis(latency);
            let outcome = match kind {
                0 | 1 => Outcome::Success { latency },
                2 => Outcome::ServerError { latency },
                3 => Outcome::GatewayFailure(GatewayFailure::Reset),
                _ => Outcome::Timeout { elapsed: latency },
            };
            sim.outcome(t, host, outcome);
        }
        Op::InFlight(host, count, age) => sim.in_flight(t, host, count, age),
        Op::Report(host, max, in_use, waiting, oldest) => {
            sim.report(t, host, pool(max, in_use, waiting, oldest));
        }
        Op::Probe(host, kind) => {
            let report = HealthReport::default();
            let result = match kind {
                0 => ProbeResult::Pass(report),
                1 => ProbeResult::Warn(report),
                2 => ProbeResult::Fail(report),
                3 => ProbeResult::Timeout,
                _ => ProbeResult::Refused,
            };
            sim.probe(t, host, result);
        }
        Op::Operator(host, command) => {
            let command = [
                OperatorCommand::Drain,
                OperatorCommand::Eject,
                OperatorCommand::Restore,
            ][command as usize];
            sim.operator(t, host, command);
        }
        Op::SetHosts(n) => {
            let now = sim.at(t);
            sim.health.set_hosts(0..n, now);
        }
    }
}

fn check(sim: &Sim) -> Result<(), TestCaseError> {
    let snapshot = sim.health.snapshot(sim.at(sim.now_ms));
    let n = snapshot.hosts.len();
    let by_health = snapshot
        .hosts
        .iter()
        .filter(|h| h.state == StateKind::Ejected && h.reason != Some(Reason::Operator))
        .count();
    let cap = sim.health.config().max_ejected(n);
    prop_assert!(
        by_health <= cap,
        "{by_health} ejected by health, cap {cap} of {n}"
    );
    for h in &snapshot.hosts {
        if h.state == StateKind::Ejected {
            prop_assert!(h.reason.is_some(), "ejected without a reason: {h:?}");
            prop_assert!(h.until.is_some_and(|u| u > h.since), "no expiry: {h:?}");
            if snapshot.panic != Some(PanicPolicy::FailOpen) {
                prop_assert_eq!(h.routing, Routing::None, "eligible and ejected: {:?}", h);
            }
        }
        if h.state == StateKind::Draining {
            prop_assert_eq!(h.routing, Routing::None);
        }
        prop_assert_eq!(h.routing == Routing::None, h.admit_share() == 0.0);
        prop_assert!((0.0..=1.0).contains(&h.admit_share()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn snapshot_invariants_hold_whatever_the_inputs(
        hosts in 1u32..=12,
        fail_closed in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..250),
    ) {
        let config = HealthConfig {
            panic_policy: if fail_closed { PanicPolicy::FailClosed } else { PanicPolicy::FailOpen },
            // Lower thresholds so that ejections are common in short sequences.
            consecutive_gateway_failures: 2,
            failure_rate_min_requests: 4,
            ..HealthConfig::default()
        };
        let mut sim = Sim::new(config, hosts);
        check(&sim)?;
        for op in &ops {
            apply(&mut sim, op);
            check(&sim)?;
        }
        // Let every ejection run out: the sequence ends with nothing overdue.
        let end = sim.now_ms + 400_000;
        sim.advance(end);
        check(&sim)?;
        let deadline = sim.health.next_deadline();
        prop_assert!(deadline.is_none_or(|d| d > sim.at(end)));
    }
}
