//! `ringward replay`: the post-mortem, replayed on loopback and measured.
//!
//! A fleet of simhosts takes open-loop load over many Vals with Zipf
//! popularity. Part-way through, the pool of the host that serves the most
//! popular Val deadlocks (every slot taken, never returned), as in the
//! incident; later the fault is cleared. The same scenario runs twice: once
//! behind Ringward with its defaults, once behind a baseline that behaves as
//! the post-mortem's system did (see `replay/baseline.rs`), or once behind any external
//! HTTP proxy. The report says how fast the sick host was ejected, how many
//! requests failed or hung, and whether exactly the moved Vals came back.
//!
//! `--scenario poison` replays the incident's trigger instead (`replay/poison.rs`): one
//! Val's flurry of parallel edits deadlocks whichever host runs them, with and without the
//! cascade guard.

mod baseline;
mod chart;
pub(crate) mod fetch;
mod load;
pub mod poison;
mod report;
mod zipf;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use simhost::{SimConfig, SimHost};
use tokio::time::Instant;

use load::{LoadPlan, Sample};
pub use report::{RunReport, Second};
use report::{Timeline, Watched};
use ringward::{Config, Router};

/// Which failure a replay plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioKind {
    /// The post-mortem: a host's whole DB pool deadlocks.
    Incident,
    /// Its trigger: one Val's parallel edits deadlock whichever host runs them.
    Poison,
}

/// The poison's request method(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PoisonMethod {
    /// GET (idempotent: rescued and retried unless the guard stops it).
    Get,
    /// POST (never rescued).
    Post,
    /// Both, one after the other.
    Both,
}

/// `ringward replay`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Which failure to replay.
    #[arg(long, value_enum, default_value = "incident")]
    pub scenario: ScenarioKind,
    /// Simulated hosts in the fleet [default: 5; poison: 6].
    #[arg(long)]
    pub hosts: Option<usize>,
    /// DB pool size of each host [default: 10; poison: 8].
    #[arg(long)]
    pub pool: Option<u32>,
    /// Service time of one Val request (a pool connection is held this long).
    #[arg(long, default_value = "5ms", value_parser = humantime::parse_duration)]
    pub service_time: Duration,
    /// Distinct Vals [default: 500; poison: 200 other Vals].
    #[arg(long)]
    pub vals: Option<u32>,
    /// Zipf exponent of Val popularity.
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Offered load, requests per second (open loop) [default: 300; poison: 200].
    #[arg(long)]
    pub rate: Option<u32>,
    /// How long each run sends requests.
    #[arg(long, default_value = "26s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// When the sick host's pool deadlocks.
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    pub fault_at: Duration,
    /// When the deadlocked connections are released.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub clear_at: Duration,
    /// Seed of the request sequence (both runs send the same requests).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A short setting for CI: 3 hosts, 150 req/s, 16 s per run (poison: a 5 s flurry).
    #[arg(long)]
    pub quick: bool,
    /// Poison: the method of the poison's requests.
    #[arg(long, value_enum, default_value = "both")]
    pub method: PoisonMethod,
    /// Poison: how long the flurry of edits lasts.
    #[arg(long, default_value = "12s", value_parser = humantime::parse_duration)]
    pub flurry: Duration,
    /// Poison: parallel requests per burst.
    #[arg(long, default_value_t = 4)]
    pub burst: u32,
    /// Poison: time between bursts.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub burst_every: Duration,
    /// Measure an external router at this address instead of Ringward and the
    /// baseline. Its hosts must be the simhosts this starts on
    /// `--host-base-port`, `+1`, ... (named host-0, host-1, ...).
    #[arg(long)]
    pub router: Option<SocketAddr>,
    /// The external router's Ringward-style admin API (`GET /admin/hosts`),
    /// if it has one: then its ejection and recovery times are measured too.
    #[arg(long, requires = "router")]
    pub router_admin: Option<SocketAddr>,
    /// First port of the simhosts (0 = ephemeral ports).
    #[arg(long, default_value_t = 0)]
    pub host_base_port: u16,
    /// Where the report (report.json, chart.svg) is written.
    #[arg(long, default_value = "replay-report")]
    pub out: PathBuf,
}

/// One scenario, as the runs share it.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Simulated hosts.
    pub hosts: usize,
    /// Pool size per host.
    pub pool: u32,
    /// Service time per request.
    pub service_time: Duration,
    /// The load.
    plan: LoadPlan,
    /// When the pool deadlocks.
    pub fault_at: Duration,
    /// When it is released.
    pub clear_at: Duration,
    /// First simhost port (0: ephemeral).
    pub host_base_port: u16,
}

