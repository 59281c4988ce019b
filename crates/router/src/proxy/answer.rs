//! The router's answers to one request: the host's response on its way back (hop-by-hop
//! headers out, the upstream header in, the in-band pool report taken, the permits held until
//! the body ends), or an error of its own (docs/contracts.md, status codes), each recorded in
//! the host's or the unrouted figures.

use std::sync::atomic::Ordering;

use http::Response;
use hyper::body::Incoming;
use ringward_embed::Permit;
use router_core::{HostId, KeyHash};
use tokio::time::Instant;

use crate::config::Config;
use crate::control::fleet::{FleetHost, Published};
use crate::control::inflight::GlobalPermit;
use crate::control::messages::HealthEvent;
use crate::control::shared::Shared;
use crate::error::ProxyError;
use crate::proxy::body::{self, ProxyBody, TimedBody};
use crate::proxy::headers::strip_hop_by_hop;

/// What every answer to one request needs: the request's key and start, the config it is
/// served under, and where its figures are recorded.
pub(super) struct Answer<'a> {
    pub(super) shared: &'a Shared,
    pub(super) config: &'a Config,
    pub(super) key: &'a str,
    pub(super) started: Instant,
}

impl Answer<'_> {
    /// The error answer; a host's own metrics handle and header value (built with the
    /// fleet) are used as they are, never looked up or rebuilt from its name.
    pub(super) fn fail(
        &mut self,
        error: ProxyError,
        host: Option<&FleetHost>,
    ) -> Response<ProxyBody> {
        let mut resp: Response<ProxyBody> = error
            .response(
                Some(self.key),
                host.map(|h| h.name.as_str()),
                self.config.limits.retry_after,
            )
            .map(body::full);
        let elapsed = self.started.elapsed();
        match host {
            Some(host) => {
                resp.headers_mut().insert(
                    self.config.route.upstream_header.clone(),
                    host.header_value.clone(),
                );
                host.metrics.record(resp.status(), elapsed);
            }
            None => self.shared.metrics.unrouted.record(resp.status(), elapsed),
        }
        resp
    }

    pub(super) fn respond(
        &mut self,
        resp: Response<Incoming>,
        published: &Published,
        id: HostId,
        mut permits: (Permit, GlobalPermit),
        deadline: Instant,
    ) -> Response<ProxyBody> {
        permits.0.answered();
        let host = published.fleet.host(id);
        let (mut parts, body) = resp.into_parts();
        if let Some(value) = parts.headers.remove(health::ORCA_HEADER) {
            if let Ok(Some(pool)) = health::parse_orca_header(value.as_bytes()) {
                self.shared.send_event(HealthEvent::Report {
                    host: host.key,
                    report: health::HealthReport {
                        status: None,
                        pool: Some(pool),
                    },
                });
            }
        }
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.insert(
            self.config.route.upstream_header.clone(),
            host.header_value.clone(),
        );
        host.metrics.record(parts.status, self.started.elapsed());
        let body = TimedBody::new(
            body,
            self.config.upstream.body_idle_timeout,
            deadline,
            Some(permits),
        );
        Response::from_parts(parts, body::boxed(body))
    }
}

/// The answer to a request of a quarantined Val (counted): Retry-After is the time left.
pub(super) fn quarantined(shared: &Shared, config: &Config, hash: KeyHash) -> ProxyError {
    shared.metrics.guard.refused.fetch_add(1, Ordering::Relaxed);
    let otherwise = config.guard.quarantine;
    let retry_after = shared
        .vals
        .load()
        .get(hash.0)
        .map_or(otherwise, |v| v.retry_after(shared.now(), otherwise));
    ProxyError::Quarantined { retry_after }
}

/// Counts and returns an answer given before any key was known.
pub(super) fn unrouted(
    shared: &Shared,
    resp: Response<ProxyBody>,
    started: Instant,
) -> Response<ProxyBody> {
    shared
        .metrics
        .unrouted
        .record(resp.status(), started.elapsed());
    resp
}

/// 400: no key source gave a key (the body names the sources tried).
pub(super) fn no_key(shared: &Shared, config: &Config, started: Instant) -> Response<ProxyBody> {
    shared
        .metrics
        .counters
        .rejected_no_key
        .fetch_add(1, Ordering::Relaxed);
    let tried = config
        .route
        .key
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let resp = ProxyError::NoKey { tried }
        .response(None, None, config.limits.retry_after)
        .map(body::full);
    unrouted(shared, resp, started)
}
