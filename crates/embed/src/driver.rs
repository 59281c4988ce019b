//! The driver: the one task that owns the health state machine and publishes snapshots.

use std::sync::Arc;
use std::time::{Duration, Instant};

use health::{Health, StateKind, Transition};
use router_core::{HostId, Snapshot};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::admission::admissions;
use crate::loads::HostLoads;
use crate::shared::{Event, Shared, now};

/// The next snapshot to publish, if any host's admission changed: `current`'s ring with the
/// admission of every host in `health` at `now` and the next generation; `None` when every
/// admission is as `current` has it.
///
/// A plain function of its inputs, so the publication rule can be tested on simulated time.
pub fn next_snapshot(
    current: &Snapshot,
    health: &Health<HostId>,
    now: Instant,
) -> Option<Snapshot> {
    let ids = (0..current.ring().len()).map(|i| HostId(i as u32));
    let admission = admissions(ids, &health.snapshot(now));
    let same = admission
        .iter()
        .enumerate()
        .all(|(i, a)| current.admission(HostId(i as u32)) == *a);
    (!same).then(|| {
        Snapshot::new(
            Arc::clone(current.ring()),
            admission,
            current.generation() + 1,
        )
    })
}

/// The pure part of the driver: the health state machine and what it has to say, advanced
/// by the driver's inputs at the instants given.
#[derive(Debug)]
pub(crate) struct Monitor {
    pub(crate) health: Health<HostId>,
    transitions: Vec<Transition<HostId>>,
}

impl Monitor {
    pub(crate) fn new(mut health: Health<HostId>, hosts: usize, now: Instant) -> Monitor {
        health.set_hosts((0..hosts).map(|i| HostId(i as u32)), now);
        Monitor {
            health,
            transitions: Vec::new(),
        }
    }

    fn note(&mut self, t: Option<Transition<HostId>>) {
        self.transitions.extend(t);
    }

    /// An outcome or a report from the request path.
    pub(crate) fn on_event(&mut self, event: Event, now: Instant) {
        let t = match event {
            Event::Outcome(host, outcome) => self.health.record_outcome(host, outcome, now),
            Event::Report(host, report) => self.health.record_report(host, &report, now),
        };
        self.note(t);
    }

    /// The tick: every host's in-flight count and oldest age, then what time does.
    pub(crate) fn on_tick(&mut self, loads: &HostLoads, now: Instant) {
        for i in 0..loads.len() {
            let (count, oldest) = loads.oldest(i, now);
            let t = self
                .health
                .record_in_flight(HostId(i as u32), count, oldest, now);
            self.note(t);
        }
        self.on_deadline(now);
    }

    /// Timers: ejections ending, probation steps, hung requests, strike decay.
    pub(crate) fn on_deadline(&mut self, now: Instant) {
        self.health.handle_timeout(now, &mut self.transitions);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.health.next_deadline()
    }

    /// Logs what changed since the last call and, if anything did, publishes a new snapshot
    /// when an admission changed. Returns whether one was published.
    pub(crate) fn publish(&mut self, shared: &Shared, now: Instant) -> bool {
        if self.transitions.is_empty() {
            return false;
        }
        for t in self.transitions.drain(..) {
            let name = shared
                .hosts
                .get(t.host.index())
                .map_or("?", |h| h.host.name.as_str());
            if t.to == StateKind::Ejected {
                tracing::warn!(host = name, from = %t.from, reason = %t.reason, "host ejected");
            } else {
                tracing::info!(host = name, from = %t.from, to = %t.to, reason = %t.reason, "host state changed");
            }
        }
        let current = shared.snapshot.load();
        let Some(next) = next_snapshot(&current, &self.health, now) else {
            return false;
        };
        let generation = next.generation();
        shared.snapshot.store(Arc::new(next));
        shared.generation.send_replace(generation);
        true
    }

    /// Refreshes the balancer's health view.
    pub(crate) fn show(&self, shared: &Shared, now: Instant) {
        shared.health.store(Arc::new(self.health.snapshot(now)));
    }
}

