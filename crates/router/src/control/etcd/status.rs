//! What the link knows about etcd, for `/readyz`, `/admin/hosts` and `/metrics`.

use std::time::Instant;

/// The link's state, published after every change.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkStatus {
    /// Whether etcd answered the last request and the watch is open.
    pub(crate) connected: bool,
    /// The last revision seen (0: none yet).
    pub(crate) revision: i64,
    /// Hosts registered in etcd as last known (held ones not counted).
    pub(crate) hosts: usize,
    /// The last failure talking to etcd.
    pub(crate) last_error: Option<String>,
    /// Since when `connected` has been what it is.
    pub(crate) since: Option<Instant>,
}

impl LinkStatus {
    /// A sentence for `/readyz` when etcd is out of reach (`None` when connected).
    pub(crate) fn detail(&self, now: Instant) -> Option<String> {
        if self.connected {
            return None;
        }
        let since = self
            .since
            .map(|s| format!(" for {}s", now.saturating_duration_since(s).as_secs()))
            .unwrap_or_default();
        Some(format!(
            "etcd unreachable{since}: serving the last known membership (revision {}){}",
            self.revision,
            self.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        ))
    }
}
