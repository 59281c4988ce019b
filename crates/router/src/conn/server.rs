//! Serving a listener with hyper-util's auto builder (HTTP/1.1 and h2, in the clear or over
//! TLS), a timer so the header-read timeout works (without one, slowloris holds connections
//! forever), and graceful shutdown: stop accepting, let in-flight exchanges finish within a
//! grace period.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::config::ListenConfig;
use crate::conn::cap::ConnCap;
use crate::conn::head_guard::HeadGuard;
use crate::conn::stall::WriteStallIo;
use crate::proxy::body::ProxyBody;
use crate::tls::TlsAcceptor;

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
    /// For a TLS listener: the handshake side and how long a handshake may take.
    pub(crate) tls: Option<(TlsAcceptor, Duration)>,
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
        tls,
    } = options;
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    // The slot is taken before a TLS handshake: handshakes count against the cap.
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
                    let service = make_service(remote);
                    let watcher = graceful.watcher();
                    let builder = builder.clone();
                    let guards = (write_stall, first_byte);
                    match tls.clone() {
                        None => {
                            tokio::spawn(async move {
                                serve_io(&builder, stream, service, watcher, guards, remote).await;
                                // The slot frees only when the connection has ended.
                                drop(permit);
                            });
                        }
                        Some((acceptor, handshake_timeout)) => {
                            tokio::spawn(async move {
                                match acceptor.accept(stream, handshake_timeout).await {
                                    Ok(stream) => {
                                        serve_io(&builder, stream, service, watcher, guards, remote)
                                            .await;
                                    }
                                    Err(e) => {
                                        debug!(listener = what, %remote, error = %e, "TLS handshake failed");
                                    }
                                }
                                drop(permit);
                            });
                        }
                    }
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

/// Serves one connection's HTTP (the bytes in the clear: a TCP stream, or a TLS stream after
/// its handshake) under the guards below hyper, until it ends or graceful shutdown ends it.
async fn serve_io<IO, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: IO,
    service: S,
    watcher: Watcher,
    (write_stall, first_byte): (Duration, Duration),
    remote: SocketAddr,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<ProxyBody>, Error = Infallible>
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let io = TokioIo::new(WriteStallIo::new(
        HeadGuard::new(io),
        write_stall,
        first_byte,
    ));
    let conn = builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        debug!(%remote, error = %e, "connection ended with an error");
    }
}
