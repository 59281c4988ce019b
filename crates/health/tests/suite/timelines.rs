//! Scripted timelines on simulated time (milliseconds from the origin; nothing sleeps).

use std::time::Duration;

use ringward_health::{
    GatewayFailure, HealthConfig, HealthReport, HostState, OperatorCommand, Outcome, PanicPolicy,
    ProbeResult, Reason, ReportStatus, Routing, StateKind,
};

use super::sim::{Sim, ok, pool};

/// A healthy host's traffic at `t`: a success with its ORCA report, and its in-flight figures.
fn healthy_traffic(sim: &mut Sim, t: u64, host: u32) {
    sim.outcome(t, host, ok(20));
    sim.report(t, host, pool(10, 2, 0, 15));
    if t % 100 == 0 {
        sim.in_flight(t, host, 2, Some(15));
    }
}

fn quiet_probe() -> ProbeResult {
    // The incident's health check: passes and says nothing about the pool.
    ProbeResult::Pass(HealthReport {
        status: Some(ReportStatus::Pass),
        pool: None,
    })
}

#[test]
fn incident_in_band_reports_eject_within_a_second_of_exhaustion() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    // Host 0: deadlocks start at 1000 ms, one more slot lost every 40 ms; two slots serve
    // traffic, so the pool of 10 is exhausted once 8 are stuck.
    let deadlocks_from = 1000;
    let stuck_at = |t: u64| {
        if t < deadlocks_from {
            0
        } else {
            (1 + (t - deadlocks_from) / 40).min(10) as u32
        }
    };
    let exhausted_at = (0..).step_by(10).find(|&t| stuck_at(t) + 2 > 10).unwrap();
    let mut hanging_since = None;
    let mut hanging = 0;
    for t in (0..4000).step_by(10) {
        for other in [1, 2] {
            healthy_traffic(&mut sim, t, other);
        }
        if t % 500 == 137 {
            for host in 0..3 {
                sim.probe(t, host, quiet_probe());
            }
        }
        let stuck = stuck_at(t);
        let exhausted = stuck + 2 > 10;
        let oldest = if stuck > 0 { t - deadlocks_from } else { 15 };
        if !exhausted {
            sim.outcome(t, 0, ok(15));
            sim.report(t, 0, pool(10, stuck + 2, 0, oldest));
        } else {
            hanging_since.get_or_insert(t);
            // Most requests stall; one in five still gets a connection and answers.
            if (t / 10) % 5 == 0 {
                sim.outcome(t, 0, ok(40));
                let waiting = ((t - exhausted_at) / 10 + 1) as u32;
                sim.report(t, 0, pool(10, 10, waiting, oldest));
            } else {
                hanging += 1;
            }
        }
        if t % 100 == 0 {
            let age = hanging_since.map(|s| t - s);
            sim.in_flight(t, 0, hanging, age);
        }
    }
    let (ejected_ms, transition) = sim.first(0, StateKind::Ejected).expect("ejected");
    assert_eq!(transition.reason, Reason::PoolExhausted);
    assert!(
        ejected_ms <= exhausted_at + 1000,
        "ejected at {ejected_ms} ms, pool exhausted at {exhausted_at} ms"
    );
    assert!(
        ejected_ms > exhausted_at,
        "not before the pool was exhausted"
    );
    assert_eq!(sim.history(1), [], "the healthy hosts never moved");
    assert_eq!(sim.history(2), []);
    assert_eq!(sim.host(0).routing, Routing::None);
    assert_eq!(sim.health.panic(), None);
}

#[test]
fn incident_probe_reports_only_eject_within_a_second_whatever_the_probe_phase() {
    // A quiet host (its Vals are idle): only the prober sees the pool, every 500 ms, and
    // the host says "pass" while its pool is full of stuck connections.
    let exhausted_at = 2000;
    for phase in [1, 120, 250, 380, 499] {
        let mut sim = Sim::new(HealthConfig::default(), 3);
        for t in (phase..5000).step_by(500) {
            let figures = if t < exhausted_at {
                pool(10, 3, 0, 20)
            } else {
                pool(10, 10, 3, t - exhausted_at)
            };
            let report = HealthReport {
                status: Some(ReportStatus::Pass),
                pool: Some(figures),
            };
            sim.probe(t, 0, ProbeResult::Pass(report));
        }
        let (ejected_ms, transition) = sim.first(0, StateKind::Ejected).expect("ejected");
        assert_eq!(transition.reason, Reason::PoolExhausted, "phase {phase}");
        assert!(
            ejected_ms <= exhausted_at + 1000,
            "phase {phase}: ejected at {ejected_ms} ms"
        );
    }
}

