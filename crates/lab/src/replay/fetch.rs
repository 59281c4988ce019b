//! A one-shot HTTP/1.1 GET or POST on loopback, for the replay's watchers and
//! the demo's tour (not for load: the load generator keeps a pooled client).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

/// Sends one request to `addr` and reads the answer, all within `within`.
pub(crate) async fn fetch(
    addr: SocketAddr,
    request: http::Request<Full<Bytes>>,
    within: Duration,
) -> anyhow::Result<Fetched> {
    tokio::time::timeout(within, async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let response = sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Fetched {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    })
    .await
    .map_err(|_| anyhow::anyhow!("no answer from {addr} within {within:?}"))?
}

/// `GET path` on `addr` with a `host` header, within a second.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Fetched> {
    let request = http::Request::get(path)
        .header(http::header::HOST, addr.to_string())
        .body(Full::default())?;
    fetch(addr, request, Duration::from_secs(1)).await
}
