//! `ringward demo`: the router on 127.0.0.1:8080 (admin on :9901) in front of
//! three simulated hosts, nothing to configure. It prints how to use it, then
//! walks through the incident once by itself: a Val stays on its host, moves
//! within a second of that host's DB pool deadlocking, and comes back when
//! the pool is released.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use simhost::{EtcdRegistration, SimConfig, SimHost};
use tokio::time::Instant;

use crate::replay::fetch::{self, Fetched};
use ringward::config::{EtcdConfig, defaults};
use ringward::{Config, Router};

/// The header the demo's router names the chosen host in.
const UPSTREAM_HEADER: &str = "x-ringward-host";
/// The Val the tour follows.
const TOUR_VAL: &str = "alice-hello";
/// How long the tour waits for each step before it says the step failed.
const STEP_DEADLINE: Duration = Duration::from_secs(20);
/// Other Vals the tour keeps busy meanwhile, and their request rate.
const BACKGROUND_VALS: u32 = 100;
const BACKGROUND_RATE: u32 = 50;

/// `ringward demo`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// The router's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The admin API's address.
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub admin: SocketAddr,
    /// DB pool size of each simulated host.
    #[arg(long, default_value_t = 10)]
    pub pool: u32,
    /// Skip the guided walk through the incident; just serve.
    #[arg(long)]
    pub no_tour: bool,
    /// Exit after the tour instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit_after_tour: bool,
    /// Let the other Vals' traffic run this long before the tour's incident begins (time to
    /// open the status page and see the fleet before it), e.g. `--tour-delay 20s`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    pub tour_delay: Duration,
    /// Fleet mode: the simulated hosts register in this etcd (a client endpoint,
    /// `host:port`) under `/ringward/hosts/`, and the router learns them from there instead
    /// of from its config. Start more routers on the same etcd (`ringward run` with
    /// `[discovery.etcd]`) to see them share one view (docs/fleet.md).
    #[arg(long, value_name = "ENDPOINT")]
    pub etcd: Option<String>,
}

/// Runs the demo until Ctrl-C (or, with `--exit-after-tour`, until the tour ends).
///
/// # Errors
/// A port that is taken, a host that cannot start, or a tour step that does
/// not happen within its deadline.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut fleet = Vec::new();
    for name in ["host-a", "host-b", "host-c"] {
        let config = SimConfig {
            name: name.to_owned(),
            pool_size: args.pool,
            ..SimConfig::default()
        };
        let host = SimHost::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .with_context(|| format!("starting simulated host {name}"))?;
        fleet.push(host);
    }
    let named: Vec<(String, SocketAddr)> = fleet
        .iter()
        .map(|h| (h.name().to_owned(), h.addr()))
        .collect();
    let mut registrations = Vec::new();
    let mut config = match &args.etcd {
        None => Config::for_hosts(args.listen, args.admin, &named),
        Some(endpoint) => {
            let registration = EtcdRegistration {
                endpoints: vec![endpoint.clone()],
                prefix: defaults::ETCD_PREFIX.to_owned(),
                ttl: Duration::from_secs(5),
                weight: 1,
            };
            for host in &fleet {
                let registered = registration
                    .start(host.name(), host.addr())
                    .await
                    .with_context(|| {
                        format!("registering {} in etcd at {endpoint}", host.name())
                    })?;
                registrations.push(registered);
            }
            let mut config = Config::for_hosts(args.listen, args.admin, &[]);
            config.discovery.etcd = Some(EtcdConfig {
                endpoints: vec![endpoint.clone()],
                prefix: defaults::ETCD_PREFIX.to_owned(),
                name: None,
                connect_timeout: defaults::ETCD_CONNECT_TIMEOUT,
                request_timeout: defaults::ETCD_REQUEST_TIMEOUT,
                remove_delay: defaults::ETCD_REMOVE_DELAY,
            });
            config
        }
    };
    // The tour is the demo's output; an access line per request would bury it.
    config.access_log.enabled = false;
    let router = Router::start(config).await.with_context(|| {
        format!(
            "starting the router on {} (admin {}); choose other ports with --listen and --admin",
            args.listen, args.admin
        )
    })?;
    let (listen, admin) = (router.listen_addr(), router.admin_addr());

    println!("Ringward demo: router http://{listen}  admin http://{admin}");
    for host in &fleet {
        println!(
            "  simulated host {} on http://{} (DB pool of {})",
            host.name(),
            host.addr(),
            args.pool
        );
    }
    let owner = owner_of(&fleet, &named, TOUR_VAL);
    println!();
    println!("Route a Val (the chosen host is in the {UPSTREAM_HEADER} header):");
    println!("  curl -si -H 'x-val: {TOUR_VAL}' http://{listen}/ | grep -i {UPSTREAM_HEADER}");
    println!("Why that host:   curl -s 'http://{admin}/admin/route?key={TOUR_VAL}'");
    println!("Status page:     http://{admin}/");
    println!("Deadlock {}'s DB pool (the incident):", owner.name());
    println!(
        "  curl -s -X POST http://{}/_sim/fault -d '{{\"deadlock\": {}}}'",
        owner.addr(),
        args.pool
    );
    println!(
        "Release it:      curl -s -X POST http://{}/_sim/release",
        owner.addr()
    );
    println!();

    let outcome = if args.no_tour {
        Ok(())
    } else {
        tour(listen, admin, owner, args.pool, args.tour_delay).await
    };
    if let Err(error) = &outcome {
        println!("tour: {error:#}");
    }
    if !args.exit_after_tour {
        println!("Serving until Ctrl-C.");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
    }
    router.shutdown().await;
    for registered in registrations {
        registered.stop().await;
    }
    for host in fleet {
        host.shutdown().await;
    }
    outcome
}

