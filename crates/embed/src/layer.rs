//! The tower integration: a layer that routes each request to its key's host, and records
//! how the host answered.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use health::Outcome;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use router_core::SkipReason;
use tokio::time::Sleep;
use tower::{Layer, Service};

use crate::balancer::{Balancer, Pick};
use crate::classify::{ClassifyError, Failure};
use crate::key::ExtractKey;
use crate::shared::now;

/// The default time from sending a request to a host until its response head (as the
/// `ringward` router's `upstream.response_header_timeout`).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default `Retry-After` of a 503.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why [`Route`] answered a request itself instead of passing it on. The answer carries this
/// as a response extension, so you can tell it from a host's own 4xx/5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The request had no key (400).
    NoKey,
    /// No host may take the key: every candidate ejected, draining or in probation (503 with
    /// `Retry-After`).
    NoEligibleHost,
    /// Every eligible host is at its in-flight limit or over its balance cap (503 with
    /// `Retry-After`).
    AtCapacity,
    /// The host sent no response head within the response timeout (504); recorded against
    /// the host as a [`Outcome::Timeout`].
    Timeout,
}

impl Rejection {
    /// The status of the answer.
    pub fn status(self) -> StatusCode {
        match self {
            Rejection::NoKey => StatusCode::BAD_REQUEST,
            Rejection::NoEligibleHost | Rejection::AtCapacity => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The answer's JSON body.
    fn body(self) -> &'static str {
        match self {
            Rejection::NoKey => r#"{"error":"no key in the request"}"#,
            Rejection::NoEligibleHost => r#"{"error":"no eligible host"}"#,
            Rejection::AtCapacity => r#"{"error":"at capacity"}"#,
            Rejection::Timeout => r#"{"error":"the host did not answer in time"}"#,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::NoKey => "no key in the request",
            Rejection::NoEligibleHost => "no eligible host",
            Rejection::AtCapacity => "at capacity",
            Rejection::Timeout => "the host did not answer in time",
        })
    }
}

/// A [`Layer`] that routes every request to its key's host with a [`Balancer`]; see
/// [`Route`].
pub struct RouteLayer<K> {
    balancer: Balancer,
    key: Arc<K>,
    response_timeout: Option<Duration>,
    retry_after: HeaderValue,
    upstream_header: Option<HeaderName>,
}

impl<K> Clone for RouteLayer<K> {
    fn clone(&self) -> Self {
        RouteLayer {
            balancer: self.balancer.clone(),
            key: Arc::clone(&self.key),
            response_timeout: self.response_timeout,
            retry_after: self.retry_after.clone(),
            upstream_header: self.upstream_header.clone(),
        }
    }
}

impl<K> fmt::Debug for RouteLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteLayer")
            .field("balancer", &self.balancer)
            .field("response_timeout", &self.response_timeout)
            .field("retry_after", &self.retry_after)
            .field("upstream_header", &self.upstream_header)
            .finish_non_exhaustive()
    }
}

impl<K: ExtractKey> RouteLayer<K> {
    /// Routes with `balancer`, finding each request's key with `key` (e.g.
    /// [`ValKey`](crate::ValKey)); response timeout [`DEFAULT_RESPONSE_TIMEOUT`],
    /// `Retry-After` [`DEFAULT_RETRY_AFTER`], no upstream header.
    pub fn new(balancer: Balancer, key: K) -> Self {
        RouteLayer {
            balancer,
            key: Arc::new(key),
            response_timeout: Some(DEFAULT_RESPONSE_TIMEOUT),
            retry_after: retry_after_value(DEFAULT_RETRY_AFTER),
            upstream_header: None,
        }
    }
}

impl<K> RouteLayer<K> {
    /// The longest wait for a host's response head, then 504 and a timeout recorded against
    /// the host; `None`: wait as long as the inner service does (an inner timeout error is
    /// still recorded as a timeout if [`ClassifyError`] says so).
    #[must_use]
    pub fn response_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The `Retry-After` of a 503 (rounded up to whole seconds).
    #[must_use]
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = retry_after_value(after);
        self
    }

    /// Adds this header, naming the chosen host, to every response from a host.
    ///
    /// # Panics
    /// If `name` is not a valid header name.
    #[must_use]
    pub fn upstream_header(mut self, name: &str) -> Self {
        self.upstream_header = Some(HeaderName::try_from(name).expect("a valid header name"));
        self
    }

    /// The balancer.
    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }
}

