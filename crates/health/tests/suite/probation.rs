//! Probation on simulated time: real successes move it on at their pace; with too little
//! traffic, quiet steps (no failure, the latest probe passed, the pool fine) move it on after
//! `probation_quiet_step`; failing or missing probes never do.

use std::time::Duration;

use ringward_health::{
    GatewayFailure, HealthConfig, HealthReport, HostState, Outcome, PoolReport, ProbeResult,
    Reason, ReportStatus, StateKind,
};

use super::sim::{Sim, ok, pool};

/// Host 0's pool deadlocks at 0 (in-band reports at 0 and 500 ms confirm it), so it is
/// ejected at 500 ms for the base 5 s; nothing bad arrives meanwhile (the deadlock was
/// released), so probation begins at the returned instant, 5500 ms.
fn ejected_then_probation(sim: &mut Sim) -> u64 {
    sim.report(0, 0, pool(10, 10, 4, 1000));
    sim.report(500, 0, pool(10, 10, 4, 1500));
    let Some(HostState::Ejected { until, .. }) = sim.health.state(0) else {
        panic!("an exhausted pool ejects");
    };
    let expiry = sim.ms_of(until);
    assert_eq!(expiry, 5500);
    sim.advance(expiry);
    assert_eq!(sim.state(0), StateKind::Probation);
    assert_eq!(sim.host(0).admit_share(), 0.25);
    expiry
}

fn deep_pass(figures: PoolReport) -> ProbeResult {
    ProbeResult::Pass(HealthReport {
        status: Some(ReportStatus::Pass),
        pool: Some(figures),
    })
}

/// Host 0's transitions after `from`, as (ms, to, reason).
fn moves(sim: &Sim, from: u64) -> Vec<(u64, StateKind, Reason)> {
    sim.log
        .iter()
        .filter(|t| t.host == 0 && sim.ms_of(t.at) > from)
        .map(|t| (sim.ms_of(t.at), t.to, t.reason))
        .collect()
}

/// Notes host 0's admitted share if it changed.
fn note_share(sim: &Sim, shares: &mut Vec<f64>) {
    let share = sim.host(0).admit_share();
    if shares.last() != Some(&share) {
        shares.push(share);
    }
}

/// (a) No traffic (or one request a second), probes pass: fully back
/// `probation_steps x probation_quiet_step` (9 s) after the ejection expires.
#[test]
fn quiet_host_with_passing_probes_comes_back_within_the_bound() {
    let shallow = ProbeResult::Pass(HealthReport::default());
    let deep = deep_pass(pool(10, 1, 0, 12));
    // (probes, one success a second for the host's own Val)
    for (probe, one_val) in [(deep.clone(), false), (shallow, false), (deep, true)] {
        let mut sim = Sim::new(HealthConfig::default(), 3);
        let expiry = ejected_then_probation(&mut sim);
        let mut shares = vec![0.25];
        // Probes every 500 ms, off the step boundaries: the steps end on the deadlines that
        // `next_deadline` scheduled, not on a probe's arrival.
        for t in (expiry + 250..expiry + 20_000).step_by(500) {
            sim.probe(t, 0, probe.clone());
            if one_val && (t - expiry) % 1000 == 250 {
                sim.outcome(t, 0, ok(15));
            }
            note_share(&sim, &mut shares);
        }
        assert_eq!(shares, [0.25, 0.5, 0.75, 1.0]);
        let config = sim.health.config();
        let bound =
            u64::from(config.probation_steps) * config.probation_quiet_step.as_millis() as u64;
        assert_eq!(bound, 9000, "the documented bound");
        use StateKind::{Healthy, Probation};
        assert_eq!(
            moves(&sim, expiry),
            [
                (expiry + 3000, Probation, Reason::ProbationQuiet),
                (expiry + 6000, Probation, Reason::ProbationQuiet),
                (expiry + bound, Healthy, Reason::ProbationQuiet),
            ],
            "probe {probe:?}, one Val a second: {one_val}"
        );
        assert_eq!(sim.state(0), StateKind::Healthy);
        assert_eq!(sim.host(0).strikes, 1, "no new strike");
    }
}

/// The probe result for the k-th probe time (`None`: no probe).
type ProbeScript = fn(u64) -> Option<ProbeResult>;

