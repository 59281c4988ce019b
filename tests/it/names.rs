//! Hosts given by DNS name (`[[hosts]].addr = "name:port"`): resolved at start and again
//! every `upstream.resolve_interval`; a new address moves no key; a failed lookup keeps the
//! last good address; a name that never resolved leaves its host out (its Vals go on to the
//! next hosts) with the reason in `/admin/hosts`, and the router starts all the same.
//!
//! `localhost` goes through the system's resolver; the other names through a table the test
//! edits (`Router::start_with_resolver`), so a name can stop (or start) resolving.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringward::{Config, Resolve, ResolveFuture, Router, TokioClock};
use ringward_tests::{Fleet, client, eventually_async};

use crate::support::{config_for, get_key, host_entry, host_of, mapping, metric, start};

/// How long a change may take to show (the interval below is 50 ms).
const DEADLINE: Duration = Duration::from_secs(5);

/// Names resolved from a table a test edits; a name not in it fails like NXDOMAIN.
#[derive(Default)]
struct Table {
    addrs: Mutex<HashMap<String, SocketAddr>>,
    lookups: AtomicU64,
}

impl Table {
    fn set(&self, name: &str, addr: SocketAddr) {
        self.addrs
            .lock()
            .expect("table")
            .insert(name.to_owned(), addr);
    }

    fn remove(&self, name: &str) {
        self.addrs.lock().expect("table").remove(name);
    }

    fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Resolve for Table {
    fn resolve(&self, name: &str, _port: u16) -> ResolveFuture {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self.addrs.lock().expect("table").get(name).copied();
        Box::pin(async move {
            answer
                .map(|a| vec![a])
                .ok_or_else(|| std::io::Error::other("no such name in the test's table"))
        })
    }
}

/// `config` with host `i` given as `name:port` (the port of its simhost) and names looked up
/// every 50 ms.
fn named(mut config: Config, i: usize, name: &str, port: u16) -> Config {
    config.hosts[i].addr = format!("{name}:{port}").parse().expect("a name");
    config.upstream.resolve_interval = Duration::from_millis(50);
    config
}

async fn start_with(config: Config, table: &Arc<Table>) -> Router {
    let resolver: Arc<dyn Resolve> = Arc::clone(table) as Arc<dyn Resolve>;
    Router::start_with_resolver(config, Arc::new(TokioClock), resolver)
        .await
        .expect("router starts")
}

/// The first of `key-0`, `key-1`, ... whose walk starts at `host` (`/admin/route`, no traffic).
async fn key_starting_at(router: &Router, host: &str) -> String {
    for i in 0..500 {
        let key = format!("key-{i}");
        let reply = client::get(router.admin_addr(), &format!("/admin/route?key={key}"))
            .await
            .expect("admin route");
        if reply.json()["walk"][0]["host"] == host {
            return key;
        }
    }
    panic!("no key starts at {host}");
}

#[tokio::test]
async fn a_host_given_as_localhost_serves_its_own_keys() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let port = fleet[1].addr().port();
    // The system's resolver: `localhost` is in /etc/hosts.
    let mut by_name = config_for(&fleet);
    by_name.hosts[1].addr = format!("localhost:{port}").parse().expect("a name");
    let router = start(by_name).await;
    let literal = start(config_for(&fleet)).await;

    let entry = host_entry(&router, "host-1").await;
    assert_eq!(entry["addr"], format!("localhost:{port}"));
    assert_eq!(entry["resolved"], true, "{entry}");
    assert_eq!(entry["resolve_error"], serde_json::Value::Null, "{entry}");
    let resolved: SocketAddr = entry["resolved_addr"]
        .as_str()
        .expect("an address")
        .parse()
        .expect("ip:port");
    assert!(
        resolved.ip().is_loopback() && resolved.port() == port,
        "{resolved}"
    );

    // The ring hashes names: the same keys go to the same hosts as with the literal address,
    // and host-1's are served by host-1 (`host_of` checks the simhost's own header).
    let keys = mapping(&router, 30).await;
    assert!(keys.iter().any(|(_, h)| h == "host-1"), "{keys:?}");
    for (key, host) in &keys {
        assert_eq!(&host_of(&literal, key).await, host, "{key}");
    }
    assert!(fleet[1].stats().val_requests > 0);
    router.shutdown().await;
    literal.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_host_whose_name_stops_resolving_keeps_its_last_address() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let table = Arc::new(Table::default());
    table.set("host-0.test", fleet[0].addr());
    let config = named(config_for(&fleet), 0, "host-0.test", fleet[0].addr().port());
    let router = start_with(config, &table).await;
    let key = key_starting_at(&router, "host-0").await;
    assert_eq!(host_of(&router, &key).await, "host-0");

