//! The admin listener (docs/contracts.md: status codes and the admin API): `/healthz`, `/readyz`, `/admin/hosts`,
//! `/admin/route?key=`, `POST /admin/hosts/{name}/drain|eject|restore` (bearer token,
//! compared in constant time), `/metrics` and `/`, a status page; and the cascade guard's
//! `/admin/vals`, `/admin/vals/{key}`, `POST /admin/vals/{key}/quarantine|release`; and for
//! operating the router itself `/admin/config` (the effective config, token redacted),
//! `GET|POST /admin/log-level` (`log_level`) and `POST /admin/ready` (`readiness`). HEAD is
//! answered wherever GET is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use health::OperatorCommand;
use health::guard::{ValInfo, ValState};
use http::header::{ACCEPT, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, VARY};
use http::{Method, Request, Response, StatusCode};
use router_core::{HostId, KeyHash};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::admin::text_format::TextFormat;
use crate::admin::{log_level, readiness};
use crate::control::fleet::{Fleet, HostKey, Published};
use crate::control::messages::{Control, OperatorReply, ValCommand};
use crate::control::shared::Shared;
use crate::proxy::body::{self, BoxError, ProxyBody};

/// The largest body an admin POST reads.
const MAX_BODY: usize = 64 * 1024;

/// Handles one admin request. HEAD is answered as GET is, without the body (RFC 9110
/// section 9.3.2: same status and headers, `Content-Length` included).
pub(crate) async fn handle<B>(shared: Arc<Shared>, req: Request<B>) -> Response<ProxyBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    tracing::debug!(method = %req.method(), path = %req.uri().path(), "admin request");
    if req.method() == Method::HEAD {
        without_body(dispatch(shared, req, Method::GET).await)
    } else {
        let method = req.method().clone();
        dispatch(shared, req, method).await
    }
}

/// `resp` with its body dropped and its length kept in `Content-Length`.
fn without_body(resp: Response<ProxyBody>) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    if let Some(len) = http_body::Body::size_hint(&body).exact() {
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Response::from_parts(parts, body::empty())
}

/// Routes one admin request, answered as `method` (GET for a HEAD).
async fn dispatch<B>(shared: Arc<Shared>, req: Request<B>, method: Method) -> Response<ProxyBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let path = req.uri().path().trim_end_matches('/').to_owned();
    match (method, path.as_str()) {
        (Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (Method::GET, "/readyz") => readiness::readyz(&shared),
        (Method::POST, "/admin/ready") => readiness::set_ready(&shared, req).await,
        (_, "/admin/ready") => method_not_allowed("POST"),
        (Method::GET, "/admin/log-level") => log_level::get(),
        (Method::POST, "/admin/log-level") => log_level::set(&shared, req).await,
        (_, "/admin/log-level") => method_not_allowed("GET, HEAD, POST"),
        (Method::GET, "/admin/config") => config_dump(&shared, req.uri().query()),
        (_, "/admin/config") => method_not_allowed("GET, HEAD"),
        (Method::GET, "/admin/hosts") => json_response(StatusCode::OK, &hosts_json(&shared)),
        (Method::GET, "/admin/route") => route(&shared, req.uri().query()),
        (Method::GET, "/metrics") => metrics(&shared, req.headers().get(ACCEPT)),
        (Method::GET, "/admin/page-fragment") => crate::admin::page::fragment_response(&shared),
        (Method::GET, "") => {
            let mut resp = text(StatusCode::OK, crate::admin::page::render(&shared));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            resp
        }
        (Method::GET, "/admin/vals") => json_response(StatusCode::OK, &vals_json(&shared)),
        (Method::POST, p) if operator_action(p).is_some() => operator(&shared, &req, p).await,
        (Method::POST, p) if val_action(p).is_some() => val_command(&shared, &req, p).await,
        (_, p) if operator_action(p).is_some() || val_action(p).is_some() => {
            method_not_allowed("POST")
        }
        (Method::GET, p) if p.starts_with("/admin/vals/") => {
            let key = percent_decode(&p["/admin/vals/".len()..]);
            json_response(StatusCode::OK, &val_json(&shared, &key))
        }
        (_, "/healthz" | "/readyz" | "/admin/hosts" | "/admin/route" | "/metrics" | "")
        | (_, "/admin/vals") => method_not_allowed("GET, HEAD"),
        (_, p) if p.starts_with("/admin/vals/") => method_not_allowed("GET, HEAD"),
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    }
}