/// The health driver of a [`Balancer`](crate::Balancer): owns the health state machine, feeds
/// it the request path's outcomes and reports, reads every host's in-flight count and oldest
/// in-flight age each tick, acts on its timers, and publishes a new routing snapshot whenever
/// a host's admission changes.
///
/// Run it with [`run`](Self::run) in a task of your own, or [`spawn`](Self::spawn) it.
pub struct Driver {
    pub(crate) monitor: Monitor,
    shared: Arc<Shared>,
    pub(crate) events: mpsc::Receiver<Event>,
    tick: Duration,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("hosts", &self.shared.hosts.len())
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl Driver {
    pub(crate) fn new(
        health: Health<HostId>,
        shared: Arc<Shared>,
        events: mpsc::Receiver<Event>,
        tick: Duration,
        now: Instant,
    ) -> Driver {
        let monitor = Monitor::new(health, shared.hosts.len(), now);
        Driver {
            monitor,
            shared,
            events,
            tick,
        }
    }

    /// Runs until every [`Balancer`](crate::Balancer) clone and [`Pick`](crate::Pick) is
    /// dropped (or the future is dropped). Needs tokio's time driver.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.monitor.show(&self.shared, now());
        loop {
            let deadline = self
                .monitor
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let mut ticked = false;
            // Time first: a flood of outcomes must not hold back the in-flight ages.
            tokio::select! {
                biased;
                _ = tick.tick() => {
                    self.monitor.on_tick(&self.shared.loads, now());
                    ticked = true;
                }
                () = sleep_until(deadline) => self.monitor.on_deadline(now()),
                event = self.events.recv() => {
                    let Some(event) = event else { return };
                    self.monitor.on_event(event, now());
                    // Drain a batch before publishing, so a burst costs one publication.
                    for _ in 0..1024 {
                        match self.events.try_recv() {
                            Ok(event) => self.monitor.on_event(event, now()),
                            Err(_) => break,
                        }
                    }
                }
            }
            let now = now();
            if self.monitor.publish(&self.shared, now) || ticked {
                self.monitor.show(&self.shared, now);
            }
        }
    }

