//! Real clients over TLS: curl (HTTP/1.1 and h2), `openssl s_client` (SNI, ALPN, chain),
//! h2load; certificates that must fail; a handshake that never finishes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ringward::config::TlsConfig;
use ringward_tests::Fleet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::certs::{Pki, Validity};
use super::{curl, run, tls_port, tls_router};
use crate::support::{any_port, host_of, metric, start};

#[tokio::test]
async fn curl_reaches_the_vals_host_over_tls_with_http1_and_h2() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let pki = Pki::new("curl");
    let (cert, key) = pki.leaf("localhost", &["localhost"], Validity::Current);
    let router = tls_router(&fleet, &cert, &key, |_| {}).await;
    let port = tls_port(&router);
    for key in ["alice-hello", "bob-cron", "carol-api"] {
        // Where the plaintext listener sends the Val: TLS must not change it.
        let expected = host_of(&router, key).await;
        for (flag, status_line) in [("--http1.1", "HTTP/1.1 200"), ("--http2", "HTTP/2 200")] {
            let out = curl(&pki, port, &format!("/v/{key}/run"), &[flag]).await;
            assert_eq!(out.code, Some(0), "curl {flag}: {out:?}");
            assert!(out.stdout.starts_with(status_line), "{flag}: {out:?}");
            let served_by = format!("x-ringward-host: {expected}");
            assert!(
                out.stdout
                    .lines()
                    .any(|l| l.eq_ignore_ascii_case(&served_by)),
                "{flag}: {key} not served by {expected}: {out:?}"
            );
        }
    }
    assert_eq!(
        metric(
            &router,
            "ringward_tls_handshakes_total{outcome=\"completed\"}"
        )
        .await,
        6
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

/// A host that answers every request 200 with the forwarding headers it received.
async fn header_echo_host() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let get = |name: &str| {
                    req.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned()
                };
                let body = format!(
                    "proto={}\nforwarded={}\n",
                    get("x-forwarded-proto"),
                    get("forwarded")
                );
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body))))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

