//! The access log and the request ID, through the real router: one line per request, with
//! what happened to it (retries, rescues, the router's own 503 and 504), and the request ID
//! the client, the host and the log all share.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ringward::Router;
use ringward::config::{AccessLogFormat, AccessLogPath};
use ringward_tests::{Fleet, client};
use serde_json::Value;
use tokio::time::Instant;

use crate::faults::rawhost::{Action, RawHost, ok_response};
use crate::support::{TOKEN, config_for, fast_config_for, mapping, post_admin, start};

/// A fresh access log file for test `name`.
fn log_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "ringward-it-access-{}-{name}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// The line whose request ID is `id`, once it is written (the worker hands lines over
/// within 100 ms).
async fn line_of(path: &Path, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(v) = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["request_id"] == id)
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no access log line for {id} in {}:\n{text}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET /v/{key}/run` with the key in `x-val` and request ID `id`.
async fn get(router: &Router, key: &str, id: &str) -> client::Reply {
    client::get_with(
        router.listen_addr(),
        &format!("/v/{key}/run?secret=1"),
        &[("x-val", key), ("x-request-id", id)],
    )
    .await
    .expect("an answer")
}

#[tokio::test]
async fn a_served_request_is_one_line_with_its_host_bytes_and_id() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let path = log_path("served");
    let mut config = config_for(&fleet);
    config.access_log.enabled = true;
    config.access_log.path = AccessLogPath::File(path.clone());
    let router = start(config).await;

    let reply = get(&router, "alice-hello", "it-served-1").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("it-served-1"));
    let line = line_of(&path, "it-served-1").await;
    assert_eq!(line["status"], 200);
    assert_eq!(line["method"], "GET");
    assert_eq!(
        line["path"], "/v/alice-hello/run",
        "the path, not the query"
    );
    assert_eq!(line["key"], "alice-hello");
    assert_eq!(
        line["host"].as_str(),
        reply.header("x-ringward-host"),
        "the host that answered"
    );
    assert_eq!(
        (line["attempts"].clone(), line["retries"].clone()),
        (1.into(), 0.into())
    );
    assert_eq!(line["rescues"], 0);
    assert_eq!(line["bytes_out"], reply.body.len() as u64);
    assert_eq!(line["bytes_in"], 0);
    assert_eq!(line["complete"], true);
    assert!(
        line["client"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1:")
    );
    assert!(line["duration_ms"].as_f64().unwrap_or(-1.0) >= 0.0);

    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_request_id_goes_to_the_host_and_back_and_is_made_when_missing() {
    let host = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let path = log_path("id");
    let mut config = ringward::Config::for_hosts(
        crate::support::any_port(),
        crate::support::any_port(),
        &[("raw".to_owned(), host.addr())],
    );
    config.access_log.enabled = true;
    config.access_log.path = AccessLogPath::File(path.clone());
    config.access_log.format = AccessLogFormat::Json;
    let router = start(config).await;

    // Kept: the client's own ID reaches the host once and comes back.
    let reply = get(&router, "k1", "client-id-42").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-request-id"), Some("client-id-42"));
    let seen = host.requests();
    let head = &seen
        .last()
        .expect("the host saw it")
        .head
        .to_ascii_lowercase();
    assert_eq!(head.matches("x-request-id:").count(), 1, "{head}");
    assert!(head.contains("x-request-id: client-id-42"), "{head}");

    // Made: without one (or with one unfit for a log line) the router makes one, the same
    // for the client, the host and the log.
    for sent in [None, Some("has a space")] {
        let mut headers = vec![("x-val", "k2")];
        headers.extend(sent.map(|s| ("x-request-id", s)));
        let reply = client::get_with(router.listen_addr(), "/v/k2/run", &headers)
            .await
            .expect("an answer");
        let id = reply.header("x-request-id").expect("an ID").to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let head = host
            .requests()
            .last()
            .expect("seen")
            .head
            .to_ascii_lowercase();
        assert!(head.contains(&format!("x-request-id: {id}")), "{head}");
        assert_eq!(line_of(&path, &id).await["key"], "k2");
    }

    router.shutdown().await;
    host.stop();
}

#[tokio::test]
async fn a_retry_and_a_rescue_are_counted_on_the_line() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let path = log_path("retry");
    let mut config = fast_config_for(&fleet);
    config.access_log.enabled = true;
    config.access_log.path = AccessLogPath::File(path.clone());
    let router = start(config).await;
    let before = mapping(&router, 20).await;

    // A reset before any response byte: a GET is retried once, on the next preference.
    let (key, flaky) = before[0].clone();
    fleet.by_name(&flaky).expect("host").faults().reset(true);
    let reply = get(&router, &key, "it-retry-1").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let line = line_of(&path, "it-retry-1").await;
    assert_eq!(
        (line["attempts"].clone(), line["retries"].clone()),
        (2.into(), 1.into())
    );
    assert_ne!(
        line["host"],
        flaky.as_str(),
        "logged with the host that answered"
    );
    fleet.clear_faults();

    // A request waiting on a host that hangs is rescued when the operator ejects the host.
    let (key, stuck) = before
        .iter()
        .find(|(_, h)| *h != flaky)
        .cloned()
        .expect("a key on another host");
    fleet.by_name(&stuck).expect("host").faults().hang(true);
    let waiting = {
        let router_addr = router.listen_addr();
        let key = key.clone();
        tokio::spawn(async move {
            client::get_with(
                router_addr,
                &format!("/v/{key}/run"),
                &[("x-val", &key), ("x-request-id", "it-rescue-1")],
            )
            .await
        })
    };
    ringward_tests::eventually(Duration::from_secs(5), "the request is in flight", || {
        fleet.by_name(&stuck).is_some_and(|h| h.stats().hung > 0)
    })
    .await;
    let eject = post_admin(
        &router,
        &format!("/admin/hosts/{stuck}/eject"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(eject.status, 200, "{}", eject.text());
    let reply = waiting.await.expect("task").expect("an answer");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let line = line_of(&path, "it-rescue-1").await;
    assert_eq!(line["rescues"], 1);
    assert_eq!(line["attempts"], 2);
    assert_ne!(line["host"], stuck.as_str());

    fleet.clear_faults();
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_routers_own_503_and_504_are_logged() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let path = log_path("errors");
    let mut config = config_for(&fleet);
    config.access_log.enabled = true;
    config.access_log.path = AccessLogPath::File(path.clone());
    config.upstream.response_header_timeout = Duration::from_millis(300);
    let router = start(config).await;
    let name = fleet.hosts()[0].name().to_owned();

    // 504: the host never answers within the header timeout.
    fleet.hosts()[0].faults().hang(true);
    let reply = get(&router, "slow-val", "it-504").await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(reply.header("x-request-id"), Some("it-504"));
    let line = line_of(&path, "it-504").await;
    assert_eq!(line["status"], 504);
    assert_eq!(line["host"], name.as_str());
    assert_eq!(line["complete"], true);
    assert_eq!(line["bytes_out"], reply.body.len() as u64);
    fleet.clear_faults();

    // 503: the only host drained, no host may take the key.
    let drain = post_admin(
        &router,
        &format!("/admin/hosts/{name}/drain"),
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(drain.status, 200, "{}", drain.text());
    let reply = get(&router, "any-val", "it-503").await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    let line = line_of(&path, "it-503").await;
    assert_eq!(line["status"], 503);
    assert_eq!(line["host"], Value::Null);
    assert_eq!(line["attempts"], 0);

    // 400 before any key: logged with the key and host empty.
    let reply = client::get_with(router.listen_addr(), "/", &[("x-request-id", "it-400")])
        .await
        .expect("an answer");
    assert_eq!(reply.status, 400);
    let line = line_of(&path, "it-400").await;
    assert_eq!(
        (line["key"].clone(), line["status"].clone()),
        (Value::Null, 400.into())
    );

    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn logfmt_lines_and_no_log_when_disabled() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let path = log_path("text");
    let mut config = config_for(&fleet);
    config.access_log.enabled = true;
    config.access_log.path = AccessLogPath::File(path.clone());
    config.access_log.format = AccessLogFormat::Text;
    let router = start(config).await;
    assert_eq!(get(&router, "k", "it-text-1").await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains("request_id=it-text-1")) {
            break l.to_owned();
        }
        assert!(Instant::now() < deadline, "no text line:\n{text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(line.starts_with("time="), "{line}");
    assert!(line.contains(" method=GET path=/v/k/run key=k "), "{line}");
    assert!(
        line.contains(" status=200 attempts=1 retries=0 rescues=0 "),
        "{line}"
    );
    router.shutdown().await;

    // Off: nothing is written.
    let off = log_path("off");
    let mut config = config_for(&fleet);
    config.access_log.enabled = false;
    config.access_log.path = AccessLogPath::File(off.clone());
    let router = start(config).await;
    assert_eq!(get(&router, "k", "it-off-1").await.status, 200);
    router.shutdown().await;
    assert!(
        std::fs::read_to_string(&off).unwrap_or_default().is_empty(),
        "a disabled access log wrote"
    );
    fleet.shutdown().await;
}