#[test]
fn busy_but_healthy_host_is_never_ejected() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    // 30 s with the pool full and waiters queued most of the time, but connections turn
    // over: the oldest checkout stays young (20..140 ms) and requests complete.
    for t in (0..30_000).step_by(10) {
        let step = t / 10;
        let figures = pool(10, 10, (step % 9) as u32, 20 + (step % 13) * 10);
        sim.outcome(t, 0, ok(60));
        sim.report(t, 0, figures);
        if t % 100 == 0 {
            sim.in_flight(t, 0, 25, Some(180));
        }
        if t % 500 == 0 {
            let report = HealthReport {
                status: Some(ReportStatus::Warn),
                pool: Some(figures),
            };
            sim.probe(t, 0, ProbeResult::Warn(report));
        }
        for other in [1, 2] {
            healthy_traffic(&mut sim, t, other);
        }
    }
    assert_eq!(sim.history(0), [], "never degraded, never ejected");
    assert_eq!(sim.host(0).routing, Routing::Full);
}

#[test]
fn stuck_slots_degrade_before_exhaustion_ejects() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    // One more deadlocked slot every 3 s from t = 0; two slots serve traffic.
    for t in (0..25_000).step_by(100) {
        let stuck = (1 + t / 3000) as u32;
        let in_use = (stuck + 2).min(10);
        let waiting = (stuck + 2).saturating_sub(10);
        sim.report(t, 0, pool(10, in_use, waiting, t));
        sim.outcome(t, 0, ok(15));
        if t == 15_000 {
            let host = sim.host(0);
            assert_eq!(host.state, StateKind::Degraded);
            assert_eq!(host.reason, Some(Reason::StuckSlots));
            assert_eq!(host.routing, Routing::OwnKeysOnly, "no new placements");
        }
    }
    let (degraded_ms, degraded) = sim.first(0, StateKind::Degraded).expect("degraded");
    let (ejected_ms, ejected) = sim.first(0, StateKind::Ejected).expect("ejected");
    assert_eq!(degraded.reason, Reason::StuckSlots);
    assert_eq!(degraded_ms, 10_000, "as soon as a checkout is 10 s old");
    assert_eq!(ejected.reason, Reason::PoolExhausted);
    assert_eq!(
        ejected_ms, 21_000,
        "at once when full with a stuck checkout"
    );
}

#[test]
fn hung_requests_with_a_silent_health_endpoint_eject_within_a_second() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    let stall_at = 1000;
    for t in (0..3000).step_by(20) {
        for other in [1, 2] {
            sim.outcome(t, other, ok(20));
        }
        if t < stall_at {
            sim.outcome(t, 0, ok(20));
        }
        if t % 100 == 0 {
            for other in [1, 2] {
                sim.in_flight(t, other, 1, Some(10));
            }
            let (count, age) = if t < stall_at {
                (1, Some(10))
            } else {
                (((t - stall_at) / 20 + 1) as u32, Some(t - stall_at))
            };
            sim.in_flight(t, 0, count, age);
        }
        if t % 500 == 250 {
            for host in 0..3 {
                sim.probe(t, host, quiet_probe());
            }
        }
    }
    let (ejected_ms, transition) = sim.first(0, StateKind::Ejected).expect("ejected");
    assert_eq!(transition.reason, Reason::HungRequests);
    assert!(
        ejected_ms <= stall_at + 1000,
        "ejected at {ejected_ms} ms, stalled at {stall_at} ms"
    );
    assert_eq!(sim.history(1), []);
}

#[test]
fn one_long_request_or_slow_completions_are_not_hung() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    for t in (0..10_000).step_by(100) {
        sim.outcome(t, 1, ok(20));
        // Host 0 runs one long Val (an external fetch) and nothing else.
        sim.in_flight(t, 0, 1, Some(t));
        // Host 2 is slow (2 s per request) but completes them steadily.
        if t % 200 == 0 {
            sim.outcome(t, 2, ok(2000));
        }
        sim.in_flight(t, 2, 10, Some(1900));
    }
    assert_eq!(sim.history(0), []);
    assert_eq!(sim.history(2), []);
}