impl Scenario {
    /// The scenario `args` describe.
    pub fn from_args(args: &ReplayArgs) -> anyhow::Result<Self> {
        let mut s = Scenario {
            hosts: args.hosts.unwrap_or(5),
            pool: args.pool.unwrap_or(10),
            service_time: args.service_time,
            plan: LoadPlan {
                rate: args.rate.unwrap_or(300),
                duration: args.duration,
                vals: args.vals.unwrap_or(500),
                zipf: args.zipf,
                seed: args.seed,
                drain: Duration::from_secs(2),
            },
            fault_at: args.fault_at,
            clear_at: args.clear_at,
            host_base_port: args.host_base_port,
        };
        if args.quick {
            s.hosts = args.hosts.unwrap_or(3);
            s.plan.rate = args.rate.unwrap_or(150);
            s.plan.vals = args.vals.unwrap_or(200);
            s.plan.duration = Duration::from_secs(16);
            s.fault_at = Duration::from_secs(3);
            s.clear_at = Duration::from_secs(6);
        }
        anyhow::ensure!(
            s.hosts >= 2,
            "--hosts: at least 2, so a sick host's Vals have somewhere to go"
        );
        anyhow::ensure!(s.plan.rate > 0, "--rate: must be greater than 0");
        anyhow::ensure!(
            s.fault_at < s.clear_at && s.clear_at < s.plan.duration,
            "--fault-at < --clear-at < --duration must hold"
        );
        Ok(s)
    }

    /// The built-in default scenario, shortened (for tests).
    pub fn short() -> Self {
        let args = <ReplayArgs as clap::FromArgMatches>::from_arg_matches(
            &<ReplayArgs as clap::Args>::augment_args(clap::Command::new("replay"))
                .get_matches_from(["replay", "--quick"]),
        )
        .expect("the built-in flags parse");
        Self::from_args(&args).expect("the quick scenario is valid")
    }
}

/// Which router a run goes through.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Ringward with its default settings.
    Ringward,
    /// A router that behaves as the post-mortem's system did.
    Baseline,
    /// Any HTTP proxy at `addr`, already configured with the simhosts, and
    /// its admin API if it has a Ringward-style one.
    External {
        /// Where it serves.
        addr: SocketAddr,
        /// Its `GET /admin/hosts`, if any.
        admin: Option<SocketAddr>,
    },
}

/// Runs `scenario` once through `target` and measures it.
pub async fn run_scenario(scenario: &Scenario, target: Target) -> anyhow::Result<RunReport> {
    let mut fleet = Vec::with_capacity(scenario.hosts);
    for i in 0..scenario.hosts {
        let port = if scenario.host_base_port == 0 {
            0
        } else {
            scenario.host_base_port + i as u16
        };
        let config = SimConfig {
            name: format!("host-{i}"),
            pool_size: scenario.pool,
            service_time: simhost::ServiceTime::Fixed(scenario.service_time),
            ..SimConfig::default()
        };
        let host = SimHost::start(SocketAddr::from(([127, 0, 0, 1], port)), config)
            .await
            .with_context(|| format!("starting simhost host-{i} on port {port}"))?;
        fleet.push(host);
    }
    let named: Vec<(String, SocketAddr)> = fleet
        .iter()
        .map(|h| (h.name().to_owned(), h.addr()))
        .collect();

    let (name, addr, admin, timeout, router, baseline) = match target {
        Target::Ringward => {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let mut config = Config::for_hosts(loopback, loopback, &named);
            // The replay prints its own report; an access line per request would bury it.
            config.access_log.enabled = false;
            let timeout = config.request_timeout();
            let router = Router::start(config).await?;
            (
                "ringward",
                router.listen_addr(),
                Some(router.admin_addr()),
                timeout,
                Some(router),
                None,
            )
        }
        Target::Baseline => {
            let baseline = baseline::Baseline::start(&named).await?;
            // The baseline has no timeout; judge it against Ringward's default.
            let timeout = Config::for_hosts(named[0].1, named[0].1, &named).request_timeout();
            (
                "baseline",
                baseline.addr(),
                None,
                timeout,
                None,
                Some(baseline),
            )
        }
        Target::External { addr, admin } => {
            let timeout = Config::for_hosts(addr, addr, &named).request_timeout();
            ("external", addr, admin, timeout, None, None)
        }
    };

    let start = Instant::now();
    let load = tokio::spawn({
        let plan = scenario.plan.clone();
        async move { load::run_load(addr, &plan, start).await }
    });

    // The fault: deadlock the pool of the host that serves the most popular Val.
    tokio::time::sleep_until(start + scenario.fault_at).await;
    let sick = sick_host(&fleet, &named, admin).await;
    let sick_name = fleet[sick].name().to_owned();
    fleet[sick].faults().deadlock(scenario.pool);
    let watch = tokio::spawn(watch_sick(
        fleet[sick].stats_handle(),
        admin,
        sick_name.clone(),
        start,
        WatchUntil {
            clear: start + scenario.clear_at,
            end: start + scenario.plan.duration,
        },
    ));
    tokio::time::sleep_until(start + scenario.clear_at).await;
    fleet[sick].faults().release();

    let samples: Vec<Sample> = load.await.context("the load generator panicked")?;
    let watched = watch.await.unwrap_or_default();
    if let Some(router) = router {
        router.shutdown().await;
    }
    if let Some(baseline) = baseline {
        baseline.stop();
    }
    for host in fleet {
        host.shutdown().await;
    }
    let timeline = Timeline {
        fault_at: scenario.fault_at,
        clear_at: scenario.clear_at,
        end: scenario.plan.duration,
        settle: Duration::from_millis(1500),
    };
    Ok(report::analyse(
        name, &sick_name, &samples, timeline, timeout, &watched,
    ))
}

