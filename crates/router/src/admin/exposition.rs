//! The `/metrics` text (Prometheus text 0.0.4, or OpenMetrics 1.0 when asked:
//! `admin::text_format`): each family written as one group, `# HELP` and `# TYPE` first, from
//! the recorded counters (`crate::metrics`), the per-host state the health task publishes,
//! and the process's own figures.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use health::guard::ValState;

use crate::admin::text_format::{Exposition, Family, Kind, TextFormat, escape};
use crate::control::fleet::Published;
use crate::control::shared::Shared;
use crate::control::view::{HealthView, STATES};
use crate::metrics::process::ProcessStats;
use crate::metrics::{
    BUCKETS, CLASSES, GuardCounters, Histogram, HostMetrics, Metrics, QUARANTINE_REASONS,
};

/// The whole `/metrics` text in `format`.
pub(crate) fn render(shared: &Shared, format: TextFormat) -> String {
    let mut out = Exposition::new(format);
    write_build_info(&mut out);
    write_process(&ProcessStats::read(), &mut out);
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
    out.finish()
}

/// `ringward_build_info{version="..."} 1`: which build runs where, and when it changed.
fn write_build_info(out: &mut Exposition) {
    let mut info = Family::new(
        "ringward_build_info",
        Kind::Info,
        "The running build: 1, with its version as a label.",
    );
    info.sample(
        &format!("version=\"{}\"", escape(env!("CARGO_PKG_VERSION"))),
        1,
    );
    info.write_to(out);
}

/// The `process_*` families, named and described as the Prometheus client libraries do, so
/// the usual dashboards work; a figure that could not be read has no family.
fn write_process(stats: &ProcessStats, out: &mut Exposition) {
    let mut write = |name, kind, help, value: Option<String>| {
        if let Some(value) = value {
            let mut family = Family::new(name, kind, help);
            family.sample("", value);
            family.write_to(out);
        }
    };
    let text = |v: Option<u64>| v.map(|v| v.to_string());
    write(
        "process_cpu_seconds_total",
        Kind::Counter,
        "Total user and system CPU time spent in seconds.",
        stats.cpu_seconds.map(|v| v.to_string()),
    );
    write(
        "process_open_fds",
        Kind::Gauge,
        "Number of open file descriptors.",
        text(stats.open_fds),
    );
    write(
        "process_max_fds",
        Kind::Gauge,
        "Maximum number of open file descriptors.",
        text(stats.max_fds),
    );
    write(
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory size in bytes.",
        text(stats.virtual_memory_bytes),
    );
    write(
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory size in bytes.",
        text(stats.resident_memory_bytes),
    );
    write(
        "process_start_time_seconds",
        Kind::Gauge,
        "Start time of the process since unix epoch in seconds.",
        stats.start_time_seconds.map(|v| v.to_string()),
    );
}

