//! simhost's tests use the workspace's test client and poll helpers (`ringward-testkit`);
//! these wrappers keep their calls short.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use ringward_testkit::client;
pub(crate) use ringward_testkit::client::{ClientError, Reply};
pub(crate) use ringward_testkit::{eventually, stays_pending};

/// Bound on any single request in these tests.
pub(crate) const BOUND: Duration = Duration::from_secs(5);

/// Sends `req` on a fresh connection and returns the response head (body unread).
pub(crate) async fn head(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, ClientError> {
    client::send_head(addr, req).await
}

/// Sends `req` on a fresh connection and reads the whole response, with no bound of its own:
/// the tests bound requests they expect to hang themselves.
pub(crate) async fn send(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Reply, ClientError> {
    client::send_timeout(addr, req, Duration::MAX).await
}

pub(crate) fn get_req(path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "sim")
        .body(Full::default())
        .unwrap()
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Reply {
    client::send_timeout(addr, get_req(path), BOUND)
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

pub(crate) async fn post(addr: SocketAddr, path: &str, body: &str) -> Reply {
    let req = Request::post(path)
        .header("host", "sim")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    client::send_timeout(addr, req, BOUND)
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}
