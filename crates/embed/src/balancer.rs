//! The balancer: the ring, the published snapshot, in-flight counters and the outcome queue.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use health::{Health, HealthConfig, HealthError, HealthReport, HealthSnapshot, Outcome};
use http::HeaderValue;
use http::uri::Authority;
use router_core::{
    Admission, BoundedLoads, Explain, HostId, HostSpec, InFlight, KeyHash, Ring, RingError,
    Snapshot,
};
use tokio::sync::{mpsc, watch};

use crate::driver::{Driver, DriverHandle};
use crate::host::{Host, HostInfo};
use crate::loads::{HostLoads, Permit};
use crate::shared::{Event, Shared, now};

/// How often the driver reads in-flight ages and expires timers by default.
pub const DEFAULT_TICK: Duration = Duration::from_millis(50);

/// Capacity of the outcome queue by default.
pub const DEFAULT_EVENT_QUEUE: usize = 8192;

/// Requests in flight to one host at most, by default (as the `ringward` router).
pub const DEFAULT_PER_HOST_LIMIT: u32 = 256;

/// Why a balancer could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The host set cannot make a ring (none, a zero weight, a duplicate name, too many).
    #[error(transparent)]
    Ring(#[from] RingError),
    /// The health configuration breaks rules (each is listed).
    #[error("invalid health config: {}", join(.0))]
    Health(Vec<HealthError>),
    /// The outcome queue must hold at least one event.
    #[error("the event queue needs a capacity of at least 1")]
    EmptyQueue,
    /// The driver's tick must be longer than zero.
    #[error("the tick must be longer than zero")]
    ZeroTick,
    /// A per-host limit of 0 would refuse every request.
    #[error("the per-host in-flight limit must be at least 1")]
    ZeroLimit,
}

