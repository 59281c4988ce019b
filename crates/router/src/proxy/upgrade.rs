//! HTTP/1.1 Upgrade (WebSocket and the like): the request is routed by its Val key like any
//! other, with its `Upgrade` and `Connection: upgrade` pair forwarded; a `101` from the host
//! splices the client's and the host's connections both ways until either side closes, the
//! tunnel idles out (`upstream.tunnel_idle_timeout`) or shutdown's grace period ends.
//!
//! A tunnel is long-lived by nature, so it is not a request: its in-flight permits end with
//! the 101 (it never ages as a hung request, never holds a per-host slot), and it is counted
//! on its own, under its own cap (`limits.max_tunnels`). HTTP/2 extended CONNECT (RFC 8441)
//! is not offered: an h2 client's WebSocket needs HTTP/1.1 to the router.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::proxy::headers::listed_in_connection;

/// The `Upgrade` value of an HTTP/1.1 upgrade request (`Connection` lists `upgrade`), if
/// `parts` is one. A CONNECT or an HTTP/2 request never is.
pub(crate) fn requested(parts: &Parts) -> Option<HeaderValue> {
    if parts.version != Version::HTTP_11 || parts.method == Method::CONNECT {
        return None;
    }
    let listed = listed_in_connection(&parts.headers, "upgrade");
    let upgrade = parts.headers.get(header::UPGRADE)?;
    (listed && !upgrade.is_empty()).then(|| upgrade.clone())
}

/// Puts back the pair that hop-by-hop stripping took out: `Upgrade: protocol` and
/// `Connection: upgrade`.
pub(crate) fn restore(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::UPGRADE, protocol);
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
}

/// The router's tunnels: how many are open, the cap, and the signal that ends them.
#[derive(Debug)]
pub(crate) struct Tunnels {
    open: Arc<AtomicU64>,
    /// Tunnels spliced since start.
    pub(crate) total: AtomicU64,
    /// Upgrade requests refused at the cap.
    pub(crate) refused: AtomicU64,
    cap: AtomicU64,
    /// Set with the time they have left when the router shuts down.
    closing: watch::Sender<Option<Duration>>,
    /// Woken when the last open tunnel closes.
    none_open: Arc<Notify>,
}

impl Tunnels {
    /// Room for `cap` tunnels at once.
    pub(crate) fn new(cap: u32) -> Tunnels {
        Tunnels {
            open: Arc::new(AtomicU64::new(0)),
            total: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            cap: AtomicU64::new(u64::from(cap)),
            closing: watch::Sender::new(None),
            none_open: Arc::new(Notify::new()),
        }
    }

    /// Changes the cap (a reload); open tunnels stay.
    pub(crate) fn set_cap(&self, cap: u32) {
        self.cap.store(u64::from(cap), Ordering::Relaxed);
    }

    /// Tunnels open now.
    pub(crate) fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// A slot for one tunnel, or `None` at the cap (counted).
    pub(crate) fn try_reserve(&self) -> Option<TunnelSlot> {
        let cap = self.cap.load(Ordering::Relaxed);
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(TunnelSlot {
            open: Arc::clone(&self.open),
            none_open: Arc::clone(&self.none_open),
        })
    }

    /// Waits until no tunnel is open, or `deadline`.
    pub(crate) async fn wait_closed(&self, deadline: Instant) {
        loop {
            let notified = self.none_open.notified();
            if self.open() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Shutdown: every tunnel ends within `grace`.
    pub(crate) fn close(&self, grace: Duration) {
        self.closing.send_replace(Some(grace));
    }

    /// Splices the client's and the host's upgraded connections in a task of its own, until
    /// either closes, both are idle for `idle`, or shutdown's grace runs out.
    pub(crate) fn splice(
        &self,
        slot: TunnelSlot,
        client: OnUpgrade,
        host: OnUpgrade,
        idle: Duration,
    ) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let closing = self.closing.subscribe();
        tokio::spawn(async move {
            let (client, host) = match tokio::try_join!(client, host) {
                Ok(both) => both,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade failed before the tunnel opened");
                    return;
                }
            };
            let outcome = run(TokioIo::new(client), TokioIo::new(host), idle, closing).await;
            tracing::debug!(?outcome, "tunnel closed");
            drop(slot);
        });
    }
}

/// One open tunnel's place under the cap; freed on drop.
#[derive(Debug)]
pub(crate) struct TunnelSlot {
    open: Arc<AtomicU64>,
    none_open: Arc<Notify>,
}

impl Drop for TunnelSlot {
    fn drop(&mut self) {
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.none_open.notify_waiters();
        }
    }
}

/// How a tunnel ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// A side closed (or failed); bytes copied client to host, host to client.
    Closed(u64, u64),
    /// Nothing moved either way for the idle timeout.
    Idle,
    /// The router shut down and the grace period ran out.
    Shutdown,
}

