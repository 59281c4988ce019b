//! The one task that owns the health state (`health::Health<HostKey>`).
//!
//! It is fed outcomes and in-band reports over a bounded channel the request path writes
//! with `try_send` (never blocking; a full queue drops the event and counts it), probe
//! results from the prober, and control messages (operator commands, reloads). On a tick it
//! reads every host's in-flight count and oldest in-flight age, and lets the state machine
//! expire its timers. Whenever a host's routing changes it publishes a new snapshot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use health::{
    Health, HealthConfig, HealthReport, HealthSnapshot, HostHealth, OperatorCommand, Outcome,
    ProbeResult, Routing, StateKind, Transition,
};
use router_core::{Admission, SkipReason, Snapshot};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::fleet::{Fleet, HostKey, Published};
use crate::shared::Shared;

/// How often in-flight ages are read and timers checked even when nothing else happens.
pub const TICK: Duration = Duration::from_millis(50);

/// Capacity of the request path's event queue.
pub const EVENT_QUEUE: usize = 8192;

/// An observation from the request path or the prober.
#[derive(Debug)]
pub enum HealthEvent {
    /// A proxied request's outcome.
    Outcome {
        /// The host.
        host: HostKey,
        /// What happened.
        outcome: Outcome,
    },
    /// An in-band (ORCA) report.
    Report {
        /// The host.
        host: HostKey,
        /// What it said.
        report: HealthReport,
    },
    /// An active probe's result.
    Probe {
        /// The host.
        host: HostKey,
        /// What the probe saw.
        result: ProbeResult,
    },
}

/// What an operator command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorReply {
    /// Applied; the host's state now.
    Done(StateKind),
    /// No host by that name.
    UnknownHost,
}

/// Rare messages that must not be dropped.
#[derive(Debug)]
pub enum Control {
    /// An operator command from the admin API.
    Operator {
        /// Host name.
        host: String,
        /// Drain, eject or restore.
        command: OperatorCommand,
        /// Where the result goes.
        reply: oneshot::Sender<OperatorReply>,
    },
    /// New passive-health settings from a reload.
    Config(HealthConfig),
    /// The fleet changed (reload): re-read it now.
    FleetChanged,
}

/// The health task's state.
pub struct HealthTask {
    health: Health<HostKey>,
    config: HealthConfig,
    fleet: Arc<Fleet>,
    shared: Arc<Shared>,
    transitions: Vec<Transition<HostKey>>,
    /// When the admin view was last refreshed (it is refreshed at most once per tick
    /// unless something changed, so a busy event stream does not rebuild it per batch).
    last_view: Option<Instant>,
}

impl HealthTask {
    /// A task over the shared state's current fleet.
    pub fn new(shared: Arc<Shared>, config: HealthConfig) -> Self {
        let fleet = Arc::clone(&shared.published.load().fleet);
        let mut health = Health::new(config.clone());
        health.set_hosts(fleet.hosts.iter().map(|h| h.key), shared.now());
        HealthTask {
            health,
            config,
            fleet,
            shared,
            transitions: Vec::new(),
            last_view: None,
        }
    }

