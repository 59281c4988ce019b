//! One attempt's exchange with a host: the upstream request it sends, and the wait for the
//! response head against the header deadline while watching the host's ejection (a rescue,
//! or a quarantined Val's fast answer).

use std::pin::pin;

use http::request::Parts;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, Version};
use hyper::body::Incoming;
use router_core::{Admission, SkipReason};
use std::sync::atomic::Ordering;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::control::fleet::{HostKey, Published};
use crate::control::shared::Shared;
use crate::control::vals::Verdict;
use crate::proxy::body::ProxyBody;
use crate::proxy::headers::{Forwarding, upstream_headers};

/// How one attempt ended.
pub(super) enum Exchange {
    Response(Response<Incoming>),
    Failed(hyper_util::client::legacy::Error),
    TimedOut,
    Rescued,
    /// The host was ejected and the request's Val quarantined.
    Quarantined,
}

/// What an attempt watches while it waits: its host's ejection, and the guard's verdict on
/// its Val.
pub(super) struct Watch<'a> {
    pub(super) host: HostKey,
    pub(super) val: u64,
    /// May be re-sent to the next host if its host is ejected.
    pub(super) rescuable: bool,
    pub(super) generation: &'a mut watch::Receiver<u64>,
}

/// Waits for the response head, the deadline, or the host's ejection (a rescue, or a
/// quarantined Val's fast answer).
pub(super) async fn exchange<F>(
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
pub(super) fn build_request(
    parts: &Parts,
    authority: &http::uri::Authority,
    forwarding: &Forwarding,
    request_id: &HeaderValue,
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
    *req.headers_mut() = upstream_headers(&parts.headers, forwarding, request_id);
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::body;

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
        let id = HeaderValue::from_static("req-1");
        let up = build_request(
            &parts,
            &authority,
            &Forwarding::default(),
            &id,
            body::empty(),
        );
        assert_eq!(up.uri(), "http://127.0.0.1:9001/v/alice/run?x=1");
        assert_eq!(up.method(), "PUT");
        assert_eq!(up.version(), Version::HTTP_11);
        assert_eq!(up.headers()["x-val"], "alice");
        assert_eq!(up.headers()["x-request-id"], "req-1");
    }
}