/// Per proxy worker: its runtime's live tasks (connections, upstream connections, timers'
/// tasks), so a leak shows as a number that only grows.
fn render_workers(shared: &Shared, out: &mut Exposition) {
    let mut tasks = Family::new(
        "ringward_worker_tasks",
        Kind::Gauge,
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
        Kind::Counter,
        "Access log lines lost: the writer fell behind or could not write.",
    );
    let lost = shared
        .access_log
        .as_ref()
        .map_or(0, |l| l.dropped.load(std::sync::atomic::Ordering::Relaxed));
    dropped.sample("", lost);
    dropped.write_to(out);
    // Fleet mode's link to etcd (every series at 0 outside it).
    let link = shared.etcd.as_ref();
    let status = link.map(|l| l.status.load_full());
    for (name, kind, help, value) in [
        (
            "ringward_discovery_connected",
            Kind::Gauge,
            "1 while etcd answers and the watch is open ([discovery.etcd]); 0 otherwise.",
            u64::from(status.as_ref().is_some_and(|s| s.connected)),
        ),
        (
            "ringward_discovery_revision",
            Kind::Gauge,
            "The last etcd revision this router has seen.",
            status
                .as_ref()
                .map_or(0, |s| u64::try_from(s.revision).unwrap_or(0)),
        ),
        (
            "ringward_discovery_hosts",
            Kind::Gauge,
            "Hosts registered in etcd as last known.",
            status.as_ref().map_or(0, |s| s.hosts as u64),
        ),
        (
            "ringward_discovery_events_total",
            Kind::Counter,
            "Changes under the fleet's etcd prefix applied.",
            link.map_or(0, |l| l.events.load(std::sync::atomic::Ordering::Relaxed)),
        ),
        (
            "ringward_discovery_invalid_total",
            Kind::Counter,
            "etcd registrations and records ignored (malformed, or a name [[hosts]] has).",
            link.map_or(0, |l| l.invalid.load(std::sync::atomic::Ordering::Relaxed)),
        ),
    ] {
        let mut family = Family::new(name, kind, help);
        family.sample("", value);
        family.write_to(out);
    }
    let mut handshakes = Family::new(
        "ringward_tls_handshakes_total",
        Kind::Counter,
        "TLS handshakes on the TLS listener, by outcome (completed, failed, timed_out).",
    );
    let stats = shared.tls.as_ref().map(|t| &t.stats);
    let load = |c: Option<&std::sync::atomic::AtomicU64>| {
        c.map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    };
    for (outcome, value) in [
        ("completed", load(stats.map(|s| &s.completed))),
        ("failed", load(stats.map(|s| &s.failed))),
        ("timed_out", load(stats.map(|s| &s.timed_out))),
    ] {
        handshakes.sample(&format!("outcome=\"{outcome}\""), value);
    }
    handshakes.write_to(out);
    let t = &shared.tunnels;
    for (name, kind, help, value) in [
        (
            "ringward_tunnels_open",
            Kind::Gauge,
            "Upgraded connections (WebSocket tunnels) open.",
            t.open(),
        ),
        (
            "ringward_tunnels_total",
            Kind::Counter,
            "Upgraded connections spliced since start.",
            t.total.load(std::sync::atomic::Ordering::Relaxed),
        ),
        (
            "ringward_tunnels_refused_total",
            Kind::Counter,
            "Upgrade requests refused at limits.max_tunnels.",
            t.refused.load(std::sync::atomic::Ordering::Relaxed),
        ),
    ] {
        let mut family = Family::new(name, kind, help);
        family.sample("", value);
        family.write_to(out);
    }
}