#[tokio::test]
async fn the_host_learns_the_request_came_over_https_and_a_client_cannot_claim_it() {
    let host = header_echo_host().await;
    let pki = Pki::new("proto");
    let (cert, key) = pki.leaf("localhost", &["localhost"], Validity::Current);
    let mut config =
        ringward::Config::for_hosts(any_port(), any_port(), &[("echo".to_owned(), host)]);
    config.access_log.enabled = false;
    config.listen.tls = Some(TlsConfig::load(any_port(), &cert, &key).expect("pair"));
    let router = start(config).await;

    let out = curl(&pki, tls_port(&router), "/v/alice/run", &[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("proto=https\n"), "{out:?}");
    assert!(out.stdout.contains(";proto=https;"), "{out:?}");

    let plain = ringward_tests::client::get_with(
        router.listen_addr(),
        "/v/alice/run",
        &[("x-forwarded-proto", "https")],
    )
    .await
    .expect("plaintext request");
    assert!(plain.text().contains("proto=http\n"), "{}", plain.text());
    router.shutdown().await;
}

#[tokio::test]
async fn openssl_gets_the_certificate_for_its_sni_name_with_alpn_h2() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let pki = Pki::new("sni");
    let (cert, key) = pki.leaf("default", &["localhost"], Validity::Current);
    let (vals_cert, vals_key) = pki.leaf("vals", &["*.vals.example.com"], Validity::Current);
    let router = tls_router(&fleet, &cert, &key, |c| {
        let tls = c.listen.tls.take().expect("tls");
        c.listen.tls = Some(
            tls.with_sni_certificate(&vals_cert, &vals_key)
                .expect("SNI pair"),
        );
    })
    .await;
    let connect = format!("127.0.0.1:{}", tls_port(&router));
    let ca = pki.ca_file();
    let s_client = |name: &'static str, alpn: &'static str| {
        let connect = connect.clone();
        let ca = ca.clone();
        async move {
            run(
                "openssl",
                &[
                    "s_client",
                    "-connect",
                    &connect,
                    "-servername",
                    name,
                    "-verify_hostname",
                    name,
                    "-verify_return_error",
                    "-alpn",
                    alpn,
                    "-CAfile",
                    ca.to_str().expect("utf-8"),
                ],
            )
            .await
        }
    };
    // The wildcard certificate for a Val subdomain, verified by name against the CA.
    let out = s_client("alice.vals.example.com", "h2").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("ALPN protocol: h2"), "{out:?}");
    assert!(out.stdout.contains("Verify return code: 0 (ok)"), "{out:?}");
    assert!(
        out.stdout.contains("CN = vals") || out.stdout.contains("CN=vals"),
        "{out:?}"
    );
    // Any other name gets the default certificate, with HTTP/1.1 when that is all it offers.
    let out = s_client("localhost", "http/1.1").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("ALPN protocol: http/1.1"), "{out:?}");
    assert!(
        out.stdout.contains("CN = default") || out.stdout.contains("CN=default"),
        "{out:?}"
    );
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn h2load_over_tls_gets_every_response() {
    let fleet = Fleet::start(3).await.expect("fleet");
    let pki = Pki::new("h2load");
    let (cert, key) = pki.leaf("localhost", &["localhost"], Validity::Current);
    let router = tls_router(&fleet, &cert, &key, |_| {}).await;
    let url = format!("https://127.0.0.1:{}/v/alice-hello/run", tls_port(&router));
    let out = run("h2load", &["-n", "400", "-c", "4", "-m", "8", &url]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Application protocol: h2"), "{out:?}");
    assert!(
        out.stdout.contains("400 succeeded, 0 failed"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("400 2xx"), "{}", out.stdout);
    // Every one reached a host (32 at a time for one Val: bounded load spreads them).
    let served = fleet.val_requests();
    assert_eq!(served.iter().sum::<u64>(), 400, "{served:?}");
    router.shutdown().await;
    fleet.shutdown().await;
}

#[tokio::test]
async fn an_expired_or_wrong_name_certificate_fails_the_client() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let pki = Pki::new("bad");
    for (stem, names, validity, says) in [
        ("expired", ["localhost"], Validity::Expired, "expired"),
        (
            "other",
            ["other.example.com"],
            Validity::Current,
            "localhost",
        ),
    ] {
        let (cert, key) = pki.leaf(stem, &names, validity);
        let router = tls_router(&fleet, &cert, &key, |_| {}).await;
        let out = curl(&pki, tls_port(&router), "/v/alice/run", &[]).await;
        // 60: the peer certificate cannot be authenticated.
        assert_eq!(out.code, Some(60), "{stem}: {out:?}");
        assert!(out.stderr.contains(says), "{stem}: {out:?}");
        assert_eq!(
            fleet.val_requests(),
            vec![0],
            "{stem}: nothing reached the host"
        );
        router.shutdown().await;
    }
    fleet.shutdown().await;
}

#[tokio::test]
async fn a_stalled_handshake_holds_a_connection_slot_until_it_is_cut() {
    let fleet = Fleet::start(1).await.expect("fleet");
    let pki = Pki::new("stall");
    let (cert, key) = pki.leaf("localhost", &["localhost"], Validity::Current);
    let router = tls_router(&fleet, &cert, &key, |c| {
        c.limits.max_connections = 1;
        // Long enough for the client below to be refused while the stall holds the slot.
        c.listen.tls.as_mut().expect("tls").handshake_timeout = Duration::from_secs(2);
    })
    .await;
    let port = tls_port(&router);

    // The first bytes of a TLS record, then nothing: past the first byte, never finished.
    let mut stalled = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stalled.write_all(&[0x16, 0x03, 0x01]).await.expect("write");
    ringward_tests::eventually_async(
        Duration::from_secs(5),
        "the stall holds the slot",
        || async { metric(&router, "ringward_connections_open").await == 1 },
    )
    .await;

    // The cap counts the handshake: a real client is turned away meanwhile.
    let refused = curl(&pki, port, "/v/alice/run", &[]).await;
    assert_ne!(refused.code, Some(0), "{refused:?}");

    // Cut at the handshake timeout (well before the 10 s the test allows).
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut buf))
        .await
        .expect("the stalled handshake is cut");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(
        metric(
            &router,
            "ringward_tls_handshakes_total{outcome=\"timed_out\"}"
        )
        .await,
        1
    );
    // The slot is free again.
    ringward_tests::eventually_async(
        Duration::from_secs(5),
        "a client is served again",
        || async { curl(&pki, port, "/v/alice/run", &[]).await.code == Some(0) },
    )
    .await;
    router.shutdown().await;
    fleet.shutdown().await;
}
