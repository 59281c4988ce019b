//! The request body as the attempts send it: none, a small one read whole before the first
//! attempt (so a failed connect or a rescue can send it again), or a stream that goes to one
//! attempt only.

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::config::Config;
use crate::error::ProxyError;
use crate::proxy::body::{self, BoxError, ProxyBody, TimedBody};

/// A body of declared size up to this is read before the first attempt, so that a failed
/// connect (nothing sent) can still carry it to the next preference, and an idempotent
/// request with it can be retried or rescued (Envoy keeps a retry buffer the same way).
/// Larger and unsized bodies stream, and go to one host only.
const RETRY_BUFFER: u64 = 64 * 1024;

/// The request body, as the attempts send it: none, a small one read whole first (so it can
/// be sent again), or a stream that goes to one attempt only.
pub(super) struct Upload {
    empty: bool,
    buffered: Option<Bytes>,
    streamed: Option<ProxyBody>,
}

impl Upload {
    /// Reads a body of declared size up to [`RETRY_BUFFER`] whole; wraps any other in the
    /// body limit, the idle timeout and the deadline, marked so that a broken or stalled
    /// upload is told apart from a failing host.
    pub(super) async fn read(
        body: Incoming,
        config: &Config,
        deadline: Instant,
    ) -> Result<Upload, ProxyError> {
        let empty = body.is_end_stream();
        let small = !empty && body.size_hint().exact().is_some_and(|n| n <= RETRY_BUFFER);
        let mut streamed: Option<ProxyBody> = (!empty).then(|| {
            body::boxed(
                TimedBody::<_, ()>::new(
                    crate::proxy::body_limit::LimitedBody::new(
                        body,
                        config.limits.max_request_body,
                    ),
                    config.upstream.body_idle_timeout,
                    deadline,
                    None,
                )
                .map_err(|e| -> BoxError { Box::new(crate::proxy::framing::ClientBodyError(e)) }),
            )
        });
        let buffered = match streamed.take_if(|_| small) {
            Some(upload) => match upload.collect().await {
                Ok(whole) => Some(whole.to_bytes()),
                Err(e) => return Err(crate::proxy::framing::client_body_fault(&e)),
            },
            None => None,
        };
        Ok(Upload {
            empty,
            buffered,
            streamed,
        })
    }

    /// True when every attempt can send the body (empty, or read whole).
    pub(super) fn replayable(&self) -> bool {
        self.empty || self.buffered.is_some()
    }

    /// The body for the next attempt; `None` once a streamed body went to an earlier one.
    pub(super) fn next(&mut self) -> Option<ProxyBody> {
        match (self.streamed.take(), &self.buffered) {
            (Some(b), _) => Some(b),
            (None, Some(whole)) => Some(body::full(whole.clone())),
            (None, None) if self.empty => Some(body::empty()),
            (None, None) => None,
        }
    }
}
