//! What a balancer's handles, its picks and its driver share: the hosts, the published
//! snapshot, the in-flight counters, and the events the request path sends the driver.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use arc_swap::ArcSwap;
use health::{HealthReport, HealthSnapshot, Outcome};
use router_core::{BoundedLoads, HostId, Snapshot};
use tokio::sync::watch;

use crate::host::HostInfo;
use crate::loads::HostLoads;

/// The clock of the request path and the driver: tokio's, so tests can pause it. Outside a
/// runtime it is the system's monotonic clock.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the request path tells the driver.
#[derive(Debug)]
pub(crate) enum Event {
    Outcome(HostId, Outcome),
    Report(HostId, HealthReport),
}

/// State shared by the balancer's handles, its picks and the driver.
pub(crate) struct Shared {
    /// By [`HostId`] index (the ring's name order).
    pub(crate) hosts: Box<[HostInfo]>,
    pub(crate) snapshot: ArcSwap<Snapshot>,
    pub(crate) loads: Arc<HostLoads>,
    pub(crate) bounded: BoundedLoads,
    pub(crate) dropped: AtomicU64,
    pub(crate) generation: watch::Sender<u64>,
    pub(crate) health: ArcSwap<HealthSnapshot<HostId>>,
}