/// 405 with the `Allow` header RFC 9110 section 15.5.6 requires.
fn method_not_allowed(allow: &'static str) -> Response<ProxyBody> {
    let mut resp = json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "method not allowed", "allow": allow}),
    );
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

/// For `/admin/hosts/{name}/{drain|eject|restore}`: the name and the command.
fn operator_action(path: &str) -> Option<(&str, OperatorCommand)> {
    let (name, action) = path.strip_prefix("/admin/hosts/")?.rsplit_once('/')?;
    let command = match action {
        "drain" => OperatorCommand::Drain,
        "eject" => OperatorCommand::Eject,
        "restore" => OperatorCommand::Restore,
        _ => return None,
    };
    (!name.is_empty()).then_some((name, command))
}

/// For `/admin/vals/{key}/{quarantine|release}`: the (still encoded) key and the command.
fn val_action(path: &str) -> Option<(&str, ValCommand)> {
    let (key, action) = path.strip_prefix("/admin/vals/")?.rsplit_once('/')?;
    let command = match action {
        "quarantine" => ValCommand::Quarantine,
        "release" => ValCommand::Release,
        _ => return None,
    };
    (!key.is_empty()).then_some((key, command))
}

pub(crate) fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<ProxyBody> {
    let mut resp = Response::new(body::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<ProxyBody> {
    let mut resp = Response::new(body::full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// True when some host is eligible for new requests.
pub(crate) fn any_eligible(published: &Published) -> bool {
    published.eligible() > 0
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn ago(now: Instant, then: Instant) -> u64 {
    millis(now.saturating_duration_since(then))
}

/// The `/admin/hosts` document.
pub(crate) fn hosts_json(shared: &Shared) -> Value {
    let published = shared.published.load();
    let view = shared.view.load();
    let now = shared.now();
    let configured = shared.config.load();
    let hosts: Vec<Value> = published
        .fleet
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let health = view.host(h.key);
            let (in_flight, _) = published.fleet.loads.oldest(i, now);
            json!({
                "name": h.name,
                "addr": h.configured.to_string(),
                // Where requests and probes go: the address itself, or what its name
                // resolved to (kept through failed lookups); null: never resolved, so the
                // host takes no requests.
                "resolved": h.location.addr.is_some(),
                "resolved_addr": h.location.addr.map(|a| a.to_string()),
                "resolve_error": h.location.error.as_deref(),
                "weight": h.weight,
                // Where the host comes from: the config file, or a registration in etcd.
                "source": if configured.hosts.iter().any(|c| c.name == h.name) { "config" } else { "etcd" },
                "state": view.state_of(h.key),
                "reason": health.and_then(|s| s.reason).map(|r| r.as_str()),
                "since_ms": health.map(|s| ago(now, s.since)),
                "in_flight": in_flight,
                "db_pool": health.and_then(|s| s.pool).map(|p| json!({
                    "max": p.max,
                    "in_use": p.in_use,
                    "waiting": p.waiting,
                    "oldest_checkout_ms": millis(p.oldest_checkout),
                })),
                "last_probe_ms": health.and_then(|s| s.last_probe).map(|t| ago(now, t)),
            })
        })
        .collect();
    let discovery = shared.etcd.as_ref().map(|link| {
        let status = link.status.load();
        json!({
            "router": link.name,
            "prefix": link.config.prefix,
            "connected": status.connected,
            "revision": status.revision,
            "registered_hosts": status.hosts,
            "since_ms": status.since.map(|t| ago(now, t)),
            "last_error": status.last_error,
        })
    });
    json!({ "hosts": hosts, "etcd": discovery })
}

fn route(shared: &Shared, query: Option<&str>) -> Response<ProxyBody> {
    let key = query
        .and_then(|q| crate::proxy::key::query_value(q, "key"))
        .map(percent_decode);
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": "missing ?key="}));
    };
    let published = shared.published.load();
    let config = shared.config.load();
    let explain = published.snapshot.explain(
        KeyHash::of(key.as_bytes()),
        &*published.fleet.loads,
        &config.bounded_loads(),
    );
    let name = |id: HostId| published.fleet.host(id).name.clone();
    let walk: Vec<Value> = explain
        .walk
        .iter()
        .map(|s| json!({"host": name(s.host), "skipped": s.skipped.map(|r| r.as_str())}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"key": key, "host": explain.chosen.map(name), "walk": walk}),
    )
}

/// Decodes `%XX` and `+` in a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// True when the request carries the configured bearer token (constant-time comparison).
pub(crate) fn authorized<B>(shared: &Shared, req: &Request<B>) -> bool {
    let config = shared.config.load();
    let Some(token) = &config.admin.token else {
        return false;
    };
    let Some(presented) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| bearer_token(v.as_bytes()))
    else {
        return false;
    };
    presented.ct_eq(token.as_bytes()).into()
}

