//! Row 15: the admin API refuses every change without the right token (and changes nothing),
//! and a public admin listener without a token is refused at start.

use std::net::SocketAddr;

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use ringward::{Config, Router};
use ringward_tests::Fleet;
use ringward_tests::client::{self, request};

use super::config;
use crate::support::{TOKEN, routed_by_admin, start};

async fn hosts_doc(router: &Router) -> Vec<(String, String)> {
    let doc = client::get(router.admin_addr(), "/admin/hosts")
        .await
        .expect("hosts")
        .json();
    doc["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap_or("").to_owned(),
                h["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn row15_admin_changes_without_the_right_token_are_401_and_change_nothing() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let router = start(config(&fleet.hosts_toml(), &[])).await;
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let mut routes = Vec::new();
    for k in &keys {
        routes.push(routed_by_admin(&router, k).await);
    }
    let states = hosts_doc(&router).await;
    let wrong_len = format!("Bearer {TOKEN}x");
    let prefix = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let lower = format!("bearer{TOKEN}");
    let auths: [Option<&str>; 7] = [
        None,
        Some("Bearer wrong-token"),
        Some(TOKEN),
        Some(&wrong_len),
        Some(&prefix),
        Some(&lower),
        Some("Bearer "),
    ];
    let mut refused = 0;
    for action in ["drain", "eject", "restore"] {
        for auth in auths {
            let mut b = request(Method::POST, &format!("/admin/hosts/host-1/{action}"));
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            let r = client::send(
                router.admin_addr(),
                b.body(Full::new(Bytes::new())).expect("req"),
            )
            .await
            .expect("answer");
            assert_eq!(r.status, 401, "{action} with {auth:?}: {}", r.text());
            refused += 1;
        }
    }
    assert_eq!(
        hosts_doc(&router).await,
        states,
        "a refused change changed a state"
    );
    for (k, was) in keys.iter().zip(&routes) {
        assert_eq!(&routed_by_admin(&router, k).await, was, "{k} moved");
    }
    println!(
        "FIGURE row 15: {refused} unauthorised changes (3 actions x 7 bad credentials): all 401, states and routes unchanged"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn row15_a_public_admin_listener_without_a_token_is_refused() {
    // By the config parser (run and check)...
    let text = "[admin]\naddr = \"0.0.0.0:0\"\n\n[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9\"\n";
    let errors = Config::from_toml_str(text).expect_err("refused");
    assert!(errors.has_path("admin.token"), "{errors}");
    // ...and by Router::start, whatever built the config.
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config::for_hosts(
        any,
        any,
        &[("a".into(), SocketAddr::from(([127, 0, 0, 1], 9)))],
    );
    // TEST-NET-1: never bound, the check must come first (and no public port is opened).
    config.admin.addr = SocketAddr::from(([192, 0, 2, 1], 0));
    config.admin.token = None;
    match Router::start(config).await {
        Ok(router) => {
            let admin = router.admin_addr();
            router.shutdown().await;
            panic!("a public admin listener without a token started on {admin}");
        }
        Err(e) => assert!(e.to_string().contains("admin.token"), "{e}"),
    }
    println!(
        "FIGURE row 15: a public admin bind without a token is refused by the parser (admin.token) and by Router::start"
    );
}

#[tokio::test]
async fn row15_without_a_configured_token_every_change_is_refused() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config::for_hosts(any, any, &fleet.named_addrs());
    config.access_log.enabled = false;
    let router = start(config).await;
    let states = hosts_doc(&router).await;
    for auth in [None, Some("Bearer "), Some("Bearer anything")] {
        let mut b = request(Method::POST, "/admin/hosts/host-0/eject");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        let r = client::send(
            router.admin_addr(),
            b.body(Full::new(Bytes::new())).expect("req"),
        )
        .await
        .expect("answer");
        assert_eq!(r.status, 401, "{auth:?}: {}", r.text());
    }
    assert_eq!(hosts_doc(&router).await, states);
    router.shutdown().await;
    fleet.shutdown().await;
}
