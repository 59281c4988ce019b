//! The request path: extract the key, route through the published snapshot, take in-flight
//! permits (or answer 503 at once), forward with timeouts, retry only when safe, rescue
//! requests stuck on a host that gets ejected, record the outcome, stream the response back.
//!
//! The cascade guard's verdict on the key is read once, up front: a quarantined Val is
//! answered 503 at once; a suspect is kept to the host its walk gives (no retry, no rescue,
//! no spill over balance), so it cannot carry its poison from host to host.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::request::Parts;
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use ringward_embed::{HostLoads, Permit};
use router_core::{Admission, HostId, InFlight, KeyHash, SkipReason};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Config;
use crate::control::fleet::{FleetHost, HostKey, Published};
use crate::control::inflight::GlobalPermit;
use crate::control::messages::HealthEvent;
use crate::control::shared::Shared;
use crate::control::vals::Verdict;
use crate::error::ProxyError;
use crate::proxy::body::{self, BoxError, ProxyBody, TimedBody};
use crate::proxy::client::classify;
use crate::proxy::headers::{Forwarding, ForwardingCache, strip_hop_by_hop, upstream_headers};
use crate::proxy::key::extract_key_from;
use crate::proxy::retry::is_idempotent;

/// Most hosts one request may try (connect failures, a reset retry, rescues).
const MAX_ATTEMPTS: usize = 8;

/// A body of declared size up to this is read before the first attempt, so that a failed
/// connect (nothing sent) can still carry it to the next preference, and an idempotent
/// request with it can be retried or rescued (Envoy keeps a retry buffer the same way).
/// Larger and unsized bodies stream, and go to one host only.
const RETRY_BUFFER: u64 = 64 * 1024;

