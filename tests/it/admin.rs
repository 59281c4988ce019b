//! The admin API: reads are open, changes need the bearer token (401 and no change without it).

use ringward_tests::Fleet;
use ringward_tests::client;

use crate::support::{
    TOKEN, config_for, host_entry, host_of, mapping, post_admin, start, state_of,
};

#[tokio::test]
async fn mutations_need_the_token_and_change_nothing_without_it() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let before = mapping(&router, 20).await;
    let (key, target) = before[0].clone();
    let path = format!("/admin/hosts/{target}/eject");

    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some(TOKEN),
        Some("Basic dGVzdA=="),
    ] {
        let reply = post_admin(&router, &path, auth).await;
        assert_eq!(reply.status, 401, "auth {auth:?}: {}", reply.text());
        assert_eq!(
            state_of(&router, &target).await,
            "healthy",
            "auth {auth:?} changed the state"
        );
        assert_eq!(
            host_of(&router, &key).await,
            target,
            "auth {auth:?} moved the key"
        );
    }

    let bearer = format!("Bearer {TOKEN}");
    let reply = post_admin(&router, &path, Some(&bearer)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["state"], "ejected");
    assert_eq!(state_of(&router, &target).await, "ejected");
    assert_eq!(host_entry(&router, &target).await["reason"], "operator");
    assert_ne!(
        host_of(&router, &key).await,
        target,
        "an ejected host gets no keys"
    );

    // The scheme is case-insensitive (RFC 9110 section 11.1); extra spaces are tolerated.
    for auth in [format!("bearer {TOKEN}"), format!("BEARER   {TOKEN}")] {
        let reply = post_admin(&router, "/admin/hosts/nope/drain", Some(&auth)).await;
        assert_eq!(reply.status, 404, "auth {auth:?} passes: {}", reply.text());
    }
    let unknown = post_admin(&router, "/admin/hosts/nope/drain", Some(&bearer)).await;
    assert_eq!(unknown.status, 404);

    let reply = post_admin(
        &router,
        &format!("/admin/hosts/{target}/restore"),
        Some(&bearer),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_ne!(state_of(&router, &target).await, "ejected");
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn read_endpoints_follow_the_contract() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let admin = router.admin_addr();
    let _ = mapping(&router, 5).await;

    assert_eq!(
        client::get(admin, "/healthz")
            .await
            .expect("healthz")
            .status,
        200
    );
    assert_eq!(
        client::get(admin, "/readyz").await.expect("readyz").status,
        200
    );

    let hosts = client::get(admin, "/admin/hosts")
        .await
        .expect("hosts")
        .json();
    let first = &hosts["hosts"][0];
    for field in [
        "name",
        "addr",
        "weight",
        "state",
        "reason",
        "since_ms",
        "in_flight",
        "db_pool",
        "last_probe_ms",
    ] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert!(
        ["healthy", "degraded", "ejected", "probation", "draining"]
            .contains(&first["state"].as_str().unwrap_or("")),
        "{first}"
    );

    let route = client::get(admin, "/admin/route?key=alice")
        .await
        .expect("route")
        .json();
    assert_eq!(route["key"], "alice");
    let host = route["host"].as_str().expect("a host");
    let walk = route["walk"].as_array().expect("walk");
    assert_eq!(walk.last().expect("a step")["host"], host);
    assert!(walk.last().expect("a step")["skipped"].is_null());

    let metrics = client::get(admin, "/metrics")
        .await
        .expect("metrics")
        .text();
    for name in [
        "ringward_requests_total{host=",
        "ringward_request_duration_seconds_bucket",
        "ringward_in_flight ",
        "ringward_unrouted_requests_total{class=",
        "ringward_host_state{",
        "ringward_probe_age_seconds{",
        "ringward_ejections_total",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }
    assert!(
        !metrics.contains("ringward_in_flight_total"),
        "a gauge must not carry _total"
    );
    assert_eq!(
        metrics.matches("# TYPE ").count(),
        metrics.matches("# HELP ").count(),
        "every family has HELP and TYPE"
    );
    let page = client::get(admin, "/").await.expect("page");
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&fleet.named_addrs()[0].0));
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn wrong_methods_get_405_with_allow() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let name = fleet.named_addrs()[0].0.clone();
    let admin = router.admin_addr();
    for action in ["drain", "eject", "restore"] {
        let reply = client::get(admin, &format!("/admin/hosts/{name}/{action}"))
            .await
            .expect("admin answers");
        assert_eq!(reply.status, 405, "GET {action}: {}", reply.text());
        assert_eq!(reply.header("allow"), Some("POST"), "{action}");
    }
    assert_eq!(
        state_of(&router, &name).await,
        "healthy",
        "a GET changed nothing"
    );
    let reply = client::get(admin, &format!("/admin/hosts/{name}/bogus"))
        .await
        .expect("admin answers");
    assert_eq!(reply.status, 404, "an unknown action is not a resource");
    let reply = post_admin(&router, "/metrics", None).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn readyz_is_503_when_no_host_is_eligible() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let name = fleet.named_addrs()[0].0.clone();
    let reply = post_admin(
        &router,
        &format!("/admin/hosts/{name}/drain"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        client::get(router.admin_addr(), "/readyz")
            .await
            .expect("readyz")
            .status,
        503
    );
    let r = client::get_with(router.listen_addr(), "/", &[("x-val", "k")])
        .await
        .expect("answer");
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    router.shutdown().await;
    fleet.shutdown().await;
}