/// Per-host gauges: in flight, state, pool figures, probe age. One [`Family`] per metric,
/// filled host by host and written one after another, so each family is one group.
fn render_hosts(shared: &Shared, published: &Published, out: &mut Exposition) {
    let view: Arc<HealthView> = shared.view.load_full();
    let now = shared.now();
    let mut in_flight_all = Family::new(
        "ringward_in_flight",
        Kind::Gauge,
        "Requests in flight through the router.",
    );
    in_flight_all.sample("", shared.global.count());
    in_flight_all.write_to(out);
    let eligible = published.eligible();
    let mut hosts_eligible = Family::new(
        "ringward_hosts_eligible",
        Kind::Gauge,
        "Hosts that may take requests.",
    );
    hosts_eligible.sample("", eligible);
    hosts_eligible.write_to(out);
    let mut panic = Family::new(
        "ringward_panic",
        Kind::Gauge,
        "1 while the health panic mode is on.",
    );
    panic.sample("", u8::from(view.snapshot.panic.is_some()));
    panic.write_to(out);
    let mut in_flight = Family::new(
        "ringward_host_in_flight",
        Kind::Gauge,
        "Requests in flight per host.",
    );
    let mut oldest_in_flight = Family::new(
        "ringward_host_oldest_in_flight_seconds",
        Kind::Gauge,
        "Age of the host's oldest in-flight request (0 when none).",
    );
    let mut states = Family::new(
        "ringward_host_state",
        Kind::Gauge,
        "1 for the host's current state, 0 for the others.",
    );
    let mut pool_max = Family::new(
        "ringward_db_pool_max",
        Kind::Gauge,
        "The host's last reported DB pool capacity.",
    );
    let mut pool_in_use = Family::new(
        "ringward_db_pool_in_use",
        Kind::Gauge,
        "The host's last reported DB pool connections checked out.",
    );
    let mut pool_waiting = Family::new(
        "ringward_db_pool_waiting",
        Kind::Gauge,
        "The host's last reported tasks waiting for a DB pool connection.",
    );
    let mut pool_oldest = Family::new(
        "ringward_db_pool_oldest_checkout_seconds",
        Kind::Gauge,
        "The host's last reported age of its longest-held DB connection.",
    );
    let mut probe = Family::new(
        "ringward_probe_age_seconds",
        Kind::Gauge,
        "Deprecated, use ringward_last_probe_timestamp_seconds: time since the host's last completed probe (-1 before the first).",
    );
    let mut probe_at = Family::new(
        "ringward_last_probe_timestamp_seconds",
        Kind::Gauge,
        "When the host's last probe completed, in seconds since the Unix epoch (no sample before the first).",
    );
    let wall = SystemTime::now();
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
        // A stalled prober shows as a growing age; never probed shows as -1 (kept for the
        // documented contract) and as no timestamp sample.
        let last_probe = health.and_then(|s| s.last_probe);
        let age = last_probe.map_or(-1.0, |t| now.saturating_duration_since(t).as_secs_f64());
        probe.sample(&host, age);
        if let Some(at) = last_probe.and_then(|t| unix_seconds(wall, now, t)) {
            probe_at.sample(&host, at);
        }
    }
    let mut vals = Family::new(
        "ringward_guard_vals",
        Kind::Gauge,
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
        probe_at,
    ] {
        family.write_to(out);
    }
}

/// Renders the request metrics of the hosts in `live` (the current fleet: a host removed
/// by a reload keeps its counters, in case it comes back, but its series disappear);
/// per-host gauges are added by the caller (admin).
fn write_counters(m: &Metrics, out: &mut Exposition, live: &[&str]) {
    let hosts: Vec<(String, Arc<HostMetrics>)> = {
        let map = m.hosts.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter(|(k, _)| live.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect()
    };
    let mut requests = Family::new(
        "ringward_requests_total",
        Kind::Counter,
        "Responses sent to clients, by host and status class.",
    );
    let mut duration = Family::new(
        "ringward_request_duration_seconds",
        Kind::Histogram,
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
        Kind::Counter,
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
        Kind::Histogram,
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
        let mut family = Family::new(name, Kind::Counter, help);
        family.sample("", v.load(Ordering::Relaxed));
        family.write_to(out);
    }
    let mut rejected = Family::new(
        "ringward_rejected_total",
        Kind::Counter,
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
        Kind::Gauge,
        "Client connections open.",
    );
    open.sample("", conns.open());
    open.write_to(out);
    let mut max = Family::new(
        "ringward_connections_max",
        Kind::Gauge,
        "The client connection cap (limits.max_connections).",
    );
    max.sample("", conns.max());
    max.write_to(out);
    let mut refused = Family::new(
        "ringward_connections_refused_total",
        Kind::Counter,
        "Client connections closed at accept because the cap was reached.",
    );
    refused.sample("", conns.refused());
    refused.write_to(out);
    let mut ejections = Family::new(
        "ringward_ejections_total",
        Kind::Counter,
        "Host ejections, by host and reason.",
    );
    for (name, m) in &hosts {
        let host = escape(name);
        for (reason, n) in health::Reason::EJECTIONS.iter().zip(&m.ejections) {
            ejections.sample(
                &format!("host=\"{host}\",reason=\"{}\"", reason.as_str()),
                n.load(Ordering::Relaxed),
            );
        }
    }
    ejections.write_to(out);
    let mut resolve_failures = Family::new(
        "ringward_host_resolve_failures_total",
        Kind::Counter,
        "Failed lookups of a host's DNS name, by host (0 for a host given by IP address).",
    );
    for (name, m) in &hosts {
        resolve_failures.sample(
            &format!("host=\"{}\"", escape(name)),
            m.resolve_failures.load(Ordering::Relaxed),
        );
    }
    resolve_failures.write_to(out);
    write_guard(&m.guard, out);
}

/// The cascade guard's counters.
fn write_guard(g: &GuardCounters, out: &mut Exposition) {
    let mut quarantines = Family::new(
        "ringward_guard_quarantines_total",
        Kind::Counter,
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
        Kind::Counter,
        "Requests answered 503 because their Val is quarantined.",
    );
    refused.sample("", g.refused.load(Ordering::Relaxed));
    refused.write_to(out);
    let mut withheld = Family::new(
        "ringward_guard_withheld_total",
        Kind::Counter,
        "Retries and rescues not made because the Val is a suspect.",
    );
    withheld.sample("", g.withheld.load(Ordering::Relaxed));
    withheld.write_to(out);
}

/// Writes `h`'s `_bucket` (ending with `le="+Inf"`), `_sum` and `_count` samples into `family`.
fn write_histogram(h: &Histogram, family: &mut Family, labels: &str) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += h.counts[i].load(Ordering::Relaxed);
        family.suffixed(
            "_bucket",
            &format!("{labels}{sep}le=\"{bound}\""),
            cumulative,
        );
    }
    cumulative += h.counts[BUCKETS.len()].load(Ordering::Relaxed);
    family.suffixed("_bucket", &format!("{labels}{sep}le=\"+Inf\""), cumulative);
    let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
    family.suffixed("_sum", labels, sum);
    family.suffixed("_count", labels, cumulative);
}

