//! The open-loop load generator: requests leave on a fixed schedule, whatever
//! the answers do, so a stalled host cannot slow the generator and hide latency
//! (the "coordinated omission" trap of closed-loop load tools).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::zipf::Zipf;

/// The header simhosts put on every Val response; any proxy passes it through,
/// so it tells which host served a request whatever router sits in front.
pub(crate) const SERVED_BY_HEADER: &str = "x-simhost";

/// What to send.
#[derive(Debug, Clone)]
pub(crate) struct LoadPlan {
    /// Requests per second, fixed.
    pub(crate) rate: u32,
    /// How long requests are sent for.
    pub(crate) duration: Duration,
    /// Distinct Vals (`val-0000` ..).
    pub(crate) vals: u32,
    /// Zipf exponent of Val popularity.
    pub(crate) zipf: f64,
    /// Seed of the Val sequence, so two runs send the same requests.
    pub(crate) seed: u64,
    /// How long after the last send answers are still awaited; what is still
    /// unanswered then is counted as pending.
    pub(crate) drain: Duration,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A full response with this status.
    Status(u16),
    /// The connection failed or broke before a full response.
    Error,
    /// Still unanswered when the run ended.
    Pending,
}

/// One request's record.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// The Val's index.
    pub(crate) val: u32,
    /// When it was sent, from the start of the run.
    pub(crate) sent: Duration,
    /// Time to the full response (or to the error; for pending: to the end of the run).
    pub(crate) latency: Duration,
    /// How it ended.
    pub(crate) ending: Ending,
    /// The host that served it, when known.
    pub(crate) host: Option<String>,
}

/// The name of Val `i`.
pub(crate) fn val_name(i: u32) -> String {
    format!("val-{i:04}")
}

/// Sends `plan` to `target` from `start` on and returns one sample per request
/// sent, in send order.
pub(crate) async fn run_load(target: SocketAddr, plan: &LoadPlan, start: Instant) -> Vec<Sample> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let zipf = Zipf::new(plan.vals, plan.zipf);
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let total = (u64::from(plan.rate) * plan.duration.as_millis() as u64 / 1000) as usize;
    let interval = Duration::from_secs(1) / plan.rate.max(1);

    let (done_tx, mut done_rx) = mpsc::channel::<(usize, Sample)>(total.max(1));
    let mut tasks = JoinSet::new();
    let mut sent: Vec<(u32, Duration)> = Vec::with_capacity(total);
    for i in 0..total {
        let at = start + interval * i as u32;
        tokio::time::sleep_until(at).await;
        let val = zipf.sample(&mut rng);
        let offset = at - start;
        sent.push((val, offset));
        let client = client.clone();
        let done_tx = done_tx.clone();
        tasks.spawn(async move {
            let sample = one_request(&client, target, val, offset, at).await;
            // The receiver lives until every task is done or aborted.
            let _ = done_tx.send((i, sample)).await;
        });
    }
    drop(done_tx);

    let mut samples: Vec<Option<Sample>> = vec![None; total];
    let deadline = start + plan.duration + plan.drain;
    while let Ok(Some((i, sample))) = tokio::time::timeout_at(deadline, done_rx.recv()).await {
        samples[i] = Some(sample);
    }
    tasks.abort_all();
    let end = Instant::now() - start;
    samples
        .into_iter()
        .zip(sent)
        .map(|(sample, (val, offset))| {
            sample.unwrap_or(Sample {
                val,
                sent: offset,
                latency: end.saturating_sub(offset),
                ending: Ending::Pending,
                host: None,
            })
        })
        .collect()
}

async fn one_request(
    client: &Client<HttpConnector, Empty<Bytes>>,
    target: SocketAddr,
    val: u32,
    sent: Duration,
    at: Instant,
) -> Sample {
    let name = val_name(val);
    let request = http::Request::get(format!("http://{target}/v/{name}/run"))
        .header("x-val", &name)
        .body(Empty::new())
        .expect("a GET with a valid URI and header is a valid request");
    let (ending, host) = match client.request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let host = response
                .headers()
                .get(SERVED_BY_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match response.into_body().collect().await {
                Ok(_) => (Ending::Status(status), host),
                Err(_) => (Ending::Error, host),
            }
        }
        Err(_) => (Ending::Error, None),
    };
    Sample {
        val,
        sent,
        latency: at.elapsed(),
        ending,
        host,
    }
}
