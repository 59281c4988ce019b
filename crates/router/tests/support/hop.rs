//! Shared by the hop benchmark (`benches/proxy.rs`) and the allocation test
//! (`tests/alloc.rs`): a kept-alive test client and a bare hyper-util proxy, the floor any
//! hyper proxy pays, to measure Ringward against in the same process.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

/// A kept-alive HTTP/1.1 connection to `addr`.
pub(crate) async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// One `GET /v/alice/run` for Val `alice`, read whole; it must be a 200.
pub(crate) async fn get(sender: &mut SendRequest<Empty<Bytes>>, host: &str) {
    sender.ready().await.expect("ready");
    let req = http::Request::get("/v/alice/run")
        .header("host", host)
        .header("x-val", "alice")
        .body(Empty::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("body");
}

/// A proxy with nothing but hyper-util: serve the connection, point the URI at `upstream`,
/// send through the pooled legacy client, hand the response back as is.
pub(crate) async fn start_bare_proxy(upstream: SocketAddr) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let authority: http::uri::Authority = upstream.to_string().parse().expect("authority");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let _ = stream.set_nodelay(true);
            let client = client.clone();
            let authority = authority.clone();
            let service = service_fn(move |mut req: http::Request<Incoming>| {
                let client = client.clone();
                let mut parts = http::uri::Parts::default();
                parts.scheme = Some(http::uri::Scheme::HTTP);
                parts.authority = Some(authority.clone());
                parts.path_and_query = req.uri().path_and_query().cloned();
                *req.uri_mut() = http::Uri::from_parts(parts).expect("uri");
                async move { client.request(req).await }
            });
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A simhost named `host-a` on loopback that answers at once (no service time) with a
/// pool large enough never to queue: the host side costs as little as it can.
pub(crate) async fn start_instant_host() -> simhost::SimHost {
    simhost::SimHost::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        simhost::SimConfig {
            service_time: simhost::ServiceTime::Fixed(std::time::Duration::ZERO),
            pool_size: 64,
            ..simhost::SimConfig::named("host-a")
        },
    )
    .await
    .expect("simhost")
}
