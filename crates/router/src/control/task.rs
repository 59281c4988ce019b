//! The one task that owns the health state (`health::Health<HostKey>`).
//!
//! It is fed outcomes and in-band reports over a bounded channel the request path writes
//! with `try_send` (never blocking; a full queue drops the event and counts it), probe
//! results from the prober, and control messages (operator commands, reloads). On a tick it
//! reads every host's in-flight count and oldest in-flight age, and lets the state machine
//! expire its timers. Whenever a host's routing changes it publishes a new snapshot.
//!
//! It also owns the cascade guard (`health::guard::Guard`): every tick it samples which Vals
//! each host has in flight, every answered request feeds the guard's baseline, and when a
//! host fails the guard names the Val that explains it. Suspects and quarantined Vals are
//! published to the request path ([`crate::control::vals::ValSet`]) before the snapshot that ejects
//! the host, so requests woken by the ejection already see the verdict.

use std::sync::Arc;
use std::time::{Duration, Instant};

use health::guard::{Guard, GuardConfig, ValInfo, ValReason, ValState, ValTransition};
use health::{Health, HealthConfig, HealthSnapshot, Outcome, StateKind, Transition};
use router_core::Admission;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::control::etcd::Outbound;
use crate::control::fleet::{Fleet, HostKey};
use crate::control::history::{self, Counts, Event, HostSample, ValChange};
use crate::control::messages::{Control, HealthEvent, OperatorReply, Origin, ValCommand, ValShare};
use crate::control::shared::Shared;
use crate::control::vals::ValSet;
use crate::control::view::HealthView;

/// How often in-flight ages are read and timers checked even when nothing else happens.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// Capacity of the request path's event queue.
pub(crate) const EVENT_QUEUE: usize = 8192;

/// The health task's state.
pub(crate) struct HealthTask {
    health: Health<HostKey>,
    config: HealthConfig,
    guard: Guard<HostKey, u64>,
    fleet: Arc<Fleet>,
    shared: Arc<Shared>,
    transitions: Vec<Transition<HostKey>>,
    val_transitions: Vec<ValTransition<HostKey, u64>>,
    /// Scratch for the guard's in-flight samples (reused every tick).
    sample: Vec<(u64, Duration)>,
    /// The guard's records as the admin view shows them, rebuilt when they change (and
    /// once a second while some Val is restricted: a held quarantine moves its end on).
    vals_view: Arc<Vec<ValInfo<HostKey, u64>>>,
    vals_view_at: Option<Instant>,
    /// When the admin view was last refreshed (it is refreshed at most once per tick
    /// unless something changed, so a busy event stream does not rebuild it per batch).
    last_view: Option<Instant>,
    /// When the status page's history next samples every host (once a second).
    next_sample: Option<Instant>,
}

impl HealthTask {
    /// A task over the shared state's current fleet.
    pub(crate) fn new(shared: Arc<Shared>, config: HealthConfig, guard: GuardConfig) -> Self {
        let fleet = shared.fleet();
        let mut health = Health::new(config.clone());
        health.set_hosts(fleet.hosts.iter().map(|h| h.key), shared.now());
        let mut guard = Guard::new(guard);
        guard.set_hosts(fleet.hosts.iter().map(|h| h.key));
        let started = format!("started with {} hosts", fleet.hosts.len());
        let event = Event::router(shared.history.started(), started);
        shared.history.lock().event(event);
        HealthTask {
            health,
            config,
            guard,
            fleet,
            shared,
            transitions: Vec::new(),
            val_transitions: Vec::new(),
            sample: Vec::new(),
            vals_view: Arc::default(),
            vals_view_at: None,
            last_view: None,
            next_sample: None,
        }
    }