#[test]
fn a_hanging_health_endpoint_ejects() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    let hang_at = 1000;
    for t in (0..3000).step_by(500) {
        for host in 0..3 {
            if host != 0 || t < hang_at {
                sim.probe(t, host, ProbeResult::Pass(HealthReport::default()));
            }
        }
        if t >= hang_at {
            // Sent at t, timed out at t + 250.
            sim.probe(t + 250, 0, ProbeResult::Timeout);
        }
    }
    let (ejected_ms, transition) = sim.first(0, StateKind::Ejected).expect("ejected");
    assert_eq!(transition.reason, Reason::ProbeFailures);
    assert_eq!(ejected_ms, hang_at + 750, "the second timeout");
}

/// Fails host 0 until ejected, waits out the ejection, passes probation; returns the
/// ejection time and the time it ended.
fn flap_once(sim: &mut Sim, mut t: u64) -> (Duration, u64) {
    for _ in 0..5 {
        sim.outcome(t, 0, Outcome::GatewayFailure(GatewayFailure::Reset));
        t += 10;
    }
    let Some(HostState::Ejected { since, until, .. }) = sim.health.state(0) else {
        panic!("five gateway failures eject");
    };
    let mut t = sim.ms_of(until);
    sim.advance(t);
    assert_eq!(sim.state(0), StateKind::Probation);
    for _ in 0..1000 {
        if sim.state(0) == StateKind::Healthy {
            return (until - since, t);
        }
        t += 50;
        sim.outcome(t, 0, ok(10));
    }
    panic!("probation never ended");
}

#[test]
fn flapping_makes_ejections_longer_and_healthy_time_forgives() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    let mut t = 0;
    let mut ejections = Vec::new();
    for _ in 0..4 {
        let (ejection, end) = flap_once(&mut sim, t);
        ejections.push(ejection.as_secs());
        t = end + 100;
    }
    assert_eq!(ejections, [5, 10, 20, 40]);
    assert_eq!(sim.host(0).strikes, 4);
    // A healthy minute forgives one strike; four forgive all of them.
    sim.advance(t + 60_000);
    assert_eq!(sim.host(0).strikes, 3);
    sim.advance(t + 240_000);
    assert_eq!(sim.host(0).strikes, 0);
    let (ejection, _) = flap_once(&mut sim, t + 240_100);
    assert_eq!(ejection.as_secs(), 5, "back to the base time");
}

#[test]
fn recovery_goes_through_probation_on_real_successes_then_fully_back() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    let fixed_at = 3000;
    let figures = |t: u64| {
        if t < fixed_at {
            pool(10, 10, 4, 1000 + t)
        } else {
            pool(10, 2, 0, 15)
        }
    };
    let probe = |sim: &mut Sim, t: u64| {
        let report = HealthReport {
            status: Some(ReportStatus::Pass),
            pool: Some(figures(t)),
        };
        sim.probe(t, 0, ProbeResult::Pass(report));
    };
    for t in (0..5500).step_by(100) {
        if t < fixed_at {
            sim.report(t, 0, figures(t));
        }
        if t % 500 == 0 {
            probe(&mut sim, t);
        }
    }
    let (ejected_ms, _) = sim.first(0, StateKind::Ejected).unwrap();
    assert_eq!(ejected_ms, 500);
    sim.advance(5500);
    let (probation_ms, _) = sim.first(0, StateKind::Probation).unwrap();
    assert_eq!(probation_ms, 5500, "after the base ejection time");
    let host = sim.host(0);
    assert_eq!(
        (host.state, host.routing),
        (StateKind::Probation, Routing::OwnKeysOnly)
    );
    assert_eq!(host.admit_share(), 0.25);

    // Real requests succeed: the share steps up each second (not the 3 s of a quiet
    // step), then it is fully back.
    let mut shares = vec![host.admit_share()];
    for t in (5500..9000).step_by(100) {
        if t % 500 == 0 {
            probe(&mut sim, t);
        }
        sim.outcome(t, 0, ok(15));
        let share = sim.host(0).admit_share();
        if shares.last() != Some(&share) {
            shares.push(share);
        }
    }
    assert_eq!(shares, [0.25, 0.5, 0.75, 1.0]);
    let host = sim.host(0);
    assert_eq!(
        (host.state, host.routing),
        (StateKind::Healthy, Routing::Full)
    );
    assert_eq!(host.reason, Some(Reason::ProbationPassed));
    use StateKind::*;
    assert_eq!(
        sim.history(0),
        [
            (500, Ejected),
            (5500, Probation),
            (6500, Probation),
            (7500, Probation),
            (8500, Healthy)
        ]
    );
}

