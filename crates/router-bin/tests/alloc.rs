//! Heap allocations per proxied request, counted through the real router: Ringward may add
//! only a small, fixed number over a bare hyper-util proxy in front of the same host (the
//! floor any hyper proxy pays). Its own binary, so the global allocator counts nothing else.
//! The figures and their breakdown: docs/benchmarks.md, "Allocations on the request path".

use std::alloc::System;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ringward::{Config, Router};
use simhost::{ServiceTime, SimConfig, SimHost};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What the router may add per request over the bare proxy (9.0 measured; see the docs).
const BUDGET: f64 = 11.0;

async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut SendRequest<Empty<Bytes>>, host: &str) {
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

/// Serve, point the URI at `upstream`, send through the pooled legacy client: nothing more.
async fn start_bare_proxy(upstream: SocketAddr) -> SocketAddr {
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

/// Allocations per request over `n` requests, after `n` of warm-up.
async fn per_request(addr: SocketAddr, n: u32) -> f64 {
    let mut sender = connect(addr).await;
    let host = addr.to_string();
    for _ in 0..n {
        get(&mut sender, &host).await;
    }
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        get(&mut sender, &host).await;
    }
    region.change().allocations as f64 / f64::from(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_adds_a_small_fixed_number_of_allocations_per_request() {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let host = SimHost::start(
        loopback,
        SimConfig {
            service_time: ServiceTime::Fixed(Duration::ZERO),
            pool_size: 64,
            ..SimConfig::named("host-a")
        },
    )
    .await
    .expect("simhost");
    let bare = start_bare_proxy(host.addr()).await;
    let mut config = Config::for_hosts(loopback, loopback, &[("host-a".to_owned(), host.addr())]);
    // Probes allocate on their own schedule: keep them out of a count that a slow machine
    // (fewer requests per second) would otherwise inflate.
    config.health.active.interval = Duration::from_secs(3600);
    let router = Router::start(config).await.expect("router");

    let n = 500;
    let floor = per_request(bare, n).await;
    let ringward = per_request(router.listen_addr(), n).await;
    let added = ringward - floor;
    eprintln!(
        "allocations per request: bare proxy {floor:.1}, ringward {ringward:.1}, added {added:.1}"
    );
    assert!(
        added <= BUDGET,
        "ringward {ringward:.1} - bare proxy {floor:.1} = {added:.1} allocations per request, over {BUDGET}"
    );
    // The count is real: a proxied request does allocate (hyper, the pool, the host).
    assert!(floor > 10.0, "{floor}");

    router.shutdown().await;
    host.shutdown().await;
}
