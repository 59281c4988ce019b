//! A tiny HTTP/1.1 client for tests: a fresh connection per call (or a kept-alive
//! [`Connection`]), every call bounded by a timeout, so a test never hangs on a bad server.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The bound on a call unless another is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a call got no response.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// The TCP connect failed (refused, ...).
    Connect(io::Error),
    /// The connection broke or the peer spoke bad HTTP (a reset lands here).
    Http(hyper::Error),
    /// No complete answer within the bound.
    Timeout(Duration),
}

impl ClientError {
    /// True for [`ClientError::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout(_))
    }

    /// True when the connection could not be opened.
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect(_))
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(e) => write!(f, "connect: {e}"),
            ClientError::Http(e) => write!(f, "http: {e}"),
            ClientError::Timeout(d) => write!(f, "no answer within {d:?}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect(e) => Some(e),
            ClientError::Http(e) => Some(e),
            ClientError::Timeout(_) => None,
        }
    }
}

/// A whole response.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, read to the end.
    pub body: Bytes,
}

impl Reply {
    /// A header as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON (the message shows the body).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// A request builder for `path` (`Host` is filled in from the address if left unset).
pub fn request(method: Method, path: &str) -> http::request::Builder {
    Request::builder().method(method).uri(path)
}

/// Sends `req` on a fresh connection and reads the whole response, within [`DEFAULT_TIMEOUT`].
///
/// # Errors
/// [`ClientError`].
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
    send_timeout(addr, req, DEFAULT_TIMEOUT).await
}

/// [`send`] with another bound.
///
/// # Errors
/// [`ClientError`].
pub async fn send_timeout(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
    bound: Duration,
) -> Result<Reply, ClientError> {
    tokio::time::timeout(bound, async {
        let mut conn = Connection::open(addr).await?;
        conn.send_unbounded(req).await
    })
    .await
    .map_err(|_| ClientError::Timeout(bound))?
}

/// Sends `req` on a fresh connection and returns as soon as the head arrives (body unread):
/// for stalled bodies. The head is bounded by [`DEFAULT_TIMEOUT`]; reading the body is not.
///
/// # Errors
/// [`ClientError`].
pub async fn send_head(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, ClientError> {
    tokio::time::timeout(DEFAULT_TIMEOUT, async {
        let mut conn = Connection::open(addr).await?;
        conn.sender
            .send_request(with_host(addr, req))
            .await
            .map_err(ClientError::Http)
    })
    .await
    .map_err(|_| ClientError::Timeout(DEFAULT_TIMEOUT))?
}

/// `GET path`.
///
/// # Errors
/// [`ClientError`].
pub async fn get(addr: SocketAddr, path: &str) -> Result<Reply, ClientError> {
    get_with(addr, path, &[]).await
}

/// `GET path` with extra headers (`("x-val", "alice")`, `("host", "alice.web.example.com")`).
///
/// # Errors
/// [`ClientError`].
pub async fn get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, ClientError> {
    let mut b = request(Method::GET, path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(addr, build(b, Bytes::new())).await
}

/// `POST path` with a body and extra headers.
///
/// # Errors
/// [`ClientError`].
pub async fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Reply, ClientError> {
    let mut b = request(Method::POST, path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(addr, build(b, body.into())).await
}

/// `POST path` with a JSON body.
///
/// # Errors
/// [`ClientError`].
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> Result<Reply, ClientError> {
    let b = request(Method::POST, path).header(CONTENT_TYPE, "application/json");
    send(addr, build(b, Bytes::from(body.to_string()))).await
}

/// Builds the request. A bad header in a test is a bug in the test, hence the panic.
fn build(b: http::request::Builder, body: Bytes) -> Request<Full<Bytes>> {
    b.body(Full::new(body))
        .unwrap_or_else(|e| panic!("bad test request: {e}"))
}

fn with_host(addr: SocketAddr, mut req: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    if !req.headers().contains_key(HOST)
        && let Ok(v) = HeaderValue::try_from(addr.to_string())
    {
        req.headers_mut().insert(HOST, v);
    }
    req
}

/// One kept-alive HTTP/1.1 connection, for several requests in a row.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects (not bounded: wrap it, or use [`send`]).
    ///
    /// # Errors
    /// [`ClientError::Connect`] or [`ClientError::Http`].
    pub async fn open(addr: SocketAddr) -> Result<Connection, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(ClientError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ClientError::Http)?;
        // The connection task ends when the sender is dropped or the peer closes.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection { addr, sender })
    }

    /// Sends one request and reads the whole response, within [`DEFAULT_TIMEOUT`].
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        tokio::time::timeout(DEFAULT_TIMEOUT, self.send_unbounded(req))
            .await
            .map_err(|_| ClientError::Timeout(DEFAULT_TIMEOUT))?
    }

    async fn send_unbounded(&mut self, req: Request<Full<Bytes>>) -> Result<Reply, ClientError> {
        self.sender.ready().await.map_err(ClientError::Http)?;
        let resp = self
            .sender
            .send_request(with_host(self.addr, req))
            .await
            .map_err(ClientError::Http)?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(ClientError::Http)?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simhost::{SimConfig, SimHost};

    #[tokio::test]
    async fn talks_to_a_simhost_and_reports_failures_by_kind() {
        let host = SimHost::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default())
            .await
            .unwrap();
        let addr = host.addr();
        let reply = get_with(addr, "/whatever", &[("x-val", "alice")])
            .await
            .unwrap();
        assert_eq!(reply.json()["val"], "alice");
        assert!(
            reply
                .header("endpoint-load-metrics")
                .unwrap()
                .starts_with("TEXT ")
        );

        let set = post_json(addr, "/_sim/fault", &serde_json::json!({"hang": true}))
            .await
            .unwrap();
        assert_eq!(set.json()["hang"], true);
        let err = send_timeout(
            addr,
            build(request(Method::GET, "/v/x"), Bytes::new()),
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(err.is_timeout(), "{err}");

        post(
            addr,
            "/_sim/fault",
            &[],
            r#"{"hang": false, "reset": true}"#,
        )
        .await
        .unwrap();
        let err = get(addr, "/v/x").await.unwrap_err();
        assert!(matches!(err, ClientError::Http(_)), "{err}");
        post(addr, "/_sim/clear", &[], "").await.unwrap();

        // Keep-alive: two requests, one connection.
        let before = host.stats().connections;
        let mut conn = Connection::open(addr).await.unwrap();
        for _ in 0..2 {
            let r = conn
                .send(build(request(Method::GET, "/v/y"), Bytes::new()))
                .await
                .unwrap();
            assert_eq!(r.status, 200);
        }
        assert_eq!(host.stats().connections, before + 1);

        let stalled = {
            host.faults().stall_body(true);
            send_head(addr, build(request(Method::GET, "/v/z"), Bytes::new()))
                .await
                .unwrap()
        };
        assert_eq!(stalled.status(), 200);
        host.shutdown().await;

        let err = get(addr, "/v/x").await.unwrap_err();
        assert!(err.is_connect(), "{err}");
    }
}