/// Handles one client request from the connection `conn` (its client address and forwarding
/// values). Never fails: errors become contract-3 responses.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    conn: Arc<ForwardingCache>,
) -> Response<ProxyBody> {
    let started = Instant::now();
    if let Err(e) = crate::proxy::framing::check(&req) {
        let resp = crate::proxy::framing::reject(&e, req.version());
        return unrouted(&shared, resp, started);
    }
    let config = shared.config.load_full();
    let limit = config.limits.max_request_body;
    // Read before the request is split (the key then borrows from its parts).
    let too_large = crate::proxy::body_limit::declared_over(&req, limit);
    // Split first: the key borrows from the request's head for the whole exchange.
    let (parts, body) = req.into_parts();
    let Some(key) = extract_key_from(&config.route.key, &parts.uri, &parts.headers) else {
        return no_key(&shared, &config, started);
    };
    let mut ctx = Ctx {
        shared: &shared,
        config: &config,
        key: &key,
        started,
    };
    if shared.is_shutting_down() {
        return ctx.fail(ProxyError::ShuttingDown, None);
    }
    if too_large {
        return ctx.fail(ProxyError::BodyTooLarge { limit }, None);
    }
    let hash = KeyHash::of(key.as_bytes());
    let verdict = shared.vals.load().get(hash.0);
    if let Some(Verdict::Quarantined { .. }) = verdict {
        return ctx.fail(quarantined(&shared, &config, hash), None);
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
        return ctx.fail(ProxyError::AtCapacity, None);
    };

    // Usually formatted once per client connection; every attempt's map shares them.
    let forwarding = conn.get(&parts.headers, parts.uri.authority());

    let deadline = started + config.upstream.request_timeout;
    let idempotent = is_idempotent(&parts.method);
    let mut upload = match Upload::read(body, &config, deadline).await {
        Ok(upload) => upload,
        Err(error) => return ctx.fail(error, None),
    };
    let replayable = upload.replayable();
    // Requests that may be re-sent watch for their host's ejection; with the guard on, every
    // request does, so one of a Val quarantined meanwhile is answered at once, not at its
    // timeout.
    let rescuable = config.retry.rescue_on_eject && idempotent && replayable && !pinned;
    let mut generation = (rescuable || config.guard.enabled).then(|| shared.generation.subscribe());
    let mut excluded = Excluded::default();
    let mut reset_retried = false;
    // The last failure and its host (kept by generation and id: no name copied).
    let mut last_error: Option<(ProxyError, Arc<Published>, HostId)> = None;
    let bounded = if pinned {
        router_core::BoundedLoads::OFF
    } else {
        config.bounded_loads()
    };

    for _ in 0..MAX_ATTEMPTS {
        let published = shared.published.load_full();
        let Some(id) = choose(&published, hash, &excluded, &bounded) else {
            break;
        };
        let fleet = &published.fleet;
        let host = fleet.host(id);
        let Some(permit) = fleet
            .loads
            .try_acquire_for(id, shared.now(), Some((hash.0, &key)))
        else {
            // Raced to its cap between the walk and the permit: try the next preference.
            excluded.push(id);
            continue;
        };
        let Some(upstream_body) = upload.next() else {
            // The streamed body went to an earlier attempt.
            break;
        };
        let upstream = build_request(&parts, &host.authority, &forwarding, upstream_body);
        let attempt_started = Instant::now();
        let header_deadline =
            (attempt_started + config.upstream.response_header_timeout).min(deadline);
        // The client's future owns what it needs: the guard is dropped at once.
        let send = shared.client.load().request(upstream);
        let exchange = exchange(
            &shared,
            send,
            header_deadline,
            generation.as_mut().map(|rx| Watch {
                host: host.key,
                val: hash.0,
                rescuable,
                generation: rx,
            }),
        )
        .await;
        match exchange {
            Exchange::Response(resp) => {
                let latency = attempt_started.elapsed();
                let outcome = if resp.status().is_server_error() {
                    health::Outcome::ServerError { latency }
                } else {
                    health::Outcome::Success { latency }
                };
                shared.send_event(HealthEvent::Outcome {
                    host: host.key,
                    val: hash.0,
                    outcome,
                });
                return ctx.respond(resp, &published, id, (permit, global), deadline);
            }
            Exchange::Failed(err) => {
                if let Some(error) = crate::proxy::framing::client_fault(&err) {
                    // The client's body broke: not the host's failure, nothing to retry.
                    return ctx.fail(error, Some(host));
                }
                let (error, failure) = classify(&err);
                tracing::debug!(host = %host.name, key = %key, error = %err, "upstream failed");
                shared.send_event(HealthEvent::Outcome {
                    host: host.key,
                    val: hash.0,
                    outcome: health::Outcome::GatewayFailure(failure),
                });
                drop(permit);
                let retry = may_retry(&error, idempotent, replayable, &mut reset_retried);
                if retry && pinned {
                    // A suspect goes to no other host.
                    shared
                        .metrics
                        .guard
                        .withheld
                        .fetch_add(1, Ordering::Relaxed);
                    return ctx.fail(error, Some(host));
                }
                if retry && shared.budget.load().try_withdraw() {
                    shared
                        .metrics
                        .counters
                        .retries
                        .fetch_add(1, Ordering::Relaxed);
                    excluded.push(id);
                    last_error = Some((error, Arc::clone(&published), id));
                    continue;
                }
                if retry {
                    shared
                        .metrics
                        .counters
                        .retries_refused
                        .fetch_add(1, Ordering::Relaxed);
                }
                return ctx.fail(error, Some(host));
            }
            Exchange::TimedOut => {
                shared.send_event(HealthEvent::Outcome {
                    host: host.key,
                    val: hash.0,
                    outcome: health::Outcome::Timeout {
                        elapsed: attempt_started.elapsed(),
                    },
                });
                return ctx.fail(ProxyError::Timeout, Some(host));
            }
            Exchange::Quarantined => {
                // Its host was ejected and the guard blames this Val: answer now rather
                // than wait for the timeout, and never carry it to another host.
                drop(permit);
                return ctx.fail(quarantined(&shared, &config, hash), Some(host));
            }
            Exchange::Rescued => {
                shared
                    .metrics
                    .counters
                    .rescues
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(host = %host.name, key = %key, "host ejected while the request waited; re-sending");
                excluded.push(id);
                last_error = Some((ProxyError::Timeout, Arc::clone(&published), id));
                continue;
            }
        }
    }
    if let Some((error, published, id)) = last_error {
        return ctx.fail(error, Some(published.fleet.host(id)));
    }
    let error = no_host(&shared, hash, &excluded, &bounded);
    ctx.fail(error, None)
}

/// Counts and returns an answer given before any key was known.
fn unrouted(shared: &Shared, resp: Response<ProxyBody>, started: Instant) -> Response<ProxyBody> {
    shared
        .metrics
        .unrouted
        .record(resp.status(), started.elapsed());
    resp
}

