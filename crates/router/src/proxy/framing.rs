//! Request framing checks before anything is routed, and telling a client's broken body
//! apart from a failing host.
//!
//! An ambiguous message is refused with 400 and a closed connection, because a proxy and the
//! host behind it must never disagree on where one request ends and the next begins (request
//! smuggling, RFC 9112 sections 6.3 and 11.2). hyper parses the message; these are the cases
//! it accepts that a proxy must not pass on. A request body that breaks or stalls on the
//! client's side is answered 400 or 408 and never counted against the host's health.

use std::fmt;
use std::time::Duration;

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{Request, Response, Version};

use crate::error::ProxyError;
use crate::proxy::body::{self, BoxError, ProxyBody};

/// The framing rule a request with both Transfer-Encoding and Content-Length breaks
/// (refused here above hyper, and below it by `conn::head_guard`).
pub(crate) const TE_WITH_CL: &str = "both Transfer-Encoding and Content-Length";

/// Why a request's framing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FramingError {
    /// The rule broken.
    pub(crate) reason: &'static str,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

fn refuse(reason: &'static str) -> Result<(), FramingError> {
    Err(FramingError { reason })
}

/// Checks `req`'s framing and Host; `Err` says why it must be refused.
///
/// # Errors
/// Both Transfer-Encoding and Content-Length; more than one Transfer-Encoding, or one other
/// than a single `chunked`; no Host on HTTP/1.1; more than one Host; a Host that differs
/// from an absolute-form target.
pub(crate) fn check<B>(req: &Request<B>) -> Result<(), FramingError> {
    let headers = req.headers();
    let mut te = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(first) = te.next() {
        if te.next().is_some() {
            return refuse("more than one Transfer-Encoding header");
        }
        if headers.contains_key(CONTENT_LENGTH) {
            return refuse(TE_WITH_CL);
        }
        // Only a single `chunked` is forwarded faithfully; anything else is ambiguous.
        let chunked_only = first
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        if !chunked_only {
            return refuse("unsupported Transfer-Encoding (only a single chunked)");
        }
    }
    let mut hosts = headers.get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return refuse("more than one Host header");
    }
    if host.is_none() && req.version() == Version::HTTP_11 {
        return refuse("missing Host header");
    }
    if let (Some(authority), Some(host)) = (req.uri().authority(), host) {
        let same = host
            .to_str()
            .is_ok_and(|h| h.trim().eq_ignore_ascii_case(authority.as_str()));
        if !same {
            return refuse("Host does not match the request target");
        }
    }
    Ok(())
}

/// The 400 answer to a refused request (JSON body, `Connection: close`).
pub(crate) fn reject(error: &FramingError, _version: Version) -> Response<ProxyBody> {
    ProxyError::BadFraming {
        reason: error.reason,
    }
    .response(None, None, Duration::ZERO)
    .map(body::full)
}

/// Wraps a request body error that came from the client's side of the router.
#[derive(Debug)]
pub(crate) struct ClientBodyError(pub BoxError);

impl fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client request body: {}", self.0)
    }
}

impl std::error::Error for ClientBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// The client's fault behind an upstream error, when the request body is what failed:
/// 408 for a stalled body, 413 for one over the size limit, 400 for a broken one; None when
/// the host is to blame.
pub(crate) fn client_fault(err: &hyper_util::client::legacy::Error) -> Option<ProxyError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(ClientBodyError(inner)) = e.downcast_ref::<ClientBodyError>() {
            return Some(body_fault(inner));
        }
        source = e.source();
    }
    None
}

/// The answer when a client's body failed while the router read it itself (a small body
/// buffered so that it can be sent again).
pub(crate) fn client_body_fault(err: &BoxError) -> ProxyError {
    match err.downcast_ref::<ClientBodyError>() {
        Some(ClientBodyError(inner)) => body_fault(inner),
        None => ProxyError::ClientBody,
    }
}

/// Too large, stalled, or otherwise broken.
fn body_fault(inner: &BoxError) -> ProxyError {
    if let Some(too_large) = inner.downcast_ref::<crate::proxy::body_limit::BodyTooLarge>() {
        return ProxyError::BodyTooLarge {
            limit: too_large.limit,
        };
    }
    if inner.downcast_ref::<body::BodyTimeout>().is_some() {
        ProxyError::ClientBodyTimeout
    } else {
        ProxyError::ClientBody
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(version: Version, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().version(version).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request")
    }

    fn reason(r: Result<(), FramingError>) -> Option<&'static str> {
        r.err().map(|e| e.reason)
    }

    #[test]
    fn honest_requests_pass() {
        let v11 = Version::HTTP_11;
        assert_eq!(check(&req(v11, "/", &[("host", "x")])), Ok(()));
        assert_eq!(
            check(&req(
                v11,
                "/",
                &[("host", "x"), ("transfer-encoding", "Chunked")]
            )),
            Ok(())
        );
        assert_eq!(
            check(&req(v11, "/", &[("host", "x"), ("content-length", "3")])),
            Ok(())
        );
        assert_eq!(
            check(&req(Version::HTTP_10, "/", &[])),
            Ok(()),
            "HTTP/1.0 needs no Host"
        );
        assert_eq!(
            check(&req(Version::HTTP_2, "http://a.example/", &[])),
            Ok(())
        );
        assert_eq!(
            check(&req(v11, "http://a.example/", &[("host", "A.example")])),
            Ok(())
        );
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let v11 = Version::HTTP_11;
        let cases: [&[(&str, &str)]; 5] = [
            &[
                ("host", "x"),
                ("transfer-encoding", "chunked"),
                ("content-length", "4"),
            ],
            &[("host", "x"), ("transfer-encoding", "chunked, chunked")],
            &[("host", "x"), ("transfer-encoding", "gzip, chunked")],
            &[
                ("host", "x"),
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "chunked"),
            ],
            &[("host", "x"), ("transfer-encoding", "identity")],
        ];
        for headers in cases {
            assert!(check(&req(v11, "/", headers)).is_err(), "{headers:?}");
        }
    }

    #[test]
    fn host_rules() {
        let v11 = Version::HTTP_11;
        assert_eq!(
            reason(check(&req(v11, "/", &[]))),
            Some("missing Host header")
        );
        assert_eq!(
            reason(check(&req(v11, "/", &[("host", "x"), ("host", "y")]))),
            Some("more than one Host header")
        );
        assert_eq!(
            reason(check(&req(v11, "http://other.example/", &[("host", "x")]))),
            Some("Host does not match the request target")
        );
    }

    #[test]
    fn rejection_is_400_and_closes() {
        let r = reject(
            &FramingError {
                reason: "missing Host header",
            },
            Version::HTTP_11,
        );
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["connection"], "close");
    }
}
