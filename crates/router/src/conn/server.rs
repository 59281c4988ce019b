//! Serving a listener with hyper-util's auto builder (HTTP/1.1 and h2c), a timer so the
//! header-read timeout works (without one, slowloris holds connections forever), and
//! graceful shutdown: stop accepting, let in-flight exchanges finish within a grace period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::config::ListenConfig;
use crate::conn::cap::ConnCap;
use crate::conn::head_guard::HeadGuard;
use crate::conn::stall::WriteStallIo;
use crate::proxy::body::ProxyBody;

/// A connection builder with the listener's timeouts.
pub(crate) fn builder(listen: &ListenConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(listen.header_read_timeout)
        // Bounds the request head: hyper answers 431 and closes when a head does not fit.
        .max_buf_size(listen.max_header_bytes)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(listen.http2_keep_alive_interval)
        .keep_alive_timeout(listen.http2_keep_alive_interval);
    b
}

/// How one listener serves its connections.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    /// On shutdown, how long open connections get to finish.
    pub(crate) grace: Duration,
    /// A connection whose writes make no progress for this long is closed.
    pub(crate) write_stall: Duration,
    /// A connection that sends no byte within this is closed.
    pub(crate) first_byte: Duration,
    /// The listener's name, for logs.
    pub(crate) what: &'static str,
    /// The connection cap; a connection beyond it is accepted and closed at once.
    pub(crate) cap: Option<ConnCap>,
}

/// Accepts connections until `shutdown` flips, then drains them for at most `options.grace`.
pub(crate) async fn serve<M, S>(
    listener: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    make_service: M,
    mut shutdown: watch::Receiver<bool>,
    options: ServeOptions,
) where
    M: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<ProxyBody>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let ServeOptions {
        grace,
        write_stall,
        first_byte,
        what,
        cap,
    } = options;
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let permit = match cap.as_ref().map(ConnCap::try_admit) {
                        // At the cap: close at once (the client sees EOF now, not a wait).
                        Some(None) => {
                            debug!(listener = what, %remote, "connection cap reached; closing");
                            drop(stream);
                            continue;
                        }
                        Some(Some(permit)) => Some(permit),
                        None => None,
                    };
                    let _ = stream.set_nodelay(true);
                    let conn = builder
                        .serve_connection_with_upgrades(
                            TokioIo::new(WriteStallIo::new(
                                HeadGuard::new(stream),
                                write_stall,
                                first_byte,
                            )),
                            make_service(remote),
                        )
                        .into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            debug!(%remote, error = %e, "connection ended with an error");
                        }
                        // The slot frees only when the connection has ended.
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly instead of spinning.
                    warn!(listener = what, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            listener = what,
            "connections still open after the shutdown grace period; closing them"
        );
    }
}