#[test]
fn still_exhausted_at_expiry_is_ejected_again_for_longer() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    for t in (0..6000).step_by(500) {
        let report = HealthReport {
            status: Some(ReportStatus::Pass),
            pool: Some(pool(10, 10, 2, 20_000 + t)),
        };
        sim.probe(t, 0, ProbeResult::Pass(report));
    }
    match sim.health.state(0) {
        Some(HostState::Ejected {
            strikes,
            since,
            until,
            ..
        }) => {
            assert_eq!(strikes, 2);
            assert_eq!(until - since, Duration::from_secs(10));
        }
        other => panic!("expected a second ejection, got {other:?}"),
    }
    assert!(sim.first(0, StateKind::Probation).is_none());
}

fn all_sick(policy: PanicPolicy) -> Sim {
    let config = HealthConfig {
        panic_policy: policy,
        ..HealthConfig::default()
    };
    let mut sim = Sim::new(config, 3);
    for t in [0, 500] {
        for host in 0..3 {
            sim.probe(t, host, ProbeResult::Refused);
        }
    }
    sim
}

#[test]
fn all_hosts_sick_fail_open_routes_to_all_and_says_so() {
    let sim = all_sick(PanicPolicy::FailOpen);
    let snapshot = sim.health.snapshot(sim.at(500));
    assert_eq!(snapshot.panic, Some(PanicPolicy::FailOpen));
    let states: Vec<_> = snapshot.hosts.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        [StateKind::Ejected, StateKind::Degraded, StateKind::Degraded],
        "the cap holds one of three; the others are held back"
    );
    assert!(snapshot.hosts.iter().all(|h| h.routing == Routing::Full));
}

#[test]
fn all_hosts_sick_fail_closed_routes_to_none_and_says_so() {
    let sim = all_sick(PanicPolicy::FailClosed);
    let snapshot = sim.health.snapshot(sim.at(500));
    assert_eq!(snapshot.panic, Some(PanicPolicy::FailClosed));
    assert!(snapshot.hosts.iter().all(|h| h.routing == Routing::None));
}

#[test]
fn one_sick_host_of_three_is_no_panic_and_drained_hosts_stay_out() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    sim.operator(0, 2, OperatorCommand::Drain);
    sim.probe(0, 0, ProbeResult::Refused);
    sim.probe(500, 0, ProbeResult::Refused);
    let snapshot = sim.health.snapshot(sim.at(500));
    assert_eq!(
        snapshot.panic, None,
        "1 of the 2 hosts not drained is available"
    );
    assert_eq!(snapshot.hosts[0].state, StateKind::Ejected);
    assert_eq!(snapshot.hosts[1].routing, Routing::Full);
    assert_eq!(snapshot.hosts[2].routing, Routing::None);
    sim.operator(600, 2, OperatorCommand::Restore);
    assert_eq!(sim.host(2).routing, Routing::Full);
}

#[test]
fn ejected_share_cap_on_3_10_and_100_hosts() {
    for (n, cap) in [(3, 1), (10, 3), (100, 34)] {
        let mut sim = Sim::new(HealthConfig::default(), n);
        for t in [0, 500] {
            for host in 0..n {
                sim.report(t, host, pool(10, 10, 5, 600 + t));
            }
        }
        let snapshot = sim.health.snapshot(sim.at(500));
        let ejected = snapshot
            .hosts
            .iter()
            .filter(|h| h.state == StateKind::Ejected)
            .count();
        assert_eq!(ejected, cap, "{n} hosts");
        assert!(
            snapshot
                .hosts
                .iter()
                .filter(|h| h.state == StateKind::Degraded)
                .all(|h| h.reason == Some(Reason::PoolExhausted)),
            "the rest are held back, with the reason"
        );
        // Every host is sick: panic (fail open by default) says so.
        assert_eq!(snapshot.panic, Some(PanicPolicy::FailOpen));
    }
}

#[test]
fn a_held_back_host_takes_the_place_freed_by_a_recovery() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    for t in [0, 500] {
        for host in [0, 1] {
            sim.report(t, host, pool(10, 10, 5, 600 + t));
        }
    }
    assert_eq!(sim.state(0), StateKind::Ejected);
    assert_eq!(sim.state(1), StateKind::Degraded);
    // Host 1 stays sick; host 0's ejection ends (no fresh bad news): 1 takes the place.
    sim.report(5000, 1, pool(10, 10, 5, 5000));
    sim.advance(5500);
    assert_eq!(sim.state(0), StateKind::Probation);
    assert_eq!(sim.state(1), StateKind::Ejected);
}

