//! The active prober: every interval, every host is probed directly at its own address
//! (never through the ring), each probe in its own task with its own timeout, so a hanging
//! host never delays another host's probe (or its own next round).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use health::{HealthReport, ProbeResult, ReportStatus};
use http::{Request, Uri};
use http_body_util::{BodyExt, Limited};
use tokio::sync::watch;

use crate::config::UpstreamConfig;
use crate::control::fleet::HostKey;
use crate::control::messages::HealthEvent;
use crate::control::shared::Shared;
use crate::proxy::body;
use crate::proxy::client::UpstreamClient;

/// Largest health body read.
const MAX_BODY: usize = 64 * 1024;

/// Runs probe rounds until `shutdown` flips.
pub(crate) async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let client = probe_client(&shared.config.load().upstream);
    let mut next = tokio::time::Instant::now();
    loop {
        let config = shared.config.load_full();
        let active = &config.health.active;
        let fleet = shared.fleet();
        for host in &fleet.hosts {
            // A host whose name never resolved has nowhere to be probed (and takes no
            // requests).
            let Some(addr) = host.location.addr else {
                continue;
            };
            let task = probe_one(client.clone(), addr, active.path.clone(), active.timeout);
            let shared = Arc::clone(&shared);
            let key: HostKey = host.key;
            tokio::spawn(async move {
                let result = task.await;
                // Probe results are rare and must not be lost: wait for room (bounded by the queue).
                let _ = shared
                    .events
                    .send(HealthEvent::Probe { host: key, result })
                    .await;
            });
        }
        next += active.interval;
        let now = tokio::time::Instant::now();
        if next < now {
            // Fell behind (a paused process, a busy machine): start the next round now, not a burst.
            next = now;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A client for probes: separate from the proxy pool, so probes never wait behind requests.
fn probe_client(upstream: &UpstreamConfig) -> UpstreamClient {
    let mut config = upstream.clone();
    config.pool_max_idle_per_host = 1;
    crate::proxy::client::build(&config)
}

/// One probe: `GET path` at `addr`, bounded by `timeout`.
pub(crate) async fn probe_one(
    client: UpstreamClient,
    addr: SocketAddr,
    path: String,
    timeout: Duration,
) -> ProbeResult {
    let uri = match Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query(path)
        .build()
    {
        Ok(u) => u,
        Err(_) => return ProbeResult::Refused,
    };
    let mut req = Request::new(body::empty());
    *req.uri_mut() = uri;
    let exchange = async {
        let resp = client.request(req).await?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Ok::<_, hyper_util::client::legacy::Error>((status, bytes))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => ProbeResult::Timeout,
        Ok(Err(e)) if e.is_connect() => ProbeResult::Refused,
        Ok(Err(_)) => ProbeResult::Fail(HealthReport::default()),
        Ok(Ok((status, bytes))) => {
            let report = health::parse_health_body(&bytes).unwrap_or_default();
            if !status.is_success() {
                ProbeResult::Fail(report)
            } else {
                match report.status {
                    Some(ReportStatus::Fail) => ProbeResult::Fail(report),
                    Some(ReportStatus::Warn) => ProbeResult::Warn(report),
                    _ => ProbeResult::Pass(report),
                }
            }
        }
    }
}
