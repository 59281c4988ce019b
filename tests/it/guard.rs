//! The cascade guard through the real router: a poison Val is quarantined and never carried
//! to another host, an operator can quarantine and release by hand, and a merely popular
//! Val is never blamed.

use std::time::Duration;

use ringward_tests::Fleet;
use ringward_tests::client;
use ringward_tests::eventually_async;
use tokio::time::Instant;

use crate::support::{
    TOKEN, config_for, fast_config_for, get_key, host_of, metric, post_admin, start, state_of,
    val_entry,
};

#[tokio::test]
async fn an_operator_quarantines_and_releases_a_val_by_hand() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let home = host_of(&router, "alice").await;
    assert_eq!(val_entry(&router, "alice").await["state"], "normal");

    // Without the token: 401, and nothing changes.
    let path = "/admin/vals/alice/quarantine";
    assert_eq!(post_admin(&router, path, None).await.status, 401);
    assert_eq!(get_key(&router, "alice").await.status, 200);

    let bearer = format!("Bearer {TOKEN}");
    let reply = post_admin(&router, path, Some(&bearer)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["state"], "quarantined");

    // At once, answered by the router itself: 503, Retry-After, the contract's body.
    let served_before = fleet.val_requests().iter().sum::<u64>();
    let reply = get_key(&router, "alice").await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1))
    );
    let body = reply.json();
    assert_eq!(body["error"], "quarantined");
    assert_eq!(body["key"], "alice");
    assert_eq!(
        fleet.val_requests().iter().sum::<u64>(),
        served_before,
        "no host saw it"
    );
    // Other Vals are untouched, on their own host.
    assert_eq!(get_key(&router, "bob").await.status, 200);

    let entry = val_entry(&router, "alice").await;
    assert_eq!(entry["state"], "quarantined");
    assert_eq!(entry["reason"], "operator");
    assert!(entry["until_ms"].is_null(), "held until released: {entry}");
    let listed = client::get(router.admin_addr(), "/admin/vals")
        .await
        .expect("vals")
        .json();
    assert_eq!(listed["vals"][0]["key"], "alice");
    assert_eq!(
        metric(
            &router,
            "ringward_guard_quarantines_total{reason=\"operator\"}"
        )
        .await,
        1
    );
    assert_eq!(
        metric(&router, "ringward_guard_vals{state=\"quarantined\"}").await,
        1
    );
    assert!(metric(&router, "ringward_guard_refused_total").await >= 1);
    let page = client::get(router.admin_addr(), "/")
        .await
        .expect("page")
        .text();
    assert!(
        page.contains("alice") && page.contains("quarantined"),
        "status page shows it"
    );

    // The wrong method names the right one.
    let reply = client::get(router.admin_addr(), path).await.expect("get");
    assert_eq!(reply.status, 405);

    let reply = post_admin(&router, "/admin/vals/alice/release", Some(&bearer)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["state"], "normal");
    assert_eq!(
        host_of(&router, "alice").await,
        home,
        "back on its own host"
    );
    assert_eq!(
        metric(&router, "ringward_guard_vals{state=\"quarantined\"}").await,
        0
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

/// The seed incident with a hot Val on the sick host: the whole pool deadlocks under every
/// Val there. The host is ejected as ever; the hot Val, whose share of the stuck requests is
/// just its share of the traffic, is not blamed, and keeps being served elsewhere.
#[tokio::test]
async fn a_hot_val_on_a_host_that_fails_for_everyone_is_never_blamed() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(fast_config_for(&fleet)).await;
    let hot = "hot-val";
    let sick = host_of(&router, hot).await;
    let others: Vec<String> = (0..200)
        .map(|i| format!("val-{i}"))
        .filter(|k| k != hot)
        .collect();
    let addr = router.listen_addr();
    let stop = Instant::now() + Duration::from_secs(4);
    // Six clients hammer the hot Val; two more spread over 200 others: all succeed at first.
    let mut load = Vec::new();
    for c in 0..8usize {
        let others = others.clone();
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut i = c;
            while Instant::now() < stop {
                let key = if c < 6 {
                    hot.to_owned()
                } else {
                    others[i % others.len()].clone()
                };
                i += 7;
                let r = tokio::time::timeout(
                    Duration::from_secs(5),
                    client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", &key)]),
                )
                .await;
                statuses.push((
                    key == hot,
                    r.ok().and_then(Result::ok).map_or(0, |r| r.status.as_u16()),
                ));
            }
            statuses
        }));
    }
    // Warm up, then the incident: every pool slot deadlocked.
    eventually_async(Duration::from_secs(2), "hot traffic flows", || async {
        fleet.by_name(&sick).expect("host").stats().val_requests > 200
    })
    .await;
    let host = fleet.by_name(&sick).expect("sick host");
    host.faults().deadlock(host.config().pool_size);
    eventually_async(
        Duration::from_secs(1),
        "the sick host is ejected",
        || async { state_of(&router, &sick).await == "ejected" },
    )
    .await;
    let mut hot_ok = 0;
    for task in load {
        for (is_hot, status) in task.await.expect("load task") {
            if is_hot && status == 200 {
                hot_ok += 1;
            }
        }
    }
    assert!(hot_ok > 100, "the hot Val kept being served: {hot_ok}");
    let entry = val_entry(&router, hot).await;
    assert_eq!(entry["state"], "normal", "{entry}");
    let listed = client::get(router.admin_addr(), "/admin/vals")
        .await
        .expect("vals")
        .json();
    assert_eq!(listed["vals"].as_array().map(Vec::len), Some(0), "{listed}");
    for reason in ["dominant", "implicated_twice"] {
        let series = format!("ringward_guard_quarantines_total{{reason=\"{reason}\"}}");
        assert_eq!(metric(&router, &series).await, 0);
    }
    router.shutdown().await;
    fleet.shutdown().await;
}

