//! In-flight request counts: read by bounded loads, owned by the caller.

use std::sync::Arc;

use crate::host::HostId;

/// Read access to per-host in-flight counts.
pub trait InFlight {
    /// Requests in flight to `host` now.
    fn in_flight(&self, host: HostId) -> u32;
    /// Requests in flight to all hosts now.
    fn total(&self) -> u64;
    /// Hard per-host cap (the router's `limits.per_host_in_flight`); `None` = no cap.
    fn hard_limit(&self, _host: HostId) -> Option<u32> {
        None
    }
}

impl<T: InFlight + ?Sized> InFlight for &T {
    fn in_flight(&self, host: HostId) -> u32 {
        (**self).in_flight(host)
    }
    fn total(&self) -> u64 {
        (**self).total()
    }
    fn hard_limit(&self, host: HostId) -> Option<u32> {
        (**self).hard_limit(host)
    }
}

impl<T: InFlight + ?Sized> InFlight for Arc<T> {
    fn in_flight(&self, host: HostId) -> u32 {
        (**self).in_flight(host)
    }
    fn total(&self) -> u64 {
        (**self).total()
    }
    fn hard_limit(&self, host: HostId) -> Option<u32> {
        (**self).hard_limit(host)
    }
}

/// No load anywhere: for explain without traffic, and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoLoads;

impl InFlight for NoLoads {
    fn in_flight(&self, _host: HostId) -> u32 {
        0
    }
    fn total(&self) -> u64 {
        0
    }
}
