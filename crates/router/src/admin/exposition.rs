//! The `/metrics` text (Prometheus format 0.0.4): each family written as one group, `# HELP`
//! and `# TYPE` first, from the recorded counters (`crate::metrics`) and the per-host state
//! the health task publishes.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use health::guard::ValState;

use crate::control::fleet::Published;
use crate::control::shared::Shared;
use crate::control::view::{HealthView, STATES};
use crate::metrics::{
    BUCKETS, CLASSES, GuardCounters, Histogram, HostMetrics, Metrics, QUARANTINE_REASONS,
};

/// The whole `/metrics` text.
pub(crate) fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(8192);
    let published = shared.published.load();
    let live: Vec<&str> = published
        .fleet
        .hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    write_counters(&shared.metrics, &mut out, &live);
    render_hosts(shared, &published, &mut out);
    render_workers(shared, &mut out);
    out
}

/// Per proxy worker: its runtime's live tasks (connections, upstream connections, timers'
/// tasks), so a leak shows as a number that only grows.
fn render_workers(shared: &Shared, out: &mut String) {
    let mut tasks = Family::new(
        "ringward_worker_tasks",
        "gauge",
        "Tasks alive on each proxy worker's runtime.",
    );
    for (i, runtime) in shared
        .worker_runtimes
        .get()
        .into_iter()
        .flatten()
        .enumerate()
    {
        tasks.sample(
            &format!("worker=\"{i}\""),
            runtime.metrics().num_alive_tasks(),
        );
    }
    tasks.write_to(out);
    let mut dropped = Family::new(
        "ringward_access_log_dropped_total",
        "counter",
        "Access log lines lost: the writer fell behind or could not write.",
    );
    let lost = shared
        .access_log
        .as_ref()
        .map_or(0, |l| l.dropped.load(std::sync::atomic::Ordering::Relaxed));
    dropped.sample("", lost);
    dropped.write_to(out);
}

/// Per-host gauges: in flight, state, pool figures, probe age. One [`Family`] per metric,
/// filled host by host and written one after another, so each family is one group.
fn render_hosts(shared: &Shared, published: &Published, out: &mut String) {
    let view: Arc<HealthView> = shared.view.load_full();
    let now = shared.now();
    let mut in_flight_all = Family::new(
        "ringward_in_flight",
        "gauge",
        "Requests in flight through the router.",
    );
    in_flight_all.sample("", shared.global.count());
    in_flight_all.write_to(out);
    let eligible = published.eligible();
    let mut hosts_eligible = Family::new(
        "ringward_hosts_eligible",
        "gauge",
        "Hosts that may take requests.",
    );
    hosts_eligible.sample("", eligible);
    hosts_eligible.write_to(out);
    let mut panic = Family::new(
        "ringward_panic",
        "gauge",
        "1 while the health panic mode is on.",
    );
    panic.sample("", u8::from(view.snapshot.panic.is_some()));
    panic.write_to(out);
    let mut in_flight = Family::new(
        "ringward_host_in_flight",
        "gauge",
        "Requests in flight per host.",
    );
    let mut oldest_in_flight = Family::new(
        "ringward_host_oldest_in_flight_seconds",
        "gauge",
        "Age of the host's oldest in-flight request (0 when none).",
    );
    let mut states = Family::new(
        "ringward_host_state",
        "gauge",
        "1 for the host's current state, 0 for the others.",
    );
    let mut pool_max = Family::new(
        "ringward_db_pool_max",
        "gauge",
        "The host's last reported DB pool capacity.",
    );
    let mut pool_in_use = Family::new(
        "ringward_db_pool_in_use",
        "gauge",
        "The host's last reported DB pool connections checked out.",
    );
    let mut pool_waiting = Family::new(
        "ringward_db_pool_waiting",
        "gauge",
        "The host's last reported tasks waiting for a DB pool connection.",
    );
    let mut pool_oldest = Family::new(
        "ringward_db_pool_oldest_checkout_seconds",
        "gauge",
        "The host's last reported age of its longest-held DB connection.",
    );
    let mut probe = Family::new(
        "ringward_probe_age_seconds",
        "gauge",
        "Time since the host's last completed probe (-1 before the first).",
    );
    for (i, h) in published.fleet.hosts.iter().enumerate() {
        let host = format!("host=\"{}\"", escape(&h.name));
        let (count, oldest) = published.fleet.loads.oldest(i, now);
        in_flight.sample(&host, count);
        oldest_in_flight.sample(&host, oldest.map_or(0.0, |d| d.as_secs_f64()));
        let health = view.host(h.key);
        let current = view.state_of(h.key);
        for state in STATES.map(health::StateKind::as_str) {
            states.sample(
                &format!("{host},state=\"{state}\""),
                u8::from(state == current),
            );
        }
        if let Some(p) = health.and_then(|s| s.pool) {
            pool_max.sample(&host, p.max);
            pool_in_use.sample(&host, p.in_use);
            pool_waiting.sample(&host, p.waiting);
            pool_oldest.sample(&host, p.oldest_checkout.as_secs_f64());
        }
        // A stalled prober shows as a growing age; never probed shows as -1.
        let age = health
            .and_then(|s| s.last_probe)
            .map_or(-1.0, |t| now.saturating_duration_since(t).as_secs_f64());
        probe.sample(&host, age);
    }
    let mut vals = Family::new(
        "ringward_guard_vals",
        "gauge",
        "Vals the cascade guard restricts now, by state.",
    );
    for state in [ValState::Suspect, ValState::Quarantined] {
        let n = view.vals.iter().filter(|v| v.state == state).count();
        vals.sample(&format!("state=\"{state}\""), n);
    }
    vals.write_to(out);
    for family in [
        in_flight,
        oldest_in_flight,
        states,
        pool_max,
        pool_in_use,
        pool_waiting,
        pool_oldest,
        probe,
    ] {
        family.write_to(out);
    }
}

