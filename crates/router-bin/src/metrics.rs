//! Prometheus metrics. Per-host handles are created when a ring generation is built (and kept
//! by name across reloads), so the request path only touches atomics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;

use crate::conn_cap::ConnStats;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
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

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Status classes counted per host.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The metrics of one host (or of "none": requests that reached no host).
#[derive(Debug, Default)]
pub struct HostMetrics {
    requests: [AtomicU64; 5],
    latency: Histogram,
}

impl HostMetrics {
    /// Records a response sent to the client and its latency.
    pub fn record(&self, status: StatusCode, latency: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(latency);
    }

    /// Requests answered with this status class (1..=5).
    pub fn requests(&self, class: u16) -> u64 {
        let i = usize::from(class).clamp(1, 5) - 1;
        self.requests[i].load(Ordering::Relaxed)
    }
}

/// Router-wide counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Retries after a connect failure or a reset.
    pub retries: AtomicU64,
    /// Requests re-sent because their host was ejected while they waited.
    pub rescues: AtomicU64,
    /// Retries refused because the budget was spent.
    pub retries_refused: AtomicU64,
    /// 503s because every candidate (or the router) was at its cap.
    pub rejected_capacity: AtomicU64,
    /// 503s because no host was eligible.
    pub rejected_no_host: AtomicU64,
    /// 400s because no key could be extracted.
    pub rejected_no_key: AtomicU64,
    /// Health events dropped because the health task's queue was full.
    pub health_events_dropped: AtomicU64,
    /// Config reloads applied.
    pub reloads: AtomicU64,
    /// Config reloads refused (bad config).
    pub reloads_failed: AtomicU64,
}

/// Every metric of the router.
#[derive(Debug, Default)]
pub struct Metrics {
    hosts: Mutex<BTreeMap<String, Arc<HostMetrics>>>,
    /// Requests that reached no host (400, 503 with no host).
    pub unrouted: HostMetrics,
    /// Router-wide counters.
    pub counters: Counters,
    /// Client connections: open, refused at the cap, the cap.
    pub connections: Arc<ConnStats>,
    ejections: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// The handle for host `name` (created once, kept across reloads).
    pub fn host(&self, name: &str) -> Arc<HostMetrics> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(hosts.entry(name.to_owned()).or_default())
    }

    /// Counts one ejection for `reason` (called by the health task).
    pub fn record_ejection(&self, reason: &str) {
        let mut map = self.ejections.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(reason.to_owned()).or_default() += 1;
    }

    /// Ejections so far for `reason`.
    pub fn ejections(&self, reason: &str) -> u64 {
        let map = self.ejections.lock().unwrap_or_else(|e| e.into_inner());
        map.get(reason).copied().unwrap_or(0)
    }

    /// Renders the request metrics; per-host gauges are added by the caller (admin).
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP ringward_requests_total Responses sent to clients, by host and status class.\n",
        );
        out.push_str("# TYPE ringward_requests_total counter\n");
        let hosts: Vec<(String, Arc<HostMetrics>)> = {
            let map = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect()
        };
        let all = hosts
            .iter()
            .map(|(n, m)| (n.as_str(), m.as_ref()))
            .chain(std::iter::once(("none", &self.unrouted)));
        for (name, m) in all.clone() {
            for (i, class) in CLASSES.iter().enumerate() {
                let n = m.requests[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "ringward_requests_total{{host=\"{}\",class=\"{class}\"}} {n}",
                    escape(name)
                );
            }
        }
        out.push_str(
            "# HELP ringward_request_duration_seconds Time to the response head, by host.\n",
        );
        out.push_str("# TYPE ringward_request_duration_seconds histogram\n");
        for (name, m) in all {
            m.latency.render(
                out,
                "ringward_request_duration_seconds",
                &format!("host=\"{}\"", escape(name)),
            );
        }
        let c = &self.counters;
        for (name, help, v) in [
            (
                "ringward_retries_total",
                "Retries after a connect failure or reset.",
                &c.retries,
            ),
            (
                "ringward_rescues_total",
                "In-flight requests re-sent after their host was ejected.",
                &c.rescues,
            ),
            (
                "ringward_retries_refused_total",
                "Retries refused by the retry budget.",
                &c.retries_refused,
            ),
            (
                "ringward_health_events_dropped_total",
                "Health events dropped on a full queue.",
                &c.health_events_dropped,
            ),
            (
                "ringward_reloads_total",
                "Config reloads applied.",
                &c.reloads,
            ),
            (
                "ringward_reloads_failed_total",
                "Config reloads refused.",
                &c.reloads_failed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP ringward_rejected_total Requests answered by the router itself, by reason.\n",
        );
        out.push_str("# TYPE ringward_rejected_total counter\n");
        for (reason, v) in [
            ("at_capacity", &c.rejected_capacity),
            ("no_eligible_host", &c.rejected_no_host),
            ("no_key", &c.rejected_no_key),
        ] {
            let _ = writeln!(
                out,
                "ringward_rejected_total{{reason=\"{reason}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let conns = &self.connections;
        let _ = writeln!(
            out,
            "# HELP ringward_connections_open Client connections open.\n# TYPE ringward_connections_open gauge\nringward_connections_open {}",
            conns.open()
        );
        let _ = writeln!(
            out,
            "# HELP ringward_connections_max The client connection cap (limits.max_connections).\n# TYPE ringward_connections_max gauge\nringward_connections_max {}",
            conns.max()
        );
        let _ = writeln!(
            out,
            "# HELP ringward_connections_refused_total Client connections closed at accept because the cap was reached.\n# TYPE ringward_connections_refused_total counter\nringward_connections_refused_total {}",
            conns.refused()
        );
        out.push_str("# HELP ringward_ejections_total Host ejections, by reason.\n");
        out.push_str("# TYPE ringward_ejections_total counter\n");
        let ejections = self
            .ejections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (reason, n) in ejections {
            let _ = writeln!(
                out,
                "ringward_ejections_total{{reason=\"{}\"}} {n}",
                escape(&reason)
            );
        }
    }
}

/// Escapes a Prometheus label value.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histograms_and_ejections() {
        let m = Metrics::default();
        let a = m.host("host-a");
        a.record(StatusCode::OK, Duration::from_millis(3));
        a.record(StatusCode::BAD_GATEWAY, Duration::from_millis(700));
        assert!(Arc::ptr_eq(&a, &m.host("host-a")), "one handle per name");
        m.unrouted.record(StatusCode::BAD_REQUEST, Duration::ZERO);
        m.record_ejection("pool_exhausted");
        m.record_ejection("pool_exhausted");
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("ringward_requests_total{host=\"host-a\",class=\"2xx\"} 1"),
            "{out}"
        );
        assert!(out.contains("ringward_requests_total{host=\"host-a\",class=\"5xx\"} 1"));
        assert!(out.contains("ringward_requests_total{host=\"none\",class=\"4xx\"} 1"));
        assert!(
            out.contains(
                "ringward_request_duration_seconds_bucket{host=\"host-a\",le=\"0.005\"} 1"
            )
        );
        assert!(
            out.contains("ringward_request_duration_seconds_bucket{host=\"host-a\",le=\"1\"} 2")
        );
        assert!(out.contains("ringward_request_duration_seconds_count{host=\"host-a\"} 2"));
        assert!(out.contains("ringward_ejections_total{reason=\"pool_exhausted\"} 2"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
