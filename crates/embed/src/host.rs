//! The hosts a balancer routes to: what the caller gives ([`Host`]) and what the request path
//! keeps ready-made for each.

use std::net::SocketAddr;

use http::HeaderValue;
use http::uri::Authority;

/// One upstream host: a unique name (it places the host on the ring, so a host keeps its
/// keys when its address changes), its address and its weight (its relative share of keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host {
    /// The unique name.
    pub name: String,
    /// Where requests for it go.
    pub addr: SocketAddr,
    /// Relative share of keys, at least 1.
    pub weight: u32,
}

impl Host {
    /// A host of weight 1.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Host {
        Host {
            name: name.into(),
            addr,
            weight: 1,
        }
    }

    /// The same host with another weight.
    #[must_use]
    pub fn with_weight(self, weight: u32) -> Host {
        Host { weight, ..self }
    }
}

/// A host as the balancer keeps it: what the caller gave, plus what the request path needs
/// ready-made.
#[derive(Debug)]
pub(crate) struct HostInfo {
    pub(crate) host: Host,
    pub(crate) authority: Authority,
    /// The name as a header value, when it is a valid one.
    pub(crate) header: Option<HeaderValue>,
}
