//! Ringward's routing and host ejection for your own hyper/tower proxy.
//!
//! A *Val* is a user function: every request for one Val carries the Val's key (a header
//! such as `x-val`, or a path segment), and the worker host that served the Val last has it
//! warm. Ringward sends every request for a Val to one host by consistent hashing of the
//! key, and moves the Val elsewhere within about a second when that host's health goes bad
//! (above all a database pool exhausted or held by stuck queries); only the sick host's Vals
//! move, and exactly they come back once it has recovered and passed probation.
//!
//! This crate gives a proxy of your own that routing, without the `ringward` router:
//!
//! - [`Balancer`]: the ring (from `router-core`) over your [`Host`]s, each host's admission
//!   published through an `ArcSwap` snapshot, lock-free in-flight counts with bounded loads,
//!   and a non-blocking queue for request outcomes. [`Balancer::route`] is lock-free and
//!   allocation-free and gives a [`Pick`]: the host, and its in-flight permit.
//! - [`Driver`]: the one task that owns the health state machine (`health::Health`), feeds
//!   it the outcomes, reads every host's oldest in-flight age every 50 ms, and publishes a
//!   new snapshot whenever a host's [`admission`] changes.
//! - [`RouteLayer`] / [`Route`]: a `tower` layer for `http` requests: key, route, rewrite the
//!   URI to the host, call the inner service (e.g. hyper-util's legacy client), record the
//!   outcome; 400 without a key, 503 with `Retry-After` when no host may take it.
//!
//! What it does not do (the `ringward` router does): TLS, retries and rescue of requests
//! whose host was ejected, active health probes, the cascade guard, an admin API, metrics,
//! configuration files and reloads, header hygiene (hop-by-hop, `Forwarded`).
//!
//! ```no_run
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use ringward_embed::{Balancer, Host, RouteLayer, ValKey};
//! use tower::{Layer, ServiceExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let hosts = [
//!     Host::new("host-a", "127.0.0.1:9001".parse()?),
//!     Host::new("host-b", "127.0.0.1:9002".parse()?),
//! ];
//! // The balancer, and its health driver running on tokio (it stops with `_driver`).
//! let (balancer, _driver) = Balancer::builder(hosts).start()?;
//! let client = Client::builder(TokioExecutor::new())
//!     .build_http::<http_body_util::Empty<bytes::Bytes>>();
//! let proxy = RouteLayer::new(balancer, ValKey::header("x-val").or_path_segment(0))
//!     .layer(client);
//! // Every request for the Val `alice-hello` goes to the same host, while it is healthy.
//! let req = http::Request::get("/alice-hello/run").body(Default::default())?;
//! let resp = proxy.oneshot(req).await?; // `ServiceExt` is behind tower's `util` feature

//! println!("{}", resp.status());
//! # Ok(())
//! # }
//! ```
//!
//! See `examples/minimal_proxy.rs` for a whole proxy server, and the `ringward` repository's
//! `docs/ring.md` and `docs/health.md` for the ring's guarantees and the health defaults.
#![forbid(unsafe_code)]

mod admission;
mod balancer;
mod classify;
mod driver;
mod host;
mod key;
mod layer;
mod loads;
mod shared;
mod val_slot;

pub use admission::{admission, admissions};
pub use balancer::{
    Balancer, BalancerBuilder, BuildError, DEFAULT_EVENT_QUEUE, DEFAULT_PER_HOST_LIMIT,
    DEFAULT_TICK, Pick,
};
pub use classify::{ClassifyError, Failure, classify_error_chain};
pub use driver::{Driver, DriverHandle, next_snapshot};
pub use host::Host;
pub use key::{ExtractKey, KeyFn, KeySource, ValKey, key_fn};
pub use layer::{
    DEFAULT_RESPONSE_TIMEOUT, DEFAULT_RETRY_AFTER, Rejection, Route, RouteBody, RouteFuture,
    RouteLayer,
};
pub use loads::{AGE_SLOTS, HostLoads, Permit};
pub use val_slot::VAL_NAME_BYTES;

/// The crates this one is built on, for their types in its API.
pub use {health, router_core};

#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use router_core::{Admission, Snapshot};

    use crate::{Balancer, Host};

    /// Publishes these admissions as the driver would.
    pub(crate) fn publish(balancer: &Balancer, admission: Vec<Admission>) {
        let current = balancer.snapshot();
        balancer.shared.snapshot.store(Arc::new(Snapshot::new(
            Arc::clone(current.ring()),
            admission,
            current.generation() + 1,
        )));
    }

    /// `n` hosts named `host-0`.. on unused loopback ports.
    pub(crate) fn hosts(n: usize) -> Vec<Host> {
        (0..n)
            .map(|i| {
                Host::new(
                    format!("host-{i}"),
                    SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
                )
            })
            .collect()
    }
}
