//! What the host answers: Val requests (through the pool, or a WebSocket upgrade to the
//! echo), `/healthz`, and `/_sim/*` control.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::body::SimBody;
use crate::fault::FaultPatch;
use crate::pool::{Acquired, PoisonTicket};
use crate::report::{HealthStatus, ORCA_HEADER, health_body, orca_text};
use crate::reset::ResetSignal;
use crate::shared::Shared;
use crate::stats::{AbandonGuard, Counters, LiveGuard};
use crate::websocket::{self, Handoff};

/// The most a control request body may carry.
const CONTROL_BODY_LIMIT: usize = 64 * 1024;

/// Routes one request. An accepted WebSocket is left in `handoff` for the connection.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    reset: &ResetSignal,
    handoff: &Handoff,
    req: Request<Incoming>,
) -> Response<SimBody> {
    #[cfg(test)]
    if shared
        .panic_next
        .swap(false, std::sync::atomic::Ordering::SeqCst)
    {
        panic!("injected test panic");
    }
    let path = req.uri().path();
    if path == "/healthz" {
        health(shared).await
    } else if path == "/_sim" || path.starts_with("/_sim/") {
        control(shared, req).await
    } else if websocket::requested(req.headers()) {
        // A Val request like any other, keyed the same, but it takes no pool connection.
        Counters::bump(&shared.counters.val_requests);
        val_response(shared, websocket::accept(handoff, req))
    } else {
        val(shared, reset, req).await
    }
}

/// The answer to anything still pending when the host shuts down.
pub(crate) fn shutting_down(shared: &Shared) -> Response<SimBody> {
    let mut resp = json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "error": "simhost shutting down" }),
    );
    name_header(shared, &mut resp);
    resp
}

/// The Val key: header `x-val`, else path segment 1 (`/v/{val}/run`), else the whole path.
pub fn val_key<B>(req: &Request<B>) -> String {
    if let Some(v) = req.headers().get("x-val").and_then(|v| v.to_str().ok()) {
        if !v.is_empty() {
            return v.to_owned();
        }
    }
    let path = req.uri().path();
    match path.trim_start_matches('/').split('/').nth(1) {
        Some(seg) if !seg.is_empty() => seg.to_owned(),
        _ => path.to_owned(),
    }
}

async fn val(
    shared: &Arc<Shared>,
    reset: &ResetSignal,
    req: Request<Incoming>,
) -> Response<SimBody> {
    Counters::bump(&shared.counters.val_requests);
    let mut abandoned = AbandonGuard::new(&shared.counters.abandoned);
    let resp = val_inner(shared, req).await;
    abandoned.disarm();
    match resp {
        Some(resp) => resp,
        None => {
            Counters::bump(&shared.counters.resets);
            reset.fire();
            // The connection task drops this future with the connection.
            std::future::pending().await
        }
    }
}