/// Copies both ways between `a` and `b` until one closes, both idle for `idle`, or
/// `closing` says the router is going and its grace runs out.
pub(crate) async fn run<A, B>(
    a: A,
    b: B,
    idle: Duration,
    mut closing: watch::Receiver<Option<Duration>>,
) -> Ended
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let last = Arc::new(AtomicU64::new(0));
    let origin = Instant::now();
    let mut a = Active::new(a, &last, origin);
    let mut b = Active::new(b, &last, origin);
    let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
    tokio::pin!(copy);
    let mut stop_at: Option<Instant> = (*closing.borrow_and_update()).map(|g| Instant::now() + g);
    loop {
        let quiet_until = origin + Duration::from_nanos(last.load(Ordering::Relaxed)) + idle;
        let until = stop_at.map_or(quiet_until, |s| s.min(quiet_until));
        tokio::select! {
            done = &mut copy => {
                let (up, down) = done.unwrap_or((0, 0));
                return Ended::Closed(up, down);
            }
            changed = closing.changed(), if stop_at.is_none() => {
                match changed {
                    Ok(()) => stop_at = (*closing.borrow()).map(|g| Instant::now() + g),
                    // The router is gone without a shutdown: end with it.
                    Err(_) => return Ended::Shutdown,
                }
            }
            () = tokio::time::sleep_until(until) => {
                let now = Instant::now();
                if stop_at.is_some_and(|s| now >= s) {
                    return Ended::Shutdown;
                }
                let quiet = origin + Duration::from_nanos(last.load(Ordering::Relaxed)) + idle;
                if now >= quiet {
                    return Ended::Idle;
                }
            }
        }
    }
}

/// An IO that notes when bytes last moved through it (either way).
struct Active<T> {
    inner: T,
    last: Arc<AtomicU64>,
    origin: Instant,
}

impl<T> Active<T> {
    fn new(inner: T, last: &Arc<AtomicU64>, origin: Instant) -> Self {
        Active {
            inner,
            last: Arc::clone(last),
            origin,
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Active<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Active<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    fn parts(version: Version, method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder()
            .method(method)
            .version(version)
            .uri("/v/a/ws");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn an_upgrade_is_http11_with_connection_upgrade_and_an_upgrade_header() {
        let ws = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ];
        assert_eq!(
            requested(&parts(Version::HTTP_11, Method::GET, &ws)).as_ref(),
            Some(&HeaderValue::from_static("websocket"))
        );
        for (v, m, h) in [
            (Version::HTTP_2, Method::GET, &ws[..]),
            (Version::HTTP_11, Method::CONNECT, &ws[..]),
            (Version::HTTP_11, Method::GET, &ws[1..]),
            (Version::HTTP_11, Method::GET, &ws[..1]),
        ] {
            assert_eq!(requested(&parts(v, m, h)), None, "{v:?} {h:?}");
        }
    }

    #[test]
    fn the_cap_counts_open_tunnels() {
        let t = Tunnels::new(1);
        let slot = t.try_reserve().expect("room for one");
        assert!(t.try_reserve().is_none());
        assert_eq!((t.open(), t.refused.load(Ordering::Relaxed)), (1, 1));
        drop(slot);
        assert_eq!(t.open(), 0);
        assert!(t.try_reserve().is_some());
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_until_a_side_closes() {
        let (client, mut client_end) = duplex(64);
        let (host, mut host_end) = duplex(64);
        let (_tx, rx) = watch::channel(None);
        let tunnel = tokio::spawn(run(client, host, Duration::from_secs(60), rx));
        client_end.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        host_end.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        host_end.write_all(b"pong!").await.expect("write");
        let mut got = [0u8; 5];
        client_end.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"pong!");
        drop(client_end);
        drop(host_end);
        assert_eq!(tunnel.await.expect("task"), Ended::Closed(4, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_tunnel_idles_out_and_traffic_keeps_it_open() {
        let (client, mut client_end) = duplex(64);
        let (host, mut host_end) = duplex(64);
        let (_tx, rx) = watch::channel(None);
        let started = Instant::now();
        let tunnel = tokio::spawn(run(client, host, Duration::from_secs(10), rx));
        tokio::time::sleep(Duration::from_secs(8)).await;
        client_end.write_all(b"x").await.expect("write");
        let mut got = [0u8; 1];
        host_end.read_exact(&mut got).await.expect("read");
        assert_eq!(tunnel.await.expect("task"), Ended::Idle);
        let lasted = started.elapsed();
        assert!(
            lasted >= Duration::from_secs(18) && lasted < Duration::from_secs(19),
            "idle 10 s after the last byte at 8 s: {lasted:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_a_busy_tunnel_after_the_grace() {
        let (client, _client_end) = duplex(64);
        let (host, _host_end) = duplex(64);
        let (tx, rx) = watch::channel(None);
        let started = Instant::now();
        let tunnel = tokio::spawn(run(client, host, Duration::from_secs(3600), rx));
        tokio::time::sleep(Duration::from_secs(5)).await;
        tx.send_replace(Some(Duration::from_secs(2)));
        assert_eq!(tunnel.await.expect("task"), Ended::Shutdown);
        let lasted = started.elapsed();
        assert!(
            lasted >= Duration::from_secs(7) && lasted < Duration::from_secs(8),
            "{lasted:?}"
        );
    }
}
