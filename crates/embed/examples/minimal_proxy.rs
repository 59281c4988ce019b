//! A minimal HTTP/1.1 proxy with Ringward's consistent-hash ring and health ejection in front
//! of N upstream hosts: hyper 1 and hyper-util's server and pooled legacy client, plus
//! `ringward-embed`.
//!
//! ```text
//! cargo run -p ringward-embed --example minimal_proxy -- \
//!     127.0.0.1:8080 host-a=127.0.0.1:9001 host-b=127.0.0.1:9002
//! curl -si -H 'x-val: alice-hello' http://127.0.0.1:8080/run
//! curl -si http://127.0.0.1:8080/alice-hello/run
//! ```
//!
//! A request's key (its Val) is its `x-val` header, else its first path segment. Every
//! request for a Val goes to the same host while that host is healthy, and moves to its next
//! host within about a second when the host fails: refused or reset connections, a run of
//! 5xx, requests stuck in flight (a deadlocked DB pool), or an exhausted pool reported in an
//! ORCA `endpoint-load-metrics` header. The response's `x-upstream` header names the host.
//! Without a key: 400; with no host left: 503 and `Retry-After`; no response head within 10 s:
//! 504; a failed exchange: 502.
//!
//! Minimal on purpose: no TLS, no retries, no header hygiene (hop-by-hop headers, `Forwarded`),
//! no graceful shutdown, no admin API. The `ringward` router has them all.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use ringward_embed::{Balancer, Host, Route, RouteBody, RouteLayer, ValKey};
use tokio::net::TcpListener;
use tower::{Layer, Service};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The whole proxy as one tower service: Ringward's routing around hyper-util's client.
type Proxy = Route<Client<HttpConnector, Incoming>, ValKey>;

const USAGE: &str = "usage: minimal_proxy LISTEN_ADDR NAME=HOST_ADDR [NAME=HOST_ADDR ...]";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().ok_or(USAGE)?.parse()?;
    let hosts = args
        .map(|arg| parse_host(&arg))
        .collect::<Result<Vec<_>, _>>()?;
    let listener = TcpListener::bind(listen).await?;
    println!(
        "proxying http://{} to {} hosts",
        listener.local_addr()?,
        hosts.len()
    );
    serve(listener, hosts).await
}

/// One upstream host from the command line: `name=ip:port`.
pub(crate) fn parse_host(arg: &str) -> Result<Host, BoxError> {
    let (name, addr) = arg.split_once('=').ok_or(USAGE)?;
    Ok(Host::new(name, addr.parse()?))
}

/// Serves the proxy on `listener` until accepting fails.
pub(crate) async fn serve(listener: TcpListener, hosts: Vec<Host>) -> Result<(), BoxError> {
    // The ring and in-flight counts, and the health driver task (it stops with `_driver`).
    let (balancer, _driver) = Balancer::builder(hosts).start()?;
    // One pooled keep-alive client for every host.
    let client = Client::builder(TokioExecutor::new()).build_http();
    let proxy: Proxy = RouteLayer::new(balancer, ValKey::header("x-val").or_path_segment(0))
        .upstream_header("x-upstream")
        .layer(client);
    loop {
        let (stream, _) = listener.accept().await?;
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(proxy.clone(), req));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(err) = conn.await {
                eprintln!("connection error: {err}");
            }
        });
    }
}

/// One request: routed and forwarded by the proxy; a failed exchange is a 502 (it has been
/// recorded against the host already).
async fn forward(
    mut proxy: Proxy,
    req: Request<Incoming>,
) -> Result<Response<RouteBody<Incoming>>, Infallible> {
    let result = match std::future::poll_fn(|cx| proxy.poll_ready(cx)).await {
        Ok(()) => proxy.call(req).await,
        Err(err) => Err(err),
    };
    Ok(result.unwrap_or_else(|err| {
        eprintln!("upstream error: {err}");
        let mut resp = Response::new(RouteBody::answer(r#"{"error":"bad gateway"}"#));
        *resp.status_mut() = StatusCode::BAD_GATEWAY;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    }))
}
