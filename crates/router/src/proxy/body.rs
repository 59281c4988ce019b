//! Streaming bodies with deadlines: a body that stalls longer than the idle timeout, or runs
//! past the whole-request deadline, ends with an error instead of hanging. The body also
//! carries the request's in-flight permits, so a request counts as in flight until its
//! response body has been streamed out (or dropped).

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// The error type of every body the router moves.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type the router serves and sends upstream.
pub(crate) type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Boxes any body into a [`ProxyBody`].
pub(crate) fn boxed<B>(body: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A body of fixed bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    boxed(http_body_util::Full::new(bytes.into()).map_err(|never| match never {}))
}

/// An empty body.
pub(crate) fn empty() -> ProxyBody {
    boxed(http_body_util::Empty::new().map_err(|never| match never {}))
}

/// A body ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyTimeout {
    /// True for the idle timeout, false for the whole-request deadline.
    pub(crate) idle: bool,
}

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.idle {
            f.write_str("body idle timeout")
        } else {
            f.write_str("request deadline reached while streaming the body")
        }
    }
}

impl std::error::Error for BodyTimeout {}

/// What a [`TimedBody`] holds until it ends: told of every data frame's size and of the end.
/// Dropped when the body ends (or is dropped unfinished: the client went away).
pub(crate) trait BodyGuard {
    /// A data frame of `bytes` went by.
    fn on_data(&mut self, _bytes: usize) {}
    /// The body ended: `complete` when it ended as it should, not by an error.
    fn on_end(&mut self, _complete: bool) {}
}

impl BodyGuard for () {}

pin_project! {
    /// A body with an idle timeout and an absolute deadline, holding `guard` until it ends.
    pub(crate) struct TimedBody<B, G> {
        #[pin]
        inner: B,
        #[pin]
        timer: Sleep,
        idle: Duration,
        deadline: Instant,
        guard: Option<G>,
        done: bool,
    }
}

impl<B, G> TimedBody<B, G> {
    /// Wraps `inner`: at most `idle` between frames, nothing after `deadline`.
    pub(crate) fn new(inner: B, idle: Duration, deadline: Instant, guard: Option<G>) -> Self {
        let first = (Instant::now() + idle).min(deadline);
        TimedBody {
            inner,
            timer: tokio::time::sleep_until(first),
            idle,
            deadline,
            guard,
            done: false,
        }
    }
}

impl<B, G: BodyGuard> TimedBody<B, G> {
    /// Ends the body: tells the guard and drops it.
    fn end(guard: &mut Option<G>, done: &mut bool, complete: bool) {
        if let Some(mut g) = guard.take() {
            g.on_end(complete);
        }
        *done = true;
    }
}

impl<B, G> Body for TimedBody<B, G>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    G: BodyGuard,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let now = Instant::now();
        if now >= *this.deadline {
            // A body that keeps trickling never idles out; the deadline still ends it.
            Self::end(this.guard, this.done, false);
            return Poll::Ready(Some(Err(Box::new(BodyTimeout { idle: false }))));
        }
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer
                    .as_mut()
                    .reset((now + *this.idle).min(*this.deadline));
                if let (Some(data), Some(g)) = (frame.data_ref(), this.guard.as_mut()) {
                    g.on_data(data.len());
                }
                // hyper stops polling a body whose size it knows once the last byte is in:
                // this frame may be the end, with no `None` to follow.
                if this.inner.is_end_stream() {
                    Self::end(this.guard, this.done, true);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                Self::end(this.guard, this.done, false);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                Self::end(this.guard, this.done, true);
                Poll::Ready(None)
            }
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Self::end(this.guard, this.done, false);
                let idle = Instant::now() < *this.deadline;
                Poll::Ready(Some(Err(Box::new(BodyTimeout { idle }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Flag(Arc<AtomicBool>);
    impl BodyGuard for Flag {}
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_and_releases_its_guard() {
        let (mut tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        let stream = ChannelBody(rx);
        let released = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_secs(60);
        let body = TimedBody::new(
            stream,
            Duration::from_secs(1),
            deadline,
            Some(Flag(Arc::clone(&released))),
        );
        let mut body = std::pin::pin!(body);
        tx_send(&mut tx, "a").await;
        let first = body.as_mut().frame().await.expect("frame").expect("ok");
        assert_eq!(first.into_data().unwrap(), "a");
        // Nothing more arrives: the idle timer fires.
        let err = body.as_mut().frame().await.expect("an error").unwrap_err();
        let timeout = err.downcast_ref::<BodyTimeout>().expect("a BodyTimeout");
        assert!(timeout.idle);
        assert!(released.load(Ordering::SeqCst));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_a_trickling_body() {
        let (mut tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(64);
        let stream = ChannelBody(rx);
        let deadline = Instant::now() + Duration::from_millis(2500);
        let body = TimedBody::<_, ()>::new(stream, Duration::from_secs(1), deadline, None);
        let mut body = std::pin::pin!(body);
        let mut frames = 0;
        let err = loop {
            tx_send(&mut tx, "x").await;
            match body.as_mut().frame().await.expect("frame") {
                Ok(_) => frames += 1,
                Err(e) => break e,
            }
            assert!(frames < 100, "bounded");
            tokio::time::advance(Duration::from_millis(900)).await;
        };
        assert!(!err.downcast_ref::<BodyTimeout>().unwrap().idle);
        assert_eq!(
            frames, 3,
            "frames at 0, 0.9 and 1.8 s pass; 2.7 s is past the deadline"
        );
    }

    #[tokio::test]
    async fn a_finished_body_releases_its_guard() {
        let released = Arc::new(AtomicBool::new(false));
        let body = TimedBody::new(
            http_body_util::Full::new(Bytes::from_static(b"hi")),
            Duration::from_secs(1),
            Instant::now() + Duration::from_secs(5),
            Some(Flag(Arc::clone(&released))),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "hi");
        assert!(released.load(Ordering::SeqCst));
    }

    async fn tx_send(
        tx: &mut tokio::sync::mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
        s: &'static str,
    ) {
        tx.send(Ok(Frame::data(Bytes::from_static(s.as_bytes()))))
            .await
            .unwrap();
    }

    /// A body fed through a channel (frames arrive when the test sends them).
    struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>);
    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            self.0.poll_recv(cx)
        }
    }
}