fn join(errors: &[HealthError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Builds a [`Balancer`] and its [`Driver`]; see [`Balancer::builder`].
#[derive(Debug, Clone)]
pub struct BalancerBuilder {
    hosts: Vec<Host>,
    health: HealthConfig,
    bounded: BoundedLoads,
    per_host_limit: Option<u32>,
    queue: usize,
    tick: Duration,
}

impl BalancerBuilder {
    /// The health state machine's settings (default: [`HealthConfig::default`], which ejects
    /// a host whose DB pool is exhausted within a second).
    #[must_use]
    pub fn health(mut self, config: HealthConfig) -> Self {
        self.health = config;
        self
    }

    /// Bounded loads: how far a host may run above its share of the requests in flight
    /// before a key spills to its next host (default: factor 1.25, floor 16).
    #[must_use]
    pub fn bounded_loads(mut self, bounded: BoundedLoads) -> Self {
        self.bounded = bounded;
        self
    }

    /// Requests in flight to one host at most (default [`DEFAULT_PER_HOST_LIMIT`]); a host at
    /// its limit is skipped on the key's walk. `None`: no limit.
    #[must_use]
    pub fn per_host_limit(mut self, limit: Option<u32>) -> Self {
        self.per_host_limit = limit;
        self
    }

    /// Capacity of the outcome queue (default [`DEFAULT_EVENT_QUEUE`]); when it is full, new
    /// outcomes are dropped and counted ([`Balancer::dropped_events`]).
    #[must_use]
    pub fn event_queue(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// How often the driver reads every host's in-flight age (default [`DEFAULT_TICK`]).
    #[must_use]
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// The balancer and its driver, which must run (see [`Driver::run`] and
    /// [`Driver::spawn`]) for health to act. Builds the ring (about 15 ms, whatever the
    /// number of hosts). Every host starts healthy.
    ///
    /// # Errors
    /// A host set that cannot make a ring, an invalid health config, an empty queue, a
    /// zero tick or a per-host limit of 0.
    pub fn build(self) -> Result<(Balancer, Driver), BuildError> {
        if self.queue == 0 {
            return Err(BuildError::EmptyQueue);
        }
        if self.tick.is_zero() {
            return Err(BuildError::ZeroTick);
        }
        if self.per_host_limit == Some(0) {
            return Err(BuildError::ZeroLimit);
        }
        let health = Health::try_new(self.health).map_err(BuildError::Health)?;
        let ring = Arc::new(Ring::try_new(
            self.hosts
                .iter()
                .map(|h| HostSpec::new(h.name.clone(), h.weight)),
        )?);
        // The ring orders hosts by name: keep ours in its order.
        let mut given: Vec<Option<Host>> = self.hosts.into_iter().map(Some).collect();
        let hosts = ring
            .hosts()
            .map(|(_, spec)| {
                let host = given
                    .iter_mut()
                    .find(|h| h.as_ref().is_some_and(|h| h.name == spec.name))
                    .and_then(Option::take)
                    .expect("the ring holds exactly the given hosts");
                HostInfo {
                    authority: Authority::try_from(host.addr.to_string())
                        .expect("a socket address is an authority"),
                    header: HeaderValue::try_from(host.name.as_str()).ok(),
                    host,
                }
            })
            .collect();
        let start = now();
        let (tx, rx) = mpsc::channel(self.queue);
        let n = ring.len();
        let shared = Arc::new(Shared {
            hosts,
            snapshot: ArcSwap::from_pointee(Snapshot::all_open(Arc::clone(&ring), 0)),
            loads: Arc::new(HostLoads::new(n, self.per_host_limit, start)),
            bounded: self.bounded,
            dropped: AtomicU64::new(0),
            generation: watch::Sender::new(0),
            health: ArcSwap::from_pointee(HealthSnapshot {
                hosts: Vec::new(),
                panic: None,
            }),
        });
        let driver = Driver::new(health, Arc::clone(&shared), rx, self.tick, start);
        Ok((Balancer { shared, events: tx }, driver))
    }

    /// As [`build`](Self::build), and spawns the driver on the current tokio runtime.
    ///
    /// # Errors
    /// As [`build`](Self::build).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(self) -> Result<(Balancer, DriverHandle), BuildError> {
        let (balancer, driver) = self.build()?;
        Ok((balancer, driver.spawn()))
    }
}

/// Ringward's routing for one fleet: the consistent-hash ring with each host's admission
/// (published by the [`Driver`] from its health), bounded loads and in-flight counts.
///
/// Cheap to clone (all clones share one state). [`route`](Self::route) is lock-free and
/// allocation-free; outcomes are queued for the driver without blocking
/// ([`record`](Self::record)).
#[derive(Clone)]
pub struct Balancer {
    pub(crate) shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("hosts", &self.shared.hosts.len())
            .field("generation", &self.shared.snapshot.load().generation())
            .finish_non_exhaustive()
    }
}

impl Balancer {
    /// A builder over these hosts, with the defaults.
    pub fn builder(hosts: impl IntoIterator<Item = Host>) -> BalancerBuilder {
        BalancerBuilder {
            hosts: hosts.into_iter().collect(),
            health: HealthConfig::default(),
            bounded: BoundedLoads::default(),
            per_host_limit: Some(DEFAULT_PER_HOST_LIMIT),
            queue: DEFAULT_EVENT_QUEUE,
            tick: DEFAULT_TICK,
        }
    }

    /// The host for `key` (a Val's key), with its in-flight permit; `None` when no host may
    /// take it (every candidate closed or at its limit). Lock-free, allocation-free.
    pub fn route(&self, key: &[u8]) -> Option<Pick> {
        self.route_hash(KeyHash::of(key), now())
    }

    /// As [`route`](Self::route), for a key already hashed, with the request's start
    /// instant given.
    pub fn route_hash(&self, hash: KeyHash, now: Instant) -> Option<Pick> {
        let shared = &*self.shared;
        let snapshot = shared.snapshot.load();
        let mut excluded = Excluding {
            loads: &shared.loads,
            hosts: [None; RACE_RETRIES],
        };
        for attempt in 0..RACE_RETRIES {
            let id = snapshot.route(hash, &excluded, &shared.bounded)?;
            match shared.loads.try_acquire(id, now) {
                Some(permit) => {
                    return Some(Pick {
                        balancer: self.clone(),
                        permit,
                        generation: snapshot.generation(),
                    });
                }
                // Raced to its limit between the walk and the permit: the next preference.
                None => excluded.hosts[attempt] = Some(id),
            }
        }
        None
    }

    /// The walk for `key` with the reason each skipped host was skipped (allocates: for
    /// diagnostics, and to tell "no host" from "at capacity").
    pub fn explain(&self, key: &[u8]) -> Explain {
        let shared = &*self.shared;
        shared
            .snapshot
            .load()
            .explain(KeyHash::of(key), &*shared.loads, &shared.bounded)
    }

    /// Queues a request's outcome on `host` for the driver. Never blocks: when the queue is
    /// full the outcome is dropped and counted. Returns whether it was queued.
    pub fn record(&self, host: HostId, outcome: Outcome) -> bool {
        self.send(Event::Outcome(host, outcome))
    }

    /// Queues a host's pool report (e.g. from a probe of your own). As [`record`](Self::record).
    pub fn record_report(&self, host: HostId, report: HealthReport) -> bool {
        self.send(Event::Report(host, report))
    }

    /// Parses an ORCA `endpoint-load-metrics` header value in TEXT form and queues its pool
    /// figures; returns whether a report was queued (not for a header without pool figures
    /// or in another form).
    pub fn record_orca(&self, host: HostId, value: &[u8]) -> bool {
        match health::parse_orca_header(value) {
            Ok(Some(pool)) => self.record_report(
                host,
                HealthReport {
                    status: None,
                    pool: Some(pool),
                },
            ),
            _ => false,
        }
    }

    fn send(&self, event: Event) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Outcomes and reports dropped because the queue was full (or the driver gone).
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The number of hosts.
    pub fn len(&self) -> usize {
        self.shared.hosts.len()
    }

    /// Always false: a balancer has at least one host.
    pub fn is_empty(&self) -> bool {
        self.shared.hosts.is_empty()
    }

    /// Every host with its id (the ring's order: by name).
    pub fn hosts(&self) -> impl Iterator<Item = (HostId, &Host)> {
        self.shared
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (HostId(i as u32), &h.host))
    }

    /// The host `id`, if it is one of this balancer's.
    pub fn host(&self, id: HostId) -> Option<&Host> {
        self.shared.hosts.get(id.index()).map(|h| &h.host)
    }

    /// The id of the host named `name`.
    pub fn host_id(&self, name: &str) -> Option<HostId> {
        self.shared
            .hosts
            .iter()
            .position(|h| h.host.name == name)
            .map(|i| HostId(i as u32))
    }

    /// The routing snapshot in force (the ring, every host's admission, a generation).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.shared.snapshot.load_full()
    }

    /// A host's admission in the snapshot in force.
    ///
    /// # Panics
    /// If `id` is not one of this balancer's hosts.
    pub fn admission(&self, id: HostId) -> Admission {
        self.shared.snapshot.load().admission(id)
    }

    /// Every host's health as the driver last saw it (refreshed every tick and on every
    /// change; empty before the driver first runs).
    pub fn health(&self) -> Arc<HealthSnapshot<HostId>> {
        self.shared.health.load_full()
    }

    /// The in-flight counters.
    pub fn loads(&self) -> &Arc<HostLoads> {
        &self.shared.loads
    }

    /// The bounded-load settings.
    pub fn bounded_loads(&self) -> BoundedLoads {
        self.shared.bounded
    }

    /// The generation of the snapshot in force, as a watch that changes with every
    /// publication: to wait for an ejection, or to stop waiting on a host that left.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }
}