/// 400: no key source gave a key (the body names the sources tried).
fn no_key(shared: &Shared, config: &Config, started: Instant) -> Response<ProxyBody> {
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

/// Whether a failed attempt may go to the next preference (the budget still has a say):
/// when nothing reached the host, any method may, as long as the body can be sent again;
/// after a reset, an idempotent request with a replayable body may, once.
fn may_retry(
    error: &ProxyError,
    idempotent: bool,
    replayable: bool,
    reset_retried: &mut bool,
) -> bool {
    if error.nothing_sent() {
        replayable
    } else if matches!(error, ProxyError::Reset) && idempotent && replayable && !*reset_retried {
        *reset_retried = true;
        true
    } else {
        false
    }
}

/// No host took the request: say whether it is capacity (try again soon) or eligibility.
fn no_host(
    shared: &Shared,
    hash: KeyHash,
    excluded: &Excluded,
    bounded: &router_core::BoundedLoads,
) -> ProxyError {
    let published = shared.published.load_full();
    let explain = published.snapshot.explain(
        hash,
        &Excluding {
            loads: &published.fleet.loads,
            excluded,
        },
        bounded,
    );
    let capacity = explain.walk.iter().any(|s| {
        matches!(
            s.skipped,
            Some(SkipReason::AtCapacity) | Some(SkipReason::OverBalance)
        )
    });
    let counters = &shared.metrics.counters;
    if capacity {
        counters.rejected_capacity.fetch_add(1, Ordering::Relaxed);
        ProxyError::AtCapacity
    } else {
        counters.rejected_no_host.fetch_add(1, Ordering::Relaxed);
        ProxyError::NoEligibleHost
    }
}

/// The request body, as the attempts send it: none, a small one read whole first (so it can
/// be sent again), or a stream that goes to one attempt only.
struct Upload {
    empty: bool,
    buffered: Option<Bytes>,
    streamed: Option<ProxyBody>,
}

impl Upload {
    /// Reads a body of declared size up to [`RETRY_BUFFER`] whole; wraps any other in the
    /// body limit, the idle timeout and the deadline, marked so that a broken or stalled
    /// upload is told apart from a failing host.
    async fn read(
        body: Incoming,
        config: &Config,
        deadline: Instant,
    ) -> Result<Upload, ProxyError> {
        let empty = body.is_end_stream();
        let small = !empty && body.size_hint().exact().is_some_and(|n| n <= RETRY_BUFFER);
        let mut streamed: Option<ProxyBody> = (!empty).then(|| {
            body::boxed(
                TimedBody::<_, ()>::new(
                    crate::proxy::body_limit::LimitedBody::new(
                        body,
                        config.limits.max_request_body,
                    ),
                    config.upstream.body_idle_timeout,
                    deadline,
                    None,
                )
                .map_err(|e| -> BoxError { Box::new(crate::proxy::framing::ClientBodyError(e)) }),
            )
        });
        let buffered = match streamed.take_if(|_| small) {
            Some(upload) => match upload.collect().await {
                Ok(whole) => Some(whole.to_bytes()),
                Err(e) => return Err(crate::proxy::framing::client_body_fault(&e)),
            },
            None => None,
        };
        Ok(Upload {
            empty,
            buffered,
            streamed,
        })
    }

    /// True when every attempt can send the body (empty, or read whole).
    fn replayable(&self) -> bool {
        self.empty || self.buffered.is_some()
    }

    /// The body for the next attempt; `None` once a streamed body went to an earlier one.
    fn next(&mut self) -> Option<ProxyBody> {
        match (self.streamed.take(), &self.buffered) {
            (Some(b), _) => Some(b),
            (None, Some(whole)) => Some(body::full(whole.clone())),
            (None, None) if self.empty => Some(body::empty()),
            (None, None) => None,
        }
    }
}

/// Per-request context for building responses.
struct Ctx<'a> {
    shared: &'a Shared,
    config: &'a Config,
    key: &'a str,
    started: Instant,
}

