//! Request heads over `listen.max_header_bytes` (default 64 KiB) get 431 and a closed
//! connection, over a raw socket, and reach no host; heads under the limit are served.

use std::sync::Arc;
use std::time::Duration;

use super::framing::exchange;
use crate::faults::rawhost::{Action, RawHost, ok_response};
use crate::faults::{config, hosts_toml};
use crate::support::start;

/// A request whose whole head (request line, headers, blank line) is exactly `size` bytes.
fn head_of(size: usize) -> Vec<u8> {
    let start = "GET /v/k/run HTTP/1.1\r\nHost: x\r\nX-Big: ";
    let end = "\r\n\r\n";
    let pad = size - start.len() - end.len();
    format!("{start}{}{end}", "a".repeat(pad)).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_max_header_bytes_gets_431_and_a_closed_connection() {
    let host = RawHost::start(Arc::new(|_, _| Action::Reply(ok_response()))).await;
    let hosts = hosts_toml(&[("raw".into(), host.addr())]);
    let bound = Duration::from_secs(5);

    // The default: 64 KiB.
    let router = start(config(&hosts, &[])).await;
    let addr = router.listen_addr();
    let over = exchange(addr, &head_of(64 * 1024 + 1), bound).await;
    assert_eq!(over.statuses, [431], "{over:?}");
    assert!(over.closed, "the connection is closed after 431");
    assert_eq!(
        host.requests().len(),
        0,
        "an oversized head reached the host"
    );
    // 60 KiB (Envoy's limit) is served; the 431 above is the limit, not a broken router.
    let mut req = head_of(60 * 1024);
    req.splice(
        req.len() - 2..,
        b"Connection: close\r\n\r\n".iter().copied(),
    );
    let under = exchange(addr, &req, bound).await;
    assert_eq!(under.statuses, [200], "{}", under.text);
    assert_eq!(host.requests().len(), 1);
    router.shutdown().await;

    // A configured limit.
    let router = start(config(
        &hosts,
        &[("listen", "max_header_bytes = \"16KiB\"")],
    ))
    .await;
    let addr = router.listen_addr();
    let over = exchange(addr, &head_of(16 * 1024 + 1), bound).await;
    assert_eq!(over.statuses, [431], "{over:?}");
    assert!(over.closed);
    let mut req = head_of(12 * 1024);
    req.splice(
        req.len() - 2..,
        b"Connection: close\r\n\r\n".iter().copied(),
    );
    let under = exchange(addr, &req, bound).await;
    assert_eq!(under.statuses, [200], "{}", under.text);
    assert_eq!(
        host.requests().len(),
        2,
        "only the two heads under the limits"
    );
    router.shutdown().await;
    host.stop();
}