/// (b) No traffic, probes failing, missing, `warn`, or passing with stuck slots in the
/// figures: time alone never moves it on. Two failed probes in a row eject it again.
#[test]
fn failing_or_missing_probes_never_advance_on_time_alone() {
    let cases: [(&str, ProbeScript); 4] = [
        ("missing", |_| None),
        ("warn", |_| Some(ProbeResult::Warn(HealthReport::default()))),
        ("pass with stuck slots", |_| {
            Some(ProbeResult::Pass(HealthReport {
                status: Some(ReportStatus::Pass),
                pool: Some(pool(10, 3, 0, 12_000)),
            }))
        }),
        // Never two failures in a row (no ejection), but each failure restarts the step.
        ("every fourth probe fails", |k| {
            Some(if k % 4 == 3 {
                ProbeResult::Timeout
            } else {
                ProbeResult::Pass(HealthReport::default())
            })
        }),
    ];
    for (name, probe) in cases {
        let mut sim = Sim::new(HealthConfig::default(), 3);
        let expiry = ejected_then_probation(&mut sim);
        for (k, t) in (expiry + 250..expiry + 60_000).step_by(500).enumerate() {
            if let Some(result) = probe(k as u64) {
                sim.probe(t, 0, result);
            }
        }
        sim.advance(expiry + 60_000);
        assert_eq!(moves(&sim, expiry), [], "{name}: no step in a minute");
        assert_eq!(sim.state(0), StateKind::Probation, "{name}");
        assert_eq!(sim.host(0).admit_share(), 0.25, "{name}");
    }

    // Failing probes: re-ejected as before, with one more strike (twice as long).
    let mut sim = Sim::new(HealthConfig::default(), 3);
    let expiry = ejected_then_probation(&mut sim);
    sim.probe(expiry + 250, 0, ProbeResult::Refused);
    sim.probe(expiry + 750, 0, ProbeResult::Timeout);
    sim.advance(expiry + 5000);
    assert_eq!(
        moves(&sim, expiry),
        [(expiry + 750, StateKind::Ejected, Reason::ProbeFailures)]
    );
    match sim.health.state(0) {
        Some(HostState::Ejected {
            strikes,
            since,
            until,
            reason,
        }) => {
            assert_eq!((strikes, reason), (2, Reason::ProbeFailures));
            assert_eq!(until - since, Duration::from_secs(10));
        }
        other => panic!("expected a second ejection, got {other:?}"),
    }
}

/// (c) Real traffic still moves it on at its own pace: a step a second, faster than the
/// quiet steps (which would take 3 s each).
#[test]
fn real_successes_still_advance_at_their_pace() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    let expiry = ejected_then_probation(&mut sim);
    let mut shares = vec![0.25];
    for t in (expiry..expiry + 5000).step_by(100) {
        if t % 500 == 250 {
            sim.probe(t, 0, deep_pass(pool(10, 2, 0, 15)));
        }
        sim.outcome(t, 0, ok(15));
        note_share(&sim, &mut shares);
    }
    assert_eq!(shares, [0.25, 0.5, 0.75, 1.0]);
    use StateKind::{Healthy, Probation};
    assert_eq!(
        moves(&sim, expiry),
        [
            (expiry + 1000, Probation, Reason::ProbationAdvanced),
            (expiry + 2000, Probation, Reason::ProbationAdvanced),
            (expiry + 3000, Healthy, Reason::ProbationPassed),
        ]
    );
}

/// (d) A failure on a quiet step restarts its clock; two gateway failures in a row still
/// eject, with one more strike.
#[test]
fn a_failure_on_a_quiet_step_restarts_it_and_failures_still_eject() {
    let mut sim = Sim::new(HealthConfig::default(), 3);
    let expiry = ejected_then_probation(&mut sim);
    let probe = |sim: &mut Sim, from: u64, to: u64| {
        for t in (from..to).step_by(500) {
            sim.probe(t, 0, deep_pass(pool(10, 1, 0, 12)));
        }
    };
    probe(&mut sim, expiry + 250, expiry + 2000);
    // One 5xx two seconds into step 0: the step now ends 3 s after it, not at expiry + 3 s.
    let failed_at = expiry + 2000;
    sim.outcome(
        failed_at,
        0,
        Outcome::ServerError {
            latency: Duration::from_millis(20),
        },
    );
    probe(&mut sim, expiry + 2250, failed_at + 3000);
    assert_eq!(sim.now_ms, expiry + 4750);
    assert_eq!(sim.host(0).admit_share(), 0.25, "not at expiry + 3 s");
    sim.advance(failed_at + 3000);
    assert_eq!(
        moves(&sim, expiry),
        [(
            failed_at + 3000,
            StateKind::Probation,
            Reason::ProbationQuiet
        )]
    );
    assert_eq!(sim.host(0).admit_share(), 0.5);

    // Two gateway failures in a row on the quiet step 1: ejected again, for twice as long.
    let t = failed_at + 4000;
    sim.outcome(
        t,
        0,
        Outcome::GatewayFailure(GatewayFailure::ConnectRefused),
    );
    assert_eq!(sim.state(0), StateKind::Probation, "one is not enough");
    sim.outcome(t + 10, 0, Outcome::GatewayFailure(GatewayFailure::Reset));
    match sim.health.state(0) {
        Some(HostState::Ejected {
            strikes,
            since,
            until,
            reason,
        }) => {
            assert_eq!((strikes, reason), (2, Reason::ConsecutiveGatewayFailures));
            assert_eq!(until - since, Duration::from_secs(10));
        }
        other => panic!("expected a second ejection, got {other:?}"),
    }
}
