//! A host in probation takes back a growing share of its own keys; while it
//! does, `/admin/route` must name the host each key's requests really go to.

use std::time::Duration;

use ringward_tests::{Fleet, eventually_async};

use crate::support::{fast_config_for, host_of, mapping, routed_by_admin, start, state_of};

#[tokio::test]
async fn admin_route_names_the_host_real_requests_go_to_while_a_host_is_in_probation() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    // Hold the host on the first probation step (a quarter of its keys) for the whole test.
    config.health.passive.probation_step = Duration::from_secs(60);
    config.health.passive.probation_successes = 100_000;
    let router = start(config).await;
    let before = mapping(&router, 120).await;
    let sick = before[0].1.clone();
    let sick_keys: Vec<String> = before
        .iter()
        .filter(|(_, h)| *h == sick)
        .map(|(k, _)| k.clone())
        .collect();

    let host = fleet.by_name(&sick).expect("sick host");
    host.faults().deadlock(host.config().pool_size);
    eventually_async(Duration::from_secs(5), "the host is ejected", || {
        let (router, sick, key) = (&router, sick.clone(), sick_keys[0].clone());
        async move {
            // Traffic for its keys, so the pool has waiters and requests hang.
            let path = format!("/v/{key}/run");
            let _ =
                ringward_tests::client::get_with(router.listen_addr(), &path, &[("x-val", &key)])
                    .await;
            state_of(router, &sick).await == "ejected"
        }
    })
    .await;
    host.faults().release();
    eventually_async(Duration::from_secs(5), "the host enters probation", || {
        let (router, sick) = (&router, sick.clone());
        async move { state_of(router, &sick).await == "probation" }
    })
    .await;

    let (mut on_sick, mut elsewhere) = (0, 0);
    for key in &sick_keys {
        let admin = routed_by_admin(&router, key).await;
        let real = host_of(&router, key).await;
        assert_eq!(admin.as_deref(), Some(real.as_str()), "key {key}");
        if real == sick {
            on_sick += 1;
        } else {
            elsewhere += 1;
        }
    }
    assert_eq!(
        state_of(&router, &sick).await,
        "probation",
        "still on the ramp"
    );
    assert!(
        on_sick > 0 && elsewhere > 0,
        "the ramp admits some of the host's {} keys, not all: {on_sick} back, {elsewhere} elsewhere",
        sick_keys.len()
    );
    router.shutdown().await;
    fleet.shutdown().await;
}
