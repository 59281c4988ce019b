//! What the health task publishes for the admin API, the status page and the metrics: the
//! health state machine's snapshot and the cascade guard's records.

use std::sync::Arc;

use health::guard::ValInfo;
use health::{HealthSnapshot, HostHealth, StateKind};

use crate::control::fleet::HostKey;

/// The latest health state, for the admin API and metrics.
#[derive(Debug)]
pub(crate) struct HealthView {
    /// The state machine's snapshot.
    pub(crate) snapshot: HealthSnapshot<HostKey>,
    /// The cascade guard's records: suspects, quarantines, recent offenders (newest first).
    pub(crate) vals: Arc<Vec<ValInfo<HostKey, u64>>>,
}

impl HealthView {
    /// An empty view (before the health task first runs).
    pub(crate) fn empty() -> Self {
        HealthView {
            snapshot: HealthSnapshot {
                hosts: Vec::new(),
                panic: None,
            },
            vals: Arc::default(),
        }
    }

    /// The health of host `key`, if known.
    pub(crate) fn host(&self, key: HostKey) -> Option<&HostHealth<HostKey>> {
        self.snapshot.hosts.iter().find(|h| h.host == key)
    }

    /// The name of host `key`'s state (`healthy` until the health task has judged it).
    pub(crate) fn state_of(&self, key: HostKey) -> &'static str {
        self.host(key)
            .map_or(StateKind::Healthy.as_str(), |h| h.state.as_str())
    }
}

/// Every host state, by the name `/admin/hosts`, the page and the metrics use.
pub(crate) const STATES: [StateKind; 5] = [
    StateKind::Healthy,
    StateKind::Degraded,
    StateKind::Ejected,
    StateKind::Probation,
    StateKind::Draining,
];