/// Renders the request metrics of the hosts in `live` (the current fleet: a host removed
/// by a reload keeps its counters, in case it comes back, but its series disappear);
/// per-host gauges are added by the caller (admin).
fn write_counters(m: &Metrics, out: &mut String, live: &[&str]) {
    let hosts: Vec<(String, Arc<HostMetrics>)> = {
        let map = m.hosts.lock().unwrap_or_else(|e| e.into_inner());
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
        write_histogram(&m.latency, &mut duration, &format!("host=\"{host}\""));
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
            m.unrouted.requests[i].load(Ordering::Relaxed),
        );
    }
    unrouted.write_to(out);
    let mut unrouted_duration = Family::new(
        "ringward_unrouted_request_duration_seconds",
        "histogram",
        "Time to the response head for requests that reached no host.",
    );
    write_histogram(&m.unrouted.latency, &mut unrouted_duration, "");
    unrouted_duration.write_to(out);
    let c = &m.counters;
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
    let conns = &m.connections;
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
    let counts = m
        .ejections
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for (reason, n) in counts {
        ejections.sample(&format!("reason=\"{}\"", escape(&reason)), n);
    }
    ejections.write_to(out);
    write_guard(&m.guard, out);
}

/// The cascade guard's counters.
fn write_guard(g: &GuardCounters, out: &mut String) {
    let mut quarantines = Family::new(
        "ringward_guard_quarantines_total",
        "counter",
        "Vals quarantined by the cascade guard, by reason.",
    );
    for (reason, n) in QUARANTINE_REASONS.iter().zip(&g.quarantines) {
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
    refused.sample("", g.refused.load(Ordering::Relaxed));
    refused.write_to(out);
    let mut withheld = Family::new(
        "ringward_guard_withheld_total",
        "counter",
        "Retries and rescues not made because the Val is a suspect.",
    );
    withheld.sample("", g.withheld.load(Ordering::Relaxed));
    withheld.write_to(out);
}

/// Writes `h`'s `_bucket` (ending with `le="+Inf"`), `_sum` and `_count` samples into `family`.
fn write_histogram(h: &Histogram, family: &mut Family, labels: &str) {
    let name = family.name;
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += h.counts[i].load(Ordering::Relaxed);
        let _ = writeln!(
            family.samples,
            "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
        );
    }
    cumulative += h.counts[BUCKETS.len()].load(Ordering::Relaxed);
    let _ = writeln!(
        family.samples,
        "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
    );
    let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
    let braced = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(family.samples, "{name}_sum{braced} {sum}");
    let _ = writeln!(family.samples, "{name}_count{braced} {cumulative}");
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

/// Escapes a Prometheus label value.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use http::StatusCode;

    use super::*;
    use crate::admin::lint::lint_exposition;

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
        write_counters(&m, &mut out, &["host-a"]);
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
        write_counters(&m, &mut out, &["none"]);
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
        write_counters(&m, &mut out, &["kept"]);
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