    /// Spawns [`run`](Self::run) on the current tokio runtime. The task stops when the
    /// handle is dropped, or with [`DriverHandle::stop`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(self) -> DriverHandle {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tokio::select! {
                () = self.run() => {}
                _ = stopped => {}
            }
        });
        DriverHandle {
            task,
            stop: Some(stop),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A spawned [`Driver`]: dropping it stops the driver (health then stands still: the
/// snapshot in force stays as it is).
#[derive(Debug)]
#[must_use = "dropping the handle stops the driver"]
pub struct DriverHandle {
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl DriverHandle {
    /// Stops the driver and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Whether the driver has ended (every balancer dropped, or stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for DriverHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use health::{GatewayFailure, HealthConfig, HealthReport, Outcome, PoolReport};
    use router_core::{Admission, SkipReason};

    use super::*;
    use crate::Balancer;
    use crate::testing::hosts;

    /// A balancer and its driver's parts, stepped by hand on simulated time.
    struct Sim {
        balancer: Balancer,
        monitor: Monitor,
        events: mpsc::Receiver<Event>,
        t0: Instant,
    }

    impl Sim {
        fn new(n: usize) -> Sim {
            let (balancer, driver) = Balancer::builder(hosts(n)).build().unwrap();
            let Driver {
                monitor, events, ..
            } = driver;
            // The origin of the simulated timeline (the loads count from just before it).
            let t0 = now();
            Sim {
                balancer,
                monitor,
                events,
                t0,
            }
        }

        fn at(&self, ms: u64) -> Instant {
            self.t0 + Duration::from_millis(ms)
        }

        /// Feeds every queued event at `at`, then publishes as the driver would.
        fn drain(&mut self, at: Instant) -> bool {
            while let Ok(event) = self.events.try_recv() {
                self.monitor.on_event(event, at);
            }
            self.monitor.publish(&self.balancer.shared, at)
        }

        fn tick(&mut self, at: Instant) -> bool {
            self.monitor.on_tick(&self.balancer.shared.loads, at);
            self.monitor.publish(&self.balancer.shared, at)
        }
    }

    #[test]
    fn next_snapshot_only_when_an_admission_changes() {
        let sim = Sim::new(3);
        let t0 = sim.t0;
        let mut health = Health::new(HealthConfig::default());
        health.set_hosts((0..3).map(HostId), t0);
        let current = sim.balancer.snapshot();
        assert!(
            next_snapshot(&current, &health, t0).is_none(),
            "all open already"
        );
        for _ in 0..5 {
            health.record_outcome(
                HostId(2),
                Outcome::GatewayFailure(GatewayFailure::ConnectRefused),
                t0,
            );
        }
        let next = next_snapshot(&current, &health, t0).expect("host 2 closed");
        assert_eq!(next.generation(), current.generation() + 1);
        assert_eq!(
            next.admission(HostId(2)),
            Admission::Closed(SkipReason::Ejected)
        );
        assert!(Arc::ptr_eq(next.ring(), current.ring()), "the same ring");
        assert!(
            next_snapshot(&next, &health, t0).is_none(),
            "published already"
        );
    }

    #[test]
    fn gateway_failures_eject_and_the_key_moves_then_ramps_back() {
        let mut sim = Sim::new(3);
        let key = b"alice-hello";
        let own = sim.balancer.route(key).unwrap().host();
        for _ in 0..4 {
            let pick = sim.balancer.route(key).unwrap();
            assert!(pick.record(Outcome::GatewayFailure(GatewayFailure::Reset)));
        }
        assert!(!sim.drain(sim.at(10)), "four are not enough");
        sim.balancer
            .record(own, Outcome::GatewayFailure(GatewayFailure::Reset));
        assert!(sim.drain(sim.at(20)), "the fifth ejects");
        assert_eq!(
            sim.balancer.admission(own),
            Admission::Closed(SkipReason::Ejected)
        );
        assert_eq!(*sim.balancer.changes().borrow(), 1);
        let moved = sim.balancer.route(key).unwrap().host();
        assert_ne!(moved, own);
        // Nothing else to publish meanwhile.
        assert!(!sim.tick(sim.at(4000)));
        // The ejection (5 s) ends: probation takes back a quarter of its own keys.
        assert!(sim.tick(sim.at(5020)));
        assert_eq!(sim.balancer.admission(own), Admission::Ramp(250));
        assert_eq!(*sim.balancer.changes().borrow(), 2);
    }

    #[test]
    fn old_unanswered_requests_eject_a_hung_host_on_a_tick() {
        let mut sim = Sim::new(3);
        let t0 = sim.t0;
        let loads = Arc::clone(sim.balancer.loads());
        // Two requests start on host 0 and never finish.
        let _a = loads.try_acquire(HostId(0), t0).unwrap();
        let _b = loads.try_acquire(HostId(0), t0).unwrap();
        let mut ejected_at = None;
        for ms in (50..=1000).step_by(50) {
            if sim.tick(sim.at(ms)) {
                ejected_at = Some(ms);
                break;
            }
        }
        assert_eq!(
            sim.balancer.admission(HostId(0)),
            Admission::Closed(SkipReason::Ejected)
        );
        let ms = ejected_at.unwrap();
        assert!(
            (500..=600).contains(&ms),
            "at hung_after, on a tick: {ms} ms"
        );
    }

    #[test]
    fn an_exhausted_pool_reported_in_band_ejects_within_a_second() {
        let mut sim = Sim::new(3);
        let exhausted = HealthReport {
            status: None,
            pool: Some(PoolReport {
                max: 10,
                in_use: 10,
                waiting: 7,
                oldest_checkout: Duration::from_secs(5),
            }),
        };
        sim.balancer.record_report(HostId(1), exhausted);
        assert!(!sim.drain(sim.at(0)), "one report is not proof");
        sim.balancer.record_report(HostId(1), exhausted);
        assert!(sim.drain(sim.at(500)));
        assert_eq!(
            sim.balancer.admission(HostId(1)),
            Admission::Closed(SkipReason::Ejected)
        );
    }

    #[test]
    fn the_health_view_follows_the_state_machine() {
        let mut sim = Sim::new(2);
        assert!(
            sim.balancer.health().hosts.is_empty(),
            "before the driver runs"
        );
        sim.monitor.show(&sim.balancer.shared, sim.t0);
        let view = sim.balancer.health();
        assert_eq!(view.hosts.len(), 2);
        assert!(view.hosts.iter().all(|h| h.state == StateKind::Healthy));
        for _ in 0..5 {
            sim.balancer
                .record(HostId(1), Outcome::GatewayFailure(GatewayFailure::Protocol));
        }
        assert!(sim.drain(sim.at(1)));
        sim.monitor.show(&sim.balancer.shared, sim.at(1));
        let view = sim.balancer.health();
        assert_eq!(view.hosts[1].host, HostId(1));
        assert_eq!(view.hosts[1].state, StateKind::Ejected);
        assert_eq!(view.hosts[0].state, StateKind::Healthy);
    }

    #[tokio::test(start_paused = true)]
    async fn the_spawned_driver_publishes_an_ejection() {
        let (balancer, handle) = Balancer::builder(hosts(3)).start().unwrap();
        let mut changes = balancer.changes();
        for _ in 0..5 {
            balancer.record(
                HostId(1),
                Outcome::GatewayFailure(GatewayFailure::ConnectRefused),
            );
        }
        // Wait for the publication (an event, not a sleep).
        changes.changed().await.unwrap();
        assert_eq!(
            balancer.admission(HostId(1)),
            Admission::Closed(SkipReason::Ejected)
        );
        let view = balancer.health();
        assert_eq!(view.hosts[1].state, StateKind::Ejected);
        handle.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_spawned_driver_ejects_a_hung_host_after_hung_after() {
        let (balancer, _handle) = Balancer::builder(hosts(3)).start().unwrap();
        let mut changes = balancer.changes();
        let key = b"alice-hello";
        let started = tokio::time::Instant::now();
        let stuck = [balancer.route(key).unwrap(), balancer.route(key).unwrap()];
        let own = stuck[0].host();
        changes.changed().await.unwrap();
        let took = started.elapsed();
        assert_eq!(
            balancer.admission(own),
            Admission::Closed(SkipReason::Ejected)
        );
        assert!(
            took >= Duration::from_millis(500) && took <= Duration::from_millis(600),
            "{took:?}"
        );
        assert_ne!(balancer.route(key).unwrap().host(), own, "the key moved");
    }

    #[tokio::test(start_paused = true)]
    async fn the_driver_ends_with_its_balancer_or_its_handle() {
        let (balancer, mut handle) = Balancer::builder(hosts(1)).start().unwrap();
        drop(balancer);
        // The queue closes with the last balancer: the task ends by itself.
        tokio::time::timeout(Duration::from_secs(1), &mut handle.task)
            .await
            .expect("the driver ended")
            .expect("without a panic");
        assert!(handle.is_finished());

        // Dropping the handle aborts the driver (here before it first ran): outcomes are
        // queued but nothing reads them, and no snapshot is published any more.
        let (balancer, handle) = Balancer::builder(hosts(1)).start().unwrap();
        let changes = balancer.changes();
        drop(handle);
        for _ in 0..5 {
            balancer.record(
                HostId(0),
                Outcome::GatewayFailure(GatewayFailure::ConnectRefused),
            );
        }
        // Simulated time: two seconds pass at once, with the runtime idle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!changes.has_changed().unwrap(), "nothing published");
        assert_eq!(balancer.admission(HostId(0)), Admission::Open);
    }
}