/// The host the ring places `key` on while every host is healthy.
fn owner_of<'f>(fleet: &'f [SimHost], named: &[(String, SocketAddr)], key: &str) -> &'f SimHost {
    let ring = router_core::Ring::try_new(named.iter().map(|(name, _)| router_core::HostSpec {
        name: name.clone(),
        weight: 1,
    }))
    .expect("three distinct hosts of weight 1 make a ring");
    let first = ring
        .candidates(router_core::KeyHash::of(key.as_bytes()))
        .next()
        .map(|id| ring.host(id).name.as_str());
    fleet
        .iter()
        .find(|h| Some(h.name()) == first)
        .unwrap_or(&fleet[0])
}

/// The guided walk: stay, move on deadlock, return on release. Other Vals
/// keep the fleet busy meanwhile, as in a real fleet (a host in probation
/// earns its way back with real requests, so it needs some traffic).
async fn tour(
    listen: SocketAddr,
    admin: SocketAddr,
    owner: &SimHost,
    pool: u32,
    delay: Duration,
) -> anyhow::Result<()> {
    println!(
        "Tour: following Val '{TOUR_VAL}', while {BACKGROUND_VALS} other Vals take {BACKGROUND_RATE} req/s."
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let background = tokio::spawn(background_load(listen, stop_rx));
    if !delay.is_zero() {
        println!(
            "  The incident begins in {}.",
            humantime::format_duration(delay)
        );
        tokio::time::sleep(delay).await;
    }
    let outcome = tour_steps(listen, admin, owner, pool).await;
    let _ = stop_tx.send(true);
    let (ok, failed) = background.await.unwrap_or((0, 0));
    println!("  Other Vals meanwhile: {ok} requests answered, {failed} failed.");
    println!();
    outcome
}

async fn tour_steps(
    listen: SocketAddr,
    admin: SocketAddr,
    owner: &SimHost,
    pool: u32,
) -> anyhow::Result<()> {
    let mut hosts = Vec::new();
    for _ in 0..5 {
        hosts.push(route(listen, TOUR_VAL).await?);
    }
    let home = hosts[0].clone();
    let same = hosts.iter().filter(|h| **h == home).count();
    println!("  1. 5 requests: {same} of 5 served by {home} (affinity keeps the worker warm)");

    owner.faults().deadlock(pool);
    let exhausted = Instant::now();
    println!(
        "  2. {}'s DB pool deadlocked: {pool} of {pool} connections stuck, never returned",
        owner.name()
    );
    let moved_to = wait_for_host(listen, exhausted, |h| h != home).await?;
    println!(
        "  3. '{TOUR_VAL}' now served by {moved_to}, {:.2} s after the pool filled",
        exhausted.elapsed().as_secs_f64()
    );
    if let Ok(explain) = fetch::get(admin, &format!("/admin/route?key={TOUR_VAL}")).await {
        println!(
            "     /admin/route: {}",
            String::from_utf8_lossy(&explain.body).trim()
        );
    }

    owner.faults().release();
    let released = Instant::now();
    println!(
        "  4. {}'s pool released; it sits out its ejection, then earns its Vals back in probation",
        owner.name()
    );
    let back = wait_for_host(listen, released, |h| h == home).await?;
    println!(
        "  5. '{TOUR_VAL}' back on {back}, {:.2} s after the release",
        released.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Requests for `BACKGROUND_VALS` other Vals at `BACKGROUND_RATE` per second
/// until told to stop; returns (answered 2xx, failed).
async fn background_load(
    listen: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (u64, u64) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bool>(1024);
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / BACKGROUND_RATE);
    let mut sent: u32 = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let tx = tx.clone();
                let val = format!("val-{:03}", sent % BACKGROUND_VALS);
                sent = sent.wrapping_add(1);
                tokio::spawn(async move {
                    let _ = tx.send(route(listen, &val).await.is_ok()).await;
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(tx);
    let (mut ok, mut failed) = (0, 0);
    while let Ok(Some(answered)) = tokio::time::timeout(STEP_DEADLINE, rx.recv()).await {
        if answered { ok += 1 } else { failed += 1 }
    }
    (ok, failed)
}

/// Sends requests for the tour's Val every 100 ms (each on its own task, so a
/// request stuck on the sick host does not hold up the next) until one is
/// served by a host that `wanted` accepts.
async fn wait_for_host(
    listen: SocketAddr,
    since: Instant,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let deadline = since + STEP_DEADLINE;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(host) = route(listen, TOUR_VAL).await {
                        let _ = tx.send(host).await;
                    }
                });
            }
            Some(host) = rx.recv() => if wanted(&host) { return Ok(host) },
            _ = tokio::time::sleep_until(deadline) => {
                anyhow::bail!("no request was served as expected within {STEP_DEADLINE:?}")
            }
        }
    }
}

/// One request for `val`; the host that served it.
async fn route(listen: SocketAddr, val: &str) -> anyhow::Result<String> {
    let request = http::Request::get(format!("/v/{val}/run"))
        .header(http::header::HOST, listen.to_string())
        .header("x-val", val)
        .body(Full::<Bytes>::default())?;
    let Fetched {
        status, headers, ..
    } = fetch::fetch(listen, request, STEP_DEADLINE).await?;
    anyhow::ensure!(status.is_success(), "the router answered {status}");
    headers
        .get(UPSTREAM_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the response has no {UPSTREAM_HEADER} header"))
}
