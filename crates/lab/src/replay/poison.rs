//! `ringward replay --scenario poison`: the incident's own trigger, replayed.
//!
//! One Val (the poison) gets a flurry of parallel edits: bursts of a few requests at once,
//! every quarter of a second, for several seconds. On whichever host runs two of its
//! requests at once they deadlock the host's DB pool (simhost's `poison` fault, set on every
//! host). Meanwhile many other Vals take steady open-loop load. Each run goes through
//! Ringward with its defaults (the cascade guard on) and through Ringward with the guard
//! off (its behaviour before the guard): the report says how many hosts the poison reached,
//! how the other Vals fared during the flurry, how the poison's own requests were answered,
//! and how long the guard took to quarantine it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use simhost::{SimConfig, SimHost};
use tokio::time::Instant;

use super::fetch;
use super::load::{self, Ending, LoadPlan, Sample};
use ringward::{Config, Router};

/// The poison Val's key.
pub const POISON: &str = "poison-val";

/// Requests of the poison in flight at once on a host that deadlock its pool.
const POISON_CONCURRENCY: u32 = 2;

/// The poison's requests are given this long to be answered (the router's own timeouts are
/// shorter: a request still unanswered then counts as hung).
const POISON_WAIT: Duration = Duration::from_secs(15);

/// The poison scenario.
#[derive(Debug, Clone)]
pub struct PoisonScenario {
    /// Simulated hosts.
    pub hosts: usize,
    /// DB pool size per host.
    pub pool: u32,
    /// Service time of a request.
    pub service_time: Duration,
    /// The other Vals' load.
    plan: LoadPlan,
    /// When the flurry starts.
    pub flurry_at: Duration,
    /// How long it lasts.
    pub flurry: Duration,
    /// Requests per burst.
    pub burst: u32,
    /// Time between bursts.
    pub burst_every: Duration,
}

impl PoisonScenario {
    /// The scenario `args` describe: by default 6 hosts with a pool of 8, 200 other Vals at
    /// 200 req/s, bursts of 4 every 250 ms for 12 s (`--quick`: 5 s).
    pub fn from_args(args: &super::ReplayArgs) -> anyhow::Result<Self> {
        let quick = args.quick;
        let flurry = if quick {
            Duration::from_secs(5)
        } else {
            args.flurry
        };
        let flurry_at = Duration::from_millis(if quick { 1500 } else { 3000 });
        let s = PoisonScenario {
            hosts: args.hosts.unwrap_or(6),
            pool: args.pool.unwrap_or(8),
            service_time: args.service_time,
            plan: LoadPlan {
                rate: args.rate.unwrap_or(200),
                duration: flurry_at
                    + flurry
                    + Duration::from_millis(if quick { 1500 } else { 3000 }),
                vals: args.vals.unwrap_or(200),
                zipf: 0.0,
                seed: args.seed,
                drain: Duration::from_secs(2),
            },
            flurry_at,
            flurry,
            burst: args.burst,
            burst_every: args.burst_every,
        };
        anyhow::ensure!(s.hosts >= 2, "--hosts: at least 2");
        anyhow::ensure!(s.plan.rate > 0, "--rate: must be greater than 0");
        anyhow::ensure!(s.burst >= 1, "--burst: at least 1");
        anyhow::ensure!(
            !s.burst_every.is_zero(),
            "--burst-every: must be greater than 0"
        );
        Ok(s)
    }

    /// The quick poison scenario (for tests).
    pub fn short() -> Self {
        let args = <super::ReplayArgs as clap::FromArgMatches>::from_arg_matches(
            &<super::ReplayArgs as clap::Args>::augment_args(clap::Command::new("replay"))
                .get_matches_from(["replay", "--scenario", "poison", "--quick"]),
        )
        .expect("the built-in flags parse");
        Self::from_args(&args).expect("the quick scenario is valid")
    }
}

/// One poison run's results.
#[derive(Debug, Clone, Serialize)]
pub struct PoisonRun {
    /// `ringward` (guard on) or `ringward-no-guard`.
    pub name: String,
    /// The poison's method: `GET` or `POST`.
    pub method: String,
    /// Hosts whose pool the poison deadlocked, in the order it reached them, with the time
    /// from the first in ms.
    pub hosts_poisoned: Vec<(String, u64)>,
    /// Time from the first host's deadlock to the router reporting the Val quarantined, ms.
    pub quarantined_after_ms: Option<u64>,
    /// Other Vals' requests sent during the flurry.
    pub others_during_flurry: u64,
    /// Of those, answered 2xx.
    pub others_ok: u64,
    /// Share of them answered 2xx.
    pub others_ok_share: f64,
    /// Of those, the failures by status (`"error"` for a broken connection).
    pub others_failed: BTreeMap<String, u64>,
    /// Other Vals' requests still unanswered at the end (the whole run).
    pub others_pending: u64,
    /// The slowest other request during the flurry, ms.
    pub others_max_ms: u64,
    /// Distinct other Vals with at least one failed request during the flurry.
    pub others_vals_hurt: u64,
    /// The poison's requests sent.
    pub poison_sent: u64,
    /// Their answers by status (`"503 quarantined"`, `"200"`, ... ; `"hung"` when not
    /// answered within 15 s, `"error"` for a broken connection).
    pub poison_answers: BTreeMap<String, u64>,
    /// The median poison answer, ms (to 0.1 ms; hung ones count as 15 s).
    pub poison_p50_ms: f64,
    /// The slowest.
    pub poison_max_ms: u64,
}