/// Attempts of [`Balancer::route_hash`] when a host reaches its limit between the walk and
/// the permit.
const RACE_RETRIES: usize = 4;

/// The loads, with hosts that raced to their limit shown as full.
struct Excluding<'a> {
    loads: &'a HostLoads,
    hosts: [Option<HostId>; RACE_RETRIES],
}

impl InFlight for Excluding<'_> {
    #[inline]
    fn in_flight(&self, host: HostId) -> u32 {
        self.loads.in_flight(host)
    }
    #[inline]
    fn total(&self) -> u64 {
        self.loads.total()
    }
    #[inline]
    fn hard_limit(&self, host: HostId) -> Option<u32> {
        if self.hosts.contains(&Some(host)) {
            Some(0)
        } else {
            self.loads.hard_limit(host)
        }
    }
}

/// The host chosen for one request, holding its in-flight permit: the request counts
/// against the host until the pick is dropped.
#[derive(Debug)]
#[must_use = "dropping the pick ends the request at once"]
pub struct Pick {
    balancer: Balancer,
    permit: Permit,
    generation: u64,
}

impl Pick {
    /// The host's id.
    pub fn host(&self) -> HostId {
        self.permit.host()
    }

    /// The host's index (its id as an index into per-host arrays).
    pub fn index(&self) -> usize {
        self.permit.host().index()
    }