impl Ctx<'_> {
    /// The error answer; a host's own metrics handle and header value (built with the
    /// fleet) are used as they are, never looked up or rebuilt from its name.
    fn fail(&mut self, error: ProxyError, host: Option<&FleetHost>) -> Response<ProxyBody> {
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

    fn respond(
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
fn quarantined(shared: &Shared, config: &Config, hash: KeyHash) -> ProxyError {
    shared.metrics.guard.refused.fetch_add(1, Ordering::Relaxed);
    let otherwise = config.guard.quarantine;
    let retry_after = shared
        .vals
        .load()
        .get(hash.0)
        .map_or(otherwise, |v| v.retry_after(shared.now(), otherwise));
    ProxyError::Quarantined { retry_after }
}

/// How one attempt ended.
enum Exchange {
    Response(Response<Incoming>),
    Failed(hyper_util::client::legacy::Error),
    TimedOut,
    Rescued,
    /// The host was ejected and the request's Val quarantined.
    Quarantined,
}

/// What an attempt watches while it waits: its host's ejection, and the guard's verdict on
/// its Val.
struct Watch<'a> {
    host: HostKey,
    val: u64,
    /// May be re-sent to the next host if its host is ejected.
    rescuable: bool,
    generation: &'a mut watch::Receiver<u64>,
}

/// Waits for the response head, the deadline, or the host's ejection (a rescue, or a
/// quarantined Val's fast answer).
async fn exchange<F>(
    shared: &Shared,
    send: F,
    header_deadline: Instant,
    watch: Option<Watch<'_>>,
) -> Exchange
where
    F: Future<Output = Result<Response<Incoming>, hyper_util::client::legacy::Error>>,
{
    let mut send = pin!(send);
    let mut sleep = pin!(tokio::time::sleep_until(header_deadline));
    if let Some(mut w) = watch {
        loop {
            tokio::select! {
                biased;
                r = &mut send => return finish(r),
                () = &mut sleep => return Exchange::TimedOut,
                changed = w.generation.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    if !is_ejected(&shared.published.load(), w.host) {
                        continue;
                    }
                    match shared.vals.load().get(w.val) {
                        Some(Verdict::Quarantined { .. }) => return Exchange::Quarantined,
                        // A suspect stays where it is: not re-sent to the next host.
                        Some(Verdict::Suspect) if w.rescuable => {
                            w.rescuable = false;
                            shared.metrics.guard.withheld.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Verdict::Suspect) => {}
                        None if w.rescuable => {
                            if shared.budget.load().try_withdraw() {
                                return Exchange::Rescued;
                            }
                            shared.metrics.counters.retries_refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        None => {}
                    }
                }
            }
        }
    }
    tokio::select! {
        biased;
        r = &mut send => finish(r),
        () = &mut sleep => Exchange::TimedOut,
    }
}

fn finish(r: Result<Response<Incoming>, hyper_util::client::legacy::Error>) -> Exchange {
    match r {
        Ok(resp) => Exchange::Response(resp),
        Err(e) => Exchange::Failed(e),
    }
}

/// True when the snapshot has `key`'s host ejected.
fn is_ejected(published: &Published, key: HostKey) -> bool {
    published.fleet.id_of_key(key).is_some_and(|id| {
        matches!(
            published.snapshot.admission(id),
            Admission::Closed(SkipReason::Ejected)
        )
    })
}

/// The upstream request for one attempt: origin-form path, HTTP/1.1 to the host. The path
/// and the authority are shared, not copied; the header map is the one allocation.
fn build_request(
    parts: &Parts,
    authority: &http::uri::Authority,
    forwarding: &Forwarding,
    body: ProxyBody,
) -> Request<ProxyBody> {
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(Scheme::HTTP);
    uri.authority = Some(authority.clone());
    uri.path_and_query = Some(
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    let mut req = Request::new(body);
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = Uri::from_parts(uri).unwrap_or_else(|_| Uri::from_static("/"));
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = upstream_headers(&parts.headers, forwarding);
    req
}

/// Picks the key's host: the snapshot's walk (admission and probation ramps included, the
/// same decision `/admin/route` explains), minus hosts this request already tried.
fn choose(
    published: &Published,
    hash: KeyHash,
    excluded: &Excluded,
    bounded: &router_core::BoundedLoads,
) -> Option<HostId> {
    let loads = Excluding {
        loads: &published.fleet.loads,
        excluded,
    };
    published.snapshot.route(hash, &loads, bounded)
}

/// Hosts a request must not use again (a small fixed set: no allocation).
#[derive(Debug, Clone, Default)]
struct Excluded {
    ids: [Option<HostId>; MAX_ATTEMPTS * 2],
}

impl Excluded {
    fn push(&mut self, id: HostId) -> bool {
        if self.contains(id) {
            return true;
        }
        match self.ids.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(id);
                true
            }
            None => false,
        }
    }

    fn contains(&self, id: HostId) -> bool {
        self.ids.contains(&Some(id))
    }
}

/// The real loads, with excluded hosts looking full (so the walk skips them).
struct Excluding<'a> {
    loads: &'a HostLoads,
    excluded: &'a Excluded,
}

