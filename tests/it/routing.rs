//! Sticky routing, key extraction, the upstream header, and stripping of the ORCA header.

use std::collections::BTreeSet;

use ringward_tests::Fleet;
use ringward_tests::client;

use crate::support::{config_for, get_key, host_of, mapping, routed_by_admin, start};

#[tokio::test]
async fn same_key_same_host_across_two_routers() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let a = start(config_for(&fleet)).await;
    let b = start(config_for(&fleet)).await;
    let first = mapping(&a, 40).await;
    let used: BTreeSet<&str> = first.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(used.len(), 3, "40 keys spread over all 3 hosts: {used:?}");
    for (key, host) in &first {
        assert_eq!(
            &host_of(&a, key).await,
            host,
            "{key} moved on a second request"
        );
        assert_eq!(
            &host_of(&b, key).await,
            host,
            "{key} differs between the two routers"
        );
        assert_eq!(
            routed_by_admin(&b, key).await.as_deref(),
            Some(host.as_str())
        );
    }
    a.shutdown().await;
    b.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn responses_name_the_host_and_lose_the_load_report() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let reply = get_key(&router, "alice").await;
    assert_eq!(reply.status, 200);
    let host = reply.header("x-ringward-host").expect("upstream header");
    assert!(
        fleet.by_name(host).is_some(),
        "names a configured host: {host}"
    );
    assert!(
        reply.header("endpoint-load-metrics").is_none(),
        "the ORCA header is stripped before the client sees it"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn key_sources_in_order_and_400_naming_them() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let mut config = config_for(&fleet);
    config.route.key = [
        "header:x-val",
        "host_label:web.example.com",
        "path_segment:1",
        "query:val",
    ]
    .iter()
    .map(|s| ringward::KeySource::parse(s).expect("source"))
    .collect();
    let router = start(config).await;
    let addr = router.listen_addr();
    let by_header = host_of(&router, "alice-hello").await;
    let by_label = client::get_with(addr, "/", &[("host", "alice-hello.web.example.com")])
        .await
        .expect("label");
    assert_eq!(by_label.header("x-ringward-host"), Some(by_header.as_str()));
    let by_path = client::get(addr, "/v/alice-hello/run").await.expect("path");
    assert_eq!(by_path.header("x-ringward-host"), Some(by_header.as_str()));
    let by_query = client::get(addr, "/?val=alice-hello").await.expect("query");
    assert_eq!(by_query.header("x-ringward-host"), Some(by_header.as_str()));

    let none = client::get_with(addr, "/", &[("host", "elsewhere.example.org")])
        .await
        .expect("no key");
    assert_eq!(none.status, 400);
    let body = none.json();
    let error = body["error"].as_str().expect("error text");
    for source in [
        "header:x-val",
        "host_label:web.example.com",
        "path_segment:1",
        "query:val",
    ] {
        assert!(error.contains(source), "{error} names {source}");
    }
    assert_eq!(
        fleet.val_requests().iter().sum::<u64>(),
        4,
        "the 400 reached no host"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn cleartext_http2_clients_are_served() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let fleet = Fleet::start(2).await.expect("fleet");
    let router = start(config_for(&fleet)).await;
    let expected = host_of(&router, "alice").await;
    let stream = tokio::net::TcpStream::connect(router.listen_addr())
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2c handshake (prior knowledge)");
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/v/alice/run", router.listen_addr()))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = tokio::time::timeout(std::time::Duration::from_secs(5), sender.send_request(req))
        .await
        .expect("in time")
        .expect("h2 response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.headers()["x-ringward-host"], expected.as_str());
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("alice"));
    router.shutdown().await;
    fleet.shutdown().await;
}