/// The Val answer, or `None` when the `reset` fault wants the connection reset instead.
async fn val_inner(shared: &Arc<Shared>, req: Request<Incoming>) -> Option<Response<SimBody>> {
    let key = val_key(&req);
    let mut faults = shared.faults.flags();
    if faults.hang {
        let _hung = LiveGuard::new(&shared.counters.hung);
        shared.faults.wait_until_not(|f| f.hang).await;
        faults = shared.faults.flags();
    }
    if faults.reset {
        return None;
    }
    if faults.error_rate > 0.0 && shared.draw() < faults.error_rate {
        let body = serde_json::json!({ "error": "simulated failure", "host": shared.config.name, "val": key });
        return Some(val_response(
            shared,
            json(StatusCode::INTERNAL_SERVER_ERROR, &body),
        ));
    }
    // A request for the poisoned Val is counted from here: "in flight" means queued for or
    // holding a connection, where parallel edits can deadlock each other.
    let poison = shared.pool.poison_enter(&key).map(|(ticket, fired)| {
        if fired {
            Counters::bump(&shared.counters.poison_triggered);
        }
        ticket
    });
    let work = serve_from_pool(
        Arc::clone(shared),
        faults.slow.unwrap_or(Duration::ZERO),
        poison,
    );
    let served = if shared.config.cancel_on_disconnect {
        work.await
    } else {
        // Like most app servers, the work does not stop when the client hangs up: it keeps
        // its place in the pool queue (the incident's pile of pending requests).
        let shutdown = shared.shutdown.clone();
        let task = tokio::spawn(async move {
            tokio::select! {
                served = work => served,
                () = shutdown.wait() => Served::PoolTimeout,
            }
        });
        match task.await {
            Ok(served) => served,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Served::PoolTimeout,
        }
    };
    match served {
        Served::Done => {}
        Served::PoolTimeout => {
            let body = serde_json::json!({ "error": "db pool acquire timed out", "host": shared.config.name, "val": key });
            let mut resp = json(StatusCode::SERVICE_UNAVAILABLE, &body);
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Some(val_response(shared, resp));
        }
        Served::Released => {
            // The killed query fails, and so does its request, as a real app server's would.
            let body = serde_json::json!({ "error": "deadlock released", "host": shared.config.name, "val": key });
            return Some(val_response(
                shared,
                json(StatusCode::INTERNAL_SERVER_ERROR, &body),
            ));
        }
    }
    let body = serde_json::json!({ "host": shared.config.name, "val": key });
    let mut resp = json(StatusCode::OK, &body);
    if shared.faults.flags().stall_body {
        let len = resp.body().size_hint().exact().unwrap_or(0);
        let shutdown = shared.shutdown.clone();
        *resp.body_mut() = SimBody::stalled(len, async move { shutdown.wait().await });
    }
    Some(val_response(shared, resp))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Served {
    Done,
    PoolTimeout,
    /// The request was poisoned, and its deadlock has been released.
    Released,
}

/// Takes a pool connection, holds it for the service time (plus `slow`), gives it back.
/// A request of the poisoned Val (`poison`) that the deadlock catches never gives it back:
/// the pool keeps the connection, and the request waits for the release.
async fn serve_from_pool(
    shared: Arc<Shared>,
    slow: Duration,
    poison: Option<PoisonTicket>,
) -> Served {
    let acquire = shared.pool.acquire(poison.as_ref());
    let acquired = match shared.config.acquire_timeout {
        None => acquire.await,
        Some(limit) => tokio::time::timeout(limit, acquire).await.ok().flatten(),
    };
    let lease = match acquired {
        None => return Served::PoolTimeout,
        Some(Acquired::Lease(lease)) => lease,
        Some(Acquired::Poisoned) => return deadlocked(poison).await,
    };
    let service = tokio::time::sleep(shared.service_time() + slow);
    match &poison {
        None => service.await,
        Some(ticket) => tokio::select! {
            () = service => {}
            () = ticket.poisoned() => {}
        },
    }
    match lease.finish(poison) {
        Ok(()) => Served::Done,
        Err(ticket) => deadlocked(Some(ticket)).await,
    }
}

/// A poisoned request: no answer until its deadlock is released.
async fn deadlocked(poison: Option<PoisonTicket>) -> Served {
    if let Some(ticket) = poison {
        ticket.released().await;
    }
    Served::Released
}

/// Adds the headers every Val response carries and counts it.
fn val_response(shared: &Shared, mut resp: Response<SimBody>) -> Response<SimBody> {
    let figures = shared.pool.figures();
    if let Ok(v) = HeaderValue::try_from(orca_text(&figures)) {
        resp.headers_mut().insert(ORCA_HEADER, v);
    }
    name_header(shared, &mut resp);
    shared.counters.record_status(resp.status().as_u16());
    resp
}

fn name_header(shared: &Shared, resp: &mut Response<SimBody>) {
    if let Some(v) = &shared.name_header {
        resp.headers_mut().insert("x-simhost", v.clone());
    }
}

async fn health(shared: &Shared) -> Response<SimBody> {
    Counters::bump(&shared.counters.health_requests);
    if shared.faults.flags().health_hangs {
        let _hung = LiveGuard::new(&shared.counters.hung);
        shared.faults.wait_until_not(|f| f.health_hangs).await;
    }
    let faults = shared.faults.flags();
    let figures = shared.pool.figures();
    let honest = HealthStatus::judge(&figures, shared.config.stuck_after);
    let status = if faults.health_lies || faults.health_shallow {
        HealthStatus::Pass
    } else {
        honest
    };
    let pool = (!faults.health_shallow).then_some(&figures);
    let code = match status {
        HealthStatus::Fail => StatusCode::SERVICE_UNAVAILABLE,
        HealthStatus::Pass | HealthStatus::Warn => StatusCode::OK,
    };
    let mut resp = json(code, &health_body(status, pool));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/health+json"),
    );
    name_header(shared, &mut resp);
    resp
}

async fn control(shared: &Shared, req: Request<Incoming>) -> Response<SimBody> {
    Counters::bump(&shared.counters.control_requests);
    let faults = &shared.faults;
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = match (method, path.as_str()) {
        (Method::GET, "/_sim/fault") => ok_json(&faults_json(shared)),
        (Method::POST, "/_sim/fault") => match read_patch(req).await {
            Ok(patch) => match faults.apply(&patch) {
                Ok(_) => ok_json(&faults_json(shared)),
                Err(e) => bad_request(&e.to_string()),
            },
            Err(e) => bad_request(&e),
        },
        (Method::POST, "/_sim/clear") => {
            faults.clear();
            ok_json(&faults_json(shared))
        }
        (Method::POST, "/_sim/release") => {
            let released = faults.release();
            ok_json(&serde_json::json!({ "released": released }))
        }
        (Method::GET, "/_sim/stats") => ok_json(&shared.stats().to_json()),
        (_, "/_sim/fault" | "/_sim/clear" | "/_sim/release" | "/_sim/stats") => json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({ "error": "method not allowed" }),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "unknown control path" }),
        ),
    };
    name_header(shared, &mut resp);
    resp
}

fn faults_json(shared: &Shared) -> serde_json::Value {
    serde_json::to_value(shared.faults.get()).unwrap_or(serde_json::Value::Null)
}

async fn read_patch(req: Request<Incoming>) -> Result<FaultPatch, String> {
    let body = Limited::new(req.into_body(), CONTROL_BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(FaultPatch::default());
    }
    serde_json::from_slice(&body).map_err(|e| format!("fault patch: {e}"))
}

fn ok_json(body: &serde_json::Value) -> Response<SimBody> {
    json(StatusCode::OK, body)
}

fn bad_request(msg: &str) -> Response<SimBody> {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({ "error": msg }),
    )
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<SimBody> {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    let mut resp = Response::new(SimBody::full(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, val: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri(path);
        if let Some(v) = val {
            b = b.header("x-val", v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn extracts_the_val_key() {
        assert_eq!(val_key(&req("/v/alice-hello/run", None)), "alice-hello");
        assert_eq!(val_key(&req("/v/alice-hello/run", Some("bob"))), "bob");
        assert_eq!(val_key(&req("/v/x", Some(""))), "x");
        assert_eq!(val_key(&req("/solo", None)), "/solo");
        assert_eq!(val_key(&req("/", None)), "/");
    }
}