/// One poison request's record.
#[derive(Debug, Clone)]
struct Edit {
    answer: String,
    latency: Duration,
}

/// Runs the poison scenario once: the poison's requests sent as `method`, through Ringward
/// with the cascade guard on or off.
pub async fn run_poison(
    s: &PoisonScenario,
    method: http::Method,
    guard: bool,
) -> anyhow::Result<PoisonRun> {
    let mut fleet = Vec::with_capacity(s.hosts);
    for i in 0..s.hosts {
        let config = SimConfig {
            name: format!("host-{i}"),
            pool_size: s.pool,
            service_time: simhost::ServiceTime::Fixed(s.service_time),
            ..SimConfig::default()
        };
        let host = SimHost::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .with_context(|| format!("starting simhost host-{i}"))?;
        host.faults().poison(Some(POISON), POISON_CONCURRENCY);
        fleet.push(host);
    }
    let named: Vec<(String, SocketAddr)> = fleet
        .iter()
        .map(|h| (h.name().to_owned(), h.addr()))
        .collect();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = Config::for_hosts(loopback, loopback, &named);
    config.guard.enabled = guard;
    config.access_log.enabled = false;
    let router = Router::start(config).await?;
    let (addr, admin) = (router.listen_addr(), router.admin_addr());

    let start = Instant::now();
    let load = tokio::spawn({
        let plan = s.plan.clone();
        async move { load::run_load(addr, &plan, start).await }
    });
    let end = start + s.plan.duration;
    let watch = tokio::spawn(watch_poison(
        fleet
            .iter()
            .map(|h| (h.name().to_owned(), h.stats_handle()))
            .collect(),
        admin,
        end,
    ));

    // The flurry: `burst` requests at once, every `burst_every`.
    let mut tasks = tokio::task::JoinSet::new();
    let mut at = start + s.flurry_at;
    while at < start + s.flurry_at + s.flurry {
        tokio::time::sleep_until(at).await;
        for _ in 0..s.burst {
            let method = method.clone();
            tasks.spawn(one_edit(addr, method));
        }
        at += s.burst_every;
    }
    let samples: Vec<Sample> = load.await.context("the load generator panicked")?;
    let mut edits = Vec::new();
    while let Some(edit) = tasks.join_next().await {
        edits.push(edit.context("a poison request task panicked")?);
    }
    let (poisoned, quarantined_at) = watch.await.unwrap_or_default();
    router.shutdown().await;
    for host in fleet {
        host.shutdown().await;
    }

    let first = poisoned.first().map(|(_, t)| *t);
    let hosts_poisoned = poisoned
        .iter()
        .map(|(name, t)| (name.clone(), ms(t.saturating_sub(first.unwrap_or(*t)))))
        .collect();
    let quarantined_after_ms = quarantined_at
        .zip(first)
        .map(|(q, f)| ms(q.saturating_sub(f)));
    Ok(analyse(
        if guard {
            "ringward"
        } else {
            "ringward-no-guard"
        },
        &method,
        s,
        &samples,
        &edits,
        hosts_poisoned,
        quarantined_after_ms,
    ))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One poison request through the router.
async fn one_edit(addr: SocketAddr, method: http::Method) -> Edit {
    let started = Instant::now();
    let body = if method == http::Method::POST {
        Full::new(Bytes::from_static(b"{\"edit\":\"x\"}"))
    } else {
        Full::default()
    };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("/v/{POISON}/edit"))
        .header(http::header::HOST, addr.to_string())
        .header("x-val", POISON)
        .body(body)
        .expect("a valid request");
    let answer = match fetch::fetch(addr, request, POISON_WAIT).await {
        Ok(f) => {
            let error = serde_json::from_slice::<serde_json::Value>(&f.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned));
            match error.as_deref() {
                Some("quarantined") => format!("{} quarantined", f.status.as_u16()),
                _ => f.status.as_u16().to_string(),
            }
        }
        Err(e) if e.to_string().starts_with("no answer") => "hung".to_owned(),
        Err(_) => "error".to_owned(),
    };
    Edit {
        answer,
        latency: started.elapsed(),
    }
}