fn retry_after_value(after: Duration) -> HeaderValue {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    HeaderValue::from(secs)
}

impl<S, K> Layer<S> for RouteLayer<K> {
    type Service = Route<S, K>;

    fn layer(&self, inner: S) -> Route<S, K> {
        Route {
            inner,
            layer: self.clone(),
        }
    }
}

/// A [`Service`] that sends each `http::Request` to its key's host: it finds the key,
/// routes it with the [`Balancer`] (consistent hashing, health, bounded loads), rewrites the
/// URI to `http://` + the host's address (path and query kept; headers, `Host` included, are
/// left as they are), calls the inner service (e.g. hyper-util's legacy `Client`) and records
/// how the host answered: a 5xx as a server error, any other response as a success, both with
/// the latency to the response head; an error of the inner service as its
/// [`ClassifyError`] says. An ORCA `endpoint-load-metrics` header is read (its pool figures
/// feed the host's health) and removed.
///
/// It answers some requests itself, as HTTP responses rather than errors, so that a server
/// answers them as they are (a service error would close the client's connection): 400 when
/// the request has no key, 503 with `Retry-After` when no host may take it, 504 when the
/// host sends no response head within the response timeout. Each carries a short JSON body
/// and its [`Rejection`] as an extension. An error of the inner service is returned
/// unchanged, after it is recorded: map it to 502 (or retry) as your server does.
///
/// The request stays in flight on its host (bounded loads, the host's limit) until the
/// response body ends or is dropped: the body is a [`RouteBody`] holding the [`Pick`].
pub struct Route<S, K> {
    inner: S,
    layer: RouteLayer<K>,
}

impl<S: Clone, K> Clone for Route<S, K> {
    fn clone(&self) -> Self {
        Route {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, K> fmt::Debug for Route<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, K> Route<S, K> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    fn answer<B>(&self, why: Rejection) -> Response<RouteBody<B>> {
        let mut resp = Response::new(RouteBody::answer(why.body()));
        *resp.status_mut() = why.status();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if why.status() == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, self.layer.retry_after.clone());
        }
        resp.extensions_mut().insert(why);
        resp
    }
}

impl<S, K, ReqBody, ResBody> Service<Request<ReqBody>> for Route<S, K>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: ClassifyError,
    K: ExtractKey,
{
    type Response = Response<RouteBody<ResBody>>;
    type Error = S::Error;
    type Future = RouteFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (mut head, body) = req.into_parts();
        let Some(key) = self.layer.key.extract(&head) else {
            return RouteFuture::answer(self.answer(Rejection::NoKey));
        };
        let hash = router_core::KeyHash::of(key);
        let started = now();
        let Some(pick) = self.layer.balancer.route_hash(hash, started) else {
            // The slow path: say whether it is capacity or eligibility.
            let explain = self.layer.balancer.explain(key);
            let capacity = explain.walk.iter().any(|s| {
                matches!(
                    s.skipped,
                    Some(SkipReason::AtCapacity | SkipReason::OverBalance)
                )
            });
            let why = if capacity {
                Rejection::AtCapacity
            } else {
                Rejection::NoEligibleHost
            };
            return RouteFuture::answer(self.answer(why));
        };
        let mut uri = std::mem::take(&mut head.uri).into_parts();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(pick.authority().clone());
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        head.uri = Uri::from_parts(uri).expect("a scheme, an authority and a path make a URI");
        let future = self.inner.call(Request::from_parts(head, body));
        let deadline = match self.layer.response_timeout {
            Some(timeout) => Deadline::On {
                sleep: tokio::time::sleep(timeout),
            },
            None => Deadline::Off,
        };
        RouteFuture {
            state: State::Upstream {
                future,
                deadline,
                pick: Some(pick),
                started,
                upstream_header: self.layer.upstream_header.clone(),
            },
        }
    }
}

pin_project! {
    /// The future of [`Route`]: the host's response, or the router's own answer.
    pub struct RouteFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Answer {
            response: Option<Response<RouteBody<B>>>,
        },
        Upstream {
            #[pin]
            future: F,
            #[pin]
            deadline: Deadline,
            pick: Option<Pick>,
            started: Instant,
            upstream_header: Option<HeaderName>,
        },
    }
}

