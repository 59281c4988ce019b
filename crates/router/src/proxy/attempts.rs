//! The attempts of one request: route through the published snapshot, take the host's
//! permit, exchange, and on failure decide whether the next preference may have it (retry
//! rules, the retry budget, the cascade guard's suspects), until an answer or
//! [`MAX_ATTEMPTS`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use ringward_embed::HostLoads;
use router_core::{HostId, InFlight, KeyHash, SkipReason};
use tokio::time::Instant;

use crate::control::fleet::Published;
use crate::control::inflight::GlobalPermit;
use crate::control::messages::HealthEvent;
use crate::control::shared::Shared;
use crate::error::ProxyError;
use crate::proxy::answer::{Answer, quarantined};
use crate::proxy::body::ProxyBody;
use crate::proxy::client::classify;
use crate::proxy::exchange::{Exchange, Watch, build_request, exchange};
use crate::proxy::headers::Forwarding;
use crate::proxy::upgrade::{self, TunnelSlot};
use crate::proxy::upload::Upload;

/// Most hosts one request may try (connect failures, a reset retry, rescues).
const MAX_ATTEMPTS: usize = 8;

/// What the attempts know of the request, fixed before the first one.
pub(super) struct Routed<'a> {
    pub(super) parts: &'a Parts,
    pub(super) hash: KeyHash,
    pub(super) forwarding: &'a Forwarding,
    pub(super) deadline: Instant,
    pub(super) idempotent: bool,
    /// A suspect Val: kept on the host its walk gives (no retry, rescue or spill).
    pub(super) pinned: bool,
    /// The proxy worker serving it: its upstream client is the one used.
    pub(super) worker: usize,
}

/// An upgrade request's side of its tunnel-to-be: the protocol asked for, the client's
/// connection once upgraded, and its place under `limits.max_tunnels`.
pub(super) struct Upgrade {
    pub(super) protocol: HeaderValue,
    pub(super) client: OnUpgrade,
    pub(super) slot: TunnelSlot,
}

/// How a failed attempt goes on.
enum Next {
    /// To the next preference (the error answers if none takes it).
    Retry(ProxyError),
    /// Answered with this error.
    Fail(ProxyError),
}