/// What one flurry through the router did.
struct Flurry {
    /// Hosts whose pool the poison deadlocked.
    poisoned_hosts: Vec<String>,
    /// The poison Val's answers: (status, error field, time taken).
    poison: Vec<(u16, String, Duration)>,
    /// Other Vals' statuses during the flurry.
    others: Vec<u16>,
}

/// The post-mortem's trigger through the router: `poison` gets bursts of 4 parallel edits
/// every 250 ms for `for_`, and on whichever host runs two of them at once they deadlock its
/// pool; meanwhile 100 other Vals keep two clients busy.
async fn flurry(
    router: &ringward::Router,
    fleet: &Fleet,
    method: http::Method,
    for_: Duration,
) -> Flurry {
    for h in fleet.hosts() {
        h.faults().poison(Some("poison"), 2);
    }
    let addr = router.listen_addr();
    let stop = Instant::now() + for_;
    let others: Vec<_> = (0..2usize)
        .map(|c| {
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                let mut i = c;
                while Instant::now() < stop {
                    let key = format!("other-{}", i % 100);
                    i += 2;
                    let r = tokio::time::timeout(
                        Duration::from_secs(15),
                        client::get_with(addr, &format!("/v/{key}/run"), &[("x-val", &key)]),
                    )
                    .await;
                    statuses.push(r.ok().and_then(Result::ok).map_or(0, |r| r.status.as_u16()));
                }
                statuses
            })
        })
        .collect();
    let mut edits = Vec::new();
    while Instant::now() < stop {
        for _ in 0..4 {
            let method = method.clone();
            edits.push(tokio::spawn(async move {
                let started = Instant::now();
                let req = client::request(method, "/v/poison/edit")
                    .header("x-val", "poison")
                    .body(http_body_util::Full::new(bytes::Bytes::from_static(
                        b"{\"edit\":1}",
                    )))
                    .expect("request");
                let r =
                    tokio::time::timeout(Duration::from_secs(15), client::send(addr, req)).await;
                let took = started.elapsed();
                match r {
                    Ok(Ok(reply)) => {
                        let error = reply.json()["error"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        (reply.status.as_u16(), error, took)
                    }
                    _ => (0, String::new(), took),
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut poison = Vec::new();
    for e in edits {
        poison.push(e.await.expect("edit task"));
    }
    let mut statuses = Vec::new();
    for o in others {
        statuses.extend(o.await.expect("load task"));
    }
    Flurry {
        poisoned_hosts: fleet
            .hosts()
            .iter()
            .filter(|h| h.stats().poison_triggered > 0)
            .map(|h| h.name().to_owned())
            .collect(),
        poison,
        others: statuses,
    }
}

async fn poison_is_contained(method: http::Method) {
    let fleet = Fleet::start(4).await.expect("fleet");
    let mut config = fast_config_for(&fleet);
    config.guard.quarantine = Duration::from_secs(1);
    let router = start(config).await;
    let home = host_of(&router, "poison").await;
    let f = flurry(&router, &fleet, method.clone(), Duration::from_secs(3)).await;

    assert_eq!(
        f.poisoned_hosts,
        vec![home.clone()],
        "the poison reached one host only"
    );
    let entry = val_entry(&router, "poison").await;
    assert_eq!(entry["state"], "quarantined", "{entry}");
    assert_eq!(entry["reason"], "dominant", "{entry}");
    assert_eq!(entry["hosts"], serde_json::json!([home]), "{entry}");
    let evidence = &entry["evidence"][0];
    assert!(
        evidence["share"].as_f64().is_some_and(|s| s >= 0.5),
        "{entry}"
    );
    assert!(
        evidence["in_flight"].as_u64().is_some_and(|n| n >= 2),
        "{entry}"
    );

    // Every edit was answered, and none hung to a timeout: the ones caught on the sick host
    // when it failed were cut short; the rest were refused at the door.
    let slowest = f.poison.iter().map(|p| p.2).max().expect("edits");
    assert!(
        f.poison.iter().all(|p| p.0 != 0),
        "every edit answered: {:?}",
        f.poison
    );
    assert!(slowest < Duration::from_secs(2), "slowest edit {slowest:?}");
    let quarantined = f
        .poison
        .iter()
        .filter(|p| p.0 == 503 && p.1 == "quarantined")
        .count();
    assert!(
        quarantined * 10 >= f.poison.len() * 8,
        "most edits refused fast: {:?}",
        f.poison
    );

    // The other Vals kept being served.
    let ok = f.others.iter().filter(|&&s| s == 200).count();
    assert!(
        ok * 1000 >= f.others.len() * 999,
        "{method}: {ok} of {} other requests 200: {:?}",
        f.others.len(),
        f.others.iter().filter(|&&s| s != 200).collect::<Vec<_>>()
    );
    assert_eq!(
        metric(
            &router,
            "ringward_guard_quarantines_total{reason=\"dominant\"}"
        )
        .await,
        1
    );
    assert!(metric(&router, "ringward_guard_refused_total").await >= quarantined as u64);

    // The host recovers; the quarantine then ends, and the Val comes back to its own host.
    for h in fleet.hosts() {
        h.faults().poison(None, 2);
    }
    fleet.by_name(&home).expect("home").faults().release();
    eventually_async(
        Duration::from_secs(15),
        "the Val is served at home again",
        || {
            let router = &router;
            let home = home.clone();
            async move {
                let r = get_key(router, "poison").await;
                r.status == 200 && r.header("x-ringward-host") == Some(home.as_str())
            }
        },
    )
    .await;
    assert_eq!(val_entry(&router, "poison").await["state"], "normal");
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_poison_val_sending_gets_is_quarantined_and_reaches_one_host() {
    poison_is_contained(http::Method::GET).await;
}

#[tokio::test]
async fn a_poison_val_sending_posts_is_quarantined_and_reaches_one_host() {
    poison_is_contained(http::Method::POST).await;
}
