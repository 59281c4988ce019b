//! `Health<K>`: the owner of every host's state, fed inputs, asked for decisions.

use std::time::{Duration, Instant};

use crate::active::{ProbeTracker, ProbeVerdict};
use crate::config::{HealthConfig, PanicPolicy};
use crate::outcome::{OperatorCommand, Outcome, ProbeResult};
use crate::passive::{Passive, bucket_nanos, ewma, tick};
use crate::pool::{PoolTracker, PoolVerdict};
use crate::report::{HealthReport, PoolReport};
use crate::snapshot::{HealthSnapshot, HostHealth};
use crate::state::{HostState, Reason, Routing, StateKind, Transition};

/// Fleet-latency EWMA weight: slow enough that one host's hang does not move it much.
const FLEET_ALPHA: f64 = 0.05;

/// One host's everything.
#[derive(Debug, Clone)]
struct Slot<K> {
    key: K,
    state: HostState,
    /// The reason of the latest transition.
    reason: Option<Reason>,
    strikes: u32,
    /// Strike decay counts healthy time from here.
    last_decay: Instant,
    passive: Passive,
    pool: PoolTracker,
    probe: ProbeTracker,
    /// In probation: the latest evidence against the host (a failed request or probe, a
    /// pool exhausted or stuck). A quiet step counts its time from here.
    probation_bad_at: Option<Instant>,
}

impl<K> Slot<K> {
    fn new(key: K, now: Instant) -> Self {
        Slot {
            key,
            state: HostState::Healthy { since: now },
            reason: None,
            strikes: 0,
            last_decay: now,
            passive: Passive::default(),
            pool: PoolTracker::default(),
            probe: ProbeTracker::default(),
            probation_bad_at: None,
        }
    }

    /// Notes evidence against a host in probation: a quiet step starts again from `now`.
    fn note_bad(&mut self, bad: bool, now: Instant) {
        if bad && matches!(self.state, HostState::Probation { .. }) {
            self.probation_bad_at = Some(now);
        }
    }

    /// When the current probation step may end on time alone (a quiet step), if the
    /// evidence allows it: the latest probe passed and arrived during the quiet window, the
    /// latest pool report of probation (if any) is neither exhausted nor stuck, and no
    /// detector fires. The window starts at the step, or at the latest evidence against.
    fn quiet_step_due(&self, config: &HealthConfig) -> Option<Instant> {
        let HostState::Probation {
            since, step_since, ..
        } = self.state
        else {
            return None;
        };
        let start = self
            .probation_bad_at
            .map_or(step_since, |bad| bad.max(step_since));
        // Figures from before probation were judged at expiry; only its own count now.
        let pool_ok = match self.pool.last {
            Some((report, at)) if at >= since => {
                PoolVerdict::judge(&report, config.stuck_after) == PoolVerdict::Ok
            }
            _ => true,
        };
        (self.probe.passed_since(start) && pool_ok && self.sick_reason(config).is_none())
            .then(|| start + config.probation_quiet_step)
    }

    /// The detector that wants this host out, by priority.
    fn sick_reason(&self, config: &HealthConfig) -> Option<Reason> {
        let gateway_limit = match self.state {
            HostState::Probation { .. } => config
                .probation_failures
                .min(config.consecutive_gateway_failures),
            _ => config.consecutive_gateway_failures,
        };
        if self.pool.firing {
            Some(Reason::PoolExhausted)
        } else if self.passive.hung {
            Some(Reason::HungRequests)
        } else if self.probe.consecutive_failures >= config.probe_failures {
            Some(Reason::ProbeFailures)
        } else if self.passive.consecutive_gateway >= gateway_limit {
            Some(Reason::ConsecutiveGatewayFailures)
        } else if self.passive.rate_firing {
            Some(Reason::FailureRate)
        } else {
            None
        }
    }

