//! The pooled upstream clients (hyper-util legacy `Client`s, keep-alive, connect timeout), one
//! per proxy worker so a request and its upstream connection stay on one thread, and the
//! classification of their errors into gateway failures.

use std::error::Error as StdError;

use health::GatewayFailure;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::UpstreamConfig;
use crate::error::ProxyError;
use crate::proxy::body::ProxyBody;

/// The client type used for proxying and probing.
pub(crate) type UpstreamClient = Client<HttpConnector, ProxyBody>;

/// Builds the pooled client for `config`.
pub(crate) fn build(config: &UpstreamConfig) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(config.pool_idle_timeout)
        .pool_max_idle_per_host(config.pool_max_idle_per_host as usize)
        .build(connector)
}

/// One pooled client per proxy worker (`conn::workers`): each pools the upstream connections
/// its worker opened, whose tasks run on that worker's runtime.
pub(crate) struct UpstreamClients(Box<[UpstreamClient]>);

impl UpstreamClients {
    /// `workers` clients (at least one) for `config`.
    pub(crate) fn build(config: &UpstreamConfig, workers: usize) -> UpstreamClients {
        UpstreamClients((0..workers.max(1)).map(|_| build(config)).collect())
    }

    /// The client of worker `worker`.
    pub(crate) fn of(&self, worker: usize) -> &UpstreamClient {
        &self.0[worker % self.0.len()]
    }

    /// How many workers there are clients for.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Maps a client error to the status-bearing error and the health signal it is.
pub(crate) fn classify(err: &hyper_util::client::legacy::Error) -> (ProxyError, GatewayFailure) {
    if err.is_connect() {
        if chain_has_io_kind(err, std::io::ErrorKind::TimedOut) {
            return (ProxyError::ConnectTimeout, GatewayFailure::ConnectTimeout);
        }
        return (ProxyError::Connect, GatewayFailure::ConnectRefused);
    }
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() || h.is_parse_too_large() {
                return (ProxyError::Protocol, GatewayFailure::Protocol);
            }
        }
        source = e.source();
    }
    (ProxyError::Reset, GatewayFailure::Reset)
}

fn chain_has_io_kind(err: &(dyn StdError + 'static), kind: std::io::ErrorKind) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        source = e.source();
    }
    false
}
