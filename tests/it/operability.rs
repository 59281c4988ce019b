//! Operating the router (docs/operations.md, docs/contracts.md: the admin API and metrics):
//! HEAD wherever GET works, metrics present from the start, build and process figures,
//! OpenMetrics on request, the effective config without its token, the log filter changed
//! while running, readiness failed and restored on purpose, and the log lines themselves.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use ringward::Router;
use ringward::logging::LogFormat;
use ringward_tests::Fleet;
use ringward_tests::client::{self, Reply};

use crate::support::{TOKEN, config_for, get_key, post_admin, start};

/// The ejection reasons docs/operations.md lists for `ringward_ejections_total`.
const EJECTION_REASONS: [&str; 7] = [
    "pool_exhausted",
    "hung_requests",
    "probe_failures",
    "consecutive_gateway_failures",
    "failure_rate",
    "operator",
    "peer",
];

/// What Prometheus sends in `Accept` when it scrapes.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

async fn send(router: &Router, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    send_body(router, method, path, headers, Bytes::new()).await
}

async fn send_body(
    router: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut b = client::request(method.clone(), path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    client::send(
        router.admin_addr(),
        b.body(Full::new(body.into())).expect("request"),
    )
    .await
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// The value of the sample `series` (name and labels as rendered) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

#[tokio::test]
async fn head_is_answered_wherever_get_is() {
    // `/admin/log-level` answers 501 until Ringward's subscriber is installed: install it
    // first, so another test installing it cannot change the answer between GET and HEAD.
    let _ = capture();
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let host = &fleet.named_addrs()[0].0;
    // Bodies that do not change between two requests: their length must match exactly.
    let stable = [
        "/healthz".to_owned(),
        "/readyz".to_owned(),
        "/admin/config".to_owned(),
        "/admin/route?key=alice".to_owned(),
        "/admin/vals/alice".to_owned(),
        "/admin/vals".to_owned(),
        "/admin/log-level".to_owned(),
    ];
    for path in &stable {
        let get = send(&router, Method::GET, path, &[]).await;
        let head = send(&router, Method::HEAD, path, &[]).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        assert!(head.body.is_empty(), "HEAD {path} has a body");
        let len = get.body.len().to_string();
        assert_eq!(
            head.header("content-length"),
            Some(len.as_str()),
            "HEAD {path}"
        );
    }
    // Bodies with live figures: the same status and type, a length, no body.
    for path in ["/metrics", "/admin/hosts", "/"] {
        let get = send(&router, Method::GET, path, &[]).await;
        let head = send(&router, Method::HEAD, path, &[]).await;
        assert_eq!(get.status, 200, "GET {path}");
        assert_eq!(head.status, 200, "HEAD {path}");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        assert!(head.body.is_empty(), "HEAD {path} has a body");
        let len: usize = head
            .header("content-length")
            .unwrap_or_else(|| panic!("HEAD {path}: no content-length"))
            .parse()
            .expect("a length");
        assert!(len > 0, "HEAD {path}");
    }
    // HEAD reads: on a POST-only endpoint it is refused as GET is, and changes nothing.
    let head = send(
        &router,
        Method::HEAD,
        &format!("/admin/hosts/{host}/eject"),
        &[],
    )
    .await;
    assert_eq!(head.status, 405);
    assert_eq!(head.header("allow"), Some("POST"));
    assert_eq!(crate::support::state_of(&router, host).await, "healthy");
    let post = post_admin(&router, "/metrics", None).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn per_host_counters_are_there_at_zero_from_the_start() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let metrics = send(&router, Method::GET, "/metrics", &[]).await.text();
    let names: Vec<String> = fleet.named_addrs().into_iter().map(|(n, _)| n).collect();
    for host in &names {
        for reason in EJECTION_REASONS {
            let series = format!("ringward_ejections_total{{host=\"{host}\",reason=\"{reason}\"}}");
            assert_eq!(
                sample(&metrics, &series),
                Some(0.0),
                "{series} in\n{metrics}"
            );
        }
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            let series = format!("ringward_requests_total{{host=\"{host}\",class=\"{class}\"}}");
            assert_eq!(sample(&metrics, &series), Some(0.0), "{series}");
        }
        let count = format!("ringward_request_duration_seconds_count{{host=\"{host}\"}}");
        assert_eq!(sample(&metrics, &count), Some(0.0), "{count}");
    }
    assert_eq!(
        metrics.matches("ringward_ejections_total{").count(),
        names.len() * EJECTION_REASONS.len(),
        "one series per host and reason, no other"
    );

    // The first ejection moves its own series from 0 to 1 (what `increase()` needs).
    let target = &names[1];
    let reply = post_admin(
        &router,
        &format!("/admin/hosts/{target}/eject"),
        Some(&bearer()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let metrics = send(&router, Method::GET, "/metrics", &[]).await.text();
    let ejected = format!("ringward_ejections_total{{host=\"{target}\",reason=\"operator\"}}");
    assert_eq!(sample(&metrics, &ejected), Some(1.0), "{metrics}");
    let other = format!(
        "ringward_ejections_total{{host=\"{}\",reason=\"operator\"}}",
        names[0]
    );
    assert_eq!(sample(&metrics, &other), Some(0.0));
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn build_info_and_process_figures_are_exported() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let metrics = send(&router, Method::GET, "/metrics", &[]).await.text();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        sample(
            &metrics,
            &format!("ringward_build_info{{version=\"{version}\"}}")
        ),
        Some(1.0),
        "{metrics}"
    );
    assert!(metrics.contains("# TYPE ringward_build_info gauge\n"));
    if cfg!(target_os = "linux") {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs_f64();
        let figure = |name: &str| {
            sample(&metrics, name).unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        };
        let started = figure("process_start_time_seconds");
        assert!(
            started > now - 3600.0 && started <= now + 1.0,
            "started {started}, now {now}"
        );
        assert!(figure("process_cpu_seconds_total") >= 0.0);
        let rss = figure("process_resident_memory_bytes");
        assert!(rss > f64::from(1 << 20), "rss {rss}");
        assert!(figure("process_virtual_memory_bytes") >= rss);
        let (open, max) = (figure("process_open_fds"), figure("process_max_fds"));
        // The router's own listeners are open descriptors of this process.
        assert!(open >= 3.0 && open <= max, "open {open}, max {max}");
        for (family, kind) in [
            ("process_cpu_seconds_total", "counter"),
            ("process_open_fds", "gauge"),
            ("process_max_fds", "gauge"),
            ("process_virtual_memory_bytes", "gauge"),
            ("process_resident_memory_bytes", "gauge"),
            ("process_start_time_seconds", "gauge"),
        ] {
            assert!(
                metrics.contains(&format!("# TYPE {family} {kind}\n")),
                "{family}"
            );
        }
    }
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn openmetrics_when_the_scraper_asks_for_it() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let host = &fleet.named_addrs()[0].0;
    let om = send(
        &router,
        Method::GET,
        "/metrics",
        &[("accept", PROMETHEUS_ACCEPT)],
    )
    .await;
    assert_eq!(om.status, 200);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = om.text();
    assert!(text.ends_with("\n# EOF\n"), "{text}");
    assert_eq!(text.matches("# EOF").count(), 1);
    assert!(
        text.contains("# TYPE ringward_requests counter\n"),
        "{text}"
    );
    assert!(!text.contains("# TYPE ringward_requests_total"), "{text}");
    assert!(text.contains("# TYPE ringward_build info\n"), "{text}");
    let series = format!("ringward_requests_total{{host=\"{host}\",class=\"2xx\"}}");
    assert_eq!(sample(&text, &series), Some(0.0), "{text}");
    assert!(!text.contains("\n\n"), "no blank line in OpenMetrics");

    let plain = send(&router, Method::GET, "/metrics", &[]).await;
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!plain.text().contains("# EOF"));
    assert!(
        plain
            .text()
            .contains("# TYPE ringward_requests_total counter\n")
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn admin_config_is_the_effective_config_without_the_token() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let mut config = config_for(&fleet);
    config.upstream.connect_timeout = Duration::from_millis(750);
    let router = start(config).await;
    // JSON by default: the same table as the TOML below.
    let json = send(&router, Method::GET, "/admin/config", &[]).await;
    assert_eq!(json.status, 200);
    assert!(
        json.header("content-type")
            .unwrap_or("")
            .starts_with("application/json")
    );
    let doc = json.json();
    assert!(
        !json.text().contains(TOKEN),
        "the token leaked:\n{}",
        json.text()
    );
    assert_eq!(doc["admin"]["token"], ringward::config::REDACTED_TOKEN);
    assert_eq!(doc["upstream"]["connect_timeout"], "750ms");
    assert_eq!(doc["hosts"].as_array().map(Vec::len), Some(2));

    let reply = send(&router, Method::GET, "/admin/config?format=toml", &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap_or("")
            .starts_with("application/toml")
    );
    let text = reply.text();
    assert!(!text.contains(TOKEN), "the token leaked:\n{text}");
    assert!(text.contains(ringward::config::REDACTED_TOKEN), "{text}");
    let parsed = ringward::Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let names: Vec<&str> = parsed.hosts.iter().map(|h| h.name.as_str()).collect();
    let expected: Vec<String> = fleet.named_addrs().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, expected);
    assert_eq!(parsed.upstream.connect_timeout, Duration::from_millis(750));
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn readiness_fails_and_comes_back_on_purpose() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let readyz = || async { send(&router, Method::GET, "/readyz", &[]).await };
    assert_eq!(readyz().await.status, 200);
    let down = r#"{"ready": false, "reason": "draining for the deploy"}"#;
    let json = ("content-type", "application/json");

    let refused = send_body(&router, Method::POST, "/admin/ready", &[json], down).await;
    assert_eq!(refused.status, 401);
    assert_eq!(readyz().await.status, 200, "no token, no change");

    let auth = bearer();
    let auth = ("authorization", auth.as_str());
    let bad = send_body(&router, Method::POST, "/admin/ready", &[json, auth], "{}").await;
    assert_eq!(bad.status, 400, "{}", bad.text());

    let reply = send_body(&router, Method::POST, "/admin/ready", &[json, auth], down).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["ready"], false);
    let failed = readyz().await;
    assert_eq!(failed.status, 503);
    assert!(failed.text().contains("on purpose"), "{}", failed.text());
    assert!(
        failed.text().contains("draining for the deploy"),
        "{}",
        failed.text()
    );
    // Only readiness changes: the router keeps serving what still reaches it.
    assert_eq!(get_key(&router, "alice").await.status, 200);

    let up = r#"{"ready": true}"#;
    let reply = send_body(&router, Method::POST, "/admin/ready", &[json, auth], up).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let back = readyz().await;
    assert_eq!(back.status, 200, "{}", back.text());
    router.shutdown().await;
    fleet.shutdown().await;
}

