//! Prometheus metrics. Per-host handles are created when a ring generation is built (and kept
//! by name across reloads), so the request path only touches atomics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use health::guard::ValReason;
use http::StatusCode;

use crate::conn::cap::ConnStats;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A fixed-bucket latency histogram.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
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

    /// Writes `_bucket` (ending with `le="+Inf"`), `_sum` and `_count` samples into `family`.
    fn render(&self, family: &mut Family, labels: &str) {
        let name = family.name;
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                family.samples,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            family.samples,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(family.samples, "{name}_sum{braced} {sum}");
        let _ = writeln!(family.samples, "{name}_count{braced} {cumulative}");
    }
}

/// One metric family. Its samples go into its own buffer and [`Family::write_to`] writes
/// `# HELP`, `# TYPE` and then every sample, so a family is always one group in the output
/// (the Prometheus text format requires it) however the caller interleaves the collection.
#[derive(Debug)]
pub(crate) struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: String,
}

impl Family {
    /// An empty family; `kind` is `counter`, `gauge` or `histogram`.
    pub(crate) fn new(name: &'static str, kind: &'static str, help: &'static str) -> Self {
        Family {
            name,
            kind,
            help,
            samples: String::new(),
        }
    }

    /// Adds a sample; `labels` is the text between the braces (empty for none).
    pub(crate) fn sample(&mut self, labels: &str, value: impl std::fmt::Display) {
        let name = self.name;
        if labels.is_empty() {
            let _ = writeln!(self.samples, "{name} {value}");
        } else {
            let _ = writeln!(self.samples, "{name}{{{labels}}} {value}");
        }
    }

    /// Writes the family as one group: HELP, TYPE, samples.
    pub(crate) fn write_to(&self, out: &mut String) {
        let (name, kind, help) = (self.name, self.kind, self.help);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        out.push_str(&self.samples);
    }
}

/// Status classes counted per host.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The metrics of one host (or of the requests that reached no host).
#[derive(Debug, Default)]
pub(crate) struct HostMetrics {
    requests: [AtomicU64; 5],
    latency: Histogram,
}

impl HostMetrics {
    /// Records a response sent to the client and its latency.
    pub(crate) fn record(&self, status: StatusCode, latency: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(latency);
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
    quarantines: [AtomicU64; QUARANTINE_REASONS.len()],
}

/// The reasons a quarantine begins, as metric labels.
const QUARANTINE_REASONS: [ValReason; 3] = [
    ValReason::Dominant,
    ValReason::ImplicatedTwice,
    ValReason::Operator,
];

impl GuardCounters {
    /// Counts a quarantine begun for `reason`.
    pub(crate) fn record_quarantine(&self, reason: ValReason) {
        if let Some(i) = QUARANTINE_REASONS.iter().position(|r| *r == reason) {
            self.quarantines[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn render(&self, out: &mut String) {
        let mut quarantines = Family::new(
            "ringward_guard_quarantines_total",
            "counter",
            "Vals quarantined by the cascade guard, by reason.",
        );
        for (reason, n) in QUARANTINE_REASONS.iter().zip(&self.quarantines) {
            quarantines.sample(
                &format!("reason=\"{}\"", reason.as_str()),
                n.load(Ordering::Relaxed),
            );
        }
        quarantines.write_to(out);
        let mut refused = Family::new(
            "ringward_guard_refused_total",
            "counter",
            "Requests answered 503 because their Val is quarantined.",
        );
        refused.sample("", self.refused.load(Ordering::Relaxed));
        refused.write_to(out);
        let mut withheld = Family::new(
            "ringward_guard_withheld_total",
            "counter",
            "Retries and rescues not made because the Val is a suspect.",
        );
        withheld.sample("", self.withheld.load(Ordering::Relaxed));
        withheld.write_to(out);
    }
}

/// Every metric of the router.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    hosts: Mutex<BTreeMap<String, Arc<HostMetrics>>>,
    /// Requests that reached no host (400, 503 with no host). Rendered as their own
    /// families (`ringward_unrouted_*`), so no host name can collide with them.
    pub(crate) unrouted: HostMetrics,
    /// Router-wide counters.
    pub(crate) counters: Counters,
    /// The cascade guard's counters.
    pub(crate) guard: GuardCounters,
    /// Client connections: open, refused at the cap, the cap.
    pub(crate) connections: Arc<ConnStats>,
    ejections: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// The handle for host `name` (created once, kept across reloads).
    pub(crate) fn host(&self, name: &str) -> Arc<HostMetrics> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(hosts.entry(name.to_owned()).or_default())
    }

    /// Counts one ejection for `reason` (called by the health task).
    pub(crate) fn record_ejection(&self, reason: &str) {
        let mut map = self.ejections.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(reason.to_owned()).or_default() += 1;
    }

    /// Ejections so far for `reason`.
    #[cfg(test)]
    pub(crate) fn ejections(&self, reason: &str) -> u64 {
        let map = self.ejections.lock().unwrap_or_else(|e| e.into_inner());
        map.get(reason).copied().unwrap_or(0)
    }

    /// Renders the request metrics of the hosts in `live` (the current fleet: a host removed
    /// by a reload keeps its counters, in case it comes back, but its series disappear);
    /// per-host gauges are added by the caller (admin).
    pub(crate) fn render(&self, out: &mut String, live: &[&str]) {
        let hosts: Vec<(String, Arc<HostMetrics>)> = {
            let map = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .filter(|(k, _)| live.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), Arc::clone(v)))
                .collect()
        };
        let mut requests = Family::new(
            "ringward_requests_total",
            "counter",
            "Responses sent to clients, by host and status class.",
        );
        let mut duration = Family::new(
            "ringward_request_duration_seconds",
            "histogram",
            "Time to the response head, by host.",
        );
        for (name, m) in &hosts {
            let host = escape(name);
            for (i, class) in CLASSES.iter().enumerate() {
                requests.sample(
                    &format!("host=\"{host}\",class=\"{class}\""),
                    m.requests[i].load(Ordering::Relaxed),
                );
            }
            m.latency.render(&mut duration, &format!("host=\"{host}\""));
        }
        requests.write_to(out);
        duration.write_to(out);
        let mut unrouted = Family::new(
            "ringward_unrouted_requests_total",
            "counter",
            "Responses to requests that reached no host (400 no key, 503 no eligible host or at capacity), by status class.",
        );
        for (i, class) in CLASSES.iter().enumerate() {
            unrouted.sample(
                &format!("class=\"{class}\""),
                self.unrouted.requests[i].load(Ordering::Relaxed),
            );
        }
        unrouted.write_to(out);
        let mut unrouted_duration = Family::new(
            "ringward_unrouted_request_duration_seconds",
            "histogram",
            "Time to the response head for requests that reached no host.",
        );
        self.unrouted.latency.render(&mut unrouted_duration, "");
        unrouted_duration.write_to(out);
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
            let mut family = Family::new(name, "counter", help);
            family.sample("", v.load(Ordering::Relaxed));
            family.write_to(out);
        }
        let mut rejected = Family::new(
            "ringward_rejected_total",
            "counter",
            "Requests answered by the router itself, by reason.",
        );
        for (reason, v) in [
            ("at_capacity", &c.rejected_capacity),
            ("no_eligible_host", &c.rejected_no_host),
            ("no_key", &c.rejected_no_key),
        ] {
            rejected.sample(&format!("reason=\"{reason}\""), v.load(Ordering::Relaxed));
        }
        rejected.write_to(out);
        let conns = &self.connections;
        let mut open = Family::new(
            "ringward_connections_open",
            "gauge",
            "Client connections open.",
        );
        open.sample("", conns.open());
        open.write_to(out);
        let mut max = Family::new(
            "ringward_connections_max",
            "gauge",
            "The client connection cap (limits.max_connections).",
        );
        max.sample("", conns.max());
        max.write_to(out);
        let mut refused = Family::new(
            "ringward_connections_refused_total",
            "counter",
            "Client connections closed at accept because the cap was reached.",
        );
        refused.sample("", conns.refused());
        refused.write_to(out);
        let mut ejections = Family::new(
            "ringward_ejections_total",
            "counter",
            "Host ejections, by reason.",
        );
        let counts = self
            .ejections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (reason, n) in counts {
            ejections.sample(&format!("reason=\"{}\"", escape(&reason)), n);
        }
        ejections.write_to(out);
        self.guard.render(out);
    }
}

