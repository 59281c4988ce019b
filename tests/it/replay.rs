//! `ringward replay`, short: the incident replayed through Ringward with its
//! defaults, and through the post-mortem's baseline, on real simhosts.

use ringward::replay::{Scenario, Target, run_scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replayed_incident_ends_in_a_second_behind_ringward_and_not_behind_the_baseline() {
    let scenario = Scenario::short();
    let ringward = run_scenario(&scenario, Target::Ringward)
        .await
        .expect("ringward run");
    let baseline = run_scenario(&scenario, Target::Baseline)
        .await
        .expect("baseline run");
    let summary = ringward::replay::summary(&[ringward.clone(), baseline.clone()]);
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