#[test]
fn operator_eject_ignores_the_cap_and_restore_brings_back() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    sim.operator(0, 0, OperatorCommand::Eject);
    sim.operator(0, 1, OperatorCommand::Eject);
    assert_eq!(sim.state(0), StateKind::Ejected);
    assert_eq!(sim.state(1), StateKind::Ejected);
    assert_eq!(sim.host(0).reason, Some(Reason::Operator));
    assert_eq!(sim.host(0).strikes, 0, "an operator's eject is no strike");
    // Health may still eject one more host: operator ejections are not counted.
    sim.probe(0, 2, ProbeResult::Refused);
    sim.probe(500, 2, ProbeResult::Refused);
    assert_eq!(sim.state(2), StateKind::Ejected);
    sim.operator(600, 0, OperatorCommand::Restore);
    assert_eq!(sim.host(0).routing, Routing::Full);
}

#[test]
fn failure_rate_ejects() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    for i in 0..40u64 {
        let outcome = if i % 3 == 0 {
            ok(10)
        } else {
            Outcome::ServerError {
                latency: Duration::from_millis(10),
            }
        };
        sim.outcome(i * 50, 0, outcome);
    }
    let (_, transition) = sim.first(0, StateKind::Ejected).expect("ejected");
    assert_eq!(transition.reason, Reason::FailureRate);
}

#[test]
fn membership_changes_keep_states_and_respect_the_cap() {
    let mut sim = Sim::new(HealthConfig::default(), 10);
    for t in [0, 500] {
        for host in 0..10 {
            sim.report(t, host, pool(10, 10, 5, 600 + t));
        }
    }
    let ejected: Vec<u32> = (0..10)
        .filter(|&h| sim.state(h) == StateKind::Ejected)
        .collect();
    assert_eq!(ejected.len(), 3);
    // Shrink to three hosts, two of them ejected: the cap of one releases the other.
    let keep = [ejected[0], ejected[1], 9];
    sim.health.set_hosts(keep, sim.at(600));
    assert_eq!(sim.health.len(), 3);
    let states: Vec<_> = keep.iter().map(|&h| sim.state(h)).collect();
    assert_eq!(
        states.iter().filter(|&&s| s == StateKind::Ejected).count(),
        1
    );
    assert!(states.contains(&StateKind::Probation));
    assert_eq!(sim.state(9), StateKind::Degraded, "host 9 kept its state");
    // A host that is not in the set is ignored.
    assert_eq!(sim.health.record_outcome(42, ok(5), sim.at(700)), None);
    assert_eq!(sim.health.state(42), None);
}

#[test]
fn names_are_snake_case() {
    assert_eq!(
        Reason::ConsecutiveGatewayFailures.to_string(),
        "consecutive_gateway_failures"
    );
    assert_eq!(Reason::PoolExhausted.to_string(), "pool_exhausted");
    assert_eq!(StateKind::Probation.to_string(), "probation");
}

#[test]
fn a_peer_ejection_is_adopted_until_its_end_within_the_cap_then_probation_decides() {
    let mut sim = Sim::new(HealthConfig::default(), 10);
    // A peer router ejected host 4 for 5 s: out here at once, no strike of ours.
    let until = sim.at(5_000);
    let t = sim.health.adopt_peer_ejection(4, until, sim.at(0));
    assert!(t.is_some());
    assert_eq!(sim.state(4), StateKind::Ejected);
    assert_eq!(sim.host(4).reason, Some(Reason::Peer));
    assert_eq!(sim.host(4).strikes, 0);
    // Adopting it again, or another peer's word on it, changes nothing.
    assert!(
        sim.health
            .adopt_peer_ejection(4, sim.at(9_000), sim.at(100))
            .is_none()
    );
    // A faulty peer "ejects" everything: the cap (3 of 10) holds.
    for host in 0..10 {
        sim.health.adopt_peer_ejection(host, until, sim.at(200));
    }
    let snapshot = sim.health.snapshot(sim.at(200));
    let out = snapshot
        .hosts
        .iter()
        .filter(|h| h.state == StateKind::Ejected)
        .count();
    assert_eq!(out, 3, "the ejected-share cap counts adopted ejections");
    // An ejection already over, or on a drained host, is not adopted.
    assert!(
        sim.health
            .adopt_peer_ejection(9, sim.at(300), sim.at(300))
            .is_none()
    );
    sim.operator(300, 8, OperatorCommand::Drain);
    assert!(
        sim.health
            .adopt_peer_ejection(8, until, sim.at(300))
            .is_none()
    );
    assert_eq!(sim.state(8), StateKind::Draining);
    // At its end, this router's own evidence decides: probation, as after its own ejection.
    sim.advance(5_001);
    assert_eq!(sim.state(4), StateKind::Probation);
}