/// The host that serves `val-0000`, the most popular Val: the first healthy
/// host on its walk, as the ring places it.
async fn sick_host(
    fleet: &[SimHost],
    named: &[(String, SocketAddr)],
    _admin: Option<SocketAddr>,
) -> usize {
    let ring = router_core::Ring::try_new(named.iter().map(|(name, _)| router_core::HostSpec {
        name: name.clone(),
        weight: 1,
    }))
    .expect("the fleet is a valid ring");
    let first = ring
        .candidates(router_core::KeyHash::of(load::val_name(0).as_bytes()))
        .next()
        .map(|id| ring.host(id).name.clone());
    fleet
        .iter()
        .position(|h| Some(h.name()) == first.as_deref())
        .unwrap_or(0)
}

/// When the watcher stops counting requests to the sick host (the clear),
/// and when it stops altogether.
struct WatchUntil {
    clear: Instant,
    end: Instant,
}

/// Watches the sick host: when it last received a request while sick, and,
/// when the router has an admin API, when it first reported the host
/// ejected and when it next reported it healthy after the clear.
async fn watch_sick(
    stats: simhost::StatsHandle,
    admin: Option<SocketAddr>,
    sick: String,
    start: Instant,
    until: WatchUntil,
) -> Watched {
    let mut watched = Watched::default();
    let mut seen = stats.val_requests();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut next_admin_poll = Instant::now();
    while Instant::now() < until.end {
        ticker.tick().await;
        let now = Instant::now();
        if now < until.clear && stats.val_requests() != seen {
            seen = stats.val_requests();
            watched.last_request_to_sick = Some(now - start);
        }
        let Some(admin) = admin else { continue };
        if watched.recovered_at.is_some() || now < next_admin_poll {
            continue;
        }
        next_admin_poll = now + Duration::from_millis(25);
        let state = host_state(admin, &sick).await;
        match (state.as_deref(), watched.ejected_at) {
            (Some("ejected"), None) => watched.ejected_at = Some(now - start),
            (Some("healthy"), Some(_)) if now >= until.clear => {
                watched.recovered_at = Some(now - start)
            }
            _ => {}
        }
    }
    watched
}

/// The state `/admin/hosts` gives for `name`.
async fn host_state(admin: SocketAddr, name: &str) -> Option<String> {
    let fetched = fetch::get(admin, "/admin/hosts").await.ok()?;
    let json: serde_json::Value = serde_json::from_slice(&fetched.body).ok()?;
    json["hosts"]
        .as_array()?
        .iter()
        .find(|h| h["name"] == name)
        .and_then(|h| h["state"].as_str())
        .map(str::to_owned)
}

/// `ringward replay`: runs the scenario through Ringward and the baseline (or
/// an external router), writes `report.json` and `chart.svg`, prints a summary.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if args.scenario == ScenarioKind::Poison {
        return run_poison_report(&args).await;
    }
    let scenario = Scenario::from_args(&args)?;
    let targets: Vec<Target> = match args.router {
        Some(addr) => vec![Target::External {
            addr,
            admin: args.router_admin,
        }],
        None => vec![Target::Ringward, Target::Baseline],
    };
    let mut runs = Vec::new();
    for target in targets {
        let label = match target {
            Target::Ringward => "Ringward (defaults)".to_owned(),
            Target::Baseline => "the post-mortem baseline".to_owned(),
            Target::External { addr, .. } => format!("the router at {addr}"),
        };
        eprintln!("replay: {label}, {:?} of load ...", scenario.plan.duration);
        runs.push(run_scenario(&scenario, target).await?);
    }
    let json = serde_json::json!({
        "scenario": {
            "hosts": scenario.hosts, "pool": scenario.pool,
            "service_time_ms": scenario.service_time.as_millis() as u64,
            "vals": scenario.plan.vals, "zipf": scenario.plan.zipf, "rate": scenario.plan.rate,
            "duration_ms": scenario.plan.duration.as_millis() as u64,
            "fault_at_ms": scenario.fault_at.as_millis() as u64,
            "clear_at_ms": scenario.clear_at.as_millis() as u64,
        },
        "runs": runs,
    });
    let report_path = write_report(&args.out, "report.json", &json)?;
    let chart_path = args.out.join("chart.svg");
    let marks = chart::Marks {
        fault_s: scenario.fault_at.as_secs_f64(),
        clear_s: scenario.clear_at.as_secs_f64(),
    };
    std::fs::write(&chart_path, chart::render(&runs, &marks))?;
    print!("{}", summary(&runs));
    println!(
        "report: {}\nchart:  {}",
        report_path.display(),
        chart_path.display()
    );
    Ok(())
}

