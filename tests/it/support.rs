//! Router-side helpers: start a router in front of a fleet, ask it where keys go.

use std::net::SocketAddr;
use std::time::Duration;

use ringward::config::AdminToken;
use ringward::{Config, Router};
use ringward_tests::Fleet;
use ringward_tests::client::{self, Reply};

/// The admin token the test configs use.
pub(crate) const TOKEN: &str = "test-token";

/// Loopback, any port.
pub(crate) fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The default config for `fleet`, on ephemeral ports, with an admin token.
pub(crate) fn config_for(fleet: &Fleet) -> Config {
    let mut config = Config::for_hosts(any_port(), any_port(), &fleet.named_addrs());
    config.admin.token = Some(AdminToken::new(TOKEN));
    // The access log has its own tests (access_log.rs); elsewhere it would only fill stdout.
    config.access_log.enabled = false;
    config
}

/// [`config_for`] with the health timers shortened so ejection and recovery take well under
/// a second each (detection thresholds themselves stay the defaults).
pub(crate) fn fast_config_for(fleet: &Fleet) -> Config {
    let mut config = config_for(fleet);
    config.listen.shutdown_grace = Duration::from_secs(1);
    config.health.active.interval = Duration::from_millis(100);
    config.health.active.timeout = Duration::from_millis(80);
    let passive = &mut config.health.passive;
    passive.ejection_base = Duration::from_millis(300);
    passive.ejection_max = Duration::from_secs(5);
    passive.probation_step = Duration::from_millis(100);
    passive.probation_successes = 2;
    config
}

/// `POST path` on the admin listener with an optional `Authorization` value.
pub(crate) async fn post_admin(router: &Router, path: &str, auth: Option<&str>) -> Reply {
    let mut b = client::request(http::Method::POST, path);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    client::send(
        router.admin_addr(),
        b.body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request"),
    )
    .await
    .expect("admin answers")
}

/// The guard's view of Val `key` (`GET /admin/vals/{key}`).
pub(crate) async fn val_entry(router: &Router, key: &str) -> serde_json::Value {
    let reply = client::get(router.admin_addr(), &format!("/admin/vals/{key}"))
        .await
        .expect("admin vals");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// The value of the metric sample `series` (its name with labels, as rendered) in
/// `/metrics`; a series that is not there fails the test.
pub(crate) async fn metric(router: &Router, series: &str) -> u64 {
    let reply = client::get(router.admin_addr(), "/metrics")
        .await
        .expect("metrics");
    reply
        .text()
        .lines()
        .find_map(|l| {
            let value: f64 = l
                .strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()?;
            Some(value as u64)
        })
        .unwrap_or_else(|| panic!("no sample {series} in /metrics"))
}

/// Tasks alive on the router's proxy workers (`ringward_worker_tasks`, summed).
pub(crate) async fn worker_tasks(router: &Router) -> u64 {
    let reply = client::get(router.admin_addr(), "/metrics")
        .await
        .expect("metrics");
    let text = reply.text();
    let samples: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("ringward_worker_tasks{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(!samples.is_empty(), "no ringward_worker_tasks in /metrics");
    samples.iter().sum()
}

/// Starts a router.
pub(crate) async fn start(config: Config) -> Router {
    Router::start(config).await.expect("router starts")
}

/// `GET /v/{key}/run` through the router with the key in `x-val`.
pub(crate) async fn get_key(router: &Router, key: &str) -> Reply {
    let path = format!("/v/{key}/run");
    client::get_with(router.listen_addr(), &path, &[("x-val", key)])
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// The host a real request for `key` lands on (checked against the host's own header).
pub(crate) async fn host_of(router: &Router, key: &str) -> String {
    let reply = get_key(router, key).await;
    assert_eq!(reply.status, 200, "key {key}: {}", reply.text());
    let routed = reply
        .header("x-ringward-host")
        .unwrap_or_else(|| panic!("no x-ringward-host for {key}"))
        .to_owned();
    assert_eq!(
        reply.header("x-simhost"),
        Some(routed.as_str()),
        "the named host served it"
    );
    routed
}

/// The host `/admin/route` names for `key` (no traffic).
pub(crate) async fn routed_by_admin(router: &Router, key: &str) -> Option<String> {
    let reply = client::get(router.admin_addr(), &format!("/admin/route?key={key}"))
        .await
        .expect("admin route");
    assert_eq!(reply.status, 200);
    reply.json()["host"].as_str().map(str::to_owned)
}

/// The `/admin/hosts` entry of `name`.
pub(crate) async fn host_entry(router: &Router, name: &str) -> serde_json::Value {
    let reply = client::get(router.admin_addr(), "/admin/hosts")
        .await
        .expect("admin hosts");
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    doc["hosts"]
        .as_array()
        .expect("hosts array")
        .iter()
        .find(|h| h["name"] == name)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// The state `/admin/hosts` reports for `name`.
pub(crate) async fn state_of(router: &Router, name: &str) -> String {
    host_entry(router, name).await["state"]
        .as_str()
        .unwrap_or("absent")
        .to_owned()
}

/// Keys `key-0`, `key-1`, ... and the host each goes to now (via real requests).
pub(crate) async fn mapping(router: &Router, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{i}");
        let host = host_of(router, &key).await;
        out.push((key, host));
    }
    out
}

/// Reads `stream` until the peer closes it (EOF or an error), appending what arrives to
/// `got`; false when it is still open after `bound`.
pub(crate) async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    got: &mut Vec<u8>,
    bound: Duration,
) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 8192];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok()
}