    /// Runs until both channels close.
    pub(crate) async fn run(
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
            HealthEvent::Outcome { host, val, outcome } => {
                if let Outcome::Success { latency } | Outcome::ServerError { latency } = outcome {
                    self.guard.record_completion(host, val, latency, now);
                }
                self.health.record_outcome(host, outcome, now)
            }
            HealthEvent::Report { host, report } => self.health.record_report(host, &report, now),
            HealthEvent::Probe { host, result } => self.health.record_probe(host, result, now),
            HealthEvent::Batch(events) => {
                return events
                    .into_iter()
                    .fold(false, |changed, ev| self.handle_event(ev) | changed);
            }
        };
        self.note(t)
    }

    fn handle_control(&mut self, msg: Control) -> bool {
        match msg {
            Control::Operator {
                host,
                command,
                reply,
                origin,
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
                info!(host = %host, ?command, state = %state, ?origin, "operator command");
                // Publish before the reply: once an operator sees 200, no new
                // request may reach a drained or ejected host.
                self.publish(changed);
                let _ = reply.send(OperatorReply::Done(state));
                if let (Origin::Local, Some(link)) = (origin, &self.shared.etcd) {
                    link.send(Outbound::Command {
                        host,
                        command,
                        eject_for: self.config.ejection_max,
                    });
                }
                false
            }
            Control::PeerEjection {
                host,
                reason,
                by,
                remaining,
            } => {
                let Some(id) = self.fleet.id_of(&host) else {
                    return false;
                };
                let key = self.fleet.host(id).key;
                let now = self.now();
                let t = self.health.adopt_peer_ejection(key, now + remaining, now);
                let adopted = t.is_some();
                info!(
                    host = %host,
                    by = %by,
                    reason = %reason,
                    remaining_ms = remaining.as_millis() as u64,
                    adopted,
                    "a peer router ejected a host"
                );
                let text = if adopted {
                    format!("{host}: adopted {by}'s ejection ({reason})")
                } else {
                    format!(
                        "{host}: {by} ejected it ({reason}); not adopted (out already, or the ejected-share cap)"
                    )
                };
                self.shared.history.lock().event(Event::router(now, text));
                self.note(t)
            }
            Control::Val {
                key,
                command,
                reply,
                origin,
            } => {
                let val = router_core::KeyHash::of(key.as_bytes()).0;
                let now = self.now();
                let t = match command {
                    ValCommand::Quarantine => self.guard.quarantine(val, Some(&key), now),
                    ValCommand::Release => self.guard.release(val, now),
                };
                self.val_transitions.extend(t);
                self.publish(true);
                let _ = reply.send(self.guard.state_of(val));
                if let (Origin::Local, Some(link)) = (origin, &self.shared.etcd) {
                    let share = match command {
                        ValCommand::Quarantine => ValShare::Quarantine(None),
                        ValCommand::Release => ValShare::Release,
                    };
                    link.send(Outbound::Val {
                        val,
                        name: Some(key),
                        share,
                    });
                }
                false
            }
            Control::PeerVal {
                val,
                name,
                share,
                by,
            } => {
                let now = self.now();
                let t = match share {
                    ValShare::Quarantine(Some(left)) => {
                        self.guard
                            .adopt_peer_quarantine(val, name.as_deref(), now + left, now)
                    }
                    ValShare::Quarantine(None) => self.guard.quarantine(val, name.as_deref(), now),
                    ValShare::Release => self.guard.release(val, now),
                };
                info!(val = name.as_deref().unwrap_or("?"), by = %by, ?share, applied = t.is_some(), "Val quarantine from a peer router");
                self.val_transitions.extend(t);
                self.publish(true);
                false
            }
            Control::Reloaded => {
                let event = Event::router(self.now(), "config reloaded".to_owned());
                self.shared.history.lock().event(event);
                false
            }
            Control::FleetChanged => self.sync_fleet(),
        }
    }

    /// Adopts the shared fleet if a reload replaced it; host state of surviving names is kept.
    fn sync_fleet(&mut self) -> bool {
        let current = self.shared.fleet();
        self.adopt(current)
    }

    /// Takes `fleet` as the current ring generation if it is a new one (a reload published
    /// it); host and guard state of surviving names is kept.
    fn adopt(&mut self, fleet: Arc<Fleet>) -> bool {
        if Arc::ptr_eq(&fleet, &self.fleet) {
            return false;
        }
        let now = self.now();
        let names = |a: &Fleet, b: &Fleet| {
            let gone = a.hosts.iter().filter(|h| b.id_of(&h.name).is_none());
            gone.map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
        };
        let (added, removed) = (names(&fleet, &self.fleet), names(&self.fleet, &fleet));
        if !added.is_empty() || !removed.is_empty() {
            let mut text = "hosts changed:".to_owned();
            for (what, list) in [("added", added), ("removed", removed)] {
                if !list.is_empty() {
                    text.push_str(&format!(" {what} {list};"));
                }
            }
            text.pop();
            self.shared.history.lock().event(Event::router(now, text));
        }
        self.fleet = fleet;
        self.health
            .set_hosts(self.fleet.hosts.iter().map(|h| h.key), now);
        self.guard.set_hosts(self.fleet.hosts.iter().map(|h| h.key));
        true
    }

    fn handle_tick(&mut self) -> bool {
        let mut changed = self.sync_fleet();
        let now = self.now();
        let loads = Arc::clone(&self.fleet.loads);
        for (i, host) in self.fleet.hosts.iter().enumerate() {
            let (count, oldest) = loads.sample(i, now, &mut self.sample);
            self.guard.sample(host.key, self.sample.drain(..));
            // Before the host fails: a Val whose stuck requests dominate it is kept there,
            // so bounded-load spill does not carry it to the next host meanwhile.
            let serving = matches!(
                self.health.state(host.key),
                None | Some(health::HostState::Healthy { .. } | health::HostState::Degraded { .. })
            );
            if serving {
                self.guard.watch(host.key, now, &mut self.val_transitions);
            }
            let t = self.health.record_in_flight(host.key, count, oldest, now);
            if let Some(t) = t {
                self.transitions.push(t);
                changed = true;
            }
        }
        let health = &self.health;
        let out = |h: &HostKey| {
            health
                .state(*h)
                .is_some_and(|s| matches!(s, health::HostState::Ejected { .. }))
        };
        self.guard
            .handle_timeout(now, out, &mut self.val_transitions);
        self.record_history(now);
        changed | self.expire()
    }

    fn expire(&mut self) -> bool {
        let before = self.transitions.len();
        let now = self.now();
        self.health.handle_timeout(now, &mut self.transitions);
        self.transitions.len() > before
    }

    /// The status page's history, every tick: each host's pool figures (the published
    /// view's), so a second's point keeps the fullest pool of that second; and once a
    /// second a point for every host from the counters the request path keeps anyway
    /// (relaxed loads).
    fn record_history(&mut self, now: Instant) {
        let view = self.shared.view.load();
        let mut recorder = self.shared.history.lock();
        for h in &self.fleet.hosts {
            if let Some(pool) = view.host(h.key).and_then(|s| s.pool) {
                recorder.note_pool(h.key, pool.into());
            }
        }
        if self.next_sample.is_some_and(|t| now < t) {
            return;
        }
        self.next_sample = Some(now + history::SAMPLE_EVERY);
        let samples = self.fleet.hosts.iter().map(|h| {
            let health = view.host(h.key);
            HostSample {
                key: h.key,
                counts: Counts::read(&h.metrics),
                pool: health.and_then(|s| s.pool).map(Into::into),
                state: health.map_or(StateKind::Healthy, |s| s.state),
            }
        });
        recorder.sample(now, samples);
    }

    /// Logs transitions, then publishes a new routing snapshot if any host's routing changed
    /// (and the admin view always).
    fn publish(&mut self, changed: bool) {
        let now = self.now();
        let mut attributed = false;
        for t in &self.transitions {
            // A host that fails by its own signals (not an operator's word): which Val?
            // (A peer's ejection adopted here is no evidence of a Val here.)
            let failed = matches!(t.to, StateKind::Ejected | StateKind::Degraded)
                && !matches!(t.reason, health::Reason::Operator | health::Reason::Peer);
            if failed {
                self.guard
                    .on_host_failure(t.host, now, &mut self.val_transitions);
                attributed = true;
            }
        }
        let vals_changed = !self.val_transitions.is_empty();
        if vals_changed {
            self.publish_vals(now);
        }
        let restricted = self.vals_view.iter().any(|v| v.state != ValState::Normal);
        let stale = self
            .vals_view_at
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        // New evidence may be added to a record without a change of state.
        if vals_changed || attributed || (restricted && stale) {
            self.vals_view = Arc::new(self.guard.infos());
            self.vals_view_at = Some(now);
        }
        for t in self.transitions.drain(..) {
            let host = self.fleet.id_of_key(t.host).map(|id| self.fleet.host(id));
            let name = host.map_or("?", |h| h.name.as_str());
            if t.to == StateKind::Ejected {
                if let Some(h) = host {
                    h.metrics.record_ejection(t.reason);
                }
                warn!(host = name, from = %t.from, reason = %t.reason, "host ejected");
            } else {
                info!(host = name, from = %t.from, to = %t.to, reason = %t.reason, "host state changed");
            }
            let state = self.health.state(t.host);
            // This router's own detectors ejected it: the fleet hears of it (fleet mode).
            if let (Some(link), Some(health::HostState::Ejected { until, .. }), Some(h)) =
                (&self.shared.etcd, state, host)
            {
                let own = t.to == StateKind::Ejected
                    && !matches!(t.reason, health::Reason::Operator | health::Reason::Peer);
                if own {
                    link.send(Outbound::Ejection {
                        host: h.name.clone(),
                        reason: t.reason,
                        remaining: until.saturating_duration_since(now),
                    });
                }
            }
            let event = history::host_event(&t, name, state, self.config.probation_steps);
            self.shared.history.lock().event(event);
        }
        let fresh = self
            .last_view
            .is_some_and(|t| now.saturating_duration_since(t) < TICK);
        if !changed && !vals_changed && fresh {
            return;
        }
        self.last_view = Some(now);
        let snapshot = self.health.snapshot(now);
        let published = changed && {
            let shared = Arc::clone(&self.shared);
            shared.publish_routing(|current| {
                // A reload may have published a new fleet since the last look: adopt it,
                // never publish an old one over it.
                self.adopt(Arc::clone(&current.fleet));
                let admission = admissions(&self.fleet, &snapshot);
                let same = (0..admission.len()).all(|i| {
                    current.snapshot.admission(router_core::HostId(i as u32)) == admission[i]
                });
                (!same).then(|| (Arc::clone(&self.fleet), admission))
            })
        };
        if vals_changed && !published {
            // No host changed, but requests in flight must see the Vals' new verdicts.
            self.shared.generation.send_modify(|_| {});
        }
        self.shared.view.store(Arc::new(HealthView {
            snapshot,
            vals: Arc::clone(&self.vals_view),
        }));
    }

    /// Names, logs and counts the Vals' changes of state, then publishes the set of
    /// restricted Vals that the request path reads.
    fn publish_vals(&mut self, now: Instant) {
        for t in &mut self.val_transitions {
            if t.name.is_none() {
                // The Val's requests are still in flight on the host that implicated it.
                let hosts = t
                    .evidence
                    .and_then(|e| self.fleet.id_of_key(e.host))
                    .map(|id| id.index())
                    .into_iter()
                    .chain(0..self.fleet.hosts.len());
                t.name = hosts
                    .into_iter()
                    .find_map(|i| self.fleet.loads.name_of(i, t.val));
                if let Some(name) = &t.name {
                    self.guard.set_name(t.val, name);
                }
            }
        }
        for t in self.val_transitions.drain(..) {
            // This router's guard quarantined it on its own evidence: the fleet hears of it.
            let own = t.to == ValState::Quarantined
                && matches!(t.reason, ValReason::Dominant | ValReason::ImplicatedTwice);
            if let (true, Some(link), Some(until)) = (own, &self.shared.etcd, t.until) {
                link.send(Outbound::Val {
                    val: t.val,
                    name: t.name.clone(),
                    share: ValShare::Quarantine(Some(until.saturating_duration_since(now))),
                });
            }
            let key = t.name.as_deref().unwrap_or("?");
            let hash = format!("{:016x}", t.val);
            let host = t
                .evidence
                .and_then(|e| self.fleet.id_of_key(e.host))
                .map_or("", |id| self.fleet.host(id).name.as_str());
            let change = ValChange {
                from: t.from,
                to: t.to,
                reason: t.reason,
                host: (!host.is_empty()).then_some(host),
                until: t.until,
            };
            self.shared
                .history
                .lock()
                .event(Event::val(now, key, change));
            let lasts = t.until.map(|u| {
                humantime::format_duration(secs(u.saturating_duration_since(now))).to_string()
            });
            match (t.to, t.evidence) {
                (ValState::Quarantined, Some(e)) => {
                    self.shared.metrics.guard.record_quarantine(t.reason);
                    warn!(
                        key, val_hash = %hash, reason = %t.reason, host,
                        share = format!("{:.2}", e.share),
                        baseline_share = format!("{:.3}", e.baseline_share),
                        in_flight = e.in_flight, stuck = e.stuck, oldest_ms = e.oldest.as_millis() as u64,
                        lasts = lasts.as_deref().unwrap_or("until released"),
                        "Val quarantined: it is not carried to other hosts"
                    );
                }
                (ValState::Quarantined, None) => {
                    self.shared.metrics.guard.record_quarantine(t.reason);
                    warn!(key, val_hash = %hash, reason = %t.reason, "Val quarantined");
                }
                (ValState::Suspect, Some(e)) => {
                    warn!(
                        key, val_hash = %hash, reason = %t.reason, host,
                        share = format!("{:.2}", e.share),
                        baseline_share = format!("{:.3}", e.baseline_share),
                        in_flight = e.in_flight, stuck = e.stuck, oldest_ms = e.oldest.as_millis() as u64,
                        "Val suspected: kept to its own host (no retry, rescue or spill)"
                    );
                }
                (to, _) => {
                    let level_warn = t.from == ValState::Quarantined;
                    if level_warn {
                        warn!(key, val_hash = %hash, reason = %t.reason, from = %t.from, to = %to, "Val released");
                    } else {
                        info!(key, val_hash = %hash, reason = %t.reason, from = %t.from, to = %to, "Val state changed");
                    }
                }
            }
        }
        self.shared
            .vals
            .store(Arc::new(ValSet::from_guard(self.guard.restricted())));
    }
}