    table.remove("host-0.test");
    let failed_lookups = "ringward_host_resolve_failures_total{host=\"host-0\"}";
    // Several failed lookups, so the address was kept through more than one interval.
    eventually_async(DEADLINE, "three failed lookups of host-0.test", || async {
        metric(&router, failed_lookups).await >= 3
    })
    .await;
    let entry = host_entry(&router, "host-0").await;
    assert_eq!(entry["resolved"], true, "{entry}");
    assert_eq!(entry["resolved_addr"], fleet[0].addr().to_string());
    let error = entry["resolve_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "host-0.test:{} did not resolve: no such name",
            fleet[0].addr().port()
        )),
        "{entry}"
    );
    assert_eq!(entry["state"], "healthy", "{entry}");
    // Still served where it was, requests and probes alike.
    let served = fleet[0].stats().val_requests;
    let probed = fleet[0].stats().health_requests;
    assert_eq!(host_of(&router, &key).await, "host-0");
    assert_eq!(fleet[0].stats().val_requests, served + 1);
    eventually_async(DEADLINE, "host-0 still probed", || async {
        fleet[0].stats().health_requests > probed
    })
    .await;

    // It resolves again: the error goes.
    table.set("host-0.test", fleet[0].addr());
    eventually_async(DEADLINE, "host-0's resolve_error cleared", || async {
        host_entry(&router, "host-0").await["resolve_error"].is_null()
    })
    .await;
    assert_eq!(host_of(&router, &key).await, "host-0");
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_new_address_moves_no_key_and_gets_the_requests() {
    // host-0's name moves from its simhost to a spare one (a redeploy).
    let fleet = Fleet::start(3).await.expect("fleet");
    let spare = Fleet::start_with([Fleet::test_config(9)])
        .await
        .expect("spare");
    let table = Arc::new(Table::default());
    table.set("host-0.test", fleet[0].addr());
    let config = named(config_for(&fleet), 0, "host-0.test", fleet[0].addr().port());
    let router = start_with(config, &table).await;
    let before = mapping(&router, 30).await;
    assert!(before.iter().any(|(_, h)| h == "host-0"), "{before:?}");

    table.set("host-0.test", spare[0].addr());
    let moved = spare[0].addr().to_string();
    eventually_async(DEADLINE, "host-0 at the spare's address", || async {
        host_entry(&router, "host-0").await["resolved_addr"] == moved.as_str()
    })
    .await;
    for (key, host) in &before {
        let reply = get_key(&router, key).await;
        assert_eq!(reply.status, 200, "{key}: {}", reply.text());
        assert_eq!(
            reply.header("x-ringward-host"),
            Some(host.as_str()),
            "{key} moved"
        );
        let served_by = if host == "host-0" { "host-9" } else { host };
        assert_eq!(reply.header("x-simhost"), Some(served_by), "{key}");
    }
    let entry = host_entry(&router, "host-0").await;
    assert_eq!(entry["state"], "healthy", "{entry}");
    router.shutdown().await;
    spare.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_name_that_never_resolved_leaves_its_host_out_and_its_vals_go_on() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let table = Arc::new(Table::default());
    let port = fleet[2].addr().port();
    let config = named(config_for(&fleet), 2, "host-2.test", port);
    // The router starts with a host it cannot reach.
    let router = start_with(config, &table).await;

    let entry = host_entry(&router, "host-2").await;
    assert_eq!(entry["addr"], format!("host-2.test:{port}"));
    assert_eq!(entry["resolved"], false, "{entry}");
    assert_eq!(entry["resolved_addr"], serde_json::Value::Null, "{entry}");
    let error = entry["resolve_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(&format!("host-2.test:{port} did not resolve: no such name")),
        "{entry}"
    );
    let ready = client::get(router.admin_addr(), "/readyz")
        .await
        .expect("readyz");
    assert_eq!(ready.status, 200, "the other hosts are eligible");
    let page = client::get(router.admin_addr(), "/").await.expect("page");
    assert!(
        page.text().contains("takes no requests:"),
        "{}",
        page.text()
    );

    // A Val whose walk starts at host-2 skips it as unresolved and is served by the next.
    let key = key_starting_at(&router, "host-2").await;
    let route = client::get(router.admin_addr(), &format!("/admin/route?key={key}"))
        .await
        .expect("route")
        .json();
    assert_eq!(route["walk"][0]["skipped"], "unresolved", "{route}");
    let next = route["host"].as_str().expect("a host").to_owned();
    assert_ne!(next, "host-2");
    for _ in 0..5 {
        assert_eq!(host_of(&router, &key).await, next);
    }
    // Other hosts are probed; host-2, with no address, is not (nor sent anything).
    let probed = fleet[0].stats().health_requests;
    eventually_async(DEADLINE, "two probe rounds", || async {
        fleet[0].stats().health_requests >= probed + 2
    })
    .await;
    assert_eq!(fleet[2].stats().health_requests, 0);
    assert_eq!(fleet[2].stats().val_requests, 0);
    let lookups = table.lookups();
    assert!(lookups >= 2, "looked up again since start: {lookups}");

    // Once the name resolves, the host takes its Vals back.
    table.set("host-2.test", fleet[2].addr());
    eventually_async(DEADLINE, "host-2 takes its key back", || async {
        let reply = get_key(&router, &key).await;
        reply.header("x-simhost") == Some("host-2")
    })
    .await;
    let entry = host_entry(&router, "host-2").await;
    assert_eq!(entry["resolved"], true, "{entry}");
    assert_eq!(entry["resolve_error"], serde_json::Value::Null, "{entry}");
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_host_a_reload_adds_by_name_is_looked_up_at_once() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let table = Arc::new(Table::default());
    table.set("host-2.test", fleet[2].addr());
    // Start with host-0 and host-1 only, and an interval no test waits for: only the
    // reload's own lookup can resolve the new name.
    let full = named(config_for(&fleet), 2, "host-2.test", fleet[2].addr().port());
    let mut first = full.clone();
    first.hosts.truncate(2);
    first.upstream.resolve_interval = Duration::from_secs(3600);
    let mut reloaded = full;
    reloaded.upstream.resolve_interval = Duration::from_secs(3600);
    let router = start_with(first, &table).await;
    assert_eq!(table.lookups(), 0, "no name to look up at start");

    router.reload(reloaded).expect("reload");
    eventually_async(DEADLINE, "host-2 resolved after the reload", || async {
        host_entry(&router, "host-2").await["resolved"] == true
    })
    .await;
    let key = key_starting_at(&router, "host-2").await;
    assert_eq!(host_of(&router, &key).await, "host-2");
    router.shutdown().await;
    fleet.shutdown().await;
}
