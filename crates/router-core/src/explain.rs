//! Explain: the walk for one key, with the reason each skipped host was skipped.

use crate::admission::SkipReason;
use crate::host::HostId;

/// The routing decision for one key and how it was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explain {
    /// The host `route` picks; `None` when no host is eligible.
    pub chosen: Option<HostId>,
    /// Every host visited, in preference order, up to and including the chosen one.
    pub walk: Vec<WalkStep>,
}

/// One host on the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// The host visited.
    pub host: HostId,
    /// Why it was passed over; `None` for the chosen host.
    pub skipped: Option<SkipReason>,
}

/// Receives the walk's events; `route` ignores them, `explain` records them.
pub(crate) trait Recorder {
    fn skip(&mut self, host: HostId, reason: SkipReason);
}

/// Records nothing: keeps `route` allocation-free.
pub(crate) struct Quiet;

impl Recorder for Quiet {
    #[inline(always)]
    fn skip(&mut self, _host: HostId, _reason: SkipReason) {}
}

impl Recorder for Vec<WalkStep> {
    fn skip(&mut self, host: HostId, reason: SkipReason) {
        self.push(WalkStep {
            host,
            skipped: Some(reason),
        });
    }
}
