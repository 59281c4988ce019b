//! HTTP/1.1 Upgrade (WebSocket) through the real router: routed by the Val key, the pair of
//! headers forwarded, the 101 spliced both ways; a tunnel is not a request (no in-flight
//! slot, never hung), has its own cap, idles out, and ends with shutdown's grace.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ringward::Router;
use ringward_tests::eventually_async;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::support::{any_port, metric, start};

/// A host that answers an upgrade request with 101 and then echoes every byte, and any
/// other request (the prober's) with a small 200 on a kept-alive connection.
struct EchoHost {
    addr: SocketAddr,
    upgrades: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoHost {
    async fn start() -> EchoHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let upgrades = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&upgrades);
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, Arc::clone(&seen)));
            }
        });
        EchoHost {
            addr,
            upgrades,
            task,
        }
    }
}

async fn serve(mut conn: TcpStream, upgrades: Arc<AtomicUsize>) {
    loop {
        let Some(head) = read_head(&mut conn).await else {
            return;
        };
        let lower = head.to_ascii_lowercase();
        if lower.contains("upgrade: websocket") && lower.contains("connection: upgrade") {
            upgrades.fetch_add(1, Ordering::SeqCst);
            let _ = conn
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n")
                .await;
            let (mut r, mut w) = conn.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
            return;
        }
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Reads one head (to the blank line); `None` at EOF.
async fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn router(host: &EchoHost, extra: impl FnOnce(&mut ringward::Config)) -> Router {
    let mut config =
        ringward::Config::for_hosts(any_port(), any_port(), &[("echo".to_owned(), host.addr)]);
    config.access_log.enabled = false;
    extra(&mut config);
    start(config).await
}

/// Opens a WebSocket-style upgrade for Val `key`: the router's answer head, and the stream.
async fn open(router: &Router, key: &str) -> (String, TcpStream) {
    let mut conn = TcpStream::connect(router.listen_addr())
        .await
        .expect("connect");
    conn.write_all(
        format!(
            "GET /v/{key}/chat HTTP/1.1\r\nhost: edge\r\nx-val: {key}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let head = tokio::time::timeout(Duration::from_secs(5), read_head(&mut conn))
        .await
        .expect("an answer in time")
        .expect("an answer head");
    (head, conn)
}

async fn echo(conn: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    conn.write_all(msg).await.expect("write");
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), conn.read_exact(&mut got))
        .await
        .expect("echo in time")
        .expect("echo");
    got
}

/// True when the router closed `conn` (EOF or reset) within `bound`.
async fn closed_within(conn: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(bound, conn.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn a_websocket_is_spliced_both_ways_and_is_not_a_request_in_flight() {
    let host = EchoHost::start().await;
    let router = router(&host, |_| {}).await;
    let (head, mut conn) = open(&router, "alice-chat").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("upgrade: websocket"), "{head}");
    assert!(lower.contains("connection: upgrade"), "{head}");
    assert!(lower.contains("x-ringward-host: echo"), "{head}");
    assert_eq!(
        host.upgrades.load(Ordering::SeqCst),
        1,
        "forwarded as an upgrade"
    );
    for msg in [&b"ping"[..], b"\x81\x05hello", &[0u8; 3000]] {
        assert_eq!(echo(&mut conn, msg).await, msg);
    }
    assert_eq!(metric(&router, "ringward_tunnels_open").await, 1);
    assert_eq!(metric(&router, "ringward_tunnels_total").await, 1);
    // Not a request: no in-flight slot held, nothing aging toward "hung".
    assert_eq!(
        metric(&router, "ringward_host_in_flight{host=\"echo\"}").await,
        0,
        "the tunnel holds no request slot"
    );
    drop(conn);
    eventually_async(Duration::from_secs(5), "the tunnel closed", || async {
        metric(&router, "ringward_tunnels_open").await == 0
    })
    .await;
    router.shutdown().await;
    host.task.abort();
}

#[tokio::test]
async fn tunnels_have_their_own_cap_and_idle_out() {
    let host = EchoHost::start().await;
    let router = router(&host, |c| {
        c.limits.max_tunnels = 1;
        c.upstream.tunnel_idle_timeout = Duration::from_millis(400);
    })
    .await;
    let (head, mut first) = open(&router, "a").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (head, _refused) = open(&router, "b").await;
    assert!(head.starts_with("HTTP/1.1 503"), "over the cap: {head}");
    assert_eq!(metric(&router, "ringward_tunnels_refused_total").await, 1);
    // Traffic keeps it open past the idle timeout; silence then closes it.
    let opened = Instant::now();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(echo(&mut first, b"still here").await, b"still here");
    }
    assert!(opened.elapsed() >= Duration::from_millis(600));
    let quiet = Instant::now();
    assert!(
        closed_within(&mut first, Duration::from_secs(5)).await,
        "idled out"
    );
    let idled = quiet.elapsed();
    assert!(
        idled >= Duration::from_millis(350),
        "closed after {idled:?}, before the idle timeout"
    );
    eventually_async(Duration::from_secs(5), "its slot is free", || async {
        metric(&router, "ringward_tunnels_open").await == 0
    })
    .await;
    let (head, _again) = open(&router, "b").await;
    assert!(head.starts_with("HTTP/1.1 101"), "room again: {head}");
    router.shutdown().await;
    host.task.abort();
}

#[tokio::test]
async fn shutdown_ends_open_tunnels_after_the_grace_period() {
    let host = EchoHost::start().await;
    let router = router(&host, |c| {
        c.listen.shutdown_grace = Duration::from_millis(500);
    })
    .await;
    let (head, mut conn) = open(&router, "a").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let started = Instant::now();
    let shutdown = tokio::spawn(router.shutdown());
    // Still open during the grace, then cut.
    assert_eq!(echo(&mut conn, b"during grace").await, b"during grace");
    assert!(
        closed_within(&mut conn, Duration::from_secs(5)).await,
        "cut at the end of the grace"
    );
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("shutdown returns")
        .expect("task");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    host.task.abort();
}