/// The token of a `Bearer` credential. The scheme is case-insensitive (RFC 9110 section
/// 11.1), and extra spaces or tabs around the token are tolerated.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let split = value.iter().position(|&b| b == b' ' || b == b'\t')?;
    let (scheme, rest) = value.split_at(split);
    let token = rest.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer") && !token.is_empty()).then_some(token)
}

/// 401 with the `WWW-Authenticate` challenge.
pub(crate) fn unauthorized() -> Response<ProxyBody> {
    let mut resp = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "a valid `Authorization: Bearer <token>` is required"}),
    );
    resp.headers_mut()
        .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    resp
}

/// 503 when the health task is gone (shutting down) or did not answer.
fn no_answer(sent: bool) -> Response<ProxyBody> {
    let error = if sent {
        "the health task did not answer"
    } else {
        "shutting down"
    };
    json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({ "error": error }))
}

async fn operator<B>(shared: &Shared, req: &Request<B>, path: &str) -> Response<ProxyBody> {
    let Some((name, command)) = operator_action(path) else {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"}));
    };
    let action = path.rsplit('/').next().unwrap_or_default();
    if !authorized(shared, req) {
        return unauthorized();
    }
    let name = percent_decode(name);
    let (reply, rx) = oneshot::channel();
    if shared
        .control
        .send(Control::Operator {
            host: name.clone(),
            command,
            reply,
            origin: crate::control::messages::Origin::Local,
        })
        .is_err()
    {
        return no_answer(false);
    }
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(OperatorReply::Done(state))) => json_response(
            StatusCode::OK,
            &json!({"host": name, "action": action, "state": state.as_str()}),
        ),
        Ok(Ok(OperatorReply::UnknownHost)) => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown host", "host": name}),
        ),
        _ => no_answer(true),
    }
}

/// `POST /admin/vals/{key}/quarantine|release`: answered once the request path sees it.
async fn val_command<B>(shared: &Shared, req: &Request<B>, path: &str) -> Response<ProxyBody> {
    let Some((key, command)) = val_action(path) else {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"}));
    };
    if !authorized(shared, req) {
        return unauthorized();
    }
    let key = percent_decode(key);
    let (reply, rx) = oneshot::channel();
    let sent = shared
        .control
        .send(Control::Val {
            key: key.clone(),
            command,
            reply,
            origin: crate::control::messages::Origin::Local,
        })
        .is_ok();
    if !sent {
        return no_answer(false);
    }
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(_)) => json_response(StatusCode::OK, &val_json(shared, &key)),
        _ => no_answer(true),
    }
}

