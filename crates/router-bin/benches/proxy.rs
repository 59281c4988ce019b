//! The router's overhead on one request: the same GET over a kept-alive HTTP/1.1 connection,
//! straight to a simulated host (the baseline) and through Ringward in front of it, in the
//! same process. Report the ratio of the two, not the absolute times (loopback, shared CPU).
//!
//! `cargo bench -p router-bin --bench proxy -- --measurement-time 2 --warm-up-time 1`

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use ringward::{Config, Router};
use simhost::{ServiceTime, SimConfig, SimHost};

async fn connect(addr: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut SendRequest<Empty<Bytes>>, addr: SocketAddr) {
    sender.ready().await.expect("ready");
    let req = http::Request::get("/v/alice/run")
        .header("host", addr.to_string())
        .header("x-val", "alice")
        .body(Empty::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("body");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let (host, router) = rt.block_on(async {
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
        let config = Config::for_hosts(loopback, loopback, &[("host-a".to_owned(), host.addr())]);
        let router = Router::start(config).await.expect("router");
        (host, router)
    });
    let mut group = c.benchmark_group("one GET, kept-alive");
    for (name, addr) in [
        ("direct to the host", host.addr()),
        ("through ringward", router.listen_addr()),
    ] {
        let mut sender = rt.block_on(connect(addr));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        get(&mut sender, addr).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
    rt.block_on(async {
        router.shutdown().await;
        host.shutdown().await;
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
