//! `ringward replay`, short: the incident replayed through Ringward with its
//! defaults, and through the post-mortem's baseline, on real simhosts.

use ringward_lab::replay::{Scenario, Target, run_scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replayed_incident_ends_in_a_second_behind_ringward_and_not_behind_the_baseline() {
    let scenario = Scenario::short();
    let ringward = run_scenario(&scenario, Target::Ringward)
        .await
        .expect("ringward run");
    let baseline = run_scenario(&scenario, Target::Baseline)
        .await
        .expect("baseline run");
    let summary = ringward_lab::replay::summary(&[ringward.clone(), baseline.clone()]);
    eprintln!("{summary}");

    let ejected = ringward
        .ejected_after_ms
        .expect("ringward ejects the sick host");
    assert!(
        ejected <= 1000,
        "ejected {ejected} ms after exhaustion\n{summary}"
    );
    let last = ringward.last_request_to_sick_after_ms.unwrap_or(0);
    assert!(
        last <= 1000,
        "the sick host still got requests {last} ms after exhaustion\n{summary}"
    );
    assert_eq!(ringward.over_timeout, 0, "{summary}");
    assert_eq!(
        ringward.over_2s, 0,
        "no idempotent request takes more than 2 s\n{summary}"
    );
    assert_eq!(ringward.pending_at_end, 0, "{summary}");
    assert!(
        ringward.failed.is_empty(),
        "no request fails: {:?}\n{summary}",
        ringward.failed
    );
    assert!(
        ringward.vals_moved > 0,
        "the sick host's Vals moved\n{summary}"
    );
    assert!(
        ringward.exact_return,
        "exactly the moved Vals came back\n{summary}"
    );

    // The scenario bites: without ejection or timeouts, the sick host's Vals
    // wait out the whole fault.
    assert_eq!(baseline.ejected_after_ms, None);
    assert!(
        baseline.over_2s > 0,
        "the baseline shows the incident\n{summary}"
    );
    assert_eq!(baseline.vals_moved, 0, "{summary}");
}

/// `ringward replay --scenario poison --quick`: one Val's flurry of parallel edits, sent as
/// GET and as POST, through Ringward with its defaults; and once (GET) with the guard off,
/// to show the scenario bites.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_val_reaches_one_host_and_every_other_val_is_served() {
    use ringward_lab::replay::poison::{PoisonScenario, run_poison, summary};
    let scenario = PoisonScenario::short();
    let mut runs = Vec::new();
    for method in [http::Method::GET, http::Method::POST] {
        runs.push(
            run_poison(&scenario, method, true)
                .await
                .expect("guarded run"),
        );
    }
    let unguarded = run_poison(&scenario, http::Method::GET, false)
        .await
        .expect("unguarded run");
    let table = summary(&[runs[0].clone(), runs[1].clone(), unguarded.clone()]);
    eprintln!("{table}");
    for run in &runs {
        assert_eq!(
            run.hosts_poisoned.len(),
            1,
            "{}: the poison reached one host\n{table}",
            run.method
        );
        assert!(
            run.quarantined_after_ms.is_some_and(|ms| ms <= 1500),
            "{}: quarantined within 1.5 s of the deadlock\n{table}",
            run.method
        );
        assert!(
            run.others_ok * 1000 >= run.others_during_flurry * 999,
            "{}: >= 99.9% of the other Vals' requests answered 2xx\n{table}",
            run.method
        );
        assert_eq!(run.others_pending, 0, "{table}");
        assert_eq!(run.poison_answers.get("hung"), None, "{table}");
        assert!(
            run.poison_max_ms <= 2000,
            "{}: the poison's requests are answered fast, none waits for the timeout\n{table}",
            run.method
        );
    }
    assert!(
        unguarded.hosts_poisoned.len() > 1,
        "without the guard the poison follows its ring walk\n{table}"
    );
}
