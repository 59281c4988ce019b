//! Readiness: `GET /readyz` (200 once a host is eligible; 503 while shutting down, while an
//! operator holds it down, or with no eligible host, the body saying which), and
//! `POST /admin/ready` (`{"ready": false, "reason": "..."}` / `{"ready": true}`), which
//! fails it on purpose, to drain a router out of an L4 balancer before stopping it.

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::admin::routes::{any_eligible, authorized_body, json_response, text};
use crate::control::shared::Shared;
use crate::proxy::body::{BoxError, ProxyBody};

/// The reason given when the operator gives none.
const DEFAULT_REASON: &str = "set unready by an operator";

/// A reason is one short line in the `/readyz` body.
const MAX_REASON: usize = 200;

/// `GET /readyz`.
pub(crate) fn readyz(shared: &Shared) -> Response<ProxyBody> {
    if shared.is_shutting_down() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    if let Some(reason) = shared.unready.load_full() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unready on purpose (POST /admin/ready): {reason}\n"),
        );
    }
    if any_eligible(&shared.published.load()) {
        // Still ready without etcd (the request path never waits on it), but saying so.
        let etcd = shared.etcd.as_ref();
        match etcd.and_then(|l| l.status.load().detail(shared.now())) {
            Some(detail) => text(StatusCode::OK, format!("ready; {detail}\n")),
            None => text(StatusCode::OK, "ready\n"),
        }
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, "no eligible host\n")
    }
}

/// `POST /admin/ready`: 200 `{"ready", "reason"}`; 400 for a body that is not
/// `{"ready": bool}` (with an optional string `reason`).
pub(crate) async fn set_ready<B>(shared: &Shared, req: Request<B>) -> Response<ProxyBody>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<BoxError>,
{
    let body = match authorized_body(shared, req).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let (ready, reason) = match parse(&body) {
        Ok(parsed) => parsed,
        Err(error) => return json_response(StatusCode::BAD_REQUEST, &json!({ "error": error })),
    };
    if ready {
        if shared.unready.swap(None).is_some() {
            info!("readiness restored by an operator");
        }
    } else {
        warn!(reason = %reason, "readiness failed on purpose by an operator");
        shared.unready.store(Some(Arc::new(reason.clone())));
    }
    json_response(
        StatusCode::OK,
        &json!({"ready": ready, "reason": (!ready).then_some(reason)}),
    )
}

/// The body: `ready`, and the reason (one line, at most [`MAX_REASON`] characters).
fn parse(body: &[u8]) -> Result<(bool, String), String> {
    const SHAPE: &str = r#"expected {"ready": true|false, "reason": "..." (optional)}"#;
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("{SHAPE}: {e}"))?;
    let ready = doc
        .get("ready")
        .and_then(Value::as_bool)
        .ok_or_else(|| SHAPE.to_owned())?;
    let reason = match doc.get("reason") {
        None | Some(Value::Null) => DEFAULT_REASON.to_owned(),
        Some(Value::String(s)) => {
            let line: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(MAX_REASON)
                .collect();
            if line.trim().is_empty() {
                DEFAULT_REASON.to_owned()
            } else {
                line.trim().to_owned()
            }
        }
        Some(_) => return Err(SHAPE.to_owned()),
    };
    Ok((ready, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_body() {
        assert_eq!(
            parse(br#"{"ready": false}"#),
            Ok((false, DEFAULT_REASON.to_owned()))
        );
        assert_eq!(
            parse(br#"{"ready": false, "reason": " deploy\nof v2 "}"#),
            Ok((false, "deploy of v2".to_owned()))
        );
        assert_eq!(parse(br#"{"ready": true}"#).map(|r| r.0), Ok(true));
        let long = format!(r#"{{"ready": false, "reason": "{}"}}"#, "x".repeat(500));
        assert_eq!(parse(long.as_bytes()).map(|r| r.1.len()), Ok(MAX_REASON));
        for bad in [
            &b"ready"[..],
            br#"{"ready": "no"}"#,
            br#"{}"#,
            br#"{"ready": false, "reason": 3}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[tokio::test]
    async fn an_operator_fails_and_restores_readiness() {
        let hosts = [(
            "a".to_owned(),
            std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        )];
        let (shared, _events, _control) = Shared::for_tests(&hosts);
        assert_eq!(readyz(&shared).status(), StatusCode::OK);
        shared.unready.store(Some(Arc::new("drain".to_owned())));
        assert_eq!(readyz(&shared).status(), StatusCode::SERVICE_UNAVAILABLE);
        shared.unready.store(None);
        assert_eq!(readyz(&shared).status(), StatusCode::OK);
    }
}
