//! The response body: either whole, or stalled after the headers (the `stall_body` fault).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A simulated host's response body.
pub(crate) struct SimBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    /// Announces `len` bytes, sends none, and fails when `until` completes (host shutdown),
    /// so a stalled response never blocks a graceful shutdown.
    Stalled {
        len: u64,
        until: Pin<Box<dyn Future<Output = ()> + Send>>,
    },
}

impl SimBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> SimBody {
        SimBody {
            kind: Kind::Full(Some(bytes.into())),
        }
    }

    pub(crate) fn stalled(len: u64, until: impl Future<Output = ()> + Send + 'static) -> SimBody {
        SimBody {
            kind: Kind::Stalled {
                len,
                until: Box::pin(until),
            },
        }
    }
}

/// The error a stalled body ends with when the host shuts down.
#[derive(Debug)]
pub(crate) struct StalledBody;

impl fmt::Display for StalledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stalled response body abandoned at shutdown")
    }
}

impl std::error::Error for StalledBody {}

impl Body for SimBody {
    type Data = Bytes;
    type Error = StalledBody;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StalledBody>>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stalled { until, .. } => until.as_mut().poll(cx).map(|()| Some(Err(StalledBody))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Stalled { len, .. } => SizeHint::with_exact(*len),
        }
    }
}