pin_project! {
    #[project = DeadlineProj]
    enum Deadline {
        On { #[pin] sleep: Sleep },
        Off,
    }
}

impl Deadline {
    fn poll_elapsed(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        match self.project() {
            DeadlineProj::On { sleep } => sleep.poll(cx).is_ready(),
            DeadlineProj::Off => false,
        }
    }
}

impl<F, B> RouteFuture<F, B> {
    fn answer(response: Response<RouteBody<B>>) -> Self {
        RouteFuture {
            state: State::Answer {
                response: Some(response),
            },
        }
    }
}

impl<F, B> fmt::Debug for RouteFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for RouteFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: ClassifyError,
{
    type Output = Result<Response<RouteBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Answer { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
            StateProj::Upstream {
                future,
                deadline,
                pick,
                started,
                upstream_header,
            } => {
                if let Poll::Ready(result) = future.poll(cx) {
                    let mut pick = pick.take().expect("polled after completion");
                    let latency = now().saturating_duration_since(*started);
                    return Poll::Ready(match result {
                        Ok(resp) => {
                            let outcome = if resp.status().is_server_error() {
                                Outcome::ServerError { latency }
                            } else {
                                Outcome::Success { latency }
                            };
                            pick.record(outcome);
                            pick.answered();
                            let (mut parts, body) = resp.into_parts();
                            if let Some(orca) = parts.headers.remove(health::ORCA_HEADER) {
                                pick.record_orca(orca.as_bytes());
                            }
                            if let (Some(name), Some(value)) =
                                (upstream_header.take(), pick.name_header())
                            {
                                parts.headers.insert(name, value.clone());
                            }
                            Ok(Response::from_parts(parts, RouteBody::upstream(body, pick)))
                        }
                        Err(err) => {
                            match err.classify() {
                                Failure::Gateway(failure) => {
                                    pick.record(Outcome::GatewayFailure(failure));
                                }
                                Failure::Timeout => {
                                    pick.record(Outcome::Timeout { elapsed: latency });
                                }
                                Failure::NotTheHost => {}
                            }
                            Err(err)
                        }
                    });
                }
                if !deadline.poll_elapsed(cx) {
                    return Poll::Pending;
                }
                let pick = pick.take().expect("polled after completion");
                let elapsed = now().saturating_duration_since(*started);
                pick.record(Outcome::Timeout { elapsed });
                drop(pick);
                let mut resp = Response::new(RouteBody::answer(Rejection::Timeout.body()));
                *resp.status_mut() = Rejection::Timeout.status();
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp.extensions_mut().insert(Rejection::Timeout);
                Poll::Ready(Ok(resp))
            }
        }
    }
}

pin_project! {
    /// The body of a [`Route`] response: the host's body, holding the request's [`Pick`]
    /// until it ends (so the request counts in flight until then), or a short body of the
    /// router's own.
    pub struct RouteBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Upstream {
            #[pin]
            body: B,
            pick: Option<Pick>,
        },
        Answer {
            data: Option<Bytes>,
        },
    }
}

impl<B> RouteBody<B> {
    /// A body of the router's own (for example, your 502 when the inner service fails).
    pub fn answer(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        RouteBody {
            kind: Kind::Answer {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    fn upstream(body: B, pick: Pick) -> Self {
        RouteBody {
            kind: Kind::Upstream {
                body,
                pick: Some(pick),
            },
        }
    }

    /// The host the body comes from, if it is a host's (until its end).
    pub fn pick(&self) -> Option<&Pick> {
        match &self.kind {
            Kind::Upstream { pick, .. } => pick.as_ref(),
            Kind::Answer { .. } => None,
        }
    }
}

impl<B> fmt::Debug for RouteBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Upstream { pick, .. } => f
                .debug_struct("RouteBody::Upstream")
                .field("pick", pick)
                .finish_non_exhaustive(),
            Kind::Answer { data } => f
                .debug_struct("RouteBody::Answer")
                .field("data", data)
                .finish(),
        }
    }
}

