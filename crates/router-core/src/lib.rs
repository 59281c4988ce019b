//! Ringward's routing core: the consistent-hash ring, bounded loads, explain
//! and the lock-free routing snapshot: which host a Val's key goes to.
//!
//! A *Val* is a user function (the name comes from Val Town, whose post-mortem Ringward
//! answers): every request names one by its key, and Ringward sends all requests for one Val
//! to the same worker host, so they find a warm worker.
//!
//! Pure and sans-IO: no clock, no sockets, no tokio. The inputs are a host set
//! ([`HostSpec`]: name and weight), each host's [`Admission`] (decided by the
//! health crate, applied by the router) and the caller's in-flight counts
//! ([`InFlight`]). The output is a [`HostId`] per key, or `None`.
//!
//! - [`Ring`]: immutable, built from the host *set* (listing order never
//!   matters), rebuilt only when membership or weights change.
//! - [`KeyHash::of`]: XXH3-64 with the fixed seed [`RING_SEED`]; placement is
//!   stable across processes, platforms and releases with the same
//!   [`RING_VERSION`].
//! - [`Ring::candidates`]: the key's hosts in preference order, distinct,
//!   allocation-free. Skipping ineligible hosts at lookup moves exactly their
//!   keys, spread over the others by weight, and restoring them brings exactly
//!   those keys back.
//! - [`Snapshot::route`]: the hot path with admission, hard limits and
//!   [`BoundedLoads`]; [`Snapshot::explain`] says why each host was skipped.
//!
//! See `docs/ring.md` for the algorithm, its guarantees and measurements.
//!
//! ```
//! use std::sync::Arc;
//! use ringward_core::{
//!     Admission, BoundedLoads, HostSpec, KeyHash, NoLoads, Ring, SkipReason, Snapshot,
//! };
//!
//! let ring = Arc::new(Ring::try_new(vec![
//!     HostSpec::new("host-a", 1),
//!     HostSpec::new("host-b", 1),
//!     HostSpec::new("host-c", 2),
//! ])?);
//! let key = KeyHash::of(b"alice-hello");
//! let own = ring.primary(key);
//!
//! // Eject the key's own host: the key walks on to its next host.
//! let mut admission = vec![Admission::Open; ring.len()];
//! admission[own.index()] = Admission::Closed(SkipReason::Ejected);
//! let snapshot = Snapshot::new(Arc::clone(&ring), admission, 1);
//! // The caller's in-flight counts (`InFlight`); none here.
//! let loads = NoLoads;
//! let chosen = snapshot.route(key, &loads, &BoundedLoads::default()).unwrap();
//! assert_ne!(chosen, own);
//!
//! let explain = snapshot.explain(key, &loads, &BoundedLoads::default());
//! assert_eq!(explain.walk[0].skipped, Some(SkipReason::Ejected));
//! assert_eq!(explain.chosen, Some(chosen));
//! # Ok::<(), ringward_core::RingError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admission;
mod bounded;
mod error;
mod explain;
mod hash;
mod host;
mod inflight;
mod ring;
mod snapshot;
mod walk;

pub use admission::{Admission, SkipReason, ramp_bucket};
pub use bounded::{BoundedLoads, DEGRADED_CAP_SCALE};
pub use error::RingError;
pub use explain::{Explain, WalkStep};
pub use hash::{KeyHash, RING_SEED, RING_VERSION};
pub use host::{HostId, HostSpec, MAX_HOSTS};
pub use inflight::{InFlight, NoLoads};
pub use ring::Ring;
pub use snapshot::Snapshot;
pub use walk::Candidates;

#[cfg(test)]
mod tests;
