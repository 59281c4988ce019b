//! The request path's entry: framing checks, the Val's key, the body limit, the cascade
//! guard's verdict on the key (read once, up front: a quarantined Val is answered 503 at once,
//! a suspect is kept to the host its walk gives), the router-wide cap and the upload; then
//! [`forward`] makes the attempts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use http::{Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use router_core::KeyHash;
use tokio::time::Instant;

use crate::config::Config;
use crate::control::shared::Shared;
use crate::control::vals::Verdict;
use crate::error::ProxyError;
use crate::proxy::access_log::Arrival;
use crate::proxy::answer::{Answer, Trail, no_key, quarantined, unrouted};
use crate::proxy::attempts::{Routed, Upgrade, forward};
use crate::proxy::body::ProxyBody;
use crate::proxy::headers::ForwardingCache;
use crate::proxy::key::extract_key_from;
use crate::proxy::request_id;
use crate::proxy::retry::is_idempotent;
use crate::proxy::upgrade;
use crate::proxy::upload::Upload;

/// Handles one client request from the connection `conn` (its client address and forwarding
/// values), served by proxy worker `worker`. Never fails: errors become the router's own
/// answers (docs/contracts.md).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    conn: Arc<ForwardingCache>,
    worker: usize,
) -> Response<ProxyBody> {
    let started = Instant::now();
    let config = shared.config.load_full();
    let mut trail = Trail::new(
        request_id::of(req.headers()),
        arrival(&shared, &config, &req, &conn, started),
    );
    if let Err(e) = crate::proxy::framing::check(&req) {
        let resp = crate::proxy::framing::reject(&e, req.version());
        return unrouted(&shared, resp, started, &mut trail);
    }
    let limit = config.limits.max_request_body;
    // Read before the request is split (the key then borrows from its parts).
    let too_large = crate::proxy::body_limit::declared_over(&req, limit);
    // Split first: the key borrows from the request's head for the whole exchange.
    let (mut parts, body) = req.into_parts();
    let Some(key) = extract_key_from(&config.route.key, &parts.uri, &parts.headers) else {
        return no_key(&shared, &config, started, &mut trail);
    };
    let mut answer = Answer {
        shared: &shared,
        config: &config,
        key: &key,
        started,
        trail,
    };
    if shared.is_shutting_down() {
        return answer.fail(ProxyError::ShuttingDown, None);
    }
    if too_large {
        return answer.fail(ProxyError::BodyTooLarge { limit }, None);
    }
    let hash = KeyHash::of(key.as_bytes());
    let verdict = shared.vals.load().get(hash.0);
    if let Some(Verdict::Quarantined { .. }) = verdict {
        return answer.fail(quarantined(&shared, &config, hash), None);
    }
    // A suspect stays on the host its walk gives: nothing carries it to another.
    let pinned = verdict == Some(Verdict::Suspect);
    shared.budget.load().deposit();
    let Some(global) = shared.global.try_acquire() else {
        shared
            .metrics
            .counters
            .rejected_capacity
            .fetch_add(1, Ordering::Relaxed);
        return answer.fail(ProxyError::AtCapacity, None);
    };

    // Usually formatted once per client connection; every attempt's map shares them.
    let forwarding = conn.get(&parts.headers, parts.uri.authority());

    let deadline = started + config.upstream.request_timeout;
    let upload = match Upload::read(body, &config, deadline).await {
        Ok(upload) => upload,
        Err(error) => return answer.fail(error, None),
    };
    // An upgrade (WebSocket) request: the client's side of the tunnel, and a tunnel slot.
    let upgrade = match upgrade::requested(&parts) {
        None => None,
        Some(protocol) => {
            let Some(slot) = shared.tunnels.try_reserve() else {
                return answer.fail(ProxyError::AtCapacity, None);
            };
            parts
                .extensions
                .remove::<OnUpgrade>()
                .map(|client| Upgrade {
                    protocol,
                    client,
                    slot,
                })
        }
    };
    let routed = Routed {
        parts: &parts,
        hash,
        forwarding: &forwarding,
        deadline,
        idempotent: is_idempotent(&parts.method),
        pinned,
        worker,
    };
    forward(&mut answer, &routed, upload, global, upgrade).await
}

/// What the access log needs of a request as it arrives, when the access log is on.
fn arrival(
    shared: &Shared,
    config: &Config,
    req: &Request<Incoming>,
    conn: &ForwardingCache,
    started: Instant,
) -> Option<Arrival> {
    if !config.access_log.enabled {
        return None;
    }
    Some(Arrival {
        wall: SystemTime::now(),
        started,
        client: conn.client(),
        method: req.method().clone(),
        uri: req.uri().clone(),
        bytes_in: req.body().size_hint().exact(),
        format: config.access_log.format,
        log: Arc::clone(shared.access_log.as_ref()?),
    })
}