/// The wall-clock time of `then`, in seconds since the Unix epoch, given that `now` is `wall`
/// (the router's clock is monotonic; the metric is a timestamp, so the two are tied here).
fn unix_seconds(wall: SystemTime, now: Instant, then: Instant) -> Option<f64> {
    let at = wall.checked_sub(now.saturating_duration_since(then))?;
    Some(at.duration_since(UNIX_EPOCH).ok()?.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use http::StatusCode;

    use super::*;
    use crate::admin::lint::{lint_exposition, lint_openmetrics};

    fn counters(m: &Metrics, live: &[&str], format: TextFormat) -> String {
        let mut out = Exposition::new(format);
        write_counters(m, &mut out, live);
        out.finish()
    }

    #[test]
    fn renders_counts_histograms_and_ejections() {
        let m = Metrics::default();
        let a = m.host("host-a");
        a.record(StatusCode::OK, Duration::from_millis(3));
        a.record(StatusCode::BAD_GATEWAY, Duration::from_millis(700));
        assert!(Arc::ptr_eq(&a, &m.host("host-a")), "one handle per name");
        m.unrouted.record(StatusCode::BAD_REQUEST, Duration::ZERO);
        a.record_ejection(health::Reason::PoolExhausted);
        a.record_ejection(health::Reason::PoolExhausted);
        let out = counters(&m, &["host-a"], TextFormat::Prometheus);
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
        assert!(
            out.contains("ringward_ejections_total{host=\"host-a\",reason=\"pool_exhausted\"} 2"),
            "{out}"
        );
        assert_eq!(m.ejections("pool_exhausted"), 2);
    }

    #[test]
    fn every_per_host_counter_is_there_at_zero_from_the_start() {
        let m = Metrics::default();
        let _ = (m.host("host-a"), m.host("host-b"));
        let out = counters(&m, &["host-a", "host-b"], TextFormat::Prometheus);
        lint_exposition(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        for host in ["host-a", "host-b"] {
            for reason in health::Reason::EJECTIONS {
                let series =
                    format!("ringward_ejections_total{{host=\"{host}\",reason=\"{reason}\"}} 0\n");
                assert!(out.contains(&series), "no {series} in\n{out}");
            }
            for class in CLASSES {
                let series =
                    format!("ringward_requests_total{{host=\"{host}\",class=\"{class}\"}} 0\n");
                assert!(out.contains(&series), "no {series}");
            }
            let count = format!("ringward_request_duration_seconds_count{{host=\"{host}\"}} 0\n");
            assert!(out.contains(&count), "no {count}");
        }
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let m = Metrics::default();
        m.host("host-a").record(StatusCode::OK, Duration::ZERO);
        let out = counters(&m, &["host-a"], TextFormat::OpenMetrics);
        lint_openmetrics(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(out.contains("# TYPE ringward_requests counter\n"), "{out}");
        assert!(out.contains("ringward_requests_total{host=\"host-a\",class=\"2xx\"} 1\n"));
        assert!(out.ends_with("\n# EOF\n"));
        assert!(!out.contains("# TYPE ringward_requests_total"), "{out}");
    }

    #[test]
    fn build_info_and_process_families() {
        let stats = ProcessStats {
            cpu_seconds: Some(1.5),
            resident_memory_bytes: Some(4096),
            virtual_memory_bytes: Some(8192),
            open_fds: Some(7),
            max_fds: Some(1024),
            start_time_seconds: Some(1_700_000_000.25),
        };
        for format in [TextFormat::Prometheus, TextFormat::OpenMetrics] {
            let mut out = Exposition::new(format);
            write_build_info(&mut out);
            write_process(&stats, &mut out);
            let out = out.finish();
            let lint = match format {
                TextFormat::Prometheus => lint_exposition(&out),
                TextFormat::OpenMetrics => lint_openmetrics(&out),
            };
            lint.unwrap_or_else(|e| panic!("{e}\n{out}"));
            let version = env!("CARGO_PKG_VERSION");
            assert!(
                out.contains(&format!("ringward_build_info{{version=\"{version}\"}} 1\n")),
                "{out}"
            );
            for line in [
                "process_cpu_seconds_total 1.5\n",
                "process_resident_memory_bytes 4096\n",
                "process_virtual_memory_bytes 8192\n",
                "process_open_fds 7\n",
                "process_max_fds 1024\n",
                "process_start_time_seconds 1700000000.25\n",
            ] {
                assert!(out.contains(line), "no {line} in\n{out}");
            }
        }
        // A figure that could not be read has no family at all.
        let mut out = Exposition::new(TextFormat::Prometheus);
        write_process(&ProcessStats::default(), &mut out);
        assert_eq!(out.finish(), "");
    }

    #[test]
    fn a_probe_time_is_a_unix_timestamp() {
        let wall = UNIX_EPOCH + Duration::from_secs(1_000);
        let now = Instant::now();
        let then = now
            .checked_sub(Duration::from_millis(250))
            .expect("instant");
        assert_eq!(unix_seconds(wall, now, then), Some(999.75));
        assert_eq!(unix_seconds(wall, now, now), Some(1_000.0));
    }

    #[test]
    fn a_host_named_none_does_not_collide_with_unrouted_requests() {
        let m = Metrics::default();
        m.host("none").record(StatusCode::OK, Duration::ZERO);
        m.unrouted.record(StatusCode::OK, Duration::ZERO);
        let out = counters(&m, &["none"], TextFormat::Prometheus);
        lint_exposition(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(out.contains("ringward_requests_total{host=\"none\",class=\"2xx\"} 1"));
        assert!(out.contains("ringward_unrouted_requests_total{class=\"2xx\"} 1"));
    }

    #[test]
    fn hosts_not_in_the_fleet_are_not_rendered() {
        let m = Metrics::default();
        m.host("kept").record(StatusCode::OK, Duration::ZERO);
        m.host("removed").record(StatusCode::OK, Duration::ZERO);
        let out = counters(&m, &["kept"], TextFormat::Prometheus);
        assert!(out.contains("host=\"kept\""));
        assert!(!out.contains("removed"), "{out}");
    }
}
