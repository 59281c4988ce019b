//! Guards on a client connection, below hyper:
//!
//! - writes that stall are cut off: a client that stops reading its response (a slow-read
//!   attack, or a dead peer behind a full window) would otherwise hold its in-flight permit
//!   and its upstream connection for as long as it likes, because nothing polls the response
//!   body's timers while the socket refuses bytes;
//! - a connection that sends nothing at all is closed after the header-read timeout: hyper's
//!   protocol detection (HTTP/1.1 or h2) waits for the first bytes with no timer of its own,
//!   so without this an idle connect would be held forever.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// An IO whose writes fail with `TimedOut` once they have made no progress for `limit`,
/// and whose reads fail with `TimedOut` if no byte at all arrives within `first_byte`.
#[derive(Debug)]
pub(crate) struct WriteStallIo<T> {
    inner: T,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
    armed: bool,
    /// Until the first byte arrives: when the connection gives up waiting for it.
    first_byte: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStallIo<T> {
    /// Wraps `inner`: writes may stall for `limit`; the first byte must come within `first_byte`.
    pub(crate) fn new(inner: T, limit: Duration, first_byte: Duration) -> Self {
        WriteStallIo {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
            armed: false,
            first_byte: Some(Box::pin(tokio::time::sleep(first_byte))),
        }
    }

    /// Called when a write or flush is pending: starts the stall clock, or fails once it ran out.
    fn stalled<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        if !self.armed {
            self.armed = true;
            self.timer.as_mut().reset(Instant::now() + self.limit);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(&mut self, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        self.armed = false;
        r
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStallIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if r.is_pending() {
            let expired = self
                .first_byte
                .as_mut()
                .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
            if expired {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header read timeout",
                )));
            }
        } else if buf.filled().len() > before {
            self.first_byte = None;
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStallIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.stalled(cx),
            ready => self.progressed(ready),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.stalled(cx),
            ready => self.progressed(ready),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.stalled(cx),
            ready => self.progressed(ready),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_times_the_writer_out() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = WriteStallIo::new(near, Duration::from_secs(1), Duration::from_secs(60));
        // 64 bytes fit; the rest stalls because `far` reads nothing.
        let started = Instant::now();
        let err = io
            .write_all(&[7u8; 1024])
            .await
            .expect_err("the write stalls out");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(1));
        let mut buf = [0u8; 64];
        far.read_exact(&mut buf)
            .await
            .expect("what fit was delivered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = WriteStallIo::new(near, Duration::from_secs(1), Duration::from_secs(60));
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0u8; 64];
            while total < 1024 {
                // Reads every 500 ms: slow, but never silent for the whole limit.
                tokio::time::sleep(Duration::from_millis(500)).await;
                total += far.read(&mut buf).await.expect("read");
            }
            total
        });
        io.write_all(&[7u8; 1024])
            .await
            .expect("progress resets the clock");
        io.flush().await.expect("flush");
        assert_eq!(reader.await.expect("reader"), 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_given_up() {
        let (near, _far) = tokio::io::duplex(64);
        let mut io = WriteStallIo::new(near, Duration::from_secs(60), Duration::from_secs(2));
        let mut buf = [0u8; 8];
        let err = io.read(&mut buf).await.expect_err("no first byte");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_first_byte_reads_may_wait() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = WriteStallIo::new(near, Duration::from_secs(60), Duration::from_secs(2));
        far.write_all(b"G").await.expect("write");
        let mut buf = [0u8; 8];
        assert_eq!(io.read(&mut buf).await.expect("first byte"), 1);
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            far.write_all(b"ET").await.expect("write");
            far
        });
        assert_eq!(
            io.read(&mut buf).await.expect("later bytes"),
            2,
            "hyper's own timers rule now"
        );
        drop(late.await);
    }
}