    /// Forgives one strike per `strike_decay` spent healthy.
    fn decay(&mut self, now: Instant, config: &HealthConfig) {
        if !matches!(self.state, HostState::Healthy { .. }) || self.strikes == 0 {
            return;
        }
        let healthy = now.saturating_duration_since(self.last_decay);
        let periods = (healthy.as_nanos() / config.strike_decay.as_nanos().max(1)) as u32;
        let forgiven = periods.min(self.strikes);
        self.strikes -= forgiven;
        self.last_decay = if self.strikes == 0 {
            now
        } else {
            self.last_decay + config.strike_decay * forgiven
        };
    }
}

/// The health state machine for a set of hosts keyed by `K` (sans-IO: every input carries
/// `now`; the owner calls [`Health::handle_timeout`] at [`Health::next_deadline`]).
#[derive(Debug, Clone)]
pub struct Health<K> {
    config: HealthConfig,
    /// Sorted by key: lookups are a binary search, snapshots come out ordered.
    slots: Vec<Slot<K>>,
    /// The slots' keys, in the same order: the binary search touches only this dense array.
    keys: Vec<K>,
    /// Origin of the failure-window ticks (the first outcome's `now`).
    epoch: Option<Instant>,
    /// Latency EWMA of every success in the fleet, in microseconds (0 = none yet).
    fleet_latency_us: f64,
    /// Failure-window bucket width, precomputed for the hot path.
    bucket_nanos: u64,
}

impl<K: Copy + Eq + std::hash::Hash + Ord + std::fmt::Debug> Health<K> {
    /// A state machine with no hosts yet. The config is used as given: validate it first
    /// with [`HealthConfig::validate`] (or use [`Health::try_new`]).
    pub fn new(config: HealthConfig) -> Self {
        Health {
            bucket_nanos: bucket_nanos(config.failure_rate_window),
            config,
            slots: Vec::new(),
            keys: Vec::new(),
            epoch: None,
            fleet_latency_us: 0.0,
        }
    }

    /// As [`Health::new`], validating the config first.
    ///
    /// # Errors
    /// Every broken config rule.
    pub fn try_new(config: HealthConfig) -> Result<Self, Vec<crate::ConfigError>> {
        HealthConfig::try_new(config).map(Health::new)
    }

    /// The config in use.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Sets the host set: known hosts keep their state, new ones start healthy, absent ones
    /// are forgotten. If the smaller set leaves too many hosts ejected for the cap, those
    /// nearest their expiry move to probation.
    pub fn set_hosts(&mut self, hosts: impl IntoIterator<Item = K>, now: Instant) {
        let mut keys: Vec<K> = hosts.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut old = std::mem::take(&mut self.slots).into_iter().peekable();
        let mut slots = Vec::with_capacity(keys.len());
        for key in keys {
            while old.next_if(|slot| slot.key < key).is_some() {}
            match old.next_if(|slot| slot.key == key) {
                Some(slot) => slots.push(slot),
                None => {
                    let mut slot = Slot::new(key, now);
                    slot.reason = Some(Reason::Added);
                    slots.push(slot);
                }
            }
        }
        self.keys = slots.iter().map(|slot| slot.key).collect();
        self.slots = slots;
        let cap = self.config.max_ejected(self.slots.len());
        while self.health_ejected(None) > cap {
            let Some(i) = (0..self.slots.len())
                .filter(|&i| self.slots[i].state.is_health_ejected())
                .min_by_key(|&i| match self.slots[i].state {
                    HostState::Ejected { until, .. } => until,
                    _ => now,
                })
            else {
                break;
            };
            self.begin_probation(i, now);
        }
    }

    /// Records one request's outcome: the hot path (a binary search and fixed arrays, no
    /// allocation).
    pub fn record_outcome(
        &mut self,
        host: K,
        outcome: Outcome,
        now: Instant,
    ) -> Option<Transition<K>> {
        let epoch = *self.epoch.get_or_insert(now);
        if let Outcome::Success { latency } = outcome {
            self.fleet_latency_us = ewma(self.fleet_latency_us, latency, FLEET_ALPHA);
        }
        let i = self.index(host)?;
        let tick = tick(epoch, now, self.bucket_nanos);
        let slot = &mut self.slots[i];
        if matches!(
            slot.state,
            HostState::Ejected { .. } | HostState::Draining { .. }
        ) {
            // Stragglers from before the ejection say nothing about the host now.
            return None;
        }
        slot.passive.record(outcome, tick, now, &self.config);
        slot.note_bad(outcome.is_failure(), now);
        if let (HostState::Probation { successes, .. }, Outcome::Success { .. }) =
            (&mut slot.state, outcome)
        {
            *successes = successes.saturating_add(1);
        }
        self.evaluate(i, now)
    }

