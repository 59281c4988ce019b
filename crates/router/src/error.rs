//! Errors of the router: why a request could not be proxied, and why the router could not start.
//!
//! [`ProxyError::status`] is the single place that maps a failure to 400/502/503/504
//! (docs/contracts.md: status codes and the admin API); [`ProxyError::response`] renders the short JSON body.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// Why a proxied request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// No key source gave a key.
    #[error("no key in the request (tried {tried})")]
    NoKey {
        /// The configured sources, comma-separated.
        tried: String,
    },
    /// No eligible host for the key (all ejected, draining, ...).
    #[error("no eligible host")]
    NoEligibleHost,
    /// Every candidate host, or the router as a whole, is at its in-flight cap.
    #[error("at capacity")]
    AtCapacity,
    /// The host refused the connection, or it could not be reached.
    #[error("connection to the host failed")]
    Connect,
    /// The connect attempt timed out.
    #[error("connecting to the host timed out")]
    ConnectTimeout,
    /// The host reset or broke the connection.
    #[error("the host broke the connection")]
    Reset,
    /// The host sent something that is not HTTP.
    #[error("the host sent an invalid response")]
    Protocol,
    /// The host did not answer (response head) in time, or the whole request ran out of time.
    #[error("the host did not answer in time")]
    Timeout,
    /// The router is shutting down.
    #[error("the router is shutting down")]
    ShuttingDown,
    /// The cascade guard quarantined the Val: it took a host down, so it is not sent to
    /// another (docs/cascade-guard.md). The body's `error` is exactly `quarantined`.
    #[error("quarantined")]
    Quarantined {
        /// Time left on the quarantine (the Retry-After).
        retry_after: Duration,
    },
    /// The request's framing is ambiguous or invalid (request smuggling defence, `framing`).
    #[error("bad request framing: {reason}")]
    BadFraming {
        /// The rule broken.
        reason: &'static str,
    },
    /// The client's request body was malformed or broke off while it was forwarded.
    #[error("the request body was malformed or broken off")]
    ClientBody,
    /// The client's request body stalled longer than the body idle timeout.
    #[error("the request body stalled")]
    ClientBodyTimeout,
    /// The request body is larger than `limits.max_request_body` (declared or streamed).
    #[error("the request body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
}

impl ProxyError {
    /// The status code answering this error (the only such mapping).
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoKey { .. } | ProxyError::BadFraming { .. } | ProxyError::ClientBody => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::NoEligibleHost
            | ProxyError::AtCapacity
            | ProxyError::ShuttingDown
            | ProxyError::Quarantined { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect | ProxyError::Reset | ProxyError::Protocol => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::ConnectTimeout | ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// True when a 503 should carry Retry-After.
    pub fn retry_after(&self) -> bool {
        self.status() == StatusCode::SERVICE_UNAVAILABLE
    }

    /// True when the client's connection must be closed after the answer: after a framing
    /// error or a broken body, what follows on the connection cannot be trusted.
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            ProxyError::BadFraming { .. }
                | ProxyError::ClientBody
                | ProxyError::ClientBodyTimeout
                | ProxyError::BodyTooLarge { .. }
        )
    }

    /// True when the failure is the client's, so the host's health must not pay for it.
    pub fn is_client_fault(&self) -> bool {
        self.status().is_client_error()
    }

    /// True when nothing reached the host, so the request may go to the next host whatever its method.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, ProxyError::Connect | ProxyError::ConnectTimeout)
    }

    /// The error response: `{"error", "key", "host"}`, plus Retry-After on 503.
    pub fn response(
        &self,
        key: Option<&str>,
        host: Option<&str>,
        retry_after: Duration,
    ) -> Response<Bytes> {
        let body = serde_json::json!({
            "error": self.to_string(),
            "key": key,
            "host": host,
        });
        let mut resp = Response::new(Bytes::from(body.to_string()));
        *resp.status_mut() = self.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.closes_connection() {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.retry_after() {
            let retry_after = match self {
                ProxyError::Quarantined { retry_after } => *retry_after,
                _ => retry_after,
            };
            // Retry-After is whole seconds; round up so "500ms" does not become "0".
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        resp
    }
}

/// Why [`crate::Router::start`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A listener could not bind (port taken, permission, ...).
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener: "listen" or "admin".
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The config could not be turned into a ring (should have been caught by validation).
    #[error("invalid config: {0}")]
    Config(#[from] crate::config::ConfigErrors),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_status_table_in_docs_contracts() {
        assert_eq!(
            ProxyError::NoKey {
                tried: "header:x-val".into()
            }
            .status(),
            400
        );
        assert_eq!(ProxyError::NoEligibleHost.status(), 503);
        assert_eq!(ProxyError::AtCapacity.status(), 503);
        assert_eq!(ProxyError::Connect.status(), 502);
        assert_eq!(ProxyError::Reset.status(), 502);
        assert_eq!(ProxyError::Protocol.status(), 502);
        assert_eq!(ProxyError::Timeout.status(), 504);
        assert_eq!(ProxyError::ConnectTimeout.status(), 504);
        assert_eq!(ProxyError::BadFraming { reason: "x" }.status(), 400);
        assert_eq!(ProxyError::ClientBody.status(), 400);
        assert_eq!(ProxyError::ClientBodyTimeout.status(), 408);
        assert!(ProxyError::ClientBody.is_client_fault());
        assert!(!ProxyError::Reset.is_client_fault());
    }

    #[test]
    fn error_body_is_short_json_with_retry_after_on_503() {
        let r: Response<Bytes> =
            ProxyError::AtCapacity.response(Some("alice"), None, Duration::from_millis(1500));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], "2");
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["key"], "alice");
        assert!(v["host"].is_null());
        assert_eq!(v["error"], "at capacity");

        let r: Response<Bytes> =
            ProxyError::Timeout.response(Some("k"), Some("host-a"), Duration::from_secs(1));
        assert_eq!(r.status(), 504);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["host"], "host-a");
        assert!(r.headers().get(header::CONNECTION).is_none());

        let r: Response<Bytes> = ProxyError::Quarantined {
            retry_after: Duration::from_millis(29_100),
        }
        .response(Some("poison"), None, Duration::from_secs(1));
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.headers()[header::RETRY_AFTER],
            "30",
            "the time left, not the default"
        );
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            (v["error"].as_str(), v["key"].as_str()),
            (Some("quarantined"), Some("poison"))
        );

        let r = ProxyError::BadFraming {
            reason: "missing Host",
        }
        .response(None, None, Duration::from_secs(1));
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()[header::CONNECTION], "close");
    }
}
