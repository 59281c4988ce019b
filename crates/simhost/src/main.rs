//! The `simhost` binary: one simulated Val host on a loopback address.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use ringward_simhost::{EtcdRegistration, FaultPatch, ServiceTime, SimConfig, SimHost};

/// A simulated Val host: real HTTP, a modelled DB pool, fault injection at `/_sim/*`.
#[derive(Debug, Parser)]
#[command(name = "simhost", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// Host name (in `x-simhost` and the bodies).
    #[arg(long, default_value = "simhost")]
    name: String,
    /// DB pool size.
    #[arg(long, default_value_t = 10)]
    pool: u32,
    /// Service time: `5ms`, `uniform:2ms..8ms` or `exp:5ms`.
    #[arg(long, default_value = "5ms")]
    service_time: ServiceTime,
    /// Answer 503 after waiting this long for a connection (default: wait forever).
    #[arg(long, value_parser = humantime::parse_duration)]
    acquire_timeout: Option<Duration>,
    /// Checkouts older than this are stuck slots in `/healthz`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    stuck_after: Duration,
    /// Drop a request's place in the pool queue when its client hangs up.
    #[arg(long)]
    cancel_on_disconnect: bool,
    /// Seed for the random draws (service time, error rate).
    #[arg(long)]
    seed: Option<u64>,
    /// Start with this fault set (JSON, as for `POST /_sim/fault`).
    #[arg(long)]
    fault: Option<String>,
    /// Register in etcd for Ringward's fleet mode (an etcd client endpoint, `host:port`;
    /// repeat for more): `{prefix}hosts/{name}` on a lease kept alive while running.
    #[arg(long = "etcd", value_name = "ENDPOINT")]
    etcd: Vec<String>,
    /// The fleet's key prefix in etcd (Ringward's `discovery.etcd.prefix`).
    #[arg(long, default_value = "/ringward/")]
    etcd_prefix: String,
    /// The registration's lease TTL: how long after this host dies its key goes.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    etcd_ttl: Duration,
    /// The ring weight to register with.
    #[arg(long, default_value_t = 1)]
    weight: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let patch: Option<FaultPatch> = args
        .fault
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("--fault")?;
    let config = SimConfig {
        name: args.name,
        pool_size: args.pool,
        service_time: args.service_time,
        acquire_timeout: args.acquire_timeout,
        stuck_after: args.stuck_after,
        cancel_on_disconnect: args.cancel_on_disconnect,
        seed: args.seed,
    };
    let stop = StopSignal::install()?;
    let host = SimHost::start(args.listen, config)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    if let Some(patch) = patch {
        host.faults().apply(&patch).context("--fault")?;
    }
    println!(
        "simhost {} listening on http://{}",
        host.name(),
        host.addr()
    );
    let registered = if args.etcd.is_empty() {
        None
    } else {
        let registration = EtcdRegistration {
            endpoints: args.etcd,
            prefix: args.etcd_prefix,
            ttl: args.etcd_ttl,
            weight: args.weight,
        };
        Some(
            registration
                .start(host.name(), host.addr())
                .await
                .context("registering in etcd")?,
        )
    };
    stop.wait().await?;
    // Out of the fleet first, so routers stop sending before the host goes.
    if let Some(registered) = registered {
        registered.stop().await;
    }
    host.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix. Installed before the host announces itself, so a
/// supervisor that signals right after the "listening" line is not lost.
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> anyhow::Result<StopSignal> {
        Ok(StopSignal {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?,
        })
    }

    async fn wait(mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        let stopped = tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for ctrl-c"),
            _ = self.term.recv() => Ok(()),
        };
        #[cfg(not(unix))]
        let stopped = tokio::signal::ctrl_c().await.context("waiting for ctrl-c");
        stopped
    }
}
