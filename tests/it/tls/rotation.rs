//! A certificate renewed on disk: served to new handshakes after the reload its file change
//! triggers, while a connection opened before keeps working; a broken renewal is refused and
//! the running certificate keeps serving.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use ringward::{Config, Router};
use ringward_tests::{Fleet, eventually_async};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

use super::certs::{Pki, Validity};
use crate::support::{TOKEN, metric, start};

/// A rustls client that trusts only `pki`'s CA.
fn connector(pki: &Pki) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca_der()))
        .expect("CA cert");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// An HTTP/1.1 connection over TLS to `localhost` at `port`, and the leaf it was served.
async fn connect(
    pki: &Pki,
    port: u16,
) -> (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    Vec<u8>,
) {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = connector(pki).connect(name, tcp).await.expect("handshake");
    let leaf = tls.get_ref().1.peer_certificates().expect("certificates")[0].to_vec();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1");
    tokio::spawn(conn);
    (sender, leaf)
}

/// The leaf a new handshake is served now.
async fn leaf_now(pki: &Pki, port: u16) -> Vec<u8> {
    connect(pki, port).await.1
}

async fn get_ok(sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) {
    let req = http::Request::get("/v/alice-hello/run")
        .header("host", "localhost")
        .body(Empty::new())
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.expect("body");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_its_file_changes_and_open_connections_stay() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let pki = Pki::new("rotate");
    let (cert, key) = pki.leaf("localhost", &["localhost"], Validity::Current);
    let path = pki.dir().join("ringward.toml");
    let mut text = format!(
        "[listen]\naddr = \"127.0.0.1:0\"\n[listen.tls]\naddr = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n\
         [admin]\naddr = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n[reload]\npoll_interval = \"20ms\"\n",
        cert.display(),
        key.display()
    );
    for (name, addr) in fleet.named_addrs() {
        text.push_str(&format!(
            "[[hosts]]\nname = \"{name}\"\naddr = \"{addr}\"\n"
        ));
    }
    std::fs::write(&path, text).expect("write config");
    let router: Router = start(Config::load(&path).expect("valid config")).await;
    router.watch_config(path.clone());
    let port = router.tls_addr().expect("TLS").port();

    let (mut open, first) = connect(&pki, port).await;
    get_ok(&mut open).await;

    // A broken renewal (the key file truncated): refused, the old certificate serves on.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").expect("truncate key");
    eventually_async(
        Duration::from_secs(10),
        "the broken key is refused",
        || async { metric(&router, "ringward_reloads_failed_total").await >= 1 },
    )
    .await;
    assert_eq!(leaf_now(&pki, port).await, first);
    get_ok(&mut open).await;

    // The real renewal: a new key and certificate written over the same files.
    let (cert_pem, key_pem) = pki.leaf_pem("renewed", &["localhost"], Validity::Current);
    std::fs::write(&cert, cert_pem).expect("write cert");
    std::fs::write(&key, key_pem).expect("write key");
    eventually_async(
        Duration::from_secs(10),
        "new handshakes get the renewed certificate",
        || async {
            let leaf = leaf_now(&pki, port).await;
            leaf != first
        },
    )
    .await;
    // The connection from before the renewal was not dropped.
    get_ok(&mut open).await;
    router.shutdown().await;
    fleet.shutdown().await;
}
