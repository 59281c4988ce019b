//! A tiny HTTP client and a poll helper for simhost's own tests.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Bound on any single request in these tests.
pub(crate) const BOUND: Duration = Duration::from_secs(5);

/// A whole response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name} missing"))
            .to_str()
            .expect("ASCII header")
    }
}

/// Sends `req` on a fresh connection and returns the response head (body unread).
pub(crate) async fn head(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, hyper::Error> {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to 127.0.0.1");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    send.send_request(req).await
}

/// Sends `req` on a fresh connection and reads the whole response.
pub(crate) async fn send(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Reply, hyper::Error> {
    let resp = head(addr, req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

pub(crate) fn get_req(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "sim")
        .body(Full::default())
        .unwrap()
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    tokio::time::timeout(BOUND, send(addr, get_req(path)))
        .await
        .unwrap_or_else(|_| panic!("GET {path}: no answer within {BOUND:?}"))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

pub(crate) async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    let req = Request::post(path)
        .header("host", "sim")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    tokio::time::timeout(BOUND, send(addr, req))
        .await
        .unwrap_or_else(|_| panic!("POST {path}: no answer within {BOUND:?}"))
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// Polls `cond` every few milliseconds until it holds; panics after `deadline`.
pub(crate) async fn eventually(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if cond() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asserts `fut` has not finished after `bound` (for faults that must never answer).
pub(crate) async fn stays_pending<F: Future>(bound: Duration, what: &str, fut: F) {
    if tokio::time::timeout(bound, fut).await.is_ok() {
        panic!("{what}: finished, but must not within {bound:?}");
    }
}