    /// Records the host's in-flight count and the age of its oldest request in flight.
    pub fn record_in_flight(
        &mut self,
        host: K,
        count: u32,
        oldest_age: Option<Duration>,
        now: Instant,
    ) -> Option<Transition<K>> {
        let i = self.index(host)?;
        self.slots[i].passive.see_in_flight(count, oldest_age, now);
        self.evaluate(i, now)
    }

    /// Records a health report (in-band ORCA header, or a probe body). The pool figures are
    /// judged whatever `status` says.
    pub fn record_report(
        &mut self,
        host: K,
        report: &HealthReport,
        now: Instant,
    ) -> Option<Transition<K>> {
        let i = self.index(host)?;
        if let Some(pool) = report.pool {
            self.observe_pool(i, pool, now);
        }
        self.evaluate(i, now)
    }

    /// Records an active probe result, including any report in its body.
    pub fn record_probe(
        &mut self,
        host: K,
        result: ProbeResult,
        now: Instant,
    ) -> Option<Transition<K>> {
        let i = self.index(host)?;
        let slot = &mut self.slots[i];
        let (verdict, report) = match result {
            ProbeResult::Pass(report) => (ProbeVerdict::Pass, Some(report)),
            ProbeResult::Warn(report) => (ProbeVerdict::Warn, Some(report)),
            ProbeResult::Fail(report) => (ProbeVerdict::Fail, Some(report)),
            ProbeResult::Timeout | ProbeResult::Refused => (ProbeVerdict::Fail, None),
        };
        slot.probe.observe(verdict, now);
        slot.note_bad(verdict == ProbeVerdict::Fail, now);
        if let Some(pool) = report.and_then(|r| r.pool) {
            self.observe_pool(i, pool, now);
        }
        self.evaluate(i, now)
    }

    /// Folds a pool report into host `i`'s tracker; in probation, an exhausted or stuck pool
    /// is evidence against it.
    fn observe_pool(&mut self, i: usize, pool: PoolReport, now: Instant) {
        let config = &self.config;
        let slot = &mut self.slots[i];
        slot.pool.observe(pool, now, config);
        slot.note_bad(
            PoolVerdict::judge(&pool, config.stuck_after) != PoolVerdict::Ok,
            now,
        );
    }

    /// Applies an operator's command. Eject ignores the ejected-share cap and adds no strike.
    pub fn handle_operator(
        &mut self,
        host: K,
        command: OperatorCommand,
        now: Instant,
    ) -> Option<Transition<K>> {
        let i = self.index(host)?;
        let slot = &mut self.slots[i];
        let state = match command {
            OperatorCommand::Drain => {
                if matches!(slot.state, HostState::Draining { .. }) {
                    return None;
                }
                HostState::Draining { since: now }
            }
            OperatorCommand::Eject => {
                slot.passive.reset();
                HostState::Ejected {
                    since: now,
                    until: now + self.config.ejection_max,
                    strikes: slot.strikes,
                    reason: Reason::Operator,
                }
            }
            OperatorCommand::Restore => {
                if matches!(slot.state, HostState::Healthy { .. }) {
                    return None;
                }
                slot.passive.reset();
                slot.probe = ProbeTracker::default();
                slot.last_decay = now;
                HostState::Healthy { since: now }
            }
        };
        Some(self.set_state(i, state, Reason::Operator, now))
    }