/// Watches every host's poison trigger count and the router's verdict on the poison, until
/// `end`: the hosts the poison reached (with when, in order) and when it was quarantined.
async fn watch_poison(
    hosts: Vec<(String, simhost::StatsHandle)>,
    admin: SocketAddr,
    end: Instant,
) -> (Vec<(String, Duration)>, Option<Duration>) {
    let origin = Instant::now();
    let mut poisoned: Vec<(String, Duration)> = Vec::new();
    let mut quarantined = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    while Instant::now() < end {
        ticker.tick().await;
        for (name, stats) in &hosts {
            if stats.poison_triggered() > 0 && !poisoned.iter().any(|(n, _)| n == name) {
                poisoned.push((name.clone(), origin.elapsed()));
            }
        }
        if quarantined.is_none() && !poisoned.is_empty() {
            let path = format!("/admin/vals/{POISON}");
            let state = fetch::get(admin, &path).await.ok().and_then(|f| {
                let v: serde_json::Value = serde_json::from_slice(&f.body).ok()?;
                v["state"].as_str().map(str::to_owned)
            });
            if state.as_deref() == Some("quarantined") {
                quarantined = Some(origin.elapsed());
            }
        }
    }
    (poisoned, quarantined)
}

fn analyse(
    name: &str,
    method: &http::Method,
    s: &PoisonScenario,
    samples: &[Sample],
    edits: &[Edit],
    hosts_poisoned: Vec<(String, u64)>,
    quarantined_after_ms: Option<u64>,
) -> PoisonRun {
    let during = s.flurry_at..s.flurry_at + s.flurry;
    let mut others_failed = BTreeMap::new();
    let mut hurt = std::collections::BTreeSet::new();
    let (mut sent, mut ok, mut max) = (0, 0, Duration::ZERO);
    for sample in samples.iter().filter(|x| during.contains(&x.sent)) {
        sent += 1;
        max = max.max(sample.latency);
        match sample.ending {
            Ending::Status(code) if (200..300).contains(&code) => ok += 1,
            Ending::Status(code) => {
                *others_failed.entry(code.to_string()).or_insert(0) += 1;
                hurt.insert(sample.val);
            }
            Ending::Error | Ending::Pending => {
                let key = if sample.ending == Ending::Error {
                    "error"
                } else {
                    "pending"
                };
                *others_failed.entry(key.to_owned()).or_insert(0) += 1;
                hurt.insert(sample.val);
            }
        }
    }
    let others_pending = samples
        .iter()
        .filter(|x| x.ending == Ending::Pending)
        .count() as u64;
    let mut poison_answers = BTreeMap::new();
    let mut latencies: Vec<Duration> = edits.iter().map(|e| e.latency).collect();
    latencies.sort();
    for e in edits {
        *poison_answers.entry(e.answer.clone()).or_insert(0) += 1;
    }
    PoisonRun {
        name: name.to_owned(),
        method: method.to_string(),
        hosts_poisoned,
        quarantined_after_ms,
        others_during_flurry: sent,
        others_ok: ok,
        others_ok_share: if sent == 0 {
            1.0
        } else {
            ok as f64 / sent as f64
        },
        others_failed,
        others_pending,
        others_max_ms: ms(max),
        others_vals_hurt: hurt.len() as u64,
        poison_sent: edits.len() as u64,
        poison_answers,
        poison_p50_ms: latencies
            .get(latencies.len() / 2)
            .map_or(0.0, |d| (d.as_secs_f64() * 10_000.0).round() / 10.0),
        poison_max_ms: latencies.last().map_or(0, |d| ms(*d)),
    }
}

/// The one-screen summary of poison runs.
pub fn summary(runs: &[PoisonRun]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let head: String = runs
        .iter()
        .map(|r| format!("{:>22}", format!("{} {}", r.name, r.method)))
        .collect();
    let _ = writeln!(out, "{:<36}{head}", "");
    let mut row = |label: &str, f: &dyn Fn(&PoisonRun) -> String| {
        let cells: String = runs.iter().map(|r| format!("{:>22}", f(r))).collect();
        let _ = writeln!(out, "{label:<36}{cells}");
    };
    row("hosts the poison reached", &|r| {
        r.hosts_poisoned.len().to_string()
    });
    row("deadlock -> quarantine", &|r| {
        r.quarantined_after_ms
            .map_or("never".to_owned(), |v| format!("{v} ms"))
    });
    row("other Vals' requests in the flurry", &|r| {
        r.others_during_flurry.to_string()
    });
    row("  answered 2xx", &|r| {
        format!("{:.2}%", 100.0 * r.others_ok_share)
    });
    row("  other Vals hurt", &|r| r.others_vals_hurt.to_string());
    row("  slowest", &|r| format!("{} ms", r.others_max_ms));
    row("  pending at the end", &|r| r.others_pending.to_string());
    row("poison requests sent", &|r| r.poison_sent.to_string());
    row("  answered 503 quarantined", &|r| {
        r.poison_answers
            .get("503 quarantined")
            .copied()
            .unwrap_or(0)
            .to_string()
    });
    row("  hung (no answer in 15 s)", &|r| {
        r.poison_answers
            .get("hung")
            .copied()
            .unwrap_or(0)
            .to_string()
    });
    row("  median / slowest answer", &|r| {
        format!("{:.1} / {} ms", r.poison_p50_ms, r.poison_max_ms)
    });
    out
}
