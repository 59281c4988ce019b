//! What can go wrong talking to etcd.

/// An etcd request that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An endpoint is not `host:port` or `http://host:port`.
    #[error("bad etcd endpoint `{0}` (write host:port or http://host:port)")]
    Endpoint(String),
    /// No endpoint answered (connection refused, timeout, reset): etcd is unreachable.
    #[error("etcd unreachable ({endpoints}): {last}")]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// The last failure.
        last: String,
    },
    /// etcd answered with an error status (a lease that does not exist, a compacted
    /// revision, a malformed request).
    #[error("etcd refused {path}: {status} {message}")]
    Refused {
        /// The gateway path.
        path: &'static str,
        /// The HTTP status.
        status: u16,
        /// etcd's message.
        message: String,
    },
    /// etcd answered something this client cannot read.
    #[error("unexpected answer from etcd to {path}: {message}")]
    Protocol {
        /// The gateway path.
        path: &'static str,
        /// What was wrong.
        message: String,
    },
}