/// Whole seconds, rounded up (for log lines).
fn secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// Admission of each fleet host (by HostId index) from the health snapshot: the one mapping
/// from health to routing, shared with embedders (`ringward_embed::admission`). A host in
/// probation gets its share of its own keys as a ramp in the snapshot itself, so the proxy
/// and `/admin/route` make the same choice. A host with no address (a name that has not
/// resolved) is closed whatever its health, panic mode included.
pub(crate) fn admissions(fleet: &Fleet, snapshot: &HealthSnapshot<HostKey>) -> Vec<Admission> {
    let mut admission = ringward_embed::admissions(fleet.hosts.iter().map(|h| h.key), snapshot);
    for (a, host) in admission.iter_mut().zip(&fleet.hosts) {
        if host.location.addr.is_none() {
            *a = Admission::Closed(router_core::SkipReason::Unresolved);
        }
    }
    admission
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

    use tokio::sync::oneshot;

    use super::*;

    /// Sends an operator command to the running task and waits for its reply.
    async fn operator(shared: &Shared, host: &str, command: OperatorCommand) -> OperatorReply {
        let (reply, rx) = oneshot::channel();
        shared
            .control
            .send(Control::Operator {
                host: host.into(),
                command,
                reply,
                origin: Origin::Local,
            })
            .expect("send");
        rx.await.expect("reply")
    }

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
        let config = shared.config.load();
        let task = HealthTask::new(
            Arc::clone(&shared),
            config.health.passive.clone(),
            config.guard.clone(),
        );
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
        let key = shared.fleet().hosts[0].key;
        let name = shared.fleet().hosts[0].name.clone();
        for _ in 0..5 {
            shared.send_event(HealthEvent::Outcome {
                host: key,
                val: 0,
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
        let reply = operator(&shared, "h1", OperatorCommand::Drain).await;
        assert_eq!(reply, OperatorReply::Done(StateKind::Draining));
        assert_eq!(
            admission_of(&shared, "h1"),
            Admission::Closed(SkipReason::Draining)
        );

        let reply = operator(&shared, "nope", OperatorCommand::Eject).await;
        assert_eq!(reply, OperatorReply::UnknownHost);
    }

    #[tokio::test(start_paused = true)]
    async fn old_in_flight_requests_eject_a_hung_host() {
        let (shared, task, events, control) = setup(3);
        let mut generation = shared.generation.subscribe();
        let fleet = Arc::clone(&shared.fleet());
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

    #[tokio::test(start_paused = true)]
    async fn the_history_samples_every_second_and_records_transitions() {
        let (shared, task, events, control) = setup(2);
        tokio::spawn(task.run(events, control));
        operator(&shared, "h1", OperatorCommand::Drain).await;
        let fleet = shared.fleet();
        fleet.hosts[0]
            .metrics
            .record(http::StatusCode::OK, Duration::from_millis(3));
        // Simulated time: 3.5 s pass at once. The first sample is the baseline, then one a
        // second.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let history = shared.history.lock();
        for h in &fleet.hosts {
            assert_eq!(history.points(h.key).count(), 3, "{}", h.name);
        }
        let h0: Vec<_> = history.points(fleet.hosts[0].key).collect();
        assert!(
            h0.iter().map(|p| p.rps).sum::<f32>() > 0.0,
            "the response counted"
        );
        let h1 = history.points(fleet.hosts[1].key).last().expect("a point");
        assert_eq!(h1.state, StateKind::Draining);
        let texts: Vec<(&str, &str)> = history
            .events()
            .map(|e| (e.subject.as_str(), e.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                ("h1", "draining (an operator's command): no new requests"),
                ("", "started with 2 hosts"),
            ]
        );
    }
}