/// `GET /admin/vals`: every Val the guard has a record of (suspects, quarantines, and
/// recent offenders), newest first.
pub(crate) fn vals_json(shared: &Shared) -> Value {
    let view = shared.view.load();
    let fleet = shared.published.load();
    let now = shared.now();
    let vals: Vec<Value> = view
        .vals
        .iter()
        .map(|v| val_info_json(v, None, &fleet.fleet, now))
        .collect();
    json!({ "vals": vals })
}

/// `GET /admin/vals/{key}`: the guard's view of one Val (`normal` with no evidence when it
/// has none).
pub(crate) fn val_json(shared: &Shared, key: &str) -> Value {
    let hash = KeyHash::of(key.as_bytes()).0;
    let view = shared.view.load();
    let fleet = shared.published.load();
    let now = shared.now();
    match view.vals.iter().find(|v| v.val == hash) {
        Some(v) => val_info_json(v, Some(key), &fleet.fleet, now),
        None => json!({
            "key": key,
            "val_hash": format!("{hash:016x}"),
            "state": ValState::Normal.as_str(),
            "reason": null,
            "since_ms": null,
            "until_ms": null,
            "offences": 0,
            "hosts": [],
            "evidence": [],
        }),
    }
}

/// One Val's JSON: the fields of docs/contracts.md (`key`, `state`, `reason`, `since_ms`, `hosts`), the
/// time left (`until_ms`, null when only an operator ends it), and the evidence per host.
fn val_info_json(
    v: &ValInfo<HostKey, u64>,
    key: Option<&str>,
    fleet: &Fleet,
    now: Instant,
) -> Value {
    let host_name = |h: HostKey| {
        fleet
            .id_of_key(h)
            .map_or_else(|| format!("#{}", h.0), |id| fleet.host(id).name.clone())
    };
    let mut hosts: Vec<String> = Vec::new();
    for i in &v.implications {
        let name = host_name(i.host);
        if !hosts.contains(&name) {
            hosts.push(name);
        }
    }
    let evidence: Vec<Value> = v
        .implications
        .iter()
        .map(|i| {
            json!({
                "host": host_name(i.host),
                "ago_ms": ago(now, i.at),
                "share": round3(i.share),
                "baseline_share": round3(i.baseline_share),
                "in_flight": i.in_flight,
                "stuck": i.stuck,
                "oldest_ms": millis(i.oldest),
            })
        })
        .collect();
    json!({
        "key": key.or(v.name.as_deref()),
        "val_hash": format!("{:016x}", v.val),
        "state": v.state.as_str(),
        "reason": v.reason.as_str(),
        "since_ms": ago(now, v.since),
        "until_ms": v.until.map(|u| millis(u.saturating_duration_since(now))),
        "offences": v.offences,
        "hosts": hosts,
        "evidence": evidence,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `GET /metrics`, in the text format the scraper's `Accept` asks for.
fn metrics(shared: &Shared, accept: Option<&HeaderValue>) -> Response<ProxyBody> {
    let format = TextFormat::negotiate(accept);
    let mut resp = text(
        StatusCode::OK,
        crate::admin::exposition::render(shared, format),
    );
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(VARY, HeaderValue::from_static("accept"));
    resp
}

/// `GET /admin/config`: the effective config as TOML, the admin token redacted.
/// `GET /admin/config`: the effective config, token redacted, as JSON (docs/contracts.md),
/// or as the TOML file `check --print` writes with `?format=toml`. The JSON is that TOML's
/// table, so both always say the same.
fn config_dump(shared: &Shared, query: Option<&str>) -> Response<ProxyBody> {
    let dump = shared.config.load().to_toml_redacted();
    if query.is_some_and(|q| q.split('&').any(|p| p == "format=toml")) {
        let mut resp = text(StatusCode::OK, dump);
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/toml; charset=utf-8"),
        );
        return resp;
    }
    match dump.parse::<toml::Table>() {
        Ok(table) => match serde_json::to_value(table) {
            Ok(value) => json_response(StatusCode::OK, &value),
            Err(e) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": format!("the config dump is not JSON: {e}")}),
            ),
        },
        // The dump is tested to parse back; should it not, say so rather than guess.
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": format!("the config dump does not parse: {e}")}),
        ),
    }
}

