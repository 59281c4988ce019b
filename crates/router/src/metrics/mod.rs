//! Prometheus metrics, the recording side. Per-host handles are created when a ring generation
//! is built (and kept by name across reloads), so the request path only touches atomics. The
//! text format is written by `admin::exposition`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use health::guard::ValReason;
use http::StatusCode;

use crate::conn::cap::ConnStats;

pub(crate) mod process;

/// Upper bounds of the latency histogram buckets, in seconds.
pub(crate) const BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    pub(crate) counts: [AtomicU64; BUCKETS.len() + 1],
    pub(crate) sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Status classes counted per host.
pub(crate) const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The metrics of one host (or of the requests that reached no host).
#[derive(Debug, Default)]
pub(crate) struct HostMetrics {
    pub(crate) requests: [AtomicU64; 5],
    pub(crate) latency: Histogram,
    /// Ejections, by reason (`health::Reason::EJECTIONS` order): every series exists at 0
    /// from the start, so `increase()` sees the first ejection.
    pub(crate) ejections: [AtomicU64; health::Reason::EJECTIONS.len()],
    /// Failed lookups of the host's name (always 0 for a host given by IP address).
    pub(crate) resolve_failures: AtomicU64,
}

impl HostMetrics {
    /// Records a response sent to the client and its latency.
    pub(crate) fn record(&self, status: StatusCode, latency: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(latency);
    }

    /// Counts one ejection of this host for `reason`.
    pub(crate) fn record_ejection(&self, reason: health::Reason) {
        let i = health::Reason::EJECTIONS.iter().position(|r| *r == reason);
        debug_assert!(i.is_some(), "{reason} is not an ejection reason");
        if let Some(i) = i {
            self.ejections[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Router-wide counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Retries after a connect failure or a reset.
    pub(crate) retries: AtomicU64,
    /// Requests re-sent because their host was ejected while they waited.
    pub(crate) rescues: AtomicU64,
    /// Retries refused because the budget was spent.
    pub(crate) retries_refused: AtomicU64,
    /// 503s because every candidate (or the router) was at its cap.
    pub(crate) rejected_capacity: AtomicU64,
    /// 503s because no host was eligible.
    pub(crate) rejected_no_host: AtomicU64,
    /// 400s because no key could be extracted.
    pub(crate) rejected_no_key: AtomicU64,
    /// Health events dropped because the health task's queue was full.
    pub(crate) health_events_dropped: AtomicU64,
    /// Config reloads applied.
    pub(crate) reloads: AtomicU64,
    /// Config reloads refused (bad config).
    pub(crate) reloads_failed: AtomicU64,
}

/// The cascade guard's counters.
#[derive(Debug, Default)]
pub(crate) struct GuardCounters {
    /// Requests answered 503 because their Val is quarantined (at the door, or cut short
    /// in flight on an ejected host).
    pub(crate) refused: AtomicU64,
    /// Retries and rescues not made because the Val is a suspect.
    pub(crate) withheld: AtomicU64,
    /// Quarantines begun, by reason (`QUARANTINE_REASONS` order).
    pub(crate) quarantines: [AtomicU64; QUARANTINE_REASONS.len()],
}

/// The reasons a quarantine begins, as metric labels.
pub(crate) const QUARANTINE_REASONS: [ValReason; 4] = [
    ValReason::Dominant,
    ValReason::ImplicatedTwice,
    ValReason::Operator,
    ValReason::Peer,
];

impl GuardCounters {
    /// Counts a quarantine begun for `reason`.
    pub(crate) fn record_quarantine(&self, reason: ValReason) {
        if let Some(i) = QUARANTINE_REASONS.iter().position(|r| *r == reason) {
            self.quarantines[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Every metric of the router.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) hosts: Mutex<BTreeMap<String, Arc<HostMetrics>>>,
    /// Requests that reached no host (400, 503 with no host). Rendered as their own
    /// families (`ringward_unrouted_*`), so no host name can collide with them.
    pub(crate) unrouted: HostMetrics,
    /// Router-wide counters.
    pub(crate) counters: Counters,
    /// The cascade guard's counters.
    pub(crate) guard: GuardCounters,
    /// Client connections: open, refused at the cap, the cap.
    pub(crate) connections: Arc<ConnStats>,
}

impl Metrics {
    /// The handle for host `name` (created once, kept across reloads).
    pub(crate) fn host(&self, name: &str) -> Arc<HostMetrics> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(hosts.entry(name.to_owned()).or_default())
    }

    /// Ejections so far for `reason`, over every host.
    #[cfg(test)]
    pub(crate) fn ejections(&self, reason: &str) -> u64 {
        let Some(i) = health::Reason::EJECTIONS
            .iter()
            .position(|r| r.as_str() == reason)
        else {
            return 0;
        };
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .values()
            .map(|h| h.ejections[i].load(Ordering::Relaxed))
            .sum()
    }
}