    /// Runs until both channels close.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<HealthEvent>,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.publish(true);
        loop {
            let deadline = self
                .health
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let mut changed = false;
            tokio::select! {
                biased;
                msg = control.recv() => match msg {
                    Some(msg) => changed |= self.handle_control(msg),
                    None => return,
                },
                ev = events.recv() => match ev {
                    Some(ev) => {
                        changed |= self.handle_event(ev);
                        // Drain a batch before publishing, so a burst costs one publish.
                        for _ in 0..1024 {
                            match events.try_recv() {
                                Ok(ev) => changed |= self.handle_event(ev),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => changed |= self.handle_tick(),
                () = sleep_until_opt(deadline) => changed |= self.expire(),
            }
            self.publish(changed);
        }
    }

    fn now(&self) -> Instant {
        self.shared.now()
    }

    fn note(&mut self, t: Option<Transition<HostKey>>) -> bool {
        match t {
            Some(t) => {
                self.transitions.push(t);
                true
            }
            None => false,
        }
    }

    fn handle_event(&mut self, ev: HealthEvent) -> bool {
        let now = self.now();
        let t = match ev {
            HealthEvent::Outcome { host, outcome } => {
                self.health.record_outcome(host, outcome, now)
            }
            HealthEvent::Report { host, report } => self.health.record_report(host, &report, now),
            HealthEvent::Probe { host, result } => self.health.record_probe(host, result, now),
        };
        self.note(t)
    }

    fn handle_control(&mut self, msg: Control) -> bool {
        match msg {
            Control::Operator {
                host,
                command,
                reply,
            } => {
                let Some(id) = self.fleet.id_of(&host) else {
                    let _ = reply.send(OperatorReply::UnknownHost);
                    return false;
                };
                let key = self.fleet.host(id).key;
                let now = self.now();
                let t = self.health.handle_operator(key, command, now);
                let changed = self.note(t);
                let state = self
                    .health
                    .snapshot(now)
                    .hosts
                    .iter()
                    .find(|h| h.host == key)
                    .map_or(StateKind::Healthy, |h| h.state);
                info!(host = %host, ?command, state = %state, "operator command");
                // Publish before the reply: once an operator sees 200, no new
                // request may reach a drained or ejected host.
                self.publish(changed);
                let _ = reply.send(OperatorReply::Done(state));
                false
            }
            Control::Config(config) => {
                if config != self.config {
                    warn!(
                        "health settings changed on reload; they apply to new state only after a restart"
                    );
                }
                false
            }
            Control::FleetChanged => self.sync_fleet(),
        }
    }

    /// Adopts the shared fleet if a reload replaced it; host state of surviving names is kept.
    fn sync_fleet(&mut self) -> bool {
        let current = Arc::clone(&self.shared.fleet.load());
        if Arc::ptr_eq(&current, &self.fleet) {
            return false;
        }
        self.fleet = current;
        let now = self.now();
        self.health
            .set_hosts(self.fleet.hosts.iter().map(|h| h.key), now);
        true
    }

    fn handle_tick(&mut self) -> bool {
        let mut changed = self.sync_fleet();
        let now = self.now();
        let loads = Arc::clone(&self.fleet.loads);
        for (i, host) in self.fleet.hosts.iter().enumerate() {
            let (count, oldest) = loads.oldest(i, now);
            let t = self.health.record_in_flight(host.key, count, oldest, now);
            if let Some(t) = t {
                self.transitions.push(t);
                changed = true;
            }
        }
        changed | self.expire()
    }

    fn expire(&mut self) -> bool {
        let before = self.transitions.len();
        let now = self.now();
        self.health.handle_timeout(now, &mut self.transitions);
        self.transitions.len() > before
    }

    /// Logs transitions, then publishes a new routing snapshot if any host's routing changed
    /// (and the admin view always).
    fn publish(&mut self, changed: bool) {
        for t in self.transitions.drain(..) {
            let name = self
                .fleet
                .id_of_key(t.host)
                .map_or("?", |id| self.fleet.host(id).name.as_str());
            if t.to == StateKind::Ejected {
                self.shared.metrics.record_ejection(t.reason.as_str());
                warn!(host = name, from = %t.from, reason = %t.reason, "host ejected");
            } else {
                info!(host = name, from = %t.from, to = %t.to, reason = %t.reason, "host state changed");
            }
        }
        let now = self.now();
        let fresh = self
            .last_view
            .is_some_and(|t| now.saturating_duration_since(t) < TICK);
        if !changed && fresh {
            return;
        }
        self.last_view = Some(now);
        let snapshot = self.health.snapshot(now);
        if changed {
            let _lock = self.shared.publish_lock();
            // A reload may have swapped the fleet since the last look; never publish an old one.
            let fleet = Arc::clone(&self.shared.fleet.load());
            if !Arc::ptr_eq(&fleet, &self.fleet) {
                self.fleet = Arc::clone(&fleet);
                self.health
                    .set_hosts(self.fleet.hosts.iter().map(|h| h.key), now);
            }
            let current = self.shared.published.load();
            let admission = admissions(&self.fleet, &snapshot);
            let same = Arc::ptr_eq(&current.fleet, &self.fleet)
                && (0..admission.len()).all(|i| {
                    current.snapshot.admission(router_core::HostId(i as u32)) == admission[i]
                });
            if !same {
                let generation = current.snapshot.generation() + 1;
                self.shared.published.store(Arc::new(Published {
                    snapshot: Snapshot::new(Arc::clone(&self.fleet.ring), admission, generation),
                    fleet: Arc::clone(&self.fleet),
                }));
                self.shared.generation.send_replace(generation);
            }
        }
        self.shared
            .view
            .store(Arc::new(HealthView { snapshot, at: now }));
    }
}

/// The latest health state, for the admin API and metrics.
#[derive(Debug)]
pub struct HealthView {
    /// The state machine's snapshot.
    pub snapshot: HealthSnapshot<HostKey>,
    /// When it was taken.
    pub at: Instant,
}

impl HealthView {
    /// An empty view (before the health task first runs).
    pub fn empty(at: Instant) -> Self {
        HealthView {
            snapshot: HealthSnapshot {
                hosts: Vec::new(),
                panic: None,
            },
            at,
        }
    }

    /// The health of host `key`, if known.
    pub fn host(&self, key: HostKey) -> Option<&HostHealth<HostKey>> {
        self.snapshot.hosts.iter().find(|h| h.host == key)
    }
}

/// Admission of each fleet host (by HostId index) from the health snapshot.
pub fn admissions(fleet: &Fleet, snapshot: &HealthSnapshot<HostKey>) -> Vec<Admission> {
    fleet
        .hosts
        .iter()
        .map(|h| {
            snapshot
                .hosts
                .iter()
                .find(|s| s.host == h.key)
                .map_or(Admission::Open, admission)
        })
        .collect()
}

/// What the routing snapshot should say about a host in this health state.
/// A host in probation gets its share of its own keys as a ramp in the
/// snapshot itself, so the proxy and `/admin/route` make the same choice.
pub fn admission(h: &HostHealth<HostKey>) -> Admission {
    match h.routing {
        Routing::Full => Admission::Open,
        Routing::OwnKeysOnly if h.admit_share() < 1.0 => {
            Admission::Ramp((h.admit_share().clamp(0.0, 1.0) * 1000.0) as u16)
        }
        Routing::OwnKeysOnly => Admission::OwnKeysOnly,
        Routing::None => Admission::Closed(match h.state {
            StateKind::Draining => SkipReason::Draining,
            StateKind::Probation => SkipReason::Probation,
            StateKind::Degraded => SkipReason::Degraded,
            StateKind::Ejected | StateKind::Healthy => SkipReason::Ejected,
        }),
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use health::{GatewayFailure, OperatorCommand, Outcome};
    use router_core::{Admission, HostId, SkipReason};

    use super::*;

    /// Shared state over `n` hosts (no sockets: the client connects lazily), plus the task.
    fn setup(
        n: usize,
    ) -> (
        Arc<Shared>,
        HealthTask,
        mpsc::Receiver<HealthEvent>,
        mpsc::UnboundedReceiver<Control>,
    ) {
        let hosts: Vec<(String, SocketAddr)> = (0..n)
            .map(|i| {
                (
                    format!("h{i}"),
                    SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16)),
                )
            })
            .collect();
        let (shared, events_rx, control_rx) = Shared::for_tests(&hosts);
        let passive = shared.config.load().health.passive.clone();
        let task = HealthTask::new(Arc::clone(&shared), passive);
        (shared, task, events_rx, control_rx)
    }

    fn admission_of(shared: &Shared, name: &str) -> Admission {
        let p = shared.published.load();
        let id = p.fleet.id_of(name).expect("host");
        p.snapshot.admission(id)
    }

    #[tokio::test(start_paused = true)]
    async fn gateway_failures_eject_and_publish_a_new_generation() {
        let (shared, task, events, control) = setup(3);
        let mut generation = shared.generation.subscribe();
        tokio::spawn(task.run(events, control));
        let key = shared.fleet.load().hosts[0].key;
        let name = shared.fleet.load().hosts[0].name.clone();
        for _ in 0..5 {
            shared.send_event(HealthEvent::Outcome {
                host: key,
                outcome: Outcome::GatewayFailure(GatewayFailure::ConnectRefused),
            });
        }
        // Wait for the publication (an event, not a sleep).
        while admission_of(&shared, &name) != Admission::Closed(SkipReason::Ejected) {
            generation.changed().await.expect("task alive");
        }
        assert!(*generation.borrow() >= 1);
        assert_eq!(shared.metrics.ejections("consecutive_gateway_failures"), 1);
        let view = shared.view.load();
        assert_eq!(view.host(key).expect("in view").state, StateKind::Ejected);
        // The other hosts stay open.
        let p = shared.published.load();
        let open = (0..3)
            .filter(|&i| p.snapshot.admission(HostId(i)) == Admission::Open)
            .count();
        assert_eq!(open, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn operator_commands_are_published_before_the_reply() {
        let (shared, task, events, control) = setup(2);
        tokio::spawn(task.run(events, control));
        let (reply, rx) = oneshot::channel();
        shared
            .control
            .send(Control::Operator {
                host: "h1".into(),
                command: OperatorCommand::Drain,
                reply,
            })
            .expect("send");
        assert_eq!(
            rx.await.expect("reply"),
            OperatorReply::Done(StateKind::Draining)
        );
        assert_eq!(
            admission_of(&shared, "h1"),
            Admission::Closed(SkipReason::Draining)
        );

        let (reply, rx) = oneshot::channel();
        shared
            .control
            .send(Control::Operator {
                host: "nope".into(),
                command: OperatorCommand::Eject,
                reply,
            })
            .expect("send");
        assert_eq!(rx.await.expect("reply"), OperatorReply::UnknownHost);
    }

    #[tokio::test(start_paused = true)]
    async fn old_in_flight_requests_eject_a_hung_host() {
        let (shared, task, events, control) = setup(3);
        let mut generation = shared.generation.subscribe();
        let fleet = Arc::clone(&shared.fleet.load());
        let now = shared.now();
        // Two requests start on h0 and never finish.
        let _a = fleet.loads.try_acquire(HostId(0), now).expect("permit");
        let _b = fleet.loads.try_acquire(HostId(0), now).expect("permit");
        let name = fleet.hosts[0].name.clone();
        tokio::spawn(task.run(events, control));
        let started = tokio::time::Instant::now();
        while admission_of(&shared, &name) != Admission::Closed(SkipReason::Ejected) {
            generation.changed().await.expect("task alive");
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(500),
            "not before hung_after: {took:?}"
        );
        assert!(
            took <= Duration::from_millis(700),
            "within a tick or two of it: {took:?}"
        );
        assert_eq!(shared.metrics.ejections("hung_requests"), 1);
    }
}
