//! The router's answers to one request: the host's response on its way back (hop-by-hop
//! headers out, the upstream header in, the in-band pool report taken, the permits held until
//! the body ends), or an error of its own (docs/contracts.md, status codes), each recorded in
//! the host's or the unrouted figures.

use std::sync::atomic::Ordering;

use http::{HeaderValue, Response};
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
use crate::proxy::access_log::{Arrival, Entry};
use crate::proxy::body::{self, BodyGuard, ProxyBody, TimedBody};
use crate::proxy::headers::strip_hop_by_hop;
use crate::proxy::request_id::X_REQUEST_ID;

/// What is kept of a request whatever its answer: its ID (returned to the client, sent to
/// the host, logged) and, with the access log on, its arrival and its attempts.
#[derive(Debug)]
pub(super) struct Trail {
    pub(super) request_id: HeaderValue,
    pub(super) arrival: Option<Arrival>,
    pub(super) attempts: u8,
    pub(super) retries: u8,
    pub(super) rescues: u8,
}

impl Trail {
    /// A request known by `request_id`, logged from `arrival` if the access log is on.
    pub(super) fn new(request_id: HeaderValue, arrival: Option<Arrival>) -> Trail {
        Trail {
            request_id,
            arrival,
            attempts: 0,
            retries: 0,
            rescues: 0,
        }
    }

    /// The access log entry of this answer (once: the arrival moves into it), if logged.
    fn entry(
        &mut self,
        key: Option<&str>,
        host: Option<&HeaderValue>,
        status: u16,
    ) -> Option<Entry> {
        Some(Entry {
            arrival: self.arrival.take()?,
            key: key.map(Into::into),
            host: host.cloned(),
            status,
            attempts: self.attempts,
            retries: self.retries,
            rescues: self.rescues,
            request_id: self.request_id.clone(),
            bytes_out: 0,
            complete: false,
        })
    }

    /// Stamps a response the router made itself and logs it (its body is all there).
    fn close<B: http_body::Body>(
        &mut self,
        resp: &mut Response<B>,
        key: Option<&str>,
        host: Option<&HeaderValue>,
    ) {
        resp.headers_mut()
            .insert(X_REQUEST_ID.clone(), self.request_id.clone());
        if let Some(mut entry) = self.entry(key, host, resp.status().as_u16()) {
            entry.bytes_out = resp.body().size_hint().exact().unwrap_or(0);
            entry.complete = true;
            entry.write();
        }
    }
}

/// What every answer to one request needs: the request's key, start and trail, the config
/// it is served under, and where its figures are recorded.
pub(super) struct Answer<'a> {
    pub(super) shared: &'a Shared,
    pub(super) config: &'a Config,
    pub(super) key: &'a str,
    pub(super) started: Instant,
    pub(super) trail: Trail,
}

/// What a proxied response's body holds until it ends: the request's in-flight permits and
/// its access log entry, which is written with the bytes sent when the body ends or is
/// dropped (the client went away: `complete` stays false).
struct ResponseGuard {
    _permits: (Permit, GlobalPermit),
    entry: Option<Entry>,
}

impl BodyGuard for ResponseGuard {
    fn on_data(&mut self, bytes: usize) {
        if let Some(e) = self.entry.as_mut() {
            e.bytes_out += bytes as u64;
        }
    }

    fn on_end(&mut self, complete: bool) {
        if let Some(e) = self.entry.as_mut() {
            e.complete = complete;
        }
    }
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.write();
        }
    }
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
        self.trail
            .close(&mut resp, Some(self.key), host.map(|h| &h.header_value));
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
        parts
            .headers
            .insert(X_REQUEST_ID.clone(), self.trail.request_id.clone());
        host.metrics.record(parts.status, self.started.elapsed());
        let entry = self.trail.entry(
            Some(self.key),
            Some(&host.header_value),
            parts.status.as_u16(),
        );
        let guard = ResponseGuard {
            _permits: permits,
            entry,
        };
        let body = TimedBody::new(
            body,
            self.config.upstream.body_idle_timeout,
            deadline,
            Some(guard),
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

/// Counts, stamps, logs and returns an answer given before any key was known.
pub(super) fn unrouted(
    shared: &Shared,
    mut resp: Response<ProxyBody>,
    started: Instant,
    trail: &mut Trail,
) -> Response<ProxyBody> {
    shared
        .metrics
        .unrouted
        .record(resp.status(), started.elapsed());
    trail.close(&mut resp, None, None);
    resp
}

/// 400: no key source gave a key (the body names the sources tried).
pub(super) fn no_key(
    shared: &Shared,
    config: &Config,
    started: Instant,
    trail: &mut Trail,
) -> Response<ProxyBody> {
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
    unrouted(shared, resp, started, trail)
}