    fn info(&self) -> &HostInfo {
        &self.balancer.shared.hosts[self.index()]
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.info().host.name
    }

    /// The host's address.
    pub fn addr(&self) -> SocketAddr {
        self.info().host.addr
    }

    /// The host's address as a URI authority.
    pub fn authority(&self) -> &Authority {
        &self.info().authority
    }

    /// The host's name as a header value (`None` if the name is not a valid one).
    pub fn name_header(&self) -> Option<&HeaderValue> {
        self.info().header.as_ref()
    }

    /// The generation of the snapshot the host was chosen in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The host sent its response head: the request stops counting towards the host's
    /// oldest in-flight age (it stays in flight until the pick is dropped).
    pub fn answered(&mut self) {
        self.permit.answered();
    }

    /// The permit.
    pub fn permit(&self) -> &Permit {
        &self.permit
    }

    /// Queues this request's outcome (see [`Balancer::record`]).
    pub fn record(&self, outcome: Outcome) -> bool {
        self.balancer.record(self.host(), outcome)
    }

    /// Queues the pool figures of an ORCA header from this host (see
    /// [`Balancer::record_orca`]).
    pub fn record_orca(&self, value: &[u8]) -> bool {
        self.balancer.record_orca(self.host(), value)
    }

    /// The balancer it came from.
    pub fn balancer(&self) -> &Balancer {
        &self.balancer
    }
}

#[cfg(test)]
mod tests {
    use health::GatewayFailure;
    use router_core::SkipReason;

    use super::*;
    use crate::testing::{hosts, publish};

    #[test]
    fn hosts_are_kept_in_the_ring_order_with_their_addresses() {
        let mut given = hosts(3);
        given.reverse();
        given[0].weight = 2;
        let (balancer, _driver) = Balancer::builder(given).build().unwrap();
        let names: Vec<_> = balancer.hosts().map(|(_, h)| h.name.as_str()).collect();
        assert_eq!(names, ["host-0", "host-1", "host-2"]);
        let id = balancer.host_id("host-2").unwrap();
        let host = balancer.host(id).unwrap();
        assert_eq!((host.addr.port(), host.weight), (9002, 2));
        assert_eq!(balancer.snapshot().ring().host(id).weight, 2);
        assert_eq!(balancer.len(), 3);
        assert!(balancer.host_id("nope").is_none());
    }

    #[test]
    fn a_key_always_gets_the_same_host_and_a_permit() {
        let (balancer, _driver) = Balancer::builder(hosts(5)).build().unwrap();
        let first = balancer.route(b"alice-hello").unwrap();
        assert_eq!(first.authority().as_str(), format!("{}", first.addr()));
        assert_eq!(balancer.loads().in_flight(first.host()), 1);
        for _ in 0..10 {
            let again = balancer.route(b"alice-hello").unwrap();
            assert_eq!(again.host(), first.host());
            assert_eq!(again.name(), first.name());
        }
        drop(first);
        assert_eq!(balancer.loads().total(), 0, "every permit released");
        // The same choice as the ring's.
        let own = balancer
            .snapshot()
            .ring()
            .primary(KeyHash::of(b"alice-hello"));
        assert_eq!(balancer.route(b"alice-hello").unwrap().host(), own);
    }