/// `ringward replay --scenario poison`: each method through Ringward with the guard on and
/// off; writes `poison-report.json`, prints a summary.
async fn run_poison_report(args: &ReplayArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.router.is_none(),
        "--router: the poison scenario compares Ringward with and without its guard only"
    );
    let scenario = poison::PoisonScenario::from_args(args)?;
    let methods = match args.method {
        PoisonMethod::Get => vec![http::Method::GET],
        PoisonMethod::Post => vec![http::Method::POST],
        PoisonMethod::Both => vec![http::Method::GET, http::Method::POST],
    };
    let mut runs = Vec::new();
    for method in methods {
        for guard in [true, false] {
            let label = if guard {
                "with the guard"
            } else {
                "without the guard"
            };
            eprintln!(
                "replay poison: {method} edits, Ringward {label}, {:?} of flurry ...",
                scenario.flurry
            );
            runs.push(poison::run_poison(&scenario, method.clone(), guard).await?);
        }
    }
    let json = serde_json::json!({
        "scenario": {
            "hosts": scenario.hosts, "pool": scenario.pool,
            "service_time_ms": scenario.service_time.as_millis() as u64,
            "flurry_ms": scenario.flurry.as_millis() as u64,
            "burst": scenario.burst,
            "burst_every_ms": scenario.burst_every.as_millis() as u64,
        },
        "runs": runs,
    });
    let path = write_report(&args.out, "poison-report.json", &json)?;
    print!("{}", poison::summary(&runs));
    println!("report: {}", path.display());
    Ok(())
}

/// Writes `json` as `name` in the report folder `out` (created if need be).
fn write_report(
    out: &std::path::Path,
    name: &str,
    json: &serde_json::Value,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(json)?)?;
    Ok(path)
}

/// The one-screen summary table.
pub fn summary(runs: &[RunReport]) -> String {
    use std::fmt::Write as _;
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<38}{}",
        "",
        runs.iter()
            .map(|r| format!("{:>16}", r.name))
            .collect::<String>()
    );
    let mut row = |label: &str, f: &dyn Fn(&RunReport) -> String| {
        let _ = writeln!(
            out,
            "{label:<38}{}",
            runs.iter()
                .map(|r| format!("{:>16}", f(r)))
                .collect::<String>()
        );
    };
    row("sick host", &|r| r.sick_host.clone());
    row("exhaustion -> ejection", &|r| ms(r.ejected_after_ms));
    row("exhaustion -> last request while sick", &|r| {
        ms(r.last_request_to_sick_after_ms)
    });
    row("clear -> host healthy again", &|r| {
        ms(r.recovered_after_clear_ms)
    });
    row("requests sent", &|r| r.requests.to_string());
    row("answered 2xx", &|r| r.ok.to_string());
    row("failed (any status / broken)", &|r| {
        r.failed.values().sum::<u64>().to_string()
    });
    row("over the request timeout", &|r| {
        format!("{} (>{} ms)", r.over_timeout, r.timeout_ms)
    });
    row("over 2 s", &|r| r.over_2s.to_string());
    row("pending at the end", &|r| r.pending_at_end.to_string());
    row("slowest answer", &|r| format!("{} ms", r.max_latency_ms));
    row("Vals moved (from the sick host)", &|r| {
        format!("{} ({})", r.vals_moved, r.vals_moved_from_sick)
    });
    row("moved Vals seen after / back home", &|r| {
        format!("{} / {}", r.vals_moved_seen_after, r.vals_returned)
    });
    row("exact return", &|r| {
        if r.exact_return { "yes" } else { "no" }.to_owned()
    });
    row("goodput", &|r| format!("{:.0} req/s", r.goodput_rps));
    out
}
