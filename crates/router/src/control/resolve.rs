//! The hosts given by name (`[[hosts]].addr = "name:port"`): looked up at start, before the
//! first fleet is built, so the router routes to them from its first request; then by this
//! task every `upstream.resolve_interval`, and at once after a reload. A name that resolves
//! to a new address is published as a new fleet generation with the same ring and the same
//! in-flight counters (the ring hashes names: no key moves; health state is by name: it
//! stays). A failed lookup keeps the last good address; a name that never resolved leaves
//! its host closed to routing (`SkipReason::Unresolved`) and unprobed. Each change of a
//! name's state is logged once and put in the status page's events; every failed lookup is
//! counted (`ringward_host_resolve_failures_total`).
//!
//! Lookups run here, on the main runtime, through [`Resolve`] (the system's resolver runs on
//! tokio's blocking pool): never on a proxy worker, never on the request path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use router_core::{Admission, HostId, SkipReason};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::config::{HostAddr, HostConfig};
use crate::control::fleet::{Fleet, Location};
use crate::control::history::{self, Event, Tone};
use crate::control::messages::Control;
use crate::control::resolution::{Change, Resolution};
use crate::control::resolver::Resolve;
use crate::control::shared::Shared;
use crate::control::task::admissions;
use crate::metrics::Metrics;

/// The longest one lookup may take; past it, it is a failed lookup ("did not resolve
/// within 5s"). The system resolver's own retries can take longer than a start should.
pub(crate) const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The resolution of every host given by name, by host name, with the address it was
/// configured with (a reload that changes it starts the name over).
#[derive(Debug, Default)]
pub(crate) struct Names(HashMap<String, (HostAddr, Resolution)>);

impl Names {
    /// Looks up every name among `hosts` (at once, each bounded by [`LOOKUP_TIMEOUT`]),
    /// logging and counting as the task does.
    pub(crate) async fn resolve_at_start(
        hosts: &[HostConfig],
        resolver: &Arc<dyn Resolve>,
        metrics: &Metrics,
        now: impl Fn() -> Instant,
    ) -> Names {
        let mut names = Names::default();
        let named = hosts
            .iter()
            .filter(|h| h.addr.socket_addr().is_none())
            .map(|h| (h.name.clone(), h.addr.clone()));
        names.0 = named
            .map(|(host, addr)| (host, (addr, Resolution::default())))
            .collect();
        for (host, answer) in names.look_up(resolver).await {
            names.observe(&host, answer, now(), metrics);
        }
        names
    }

    /// Where host `host` is, for [`Fleet::build`].
    pub(crate) fn location(&self, host: &HostConfig) -> Location {
        match self.0.get(&host.name) {
            Some((configured, r)) if *configured == host.addr => r.location(),
            _ => Location::pending(&host.addr),
        }
    }

    /// Follows the hosts of `fleet`: a name it holds for the first time (or with another
    /// configured address) starts from the fleet's address; names gone are dropped.
    fn follow(&mut self, fleet: &Fleet) {
        let mut next = HashMap::with_capacity(self.0.len());
        for h in fleet
            .hosts
            .iter()
            .filter(|h| h.configured.socket_addr().is_none())
        {
            let entry = match self.0.remove(&h.name) {
                Some((configured, r)) if configured == h.configured => (configured, r),
                _ => (
                    h.configured.clone(),
                    Resolution::starting_at(h.location.addr),
                ),
            };
            next.insert(h.name.clone(), entry);
        }
        self.0 = next;
    }

