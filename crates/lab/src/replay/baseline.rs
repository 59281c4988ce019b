//! The baseline: a router that behaves as the post-mortem's system did. It
//! pins each Val to a host by consistent hashing (the same ring as
//! Ringward), but has no request timeouts, no passive ejection, no in-flight
//! caps and a health check that ignores the DB pool, which for this scenario
//! is the same as no health check at all: the sick host stays in rotation.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use router_core::{HostSpec, KeyHash, Ring};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, hyper::Error>;

/// A running baseline router.
pub(crate) struct Baseline {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

struct Shared {
    ring: Ring,
    addrs: Vec<SocketAddr>,
    client: Client<HttpConnector, Incoming>,
}

impl Baseline {
    /// Starts the baseline on 127.0.0.1 in front of `hosts`.
    pub(crate) async fn start(hosts: &[(String, SocketAddr)]) -> anyhow::Result<Self> {
        let ring = Ring::try_new(hosts.iter().map(|(name, _)| HostSpec {
            name: name.clone(),
            weight: 1,
        }))?;
        let addrs = (0..ring.len())
            .map(|i| {
                let name = &ring.host(router_core::HostId(i as u32)).name;
                hosts.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| anyhow::anyhow!("ring names a host the baseline was not given"))?;
        let shared = Arc::new(Shared {
            ring,
            addrs,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| forward(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// Where it listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; connections in progress end with the runtime.
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

async fn forward(
    shared: Arc<Shared>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Body>, hyper::Error> {
    let key = req
        .headers()
        .get("x-val")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let Some(host) = shared.ring.candidates(KeyHash::of(&key)).next() else {
        return Ok(plain(502, "no host"));
    };
    let target = shared.addrs[host.index()];
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("http://{target}{path}").parse() {
        Ok(uri) => uri,
        Err(_) => return Ok(plain(400, "bad target")),
    };
    // No timeout here, on purpose: this is the system the post-mortem describes.
    match shared
        .client
        .request(hyper::Request::from_parts(parts, body))
        .await
    {
        Ok(response) => Ok(response.map(BodyExt::boxed)),
        Err(_) => Ok(plain(502, "upstream failed")),
    }
}

fn plain(status: u16, text: &'static str) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    response
}