    /// Adopts another router's ejection of `host` (a fleet shares what its routers' detectors
    /// see): ejected here too until `until`, as evidence enough on its own, because the
    /// router that saw it judged with the same detectors and a second of waiting is what
    /// Ringward exists to avoid. It counts against the ejected-share cap like this router's
    /// own ejections, and is refused at the cap, so a faulty peer cannot eject the fleet.
    /// No strike is added (strikes are this router's own record), and a host already out
    /// (ejected or drained) is left as it is. When `until` passes, probation decides, on
    /// this router's own evidence.
    pub fn adopt_peer_ejection(
        &mut self,
        host: K,
        until: Instant,
        now: Instant,
    ) -> Option<Transition<K>> {
        let i = self.index(host)?;
        let slot = &self.slots[i];
        if until <= now
            || matches!(
                slot.state,
                HostState::Ejected { .. } | HostState::Draining { .. }
            )
            || self.health_ejected(Some(i)) >= self.config.max_ejected(self.slots.len())
        {
            return None;
        }
        let slot = &mut self.slots[i];
        slot.passive.reset();
        let state = HostState::Ejected {
            since: now,
            until,
            strikes: slot.strikes,
            reason: Reason::Peer,
        };
        Some(self.set_state(i, state, Reason::Peer, now))
    }

    /// Acts on time passing: ejections that end (probation, or a longer ejection if the
    /// probes or pool reports received meanwhile are still bad), probation steps, hung
    /// requests reaching their threshold, and strike decay.
    pub fn handle_timeout(&mut self, now: Instant, transitions: &mut Vec<Transition<K>>) {
        for i in 0..self.slots.len() {
            let slot = &self.slots[i];
            let HostState::Ejected {
                since,
                until,
                reason,
                ..
            } = slot.state
            else {
                continue;
            };
            if until > now {
                continue;
            }
            let still_bad = if reason == Reason::Operator {
                None
            } else if slot.pool.firing && slot.pool.fresh_since(since) {
                Some(Reason::PoolExhausted)
            } else if slot.probe.failing_since(since, self.config.probe_failures) {
                Some(Reason::ProbeFailures)
            } else {
                None
            };
            transitions.push(match still_bad {
                Some(reason) => self.eject(i, reason, now),
                None => self.begin_probation(i, now),
            });
        }
        // A second pass, so hosts held back by the cap can take the places just freed.
        for i in 0..self.slots.len() {
            let config = &self.config;
            self.slots[i].decay(now, config);
            if let Some(t) = self.evaluate(i, now) {
                transitions.push(t);
            }
        }
    }

