//! Hot reload: adding a host moves only the keys the new ring gives it; a bad file is refused
//! and the old config keeps serving.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ringward::Config;
use ringward_tests::client;
use ringward_tests::{Fleet, eventually_async};
use router_core::{HostSpec, KeyHash, Ring};

use crate::support::{TOKEN, config_for, host_of, mapping, metric, routed_by_admin, start};

/// The primary host of `key` on a ring of `names` (what the router must agree with).
fn primary(names: &[String], key: &str) -> String {
    let ring = Ring::try_new(names.iter().map(|n| HostSpec {
        name: n.clone(),
        weight: 1,
    }))
    .expect("ring");
    ring.host(ring.primary(KeyHash::of(key.as_bytes())))
        .name
        .clone()
}

#[tokio::test]
async fn adding_a_host_moves_only_the_keys_the_new_ring_gives_it() {
    let fleet = Fleet::start(4).await.expect("fleet");
    let all = fleet.named_addrs();
    let names: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();
    let mut config = config_for(&fleet);
    config.hosts.truncate(3);
    let router = start(config.clone()).await;
    let before = mapping(&router, 60).await;
    for (key, host) in &before {
        assert_eq!(
            host,
            &primary(&names[..3], key),
            "{key} follows the 3-host ring"
        );
    }

    // An operator ejects one host first: its state must survive the ring rebuild.
    let ejected = names[1].clone();
    let bearer = format!("Bearer {TOKEN}");
    let req = client::request(http::Method::POST, &format!("/admin/hosts/{ejected}/eject"))
        .header("authorization", bearer.as_str())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    assert_eq!(
        client::send(router.admin_addr(), req)
            .await
            .expect("eject")
            .status,
        200
    );
    router.reload(config_for(&fleet)).expect("reload applies");
    assert_eq!(
        crate::support::state_of(&router, &ejected).await,
        "ejected",
        "state kept across the reload"
    );
    let restore = client::request(
        http::Method::POST,
        &format!("/admin/hosts/{ejected}/restore"),
    )
    .header("authorization", bearer.as_str())
    .body(http_body_util::Full::new(bytes::Bytes::new()))
    .expect("request");
    assert_eq!(
        client::send(router.admin_addr(), restore)
            .await
            .expect("restore")
            .status,
        200
    );
    let mut moved = 0;
    for (key, host) in &before {
        let now = host_of(&router, key).await;
        let expected = primary(&names, key);
        assert_eq!(now, expected, "{key} follows the 4-host ring");
        if &now != host {
            assert_eq!(now, names[3], "{key} moved, but not to the new host");
            moved += 1;
        }
    }
    assert!(
        moved > 0 && moved < before.len() / 2,
        "about a quarter of the keys moved: {moved}"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

static FILES: AtomicU32 = AtomicU32::new(0);

/// A fresh config file path in the temp dir.
fn temp_config() -> PathBuf {
    let n = FILES.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ringward-it-{}-{n}.toml", std::process::id()))
}

fn toml_for(hosts: &[(String, std::net::SocketAddr)]) -> String {
    let mut text = format!(
        "[listen]\naddr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
         [route]\nkey = [\"header:x-val\", \"path_segment:1\"]\n[reload]\npoll_interval = \"20ms\"\n"
    );
    for (name, addr) in hosts {
        text.push_str(&format!(
            "[[hosts]]\nname = \"{name}\"\naddr = \"{addr}\"\n"
        ));
    }
    text
}

#[tokio::test]
async fn a_bad_file_is_refused_and_a_good_one_applies() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let all = fleet.named_addrs();
    let path = temp_config();
    std::fs::write(&path, toml_for(&all[..2])).expect("write config");
    let router = start(Config::load(&path).expect("valid file")).await;
    router.watch_config(path.clone());
    let before = mapping(&router, 20).await;

    // A broken file (zero weight, unknown key): refused, logged, old config serves on.
    let mut bad = toml_for(&all);
    bad.push_str("weight = 0\nbogus = true\n");
    std::fs::write(&path, bad).expect("write bad config");
    eventually_async(
        Duration::from_secs(3),
        "the bad reload is refused",
        || async { metric(&router, "ringward_reloads_failed_total").await >= 1 },
    )
    .await;
    for (key, host) in &before {
        assert_eq!(
            &host_of(&router, key).await,
            host,
            "{key} still served as before"
        );
    }
    assert!(routed_by_admin(&router, "probe-key").await.is_some());

    // A good file with the third host: applied.
    std::fs::write(&path, toml_for(&all)).expect("write good config");
    eventually_async(
        Duration::from_secs(3),
        "the good reload applies",
        || async {
            let hosts = client::get(router.admin_addr(), "/admin/hosts")
                .await
                .expect("hosts")
                .json();
            hosts["hosts"].as_array().is_some_and(|h| h.len() == 3)
        },
    )
    .await;
    let _ = std::fs::remove_file(&path);
    router.shutdown().await;
    fleet.shutdown().await;
}