impl<B> Body for RouteBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Upstream { body, pick } => {
                let frame = ready!(body.poll_frame(cx));
                if !matches!(frame, Some(Ok(_))) {
                    // The end, or a broken body: the request is over.
                    *pick = None;
                }
                Poll::Ready(frame)
            }
            KindProj::Answer { data } => {
                Poll::Ready(data.take().map(|d| Ok(Frame::data(B::Data::from(d)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream { body, .. } => body.is_end_stream(),
            Kind::Answer { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream { body, .. } => body.size_hint(),
            Kind::Answer { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Mutex;

    use health::{GatewayFailure, HealthReport};
    use http_body_util::{BodyExt, Full};
    use router_core::{Admission, HostId, InFlight};
    use tokio::sync::mpsc;
    use tower::{BoxError, ServiceExt, service_fn};

    use super::*;
    use crate::shared::Event;
    use crate::testing::{hosts, publish};
    use crate::{Driver, ValKey};

    type Req = Request<Full<Bytes>>;

    /// A balancer over three hosts whose driver does not run: the test reads its queue.
    fn setup() -> (Balancer, mpsc::Receiver<Event>) {
        let (balancer, driver) = Balancer::builder(hosts(3))
            .per_host_limit(Some(1))
            .build()
            .unwrap();
        let Driver { events, .. } = driver;
        (balancer, events)
    }

    fn layer(balancer: &Balancer) -> RouteLayer<ValKey> {
        RouteLayer::new(balancer.clone(), ValKey::header("x-val").or_path_segment(0))
    }

    fn request(uri: &str) -> Req {
        Request::get(uri).body(Full::new(Bytes::new())).unwrap()
    }

    fn events(rx: &mut mpsc::Receiver<Event>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| format!("{e:?}"))
            .collect()
    }

    #[tokio::test]
    async fn routes_to_the_keys_host_and_records_the_answer() {
        let (balancer, mut rx) = setup();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let inner = {
            let seen = Arc::clone(&seen);
            service_fn(move |req: Req| {
                seen.lock().unwrap().push(req.uri().clone());
                async move {
                    let resp = Response::builder()
                        .header(
                            health::ORCA_HEADER,
                            "TEXT named_metrics.db_pool_max=10, named_metrics.db_pool_in_use=3",
                        )
                        .body(Full::new(Bytes::from_static(b"hello")))
                        .unwrap();
                    Ok::<_, BoxError>(resp)
                }
            })
        };
        let svc = layer(&balancer).upstream_header("x-upstream").layer(inner);
        let own = balancer.route(b"alice-hello").unwrap();
        let (own_id, own_name, own_addr) = (own.host(), own.name().to_owned(), own.addr());
        drop(own);

        let resp = svc
            .clone()
            .oneshot(request("/alice-hello/run?x=1"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-upstream"], own_name.as_str());
        assert!(
            resp.headers().get(health::ORCA_HEADER).is_none(),
            "read and removed"
        );
        assert_eq!(
            seen.lock().unwrap()[0].to_string(),
            format!("http://{own_addr}/alice-hello/run?x=1")
        );
        // In flight until the body ends, but no longer aging: the host answered.
        assert_eq!(balancer.loads().in_flight(own_id), 1);
        assert_eq!(balancer.loads().oldest(own_id.index(), now()).1, None);
        assert_eq!(resp.body().pick().map(Pick::host), Some(own_id));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");
        assert_eq!(
            balancer.loads().total(),
            0,
            "the body's end released the permit"
        );

        let recorded = events(&mut rx);
        assert_eq!(recorded.len(), 2, "{recorded:?}");
        assert!(recorded[0].starts_with(&format!("Outcome({own_id:?}, Success")));
        let report = HealthReport {
            status: None,
            pool: health::parse_orca_header(
                b"TEXT named_metrics.db_pool_max=10, named_metrics.db_pool_in_use=3",
            )
            .unwrap(),
        };
        assert_eq!(recorded[1], format!("{:?}", Event::Report(own_id, report)));

        // The header wins over the path; the same key, the same host.
        let resp = svc
            .oneshot(
                Request::get("/other")
                    .header("x-val", "alice-hello")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-upstream"], own_name.as_str());
    }

    #[tokio::test]
    async fn a_5xx_is_a_server_error_for_the_host() {
        let (balancer, mut rx) = setup();
        let inner = service_fn(|_req: Req| async {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok::<_, BoxError>(resp)
        });
        let resp = layer(&balancer)
            .layer(inner)
            .oneshot(request("/k"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            resp.extensions().get::<Rejection>().is_none(),
            "the host's own"
        );
        assert!(events(&mut rx)[0].contains("ServerError"));
    }

    #[tokio::test]
    async fn without_a_key_400_and_the_inner_service_is_not_called() {
        let (balancer, mut rx) = setup();
        let inner = service_fn(|_req: Req| async {
            panic!("not called");
            #[allow(unreachable_code)]
            Ok::<Response<Full<Bytes>>, BoxError>(Response::default())
        });
        let resp = layer(&balancer)
            .layer(inner)
            .oneshot(request("/"))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.extensions().get(), Some(&Rejection::NoKey));
        assert!(resp.headers().get(header::RETRY_AFTER).is_none());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, r#"{"error":"no key in the request"}"#);
        assert!(events(&mut rx).is_empty());
    }

    #[tokio::test]
    async fn no_eligible_host_or_no_capacity_is_503_with_retry_after() {
        let (balancer, _rx) = setup();
        let inner = service_fn(|_req: Req| async {
            Ok::<_, BoxError>(Response::new(Full::new(Bytes::new())))
        });
        let svc = layer(&balancer)
            .retry_after(Duration::from_millis(2500))
            .layer(inner);
        // Every host at its limit of one.
        let held: Vec<Pick> = (0..3).map(|_| balancer.route(b"k").unwrap()).collect();
        let resp = svc.clone().oneshot(request("/k")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "3");
        assert_eq!(resp.extensions().get(), Some(&Rejection::AtCapacity));
        drop(held);
        // Every host ejected.
        publish(
            &balancer,
            vec![Admission::Closed(router_core::SkipReason::Ejected); 3],
        );
        let resp = svc.oneshot(request("/k")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.extensions().get(), Some(&Rejection::NoEligibleHost));
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    }

    #[tokio::test]
    async fn an_inner_error_is_recorded_then_returned() {
        let (balancer, mut rx) = setup();
        let inner = service_fn(|_req: Req| async {
            Err::<Response<Full<Bytes>>, BoxError>(Box::new(io::Error::from(
                io::ErrorKind::ConnectionRefused,
            )))
        });
        let err = layer(&balancer)
            .layer(inner)
            .oneshot(request("/k"))
            .await
            .unwrap_err();
        assert!(err.is::<io::Error>());
        let own = balancer
            .snapshot()
            .ring()
            .primary(router_core::KeyHash::of(b"k"));
        assert_eq!(
            events(&mut rx),
            [format!(
                "{:?}",
                Event::Outcome(own, Outcome::GatewayFailure(GatewayFailure::ConnectRefused))
            )]
        );
        assert_eq!(balancer.loads().total(), 0, "the permit is released");
    }

    #[tokio::test(start_paused = true)]
    async fn no_response_head_in_time_is_504_and_a_timeout_for_the_host() {
        let (balancer, mut rx) = setup();
        let inner = service_fn(|_req: Req| {
            std::future::pending::<Result<Response<Full<Bytes>>, BoxError>>()
        });
        let started = tokio::time::Instant::now();
        let resp = layer(&balancer)
            .response_timeout(Some(Duration::from_secs(2)))
            .layer(inner)
            .oneshot(request("/k"))
            .await
            .unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(2), "simulated time");
        assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(resp.extensions().get(), Some(&Rejection::Timeout));
        let own = balancer
            .snapshot()
            .ring()
            .primary(router_core::KeyHash::of(b"k"));
        assert_eq!(
            events(&mut rx),
            [format!(
                "{:?}",
                Event::Outcome(
                    own,
                    Outcome::Timeout {
                        elapsed: Duration::from_secs(2)
                    }
                )
            )]
        );
        assert_eq!(balancer.loads().in_flight(HostId(0)), 0);
        assert_eq!(balancer.loads().total(), 0);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_value(Duration::from_secs(1)), "1");
        assert_eq!(retry_after_value(Duration::from_millis(1001)), "2");
        assert_eq!(retry_after_value(Duration::ZERO), "0");
        assert_eq!(Rejection::AtCapacity.to_string(), "at capacity");
    }
}