/// The body of an operator's `POST`: 401 without the right token, else [`read_body`].
pub(crate) async fn authorized_body<B>(
    shared: &Shared,
    req: Request<B>,
) -> Result<Bytes, Response<ProxyBody>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    if !authorized(shared, &req) {
        return Err(unauthorized());
    }
    read_body(req.into_body()).await
}

/// The body of an admin POST, read whole: 413 beyond [`MAX_BODY`], 408 when it takes longer
/// than 5 s, 400 when the connection breaks.
pub(crate) async fn read_body<B>(body: B) -> Result<Bytes, Response<ProxyBody>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt as _;
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match tokio::time::timeout(Duration::from_secs(5), limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": format!("body over {MAX_BODY} bytes")}),
        )),
        Ok(Err(e)) => Err(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!("body: {e}")}),
        )),
        Err(_) => Err(json_response(
            StatusCode::REQUEST_TIMEOUT,
            &json!({"error": "body not received within 5 s"}),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use health::{HealthSnapshot, HostHealth, PoolReport, Routing, StateKind};

    use super::*;
    use crate::admin::lint::{lint_exposition, lint_openmetrics};
    use crate::config::Config;
    use crate::control::fleet::Fleet;
    use crate::control::view::HealthView;

    fn hosts(names: &[&str]) -> Vec<(String, SocketAddr)> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    (*n).to_owned(),
                    SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
                )
            })
            .collect()
    }

    /// Shared state over the named hosts (no sockets, no health task).
    fn shared(names: &[&str]) -> Arc<Shared> {
        Shared::for_tests(&hosts(names)).0
    }

    fn pool_health(shared: &Shared) -> HealthView {
        let now = shared.now();
        let hosts = shared
            .fleet()
            .hosts
            .iter()
            .map(|h| HostHealth {
                host: h.key,
                state: StateKind::Healthy,
                reason: None,
                since: now,
                until: None,
                strikes: 0,
                pool: Some(PoolReport {
                    max: 10,
                    in_use: 3,
                    waiting: 1,
                    oldest_checkout: Duration::from_millis(250),
                }),
                last_probe: Some(now),
                routing: Routing::Full,
                admit_share: 1.0,
            })
            .collect();
        HealthView {
            snapshot: HealthSnapshot { hosts, panic: None },
            vals: Arc::default(),
        }
    }

    #[tokio::test]
    async fn metrics_text_is_strictly_grouped_and_typed() {
        let shared = shared(&["host-a", "host-b", "none"]);
        shared.view.store(Arc::new(pool_health(&shared)));
        for name in ["host-a", "host-b", "none"] {
            shared
                .metrics
                .host(name)
                .record(StatusCode::OK, Duration::from_millis(2));
        }
        shared
            .metrics
            .unrouted
            .record(StatusCode::BAD_REQUEST, Duration::ZERO);
        shared
            .metrics
            .host("host-a")
            .record_ejection(health::Reason::PoolExhausted);
        let out = crate::admin::exposition::render(&shared, TextFormat::Prometheus);
        lint_exposition(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        for family in [
            "ringward_in_flight",
            "ringward_host_in_flight",
            "ringward_host_oldest_in_flight_seconds",
            "ringward_db_pool_max",
            "ringward_db_pool_in_use",
            "ringward_db_pool_waiting",
            "ringward_db_pool_oldest_checkout_seconds",
            "ringward_unrouted_requests_total",
        ] {
            assert!(
                out.contains(&format!("# TYPE {family} ")),
                "no TYPE for {family}"
            );
        }
        assert!(!out.contains("ringward_in_flight_total"), "{out}");
        assert!(out.contains("ringward_db_pool_in_use{host=\"host-b\"} 3"));
        assert!(out.contains("ringward_unrouted_requests_total{class=\"4xx\"} 1"));
        assert!(out.contains("ringward_requests_total{host=\"none\",class=\"2xx\"} 1"));
        assert!(
            out.contains("ringward_ejections_total{host=\"host-a\",reason=\"pool_exhausted\"} 1")
        );
        // Probed just now: a Unix timestamp of about now.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs_f64();
        let probed: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("ringward_last_probe_timestamp_seconds{host=\"host-b\"} "))
            .expect("a probe timestamp")
            .parse()
            .expect("a number");
        assert!((now - probed).abs() < 60.0, "{probed} vs {now}");
        let om = crate::admin::exposition::render(&shared, TextFormat::OpenMetrics);
        lint_openmetrics(&om).unwrap_or_else(|e| panic!("{e}\n{om}"));
    }

    #[tokio::test]
    async fn a_host_never_probed_has_no_probe_timestamp() {
        let shared = shared(&["host-a"]);
        let out = crate::admin::exposition::render(&shared, TextFormat::Prometheus);
        lint_exposition(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(out.contains("# TYPE ringward_last_probe_timestamp_seconds gauge"));
        assert!(
            !out.contains("ringward_last_probe_timestamp_seconds{"),
            "{out}"
        );
        assert!(out.contains("ringward_probe_age_seconds{host=\"host-a\"} -1\n"));
    }

    #[tokio::test]
    async fn hosts_removed_by_a_reload_leave_the_metrics() {
        let shared = shared(&["host-a", "host-b"]);
        shared
            .metrics
            .host("host-b")
            .record(StatusCode::OK, Duration::ZERO);
        assert!(
            crate::admin::exposition::render(&shared, TextFormat::Prometheus)
                .contains("host=\"host-b\"")
        );
        // What a reload that drops host-b publishes.
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let config = Config::for_hosts(any, any, &hosts(&["host-a"]));
        let fleet = Fleet::build(
            &config.hosts,
            16,
            &shared.keys,
            &shared.metrics,
            shared.now(),
            |h| crate::control::fleet::Location::pending(&h.addr),
        )
        .expect("fleet");
        shared
            .published
            .store(Arc::new(Published::open(Arc::new(fleet), 1)));
        let out = crate::admin::exposition::render(&shared, TextFormat::Prometheus);
        lint_exposition(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(out.contains("host=\"host-a\""));
        assert!(!out.contains("host-b"), "{out}");
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER s3cret",
            "bEaReR   s3cret",
            "Bearer\ts3cret ",
        ] {
            assert_eq!(
                bearer_token(value.as_bytes()),
                Some(&b"s3cret"[..]),
                "{value:?}"
            );
        }
        for value in [
            "Bearers3cret",
            "Basic s3cret",
            "Bearer",
            "Bearer   ",
            "s3cret",
        ] {
            assert_eq!(bearer_token(value.as_bytes()), None, "{value:?}");
        }
    }

    #[test]
    fn operator_paths_are_recognised_for_any_method() {
        assert!(matches!(
            operator_action("/admin/hosts/host-a/drain"),
            Some(("host-a", OperatorCommand::Drain))
        ));
        assert!(operator_action("/admin/hosts/host-a/restore").is_some());
        assert!(operator_action("/admin/hosts/host-a/bogus").is_none());
        assert!(operator_action("/admin/hosts//eject").is_none());
        assert!(operator_action("/admin/route").is_none());
        let resp = method_not_allowed("POST");
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(resp.headers()[ALLOW], "POST");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("alice%2Dhello"), "alice-hello");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("x%4"), "x%4");
    }
}