    /// Looks every name up at once; the answers by host name, failures worded for an
    /// operator (`worker-9.internal:9001 did not resolve: ...`).
    async fn look_up(
        &self,
        resolver: &Arc<dyn Resolve>,
    ) -> Vec<(String, Result<Vec<SocketAddr>, String>)> {
        let mut lookups = JoinSet::new();
        for (host, (configured, _)) in &self.0 {
            let HostAddr::Name { name, port } = configured else {
                continue;
            };
            let lookup = resolver.resolve(name, *port);
            let (host, configured) = (host.clone(), configured.clone());
            lookups.spawn(async move {
                let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                    Ok(Ok(addrs)) => Ok(addrs),
                    Ok(Err(e)) => Err(format!("{configured} did not resolve: {e}")),
                    Err(_) => Err(format!(
                        "{configured} did not resolve within {}",
                        humantime::format_duration(LOOKUP_TIMEOUT)
                    )),
                };
                (host, answer)
            });
        }
        let mut answers = Vec::with_capacity(self.0.len());
        while let Some(done) = lookups.join_next().await {
            // A lookup that panicked is one host's failure, never the task's.
            if let Ok(answer) = done {
                answers.push(answer);
            }
        }
        answers
    }

    /// Takes host `host`'s answer: counts a failure, logs a change; returns the change.
    fn observe(
        &mut self,
        host: &str,
        answer: Result<Vec<SocketAddr>, String>,
        now: Instant,
        metrics: &Metrics,
    ) -> Option<Change> {
        let (configured, resolution) = self.0.get_mut(host)?;
        let failed = answer.as_ref().map_or(true, Vec::is_empty);
        if failed {
            metrics
                .host(host)
                .resolve_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        let change = resolution.observe(answer, now)?;
        log(host, configured, &change);
        Some(change)
    }

    /// Where every name is now, for [`Fleet::relocated`].
    fn locations(&self) -> HashMap<String, (HostAddr, Location)> {
        self.0
            .iter()
            .map(|(host, (configured, r))| (host.clone(), (configured.clone(), r.location())))
            .collect()
    }
}

/// The one log line of a change.
fn log(host: &str, configured: &HostAddr, change: &Change) {
    match change {
        Change::Resolved { addr } => info!(host, name = %configured, %addr, "host name resolved"),
        Change::Moved { from, to } => {
            info!(host, name = %configured, %from, %to, "host name resolves to a new address");
        }
        Change::Failing {
            error,
            kept: Some(kept),
        } => warn!(
            host, name = %configured, %error, %kept,
            "host name lookups fail: the host keeps its last address"
        ),
        Change::Failing { error, kept: None } => warn!(
            host, name = %configured, %error,
            "host name does not resolve: the host takes no requests until it does"
        ),
        Change::Recovered {
            addr,
            kept,
            failed_for,
        } => info!(
            host, name = %configured, %addr,
            kept = %kept.map_or_else(|| "none".to_owned(), |k| k.to_string()),
            failed_for = %humantime::format_duration(secs(*failed_for)),
            "host name resolves again"
        ),
    }
}

/// The status page's event for a change.
fn event(now: Instant, host: &str, configured: &HostAddr, change: &Change) -> Event {
    let (tone, text) = match change {
        Change::Resolved { addr } => (Tone::Info, format!("{configured} resolved to {addr}")),
        Change::Moved { from, to } => (
            Tone::Info,
            format!("{configured} moved from {from} to {to} (its Vals stay)"),
        ),
        Change::Failing {
            error,
            kept: Some(kept),
        } => (Tone::Warn, format!("{error}; keeps {kept}")),
        Change::Failing { error, kept: None } => (
            Tone::Bad,
            format!("{error}; takes no requests until it does"),
        ),
        Change::Recovered {
            addr, failed_for, ..
        } => (
            Tone::Good,
            format!(
                "{configured} resolves again ({addr}) after {}",
                history::human(*failed_for)
            ),
        ),
    };
    Event {
        at: now,
        tone,
        subject: host.to_owned(),
        text,
    }
}

