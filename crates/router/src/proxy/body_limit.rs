//! The request body size limit (`limits.max_request_body`).
//!
//! A declared `Content-Length` over the limit is answered 413 before any host is contacted
//! ([`declared_over`]); a body without one (chunked, HTTP/2 frames) is counted as it streams
//! ([`LimitedBody`]) and ends in a [`BodyTooLarge`] error the moment it passes the limit, which
//! the proxy turns into 413 (or an aborted response if the host already answered). Either way
//! it is the client's fault, never the host's.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http::header::CONTENT_LENGTH;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::proxy::body::BoxError;

/// A request body passed the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyTooLarge {
    /// The limit, in bytes.
    pub(crate) limit: u64,
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request body larger than {} bytes", self.limit)
    }
}

impl std::error::Error for BodyTooLarge {}

/// True when `req` declares a `Content-Length` over `limit` (framing has already refused
/// malformed or conflicting values, so an unparsable one here is left to hyper).
pub(crate) fn declared_over<B>(req: &Request<B>, limit: u64) -> bool {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > limit)
}

pin_project! {
    /// A body that fails with [`BodyTooLarge`] once more than `limit` data bytes went through.
    pub(crate) struct LimitedBody<B> {
        #[pin]
        inner: B,
        seen: u64,
        limit: u64,
        failed: bool,
    }
}

impl<B> LimitedBody<B> {
    /// Wraps `inner` with a limit of `limit` bytes.
    pub(crate) fn new(inner: B, limit: u64) -> Self {
        LimitedBody {
            inner,
            seen: 0,
            limit,
            failed: false,
        }
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.failed {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.seen = this.seen.saturating_add(data.len() as u64);
                    if *this.seen > *this.limit {
                        // The bytes over the limit are not passed on.
                        *this.failed = true;
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                            limit: *this.limit,
                        }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn a_declared_length_over_the_limit_is_refused_up_front() {
        let req = http::Request::post("/v/a/run")
            .header("content-length", "2048")
            .body(())
            .unwrap();
        assert!(declared_over(&req, 1024));
        assert!(!declared_over(&req, 4096));
    }

    /// A body yielding `parts` as data frames, one per poll.
    struct Chunks(std::collections::VecDeque<&'static str>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes())))),
            )
        }
    }

    fn chunks(parts: &[&'static str]) -> Chunks {
        Chunks(parts.iter().copied().collect())
    }

    #[tokio::test]
    async fn a_body_within_the_limit_passes_whole() {
        let body = LimitedBody::new(chunks(&["abc", "def"]), 6);
        let bytes = body.collect().await.expect("within the limit").to_bytes();
        assert_eq!(bytes, "abcdef");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_fails_at_the_chunk_that_passes_it() {
        let mut body = std::pin::pin!(LimitedBody::new(chunks(&["abc", "def", "g"]), 5));
        let first = body.as_mut().frame().await.expect("frame").expect("ok");
        assert_eq!(first.into_data().expect("data"), "abc");
        let err = body.as_mut().frame().await.expect("frame").unwrap_err();
        assert_eq!(
            err.downcast_ref::<BodyTooLarge>(),
            Some(&BodyTooLarge { limit: 5 })
        );
        assert!(
            body.as_mut().frame().await.is_none(),
            "nothing after the error"
        );
    }

    #[test]
    fn declared_lengths() {
        let req = |cl: &str| {
            Request::post("/")
                .header("content-length", cl)
                .body(())
                .expect("request")
        };
        assert!(declared_over(&req("11"), 10));
        assert!(!declared_over(&req("10"), 10));
        assert!(!declared_over(&Request::post("/").body(()).expect("r"), 10));
    }
}
