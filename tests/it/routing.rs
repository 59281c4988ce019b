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

#[tokio::test]
async fn headers_on_the_way_up_and_down_follow_rfc_9110() {
    use std::sync::Arc;

    use crate::faults::rawhost::{Action, RawHost};

    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: x-hop-down\r\nx-hop-down: 1\r\n\
keep-alive: timeout=5\r\nendpoint-load-metrics: TEXT named_metrics.db_pool_max=10, named_metrics.db_pool_in_use=1\r\n\
x-kept: yes\r\n\r\nok"
        .to_vec();
    let host = RawHost::start(Arc::new(move |_, _: &str| Action::Reply(reply.clone()))).await;
    let router = start(crate::faults::config(
        &crate::faults::hosts_toml(&[("raw".into(), host.addr())]),
        &[],
    ))
    .await;
    let reply = client::get_with(
        router.listen_addr(),
        "/v/alice/run",
        &[
            ("host", "alice.web.example.com"),
            ("connection", "x-hop-up"),
            ("x-hop-up", "secret"),
            ("x-forwarded-for", "10.1.2.3"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-val", "alice"),
        ],
    )
    .await
    .expect("answer");
    assert_eq!(reply.status, 200, "{}", reply.text());
    // Down: hop-by-hop (including what the host's Connection listed) and the ORCA report go.
    assert_eq!(reply.header("x-ringward-host"), Some("raw"));
    assert_eq!(reply.header("x-kept"), Some("yes"));
    for gone in ["x-hop-down", "keep-alive", "endpoint-load-metrics"] {
        assert!(reply.header(gone).is_none(), "{gone} reached the client");
    }
    // Up: the host sees the forwarding headers and none of the client's hop-by-hop ones.
    let seen = host.requests();
    let head = seen
        .last()
        .expect("the host saw the request")
        .head
        .to_ascii_lowercase();
    assert!(
        head.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1"),
        "{head}"
    );
    assert!(
        head.contains("forwarded: for=127.0.0.1;proto=http;host=\"alice.web.example.com\""),
        "{head}"
    );
    assert!(head.contains("host: alice.web.example.com"), "{head}");
    for gone in ["x-hop-up", "proxy-authorization", "connection: x-hop-up"] {
        assert!(!head.contains(gone), "{gone} reached the host: {head}");
    }
    // The in-band pool report reached the health state.
    ringward_tests::eventually_async(
        std::time::Duration::from_secs(2),
        "the pool report is seen",
        || async { crate::support::host_entry(&router, "raw").await["db_pool"]["max"] == 10 },
    )
    .await;
    router.shutdown().await;
    host.stop();
}