impl InFlight for Excluding<'_> {
    fn in_flight(&self, host: HostId) -> u32 {
        self.loads.in_flight(host)
    }

    fn total(&self) -> u64 {
        self.loads.total()
    }

    fn hard_limit(&self, host: HostId) -> Option<u32> {
        if self.excluded.contains(host) {
            Some(0)
        } else {
            self.loads.hard_limit(host)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use router_core::{BoundedLoads, Snapshot};

    use super::*;
    use crate::config::HostConfig;
    use crate::control::fleet::{Fleet, HostKeys};
    use crate::metrics::Metrics;

    fn fleet(n: usize) -> Arc<Fleet> {
        let hosts: Vec<HostConfig> = (0..n)
            .map(|i| HostConfig {
                name: format!("h{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
                weight: 1,
            })
            .collect();
        Arc::new(
            Fleet::build(
                &hosts,
                4,
                &HostKeys::default(),
                &Metrics::default(),
                Instant::now(),
            )
            .expect("fleet"),
        )
    }

    fn published(fleet: &Arc<Fleet>, admission: Vec<Admission>) -> Published {
        Published {
            snapshot: Snapshot::new(Arc::clone(&fleet.ring), admission, 1),
            fleet: Arc::clone(fleet),
        }
    }

    /// Keys whose walk starts at host 0, with their hashes.
    fn keys_of_h0(fleet: &Fleet) -> Vec<KeyHash> {
        (0..400)
            .map(|i| KeyHash::of(format!("k{i}").as_bytes()))
            .filter(|h| fleet.ring.primary(*h) == HostId(0))
            .collect()
    }

    #[test]
    fn exclusions_move_to_the_next_preference() {
        let f = fleet(3);
        let p = published(&f, vec![Admission::Open; 3]);
        let b = BoundedLoads::default();
        for h in keys_of_h0(&f) {
            assert_eq!(choose(&p, h, &Excluded::default(), &b), Some(HostId(0)));
            let mut ex = Excluded::default();
            ex.push(HostId(0));
            let second = f.ring.candidates(h).nth(1).expect("a second host");
            assert_eq!(choose(&p, h, &ex, &b), Some(second));
            ex.push(HostId(1));
            ex.push(HostId(2));
            assert_eq!(choose(&p, h, &ex, &b), None, "every host excluded");
        }
    }

    #[test]
    fn probation_admits_only_its_share_of_its_own_keys() {
        let f = fleet(3);
        let b = BoundedLoads::default();
        let keys = keys_of_h0(&f);
        assert!(keys.len() > 50);
        let on_ramp = |per_mille: u16| {
            published(
                &f,
                vec![Admission::Ramp(per_mille), Admission::Open, Admission::Open],
            )
        };
        let count = |per_mille: u16| {
            let p = on_ramp(per_mille);
            keys.iter()
                .filter(|h| choose(&p, **h, &Excluded::default(), &b) == Some(HostId(0)))
                .count()
        };
        assert_eq!(count(0), 0);
        assert_eq!(count(1000), keys.len());
        let half = count(500);
        assert!(
            half > keys.len() / 4 && half < keys.len() * 3 / 4,
            "{half} of {}",
            keys.len()
        );
        // A growing share only adds keys: the ones admitted at 0.25 stay admitted at 0.5.
        let (p25, p50) = (on_ramp(250), on_ramp(500));
        for h in &keys {
            if choose(&p25, *h, &Excluded::default(), &b) == Some(HostId(0)) {
                assert_eq!(choose(&p50, *h, &Excluded::default(), &b), Some(HostId(0)));
            }
        }
    }

    #[test]
    fn the_request_upstream_is_origin_form_http11_with_headers() {
        let req = Request::builder()
            .method("PUT")
            .uri("http://front.example/v/alice/run?x=1")
            .version(Version::HTTP_2)
            .header("x-val", "alice")
            .body(())
            .expect("request");
        let (parts, ()) = req.into_parts();
        let authority: http::uri::Authority = "127.0.0.1:9001".parse().expect("authority");
        let up = build_request(&parts, &authority, &Forwarding::default(), body::empty());
        assert_eq!(up.uri(), "http://127.0.0.1:9001/v/alice/run?x=1");
        assert_eq!(up.method(), "PUT");
        assert_eq!(up.version(), Version::HTTP_11);
        assert_eq!(up.headers()["x-val"], "alice");
    }
}