/// Sends the request to its host, and to the next preferences while that is safe.
pub(super) async fn forward(
    answer: &mut Answer<'_>,
    req: &Routed<'_>,
    mut upload: Upload,
    global: GlobalPermit,
    upgrade: Option<Upgrade>,
) -> Response<ProxyBody> {
    let shared = answer.shared;
    let config = answer.config;
    let hash = req.hash;
    let replayable = upload.replayable();
    // Requests that may be re-sent watch for their host's ejection; with the guard on, every
    // request does, so one of a Val quarantined meanwhile is answered at once, not at its
    // timeout.
    let rescuable = config.retry.rescue_on_eject && req.idempotent && replayable && !req.pinned;
    let mut generation = (rescuable || config.guard.enabled).then(|| shared.generation.subscribe());
    let mut excluded = Excluded::default();
    let mut reset_retried = false;
    // The last failure and its host (kept by generation and id: no name copied).
    let mut last_error: Option<(ProxyError, Arc<Published>, HostId)> = None;
    let bounded = if req.pinned {
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
        let Some(permit) =
            fleet
                .loads
                .try_acquire_for(id, shared.now(), Some((hash.0, answer.key)))
        else {
            // Raced to its cap between the walk and the permit: try the next preference.
            excluded.push(id);
            continue;
        };
        let Some(upstream_body) = upload.next() else {
            // The streamed body went to an earlier attempt.
            break;
        };
        let mut upstream = build_request(
            req.parts,
            &host.authority,
            req.forwarding,
            &answer.trail.request_id,
            upstream_body,
        );
        if let Some(u) = &upgrade {
            upgrade::restore(upstream.headers_mut(), u.protocol.clone());
        }
        answer.trail.attempts = answer.trail.attempts.saturating_add(1);
        let attempt_started = Instant::now();
        let header_deadline =
            (attempt_started + config.upstream.response_header_timeout).min(req.deadline);
        // The client's future owns what it needs: the guard is dropped at once.
        let send = shared.clients.load().of(req.worker).request(upstream);
        let watch = generation.as_mut().map(|rx| Watch {
            host: host.key,
            val: hash.0,
            rescuable,
            generation: rx,
        });
        let outcome = |outcome| HealthEvent::Outcome {
            host: host.key,
            val: hash.0,
            outcome,
        };
        match exchange(shared, send, header_deadline, watch).await {
            Exchange::Response(mut resp) => {
                let latency = attempt_started.elapsed();
                shared.send_event(outcome(if resp.status().is_server_error() {
                    health::Outcome::ServerError { latency }
                } else {
                    health::Outcome::Success { latency }
                }));
                // The host switched protocols: splice the two connections; the request's
                // permits end with this 101, the tunnel is counted on its own.
                let tunnel = match upgrade {
                    Some(u) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                        let protocol = resp.headers().get(header::UPGRADE).cloned();
                        let host_side = hyper::upgrade::on(&mut resp);
                        let idle = config.upstream.tunnel_idle_timeout;
                        shared.tunnels.splice(u.slot, u.client, host_side, idle);
                        Some(protocol.unwrap_or(u.protocol))
                    }
                    _ => None,
                };
                let mut resp = answer.respond(resp, &published, id, (permit, global), req.deadline);
                if let Some(protocol) = tunnel {
                    upgrade::restore(resp.headers_mut(), protocol);
                }
                return resp;
            }
            Exchange::Failed(err) => {
                if let Some(error) = crate::proxy::framing::client_fault(&err) {
                    // The client's body broke: not the host's failure, nothing to retry.
                    return answer.fail(error, Some(host));
                }
                let (error, failure) = classify(&err);
                tracing::debug!(host = %host.name, key = %answer.key, request_id = ?answer.trail.request_id, error = %err, "upstream failed");
                shared.send_event(outcome(health::Outcome::GatewayFailure(failure)));
                drop(permit);
                let may = may_retry(&error, req.idempotent, replayable, &mut reset_retried);
                match after_failure(shared, error, may, req.pinned) {
                    Next::Retry(error) => {
                        answer.trail.retries = answer.trail.retries.saturating_add(1);
                        excluded.push(id);
                        last_error = Some((error, Arc::clone(&published), id));
                    }
                    Next::Fail(error) => return answer.fail(error, Some(host)),
                }
            }
            Exchange::TimedOut => {
                let elapsed = attempt_started.elapsed();
                shared.send_event(outcome(health::Outcome::Timeout { elapsed }));
                return answer.fail(ProxyError::Timeout, Some(host));
            }
            Exchange::Quarantined => {
                // Its host was ejected and the guard blames this Val: answer now rather
                // than wait for the timeout, and never carry it to another host.
                drop(permit);
                return answer.fail(quarantined(shared, config, hash), Some(host));
            }
            Exchange::Rescued => {
                shared
                    .metrics
                    .counters
                    .rescues
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(host = %host.name, key = %answer.key, request_id = ?answer.trail.request_id, "host ejected while the request waited; re-sending");
                answer.trail.rescues = answer.trail.rescues.saturating_add(1);
                excluded.push(id);
                last_error = Some((ProxyError::Timeout, Arc::clone(&published), id));
            }
        }
    }
    if let Some((error, published, id)) = last_error {
        return answer.fail(error, Some(published.fleet.host(id)));
    }
    let error = no_host(shared, hash, &excluded, &bounded);
    answer.fail(error, None)
}

/// A failed attempt that `may` go on by the retry rules: whether it does (a suspect goes to
/// no other host; the retry budget must allow it), counted.
fn after_failure(shared: &Shared, error: ProxyError, may: bool, pinned: bool) -> Next {
    let (counter, next) = match (may, pinned) {
        (false, _) => return Next::Fail(error),
        (true, true) => (&shared.metrics.guard.withheld, Next::Fail(error)),
        (true, false) if shared.budget.load().try_withdraw() => {
            (&shared.metrics.counters.retries, Next::Retry(error))
        }
        (true, false) => (&shared.metrics.counters.retries_refused, Next::Fail(error)),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    next
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

    use router_core::{Admission, BoundedLoads, Snapshot};

    use super::*;
    use crate::config::HostConfig;
    use crate::control::fleet::{Fleet, HostKeys};
    use crate::metrics::Metrics;

    fn fleet(n: usize) -> Arc<Fleet> {
        let hosts: Vec<HostConfig> = (0..n)
            .map(|i| HostConfig {
                name: format!("h{i}"),
                addr: SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)).into(),
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
                |h| crate::control::fleet::Location::pending(&h.addr),
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
}
