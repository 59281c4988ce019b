//! The pooled upstream client (one hyper-util legacy `Client`, keep-alive, connect timeout),
//! and the classification of its errors into gateway failures.

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
