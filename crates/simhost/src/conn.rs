//! One accepted connection: serve HTTP/1.1 on it, drain it on shutdown, or reset it when a
//! handler asks (the `reset` fault: the stream is dropped with SO_LINGER 0, so the peer gets
//! a TCP RST and no response); after a WebSocket upgrade, run the echo on it.

use std::convert::Infallible;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::handler;
use crate::reset::ResetSignal;
use crate::shared::Shared;
use crate::websocket::{self, Handoff};

/// The TCP stream, which turns its close into a reset once the signal has fired.
struct ResetOnDrop {
    stream: TcpStream,
    signal: Arc<ResetSignal>,
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if self.signal.has_fired() {
            // Zero linger never blocks; failing to set it only softens the reset to a FIN.
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResetOnDrop {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetOnDrop {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one connection until the peer leaves, a reset is asked for, or shutdown drains it;
/// an upgraded one, until its WebSocket ends.
pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let signal = Arc::new(ResetSignal::default());
    let handoff = Arc::new(Handoff::default());
    let io = TokioIo::new(ResetOnDrop {
        stream,
        signal: Arc::clone(&signal),
    });
    let svc = {
        let shared = Arc::clone(&shared);
        let signal = Arc::clone(&signal);
        let handoff = Arc::clone(&handoff);
        service_fn(move |req| {
            let shared = Arc::clone(&shared);
            let signal = Arc::clone(&signal);
            let handoff = Arc::clone(&handoff);
            async move {
                // Shutdown answers whatever is still waiting (pool queue, hang, slow), so a
                // graceful shutdown never waits on a fault.
                let resp = tokio::select! {
                    resp = handler::handle(&shared, &signal, &handoff, req) => resp,
                    () = shared.shutdown.wait() => handler::shutting_down(&shared),
                };
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let mut conn = pin!(
        http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(io, svc)
            .with_upgrades()
    );
    let mut draining = false;
    // Each pass ends the loop or sets `draining`, which disables its branch: at most 2 passes.
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "simhost connection ended with an error");
                }
                // HTTP is done with the socket: an accepted WebSocket lives on this task, so
                // the host's shutdown drains it like any connection.
                if let Some(upgrade) = handoff.take() {
                    websocket::echo(&shared, upgrade).await;
                }
                return;
            }
            () = signal.fired() => return,
            () = shared.shutdown.wait(), if !draining => {
                conn.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
}
