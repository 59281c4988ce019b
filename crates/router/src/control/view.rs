//! What the health task publishes for the admin API, the status page and the metrics: the
//! health state machine's snapshot and the cascade guard's records.

use std::sync::Arc;
use std::time::Instant;

use health::guard::ValInfo;
use health::{HealthSnapshot, HostHealth};

use crate::control::fleet::HostKey;

/// The latest health state, for the admin API and metrics.
#[derive(Debug)]
pub struct HealthView {
    /// The state machine's snapshot.
    pub snapshot: HealthSnapshot<HostKey>,
    /// The cascade guard's records: suspects, quarantines, recent offenders (newest first).
    pub vals: Arc<Vec<ValInfo<HostKey, u64>>>,
    /// When it was taken.
    pub at: Instant,
}

impl HealthView {
    /// An empty view (before the health task first runs).
    pub fn empty(at: Instant) -> Self {
        HealthView {
            snapshot: HealthSnapshot {
                hosts: Vec::new(),
                panic: None,
            },
            vals: Arc::default(),
            at,
        }
    }

    /// The health of host `key`, if known.
    pub fn host(&self, key: HostKey) -> Option<&HostHealth<HostKey>> {
        self.snapshot.hosts.iter().find(|h| h.host == key)
    }
}
