//! The example `minimal_proxy`, started in-process on loopback in front of simulated hosts:
//! a real HTTP client talks to it over TCP.

#[allow(dead_code)] // its `main` is the example's, not called here
#[path = "../examples/minimal_proxy.rs"]
mod minimal_proxy;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use simhost::{SimConfig, SimHost};
use tokio::net::TcpListener;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// Status, `x-upstream` and `x-simhost` of a GET through the proxy.
async fn get(
    client: &HttpClient,
    proxy: SocketAddr,
    path: &str,
    val: Option<&str>,
) -> (StatusCode, Option<String>, Option<String>) {
    let mut req = Request::get(format!("http://{proxy}{path}"));
    if let Some(val) = val {
        req = req.header("x-val", val);
    }
    let resp = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let header = |name| {
        resp.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (upstream, simhost) = (header("x-upstream"), header("x-simhost"));
    let status = resp.status();
    resp.into_body().collect().await.unwrap();
    (status, upstream, simhost)
}

#[test]
fn host_arguments_are_name_equals_address() {
    let host = minimal_proxy::parse_host("host-a=127.0.0.1:9001").unwrap();
    assert_eq!((host.name.as_str(), host.addr.port()), ("host-a", 9001));
    assert!(minimal_proxy::parse_host("127.0.0.1:9001").is_err());
    assert!(minimal_proxy::parse_host("host-a=nowhere").is_err());
}

#[tokio::test]
async fn the_example_proxies_each_val_to_one_host_and_moves_it_when_the_host_fails() {
    let mut sims = Vec::new();
    let mut hosts = Vec::new();
    for name in ["host-a", "host-b", "host-c"] {
        let sim = SimHost::start("127.0.0.1:0".parse().unwrap(), SimConfig::named(name))
            .await
            .unwrap();
        let arg = format!("{name}={}", sim.addr());
        hosts.push(minimal_proxy::parse_host(&arg).unwrap());
        sims.push(sim);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let server = tokio::spawn(minimal_proxy::serve(listener, hosts));
    let client = Client::builder(TokioExecutor::new()).build_http();

    // By path segment and by header: the same Val, the same host, named by both headers.
    let (status, upstream, served) = get(&client, proxy, "/alice-hello/run", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(upstream, served);
    let home = served.unwrap();
    for _ in 0..3 {
        let by_header = get(&client, proxy, "/run", Some("alice-hello")).await;
        assert_eq!(by_header.2.as_deref(), Some(home.as_str()));
    }
    // No key: 400 from the proxy itself.
    let (status, upstream, _) = get(&client, proxy, "/", None).await;
    assert_eq!((status, upstream), (StatusCode::BAD_REQUEST, None));

    // The Val's host resets every connection: 502s, then it is ejected and the Val moves.
    let sim = sims.iter().find(|s| s.name() == home).unwrap();
    sim.faults().reset(true);
    let moved = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (status, _, served) = get(&client, proxy, "/alice-hello/run", None).await;
            match status {
                StatusCode::BAD_GATEWAY => continue,
                StatusCode::OK => break served.unwrap(),
                other => panic!("unexpected {other}"),
            }
        }
    })
    .await
    .expect("the Val moved");
    assert_ne!(moved, home);

    server.abort();
    for sim in sims {
        sim.shutdown().await;
    }
}