    #[test]
    fn closed_hosts_are_skipped_and_only_their_keys_move() {
        let (balancer, _driver) = Balancer::builder(hosts(4)).build().unwrap();
        let keys: Vec<String> = (0..400).map(|i| format!("val-{i}")).collect();
        let before: Vec<HostId> = keys
            .iter()
            .map(|k| balancer.route(k.as_bytes()).unwrap().host())
            .collect();
        let mut admission = vec![Admission::Open; 4];
        admission[1] = Admission::Closed(SkipReason::Ejected);
        publish(&balancer, admission);
        for (key, was) in keys.iter().zip(&before) {
            let now = balancer.route(key.as_bytes()).unwrap().host();
            if *was == HostId(1) {
                assert_ne!(now, HostId(1), "{key} left the closed host");
            } else {
                assert_eq!(now, *was, "{key} stayed");
            }
        }
        publish(&balancer, vec![Admission::Closed(SkipReason::Ejected); 4]);
        assert!(balancer.route(b"val-1").is_none());
        let explain = balancer.explain(b"val-1");
        assert_eq!(explain.chosen, None);
        assert!(
            explain
                .walk
                .iter()
                .all(|s| s.skipped == Some(SkipReason::Ejected))
        );
    }

    #[test]
    fn a_full_host_is_passed_over_and_a_full_fleet_refuses() {
        let (balancer, _driver) = Balancer::builder(hosts(2))
            .per_host_limit(Some(1))
            .build()
            .unwrap();
        let a = balancer.route(b"k").unwrap();
        let b = balancer.route(b"k").unwrap();
        assert_ne!(a.host(), b.host(), "the key walks on past its full host");
        assert!(balancer.route(b"k").is_none(), "both full");
        let explain = balancer.explain(b"k");
        assert!(
            explain
                .walk
                .iter()
                .all(|s| s.skipped == Some(SkipReason::AtCapacity))
        );
        drop(a);
        assert!(balancer.route(b"k").is_some());
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (balancer, _driver) = Balancer::builder(hosts(2)).event_queue(2).build().unwrap();
        let failure = Outcome::GatewayFailure(GatewayFailure::ConnectRefused);
        assert!(balancer.record(HostId(0), failure));
        let pick = balancer.route(b"k").unwrap();
        assert!(pick.record(failure));
        assert!(!balancer.record(HostId(0), failure), "full");
        assert!(!pick.record_orca(b"not orca"), "no report");
        assert_eq!(balancer.dropped_events(), 1);
    }

    #[test]
    fn builder_errors() {
        let err = Balancer::builder(Vec::new()).build().unwrap_err();
        assert!(matches!(err, BuildError::Ring(RingError::NoHosts)), "{err}");
        let mut twice = hosts(2);
        twice[1].name = twice[0].name.clone();
        assert!(matches!(
            Balancer::builder(twice).build().unwrap_err(),
            BuildError::Ring(RingError::DuplicateName { .. })
        ));
        let err = Balancer::builder(hosts(1))
            .health(HealthConfig {
                failure_rate: 7.0,
                max_ejected_share: -1.0,
                ..HealthConfig::default()
            })
            .build()
            .unwrap_err();
        assert!(
            err.to_string().starts_with("invalid health config: "),
            "{err}"
        );
        assert!(err.to_string().contains("; "), "both rules named: {err}");
        assert!(matches!(
            Balancer::builder(hosts(1)).event_queue(0).build(),
            Err(BuildError::EmptyQueue)
        ));
        assert!(matches!(
            Balancer::builder(hosts(1)).tick(Duration::ZERO).build(),
            Err(BuildError::ZeroTick)
        ));
        assert!(matches!(
            Balancer::builder(hosts(1)).per_host_limit(Some(0)).build(),
            Err(BuildError::ZeroLimit)
        ));
    }
}