/// Whole seconds (for log lines).
fn secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// Looks the names up again every `upstream.resolve_interval` and whenever a reload asks
/// (`Shared::resolve_now`), until `shutdown` flips.
pub(crate) async fn run(
    shared: Arc<Shared>,
    resolver: Arc<dyn Resolve>,
    mut names: Names,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let interval = shared.config.load().upstream.resolve_interval;
        tokio::select! {
            _ = shutdown.changed() => return,
            () = shared.resolve_now.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
        names.follow(&shared.fleet());
        if names.0.is_empty() {
            continue;
        }
        let answers = names.look_up(&resolver).await;
        let now = shared.now();
        for (host, answer) in answers {
            if let Some(change) = names.observe(&host, answer, now, &shared.metrics) {
                let configured = &names.0[&host].0;
                let event = event(now, &host, configured, &change);
                shared.history.lock().event(event);
            }
        }
        if publish(&shared, &names.locations()) {
            let _ = shared.control.send(Control::FleetChanged);
        }
    }
}

/// Publishes the fleet with its hosts at `locations`, if any moved: a host that keeps
/// having (or lacking) an address keeps its admission; one that gets its first address
/// takes the admission its health gives. Returns whether it published.
fn publish(shared: &Shared, locations: &HashMap<String, (HostAddr, Location)>) -> bool {
    shared.publish_routing(|current| {
        let fleet = Arc::new(current.fleet.relocated(locations)?);
        let by_health = admissions(&fleet, &shared.view.load().snapshot);
        let admission = (0..fleet.hosts.len())
            .map(|i| {
                let id = HostId(u32::try_from(i).unwrap_or(u32::MAX));
                let before = current.fleet.hosts[i].location.addr.is_some();
                match (before, fleet.hosts[i].location.addr.is_some()) {
                    (_, false) => Admission::Closed(SkipReason::Unresolved),
                    (false, true) => by_health[i],
                    (true, true) => current.snapshot.admission(id),
                }
            })
            .collect();
        Some((fleet, admission))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Answers from a table that a test edits; a name not in it fails.
    #[derive(Default)]
    struct Table(Mutex<HashMap<String, Vec<SocketAddr>>>);

    impl Resolve for Table {
        fn resolve(&self, name: &str, _port: u16) -> crate::control::resolver::ResolveFuture {
            let answer = self.0.lock().expect("table").get(name).cloned();
            Box::pin(async move {
                answer.ok_or_else(|| std::io::Error::other("no such name in the table"))
            })
        }
    }

    fn host(name: &str, addr: &str) -> HostConfig {
        HostConfig {
            name: name.to_owned(),
            addr: addr.parse().expect("host address"),
            weight: 1,
        }
    }

    #[tokio::test]
    async fn names_are_looked_up_at_start_and_failures_counted() {
        let a: SocketAddr = "10.0.0.1:9001".parse().unwrap();
        let table = Arc::new(Table::default());
        table.0.lock().unwrap().insert("a.test".into(), vec![a]);
        let resolver: Arc<dyn Resolve> = table;
        let hosts = [
            host("a", "a.test:9001"),
            host("b", "b.test:9001"),
            host("c", "10.0.0.3:9001"),
        ];
        let metrics = Metrics::default();
        let names = Names::resolve_at_start(&hosts, &resolver, &metrics, Instant::now).await;
        assert_eq!(names.location(&hosts[0]), Location::at(a));
        let b = names.location(&hosts[1]);
        assert_eq!(b.addr, None);
        assert_eq!(
            b.error.as_deref(),
            Some("b.test:9001 did not resolve: no such name in the table")
        );
        assert_eq!(names.0.len(), 2, "IP addresses are not looked up");
        let failures = |h: &str| metrics.host(h).resolve_failures.load(Ordering::Relaxed);
        assert_eq!((failures("a"), failures("b")), (0, 1));
        // The same host with another configured name is not the one looked up.
        assert_eq!(
            names.location(&host("a", "other.test:9001")),
            Location::pending(&"other.test:9001".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn a_new_address_is_published_with_the_same_ring_counters_and_admission() {
        let (a1, a2) = (
            SocketAddr::from(([127, 0, 0, 1], 9101)),
            SocketAddr::from(([127, 0, 0, 2], 9101)),
        );
        let (shared, _events, _control) =
            Shared::for_tests(&[("h0".to_owned(), SocketAddr::from(([127, 0, 0, 1], 9000)))]);
        // Make h1 a named host at a1, and h2 a named host that never resolved.
        let hosts = vec![
            host("h0", "127.0.0.1:9000"),
            host("h1", "h1.test:9101"),
            host("h2", "h2.test:9101"),
        ];
        let table = Arc::new(Table::default());
        table.0.lock().unwrap().insert("h1.test".into(), vec![a1]);
        let resolver: Arc<dyn Resolve> = table.clone();
        let mut names =
            Names::resolve_at_start(&hosts, &resolver, &shared.metrics, Instant::now).await;
        let fleet = Fleet::build(
            &hosts,
            16,
            &shared.keys,
            &shared.metrics,
            shared.now(),
            |h| names.location(h),
        )
        .expect("fleet");
        let fleet = Arc::new(fleet);
        shared.publish_routing(|_| {
            let p = crate::control::fleet::Published::open(Arc::clone(&fleet), 0);
            let admission = (0..3).map(|i| p.snapshot.admission(HostId(i))).collect();
            Some((Arc::clone(&fleet), admission))
        });
        let id = |name: &str| shared.fleet().id_of(name).expect("host");
        let admission = |name: &str| shared.published.load().snapshot.admission(id(name));
        assert_eq!(admission("h1"), Admission::Open);
        assert_eq!(admission("h2"), Admission::Closed(SkipReason::Unresolved));
        let permit = fleet
            .loads
            .try_acquire(id("h1"), shared.now())
            .expect("permit");

        // h1 moves; h2 still fails: one new generation.
        table.0.lock().unwrap().insert("h1.test".into(), vec![a2]);
        names.follow(&shared.fleet());
        for (host, answer) in names.look_up(&resolver).await {
            names.observe(&host, answer, shared.now(), &shared.metrics);
        }
        assert!(publish(&shared, &names.locations()));
        let now = shared.fleet();
        assert!(Arc::ptr_eq(&now.ring, &fleet.ring), "the same ring");
        assert!(Arc::ptr_eq(&now.loads, &fleet.loads), "the same counters");
        assert_eq!(now.loads.oldest(id("h1").index(), shared.now()).0, 1);
        assert_eq!(now.host(id("h1")).location, Location::at(a2));
        assert_eq!(now.host(id("h1")).authority.as_str(), "127.0.0.2:9101");
        assert_eq!(admission("h1"), Admission::Open);
        assert_eq!(admission("h2"), Admission::Closed(SkipReason::Unresolved));
        drop(permit);

        // Nothing changed: nothing published.
        names.follow(&shared.fleet());
        for (host, answer) in names.look_up(&resolver).await {
            names.observe(&host, answer, shared.now(), &shared.metrics);
        }
        assert!(!publish(&shared, &names.locations()));

        // h1's name fails: it keeps a2 (only the error is new); h2 resolves: it opens.
        table.0.lock().unwrap().remove("h1.test");
        table.0.lock().unwrap().insert("h2.test".into(), vec![a1]);
        names.follow(&shared.fleet());
        for (host, answer) in names.look_up(&resolver).await {
            names.observe(&host, answer, shared.now(), &shared.metrics);
        }
        assert!(publish(&shared, &names.locations()));
        let now = shared.fleet();
        assert_eq!(now.host(id("h1")).location.addr, Some(a2));
        assert!(now.host(id("h1")).location.error.is_some());
        assert_eq!(now.host(id("h2")).location, Location::at(a1));
        assert_eq!(admission("h1"), Admission::Open);
        assert_eq!(admission("h2"), Admission::Open);
    }
}