/// Escapes a Prometheus label value.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The strict exposition check the tests hold the output to.
#[cfg(test)]
pub(crate) mod lint;

#[cfg(test)]
mod tests {
    use super::lint::lint_exposition;
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
        m.render(&mut out, &["host-a"]);
        lint_exposition(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(
            out.contains("ringward_requests_total{host=\"host-a\",class=\"2xx\"} 1"),
            "{out}"
        );
        assert!(out.contains("ringward_requests_total{host=\"host-a\",class=\"5xx\"} 1"));
        assert!(out.contains("ringward_unrouted_requests_total{class=\"4xx\"} 1"));
        assert!(out.contains("ringward_unrouted_request_duration_seconds_count 1"));
        assert!(!out.contains("host=\"none\""), "{out}");
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
    fn a_host_named_none_does_not_collide_with_unrouted_requests() {
        let m = Metrics::default();
        m.host("none").record(StatusCode::OK, Duration::ZERO);
        m.unrouted.record(StatusCode::OK, Duration::ZERO);
        let mut out = String::new();
        m.render(&mut out, &["none"]);
        lint_exposition(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(out.contains("ringward_requests_total{host=\"none\",class=\"2xx\"} 1"));
        assert!(out.contains("ringward_unrouted_requests_total{class=\"2xx\"} 1"));
    }

    #[test]
    fn hosts_not_in_the_fleet_are_not_rendered() {
        let m = Metrics::default();
        m.host("kept").record(StatusCode::OK, Duration::ZERO);
        m.host("removed").record(StatusCode::OK, Duration::ZERO);
        let mut out = String::new();
        m.render(&mut out, &["kept"]);
        assert!(out.contains("host=\"kept\""));
        assert!(!out.contains("removed"), "{out}");
    }

    #[test]
    fn the_linter_refuses_what_the_old_output_did() {
        let split = "# HELP a x\n# TYPE a gauge\na{h=\"1\"} 1\n# HELP b x\n# TYPE b gauge\nb 1\na{h=\"2\"} 1\n";
        assert!(lint_exposition(split).is_err(), "interleaved families");
        let untyped = "# TYPE a gauge\na 1\nc 1\n";
        assert!(lint_exposition(untyped).is_err(), "a sample with no TYPE");
        let total_gauge = "# TYPE a_total gauge\na_total 1\n";
        assert!(
            lint_exposition(total_gauge).is_err(),
            "a gauge named _total"
        );
        let dup = "# TYPE a_total counter\na_total{h=\"x\"} 1\na_total{h=\"x\"} 0\n";
        assert!(lint_exposition(dup).is_err(), "a duplicate series");
        let no_inf = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n";
        assert!(lint_exposition(no_inf).is_err(), "a histogram without +Inf");
        let good = "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n";
        assert_eq!(lint_exposition(good), Ok(()));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