    /// The earliest instant at which [`Health::handle_timeout`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let config = &self.config;
        self.slots
            .iter()
            .filter_map(|slot| {
                let hung = || slot.passive.hung_deadline(self.fleet_latency_us, config);
                match slot.state {
                    HostState::Ejected { until, .. } => Some(until),
                    HostState::Draining { .. } => None,
                    HostState::Probation {
                        step_since,
                        successes,
                        ..
                    } => {
                        // A sick host held back by the cap does not advance: no deadline
                        // that `handle_timeout` would leave in the past.
                        let healthy = slot.sick_reason(config).is_none();
                        let step = (healthy && successes >= config.probation_successes)
                            .then(|| step_since + config.probation_step);
                        let quiet = slot.quiet_step_due(config);
                        min_opt(min_opt(step, quiet), hung())
                    }
                    HostState::Healthy { .. } => {
                        let decay =
                            (slot.strikes > 0).then(|| slot.last_decay + config.strike_decay);
                        min_opt(decay, hung())
                    }
                    HostState::Degraded { .. } => hung(),
                }
            })
            .min()
    }

    /// `Some(policy)` while too few hosts are available (panic mode).
    ///
    /// Hosts out by an operator's decision are left out of the count; of the rest, a host
    /// is unavailable when ejected by health or held back only by the cap.
    pub fn panic(&self) -> Option<PanicPolicy> {
        let considered = self
            .slots
            .iter()
            .filter(|s| !s.state.is_operator_out())
            .count();
        if considered == 0 {
            return None;
        }
        let sick = self.slots.iter().filter(|s| s.state.is_sick()).count();
        let available = (considered - sick) as f64 / considered as f64;
        (available < self.config.panic_threshold).then_some(self.config.panic_policy)
    }

    /// The state of one host.
    pub fn state(&self, host: K) -> Option<HostState> {
        self.index(host).map(|i| self.slots[i].state)
    }

    /// The number of hosts.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// No hosts at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every host's health, with routing (panic mode applied).
    pub fn snapshot(&self, now: Instant) -> HealthSnapshot<K> {
        let _ = now; // states carry their own instants; `now` is kept for API symmetry
        let panic = self.panic();
        let steps = f64::from(self.config.probation_steps);
        let hosts = self
            .slots
            .iter()
            .map(|slot| {
                let (mut routing, mut share) = match slot.state {
                    HostState::Healthy { .. } => (Routing::Full, 1.0),
                    HostState::Degraded { .. } => (Routing::OwnKeysOnly, 1.0),
                    HostState::Probation { step, .. } => (
                        Routing::OwnKeysOnly,
                        (f64::from(step) + 1.0) / (steps + 1.0),
                    ),
                    HostState::Ejected { .. } | HostState::Draining { .. } => (Routing::None, 0.0),
                };
                match panic {
                    Some(PanicPolicy::FailOpen) if !slot.state.is_operator_out() => {
                        (routing, share) = (Routing::Full, 1.0);
                    }
                    Some(PanicPolicy::FailClosed) if slot.state.is_sick() => {
                        (routing, share) = (Routing::None, 0.0);
                    }
                    _ => {}
                }
                let (reason, until, strikes) = match slot.state {
                    HostState::Ejected {
                        until,
                        reason,
                        strikes,
                        ..
                    } => (Some(reason), Some(until), strikes),
                    HostState::Degraded { reason, .. } => (Some(reason), None, slot.strikes),
                    _ => (slot.reason, None, slot.strikes),
                };
                HostHealth {
                    host: slot.key,
                    state: slot.state.kind(),
                    reason,
                    since: slot.state.since(),
                    until,
                    strikes,
                    pool: slot.pool.last.map(|(report, _)| report),
                    last_probe: slot.probe.last_at,
                    routing,
                    admit_share: share,
                }
            })
            .collect();
        HealthSnapshot { hosts, panic }
    }

    fn index(&self, host: K) -> Option<usize> {
        self.keys.binary_search(&host).ok()
    }

    /// Hosts ejected by health, other than `except`.
    fn health_ejected(&self, except: Option<usize>) -> usize {
        self.slots
            .iter()
            .enumerate()
            .filter(|&(i, slot)| Some(i) != except && slot.state.is_health_ejected())
            .count()
    }

    /// Re-judges one host after an input and moves it if its detectors say so.
    fn evaluate(&mut self, i: usize, now: Instant) -> Option<Transition<K>> {
        let config = &self.config;
        let slot = &mut self.slots[i];
        if matches!(
            slot.state,
            HostState::Ejected { .. } | HostState::Draining { .. }
        ) {
            return None;
        }
        slot.passive.judge_hung(now, self.fleet_latency_us, config);
        let stuck = slot.pool.stuck;
        match (slot.state, slot.sick_reason(config)) {
            (state, Some(reason)) => {
                if self.health_ejected(Some(i)) < config.max_ejected(self.slots.len()) {
                    Some(self.eject(i, reason, now))
                } else if matches!(state, HostState::Probation { .. }) {
                    // Held back by the cap: it keeps its small share and does not advance
                    // (advancing needs no detector firing); ejected once a place frees.
                    None
                } else if matches!(state, HostState::Degraded { reason: r, capped: true, .. } if r == reason)
                {
                    None
                } else {
                    let degraded = HostState::Degraded {
                        since: now,
                        reason,
                        capped: true,
                    };
                    Some(self.set_state(i, degraded, reason, now))
                }
            }
            (HostState::Probation { .. }, None) => self.advance_probation(i, now),
            (HostState::Healthy { .. }, None) if stuck => {
                let degraded = HostState::Degraded {
                    since: now,
                    reason: Reason::StuckSlots,
                    capped: false,
                };
                Some(self.set_state(i, degraded, Reason::StuckSlots, now))
            }
            (
                HostState::Degraded {
                    reason: Reason::StuckSlots,
                    capped: false,
                    ..
                },
                None,
            ) if stuck => None,
            (HostState::Degraded { .. }, None) if stuck => {
                let degraded = HostState::Degraded {
                    since: now,
                    reason: Reason::StuckSlots,
                    capped: false,
                };
                Some(self.set_state(i, degraded, Reason::StuckSlots, now))
            }
            (HostState::Degraded { .. }, None) => {
                self.slots[i].last_decay = now;
                Some(self.set_state(i, HostState::Healthy { since: now }, Reason::Recovered, now))
            }
            _ => None,
        }
    }

    /// Ejects host `i` with one more strike; the ejection time backs off with strikes.
    fn eject(&mut self, i: usize, reason: Reason, now: Instant) -> Transition<K> {
        let config = &self.config;
        let slot = &mut self.slots[i];
        slot.decay(now, config);
        slot.strikes = slot.strikes.saturating_add(1);
        slot.passive.reset();
        let state = HostState::Ejected {
            since: now,
            until: now + config.backoff(slot.strikes),
            strikes: slot.strikes,
            reason,
        };
        self.set_state(i, state, reason, now)
    }

    fn begin_probation(&mut self, i: usize, now: Instant) -> Transition<K> {
        // Evidence from before is stale (anything fresh and bad re-ejected instead):
        // probation judges the host on what it says and does from now on.
        let slot = &mut self.slots[i];
        slot.passive.reset();
        slot.pool.forget_run();
        slot.probe.consecutive_failures = 0;
        slot.probation_bad_at = None;
        let state = HostState::Probation {
            since: now,
            step: 0,
            step_since: now,
            successes: 0,
        };
        self.set_state(i, state, Reason::EjectionExpired, now)
    }

    /// Moves probation on a step once the step has lasted `probation_step` and seen
    /// `probation_successes` real successes, or, for lack of traffic, once it has been
    /// quiet for `probation_quiet_step` (see [`Slot::quiet_step_due`]); after the last
    /// step, healthy.
    fn advance_probation(&mut self, i: usize, now: Instant) -> Option<Transition<K>> {
        let config = &self.config;
        let slot = &self.slots[i];
        let HostState::Probation {
            since,
            step,
            step_since,
            successes,
        } = slot.state
        else {
            return None;
        };
        let earned = successes >= config.probation_successes
            && now.saturating_duration_since(step_since) >= config.probation_step;
        let quiet = || slot.quiet_step_due(config).is_some_and(|due| due <= now);
        let last = step + 1 >= config.probation_steps;
        let reason = match (earned, last) {
            (true, true) => Reason::ProbationPassed,
            (true, false) => Reason::ProbationAdvanced,
            (false, _) if quiet() => Reason::ProbationQuiet,
            (false, _) => return None,
        };
        let state = if last {
            self.slots[i].last_decay = now;
            HostState::Healthy { since: now }
        } else {
            HostState::Probation {
                since,
                step: step + 1,
                step_since: now,
                successes: 0,
            }
        };
        Some(self.set_state(i, state, reason, now))
    }

    fn set_state(
        &mut self,
        i: usize,
        state: HostState,
        reason: Reason,
        now: Instant,
    ) -> Transition<K> {
        // Metrics create an ejection series per reason in `Reason::EJECTIONS` up front.
        debug_assert!(
            state.kind() != StateKind::Ejected || Reason::EJECTIONS.contains(&reason),
            "ejected for {reason}, missing from Reason::EJECTIONS"
        );
        let slot = &mut self.slots[i];
        let from = slot.state.kind();
        slot.state = state;
        slot.reason = Some(reason);
        Transition {
            host: slot.key,
            from,
            to: state.kind(),
            reason,
            at: now,
        }
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