/// The lines of the test binary's log that mention this file's markers, kept in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

/// Lines that mention this marker (or change the filter) are kept; the rest of the binary's
/// logging is dropped.
const MARKER: &str = "operability-marker";

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(bytes);
        for line in text.lines() {
            if line.contains(MARKER) || line.contains("log filter changed") {
                self.0.lock().expect("capture").push(line.to_owned());
            }
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// The kept lines containing `needle`, each parsed as JSON.
    fn lines_with(&self, needle: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.0
            .lock()
            .expect("capture")
            .iter()
            .filter(|l| l.contains(needle))
            .map(|l| match serde_json::from_str(l) {
                Ok(serde_json::Value::Object(map)) => map,
                other => panic!("not a JSON object ({other:?}): {l}"),
            })
            .collect()
    }
}

/// The test binary's global subscriber (Ringward's JSON format), installed once.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let writer = capture.clone();
        assert!(
            ringward::logging::init_with_writer(LogFormat::Json, move || writer.clone()),
            "another global subscriber is installed in this test binary"
        );
        capture
    })
}

#[tokio::test]
async fn the_log_filter_changes_while_running() {
    let logs = capture();
    let fleet = Fleet::start(1).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let get = send(&router, Method::GET, "/admin/log-level", &[]).await;
    assert_eq!(get.status, 200, "{}", get.text());
    let initial = get.json()["filter"].as_str().expect("a filter").to_owned();

    // Admin requests are logged at DEBUG: not yet.
    let before = format!("{MARKER}-before");
    send(&router, Method::GET, &format!("/admin/vals/{before}"), &[]).await;
    assert!(
        logs.lines_with(&before).is_empty(),
        "DEBUG logged at {initial}"
    );

    let set = |body: &'static str, auth: Option<String>| {
        let router = &router;
        async move {
            let mut b = client::request(Method::POST, "/admin/log-level");
            if let Some(auth) = auth {
                b = b.header("authorization", auth);
            }
            client::send(
                router.admin_addr(),
                b.body(Full::new(Bytes::from(body))).expect("req"),
            )
            .await
            .expect("admin answers")
        }
    };
    assert_eq!(set("debug", None).await.status, 401);
    let bad = set("ringward=loud", Some(bearer())).await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("invalid filter")
    );

    let changed = set("ringward=debug,info", Some(bearer())).await;
    assert_eq!(changed.status, 200, "{}", changed.text());
    assert_eq!(changed.json()["previous"], initial.as_str());
    let get = send(&router, Method::GET, "/admin/log-level", &[]).await;
    assert_eq!(get.json()["filter"], "ringward=debug,info");

    let after = format!("{MARKER}-after");
    send(&router, Method::GET, &format!("/admin/vals/{after}"), &[]).await;
    // The line is written before the answer is sent.
    let lines = logs.lines_with(&after);
    assert_eq!(lines.len(), 1, "one DEBUG line for the request");
    assert_eq!(lines[0]["level"], "DEBUG");
    assert_eq!(lines[0]["message"], "admin request");
    assert_eq!(lines[0]["path"], format!("/admin/vals/{after}").as_str());
    assert!(
        !logs.lines_with("ringward=debug,info").is_empty(),
        "the change is logged"
    );

    let restored = set("info", Some(bearer())).await;
    assert_eq!(restored.status, 200, "{}", restored.text());
    let quiet = format!("{MARKER}-restored");
    send(&router, Method::GET, &format!("/admin/vals/{quiet}"), &[]).await;
    assert!(
        logs.lines_with(&quiet).is_empty(),
        "DEBUG still logged at info"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn the_start_line_names_the_version_and_the_config_file() {
    let logs = capture();
    let fleet = Fleet::start(1).await.expect("fleet");
    let path = std::env::temp_dir().join(format!("{MARKER}-{}.toml", std::process::id()));
    let toml = format!(
        "[listen]\naddr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n\
         [access_log]\nenabled = false\n\n{}",
        fleet.hosts_toml()
    );
    std::fs::write(&path, toml).expect("config written");
    let config = ringward::Config::load(&path).expect("a valid config");
    let router = Router::start_from_file(config, path.clone())
        .await
        .expect("router starts");
    let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
    let lines = logs.lines_with(name);
    let started: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "ringward started")
        .collect();
    assert_eq!(started.len(), 1, "{lines:?}");
    let line = started[0];
    assert_eq!(line["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        line["config"].as_str().unwrap_or("").ends_with(name),
        "{line:?}"
    );
    assert_eq!(line["level"], "INFO");
    router.shutdown().await;
    fleet.shutdown().await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_reload_is_one_line_saying_what_changed() {
    let logs = capture();
    let fleet = Fleet::start(3).await.expect("fleet");
    let mut config = config_for(&fleet);
    let spare = config.hosts.pop().expect("a third host");
    let router = start(config.clone()).await;
    // A host with a name only this test uses, so its line is told from other tests'.
    let added = format!("{MARKER}-host");
    config.hosts.push(ringward::config::HostConfig {
        name: added.clone(),
        ..spare
    });
    let removed = config.hosts.remove(1).name;
    config.upstream.connect_timeout = Duration::from_millis(900);
    // The line is written before `reload` returns.
    router.reload(config).expect("reload applies");
    let lines: Vec<_> = logs
        .lines_with(&added)
        .into_iter()
        .filter(|l| l["message"].as_str().unwrap_or("").contains("config"))
        .collect();
    assert_eq!(lines.len(), 1, "one line per reload: {lines:?}");
    let line = &lines[0];
    let message = line["message"].as_str().expect("a message");
    assert!(message.starts_with("config reloaded: "), "{message}");
    assert_eq!(line["hosts_added"], added.as_str());
    assert_eq!(line["hosts_removed"], removed.as_str());
    assert_eq!(line["hosts_changed"], "");
    assert_eq!(line["sections"], "upstream");
    assert!(
        line.values().all(|v| !v.is_object() && !v.is_array()),
        "flat keys: {line:?}"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}
