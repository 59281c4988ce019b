//! A tiny driver for scripted timelines: simulated milliseconds, timers fired in order.

use std::time::{Duration, Instant};

use ringward_health::{
    Health, HealthConfig, HealthReport, HostHealth, OperatorCommand, Outcome, PoolReport,
    ProbeResult, StateKind, Transition,
};

/// The origin of every timeline; from here time only advances by hand.
#[allow(clippy::disallowed_methods)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}

pub(crate) struct Sim {
    pub(crate) health: Health<u32>,
    pub(crate) t0: Instant,
    pub(crate) now_ms: u64,
    pub(crate) log: Vec<Transition<u32>>,
}

pub(crate) fn pool(max: u32, in_use: u32, waiting: u32, oldest_ms: u64) -> PoolReport {
    PoolReport {
        max,
        in_use,
        waiting,
        oldest_checkout: Duration::from_millis(oldest_ms),
    }
}

pub(crate) fn ok(ms: u64) -> Outcome {
    Outcome::Success {
        latency: Duration::from_millis(ms),
    }
}

impl Sim {
    pub(crate) fn new(config: HealthConfig, hosts: u32) -> Sim {
        let t0 = origin();
        let mut health = Health::try_new(config).expect("valid config");
        health.set_hosts(0..hosts, t0);
        Sim {
            health,
            t0,
            now_ms: 0,
            log: Vec::new(),
        }
    }

    pub(crate) fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    pub(crate) fn ms_of(&self, at: Instant) -> u64 {
        at.duration_since(self.t0).as_millis() as u64
    }

    /// Advances to `ms`, firing every deadline on the way (as the owner task would).
    pub(crate) fn advance(&mut self, ms: u64) {
        assert!(ms >= self.now_ms, "time runs forwards");
        let end = self.at(ms);
        for _ in 0..10_000 {
            match self.health.next_deadline() {
                Some(deadline) if deadline <= end => {
                    let mut fired = Vec::new();
                    self.health.handle_timeout(deadline, &mut fired);
                    let next = self.health.next_deadline();
                    assert!(
                        next.is_none_or(|n| n > deadline),
                        "handle_timeout left its own deadline in the past"
                    );
                    self.log.extend(fired);
                }
                _ => break,
            }
        }
        self.now_ms = ms;
    }

    fn keep(&mut self, t: Option<Transition<u32>>) {
        self.log.extend(t);
    }

    pub(crate) fn outcome(&mut self, ms: u64, host: u32, outcome: Outcome) {
        self.advance(ms);
        let t = self.health.record_outcome(host, outcome, self.at(ms));
        self.keep(t);
    }

    pub(crate) fn report(&mut self, ms: u64, host: u32, pool: PoolReport) {
        self.advance(ms);
        let report = HealthReport {
            status: None,
            pool: Some(pool),
        };
        let t = self.health.record_report(host, &report, self.at(ms));
        self.keep(t);
    }

    pub(crate) fn probe(&mut self, ms: u64, host: u32, result: ProbeResult) {
        self.advance(ms);
        let t = self.health.record_probe(host, result, self.at(ms));
        self.keep(t);
    }

    pub(crate) fn in_flight(&mut self, ms: u64, host: u32, count: u32, oldest_ms: Option<u64>) {
        self.advance(ms);
        let oldest = oldest_ms.map(Duration::from_millis);
        let t = self
            .health
            .record_in_flight(host, count, oldest, self.at(ms));
        self.keep(t);
    }

    pub(crate) fn operator(&mut self, ms: u64, host: u32, command: OperatorCommand) {
        self.advance(ms);
        let t = self.health.handle_operator(host, command, self.at(ms));
        self.keep(t);
    }

    pub(crate) fn host(&self, host: u32) -> HostHealth<u32> {
        let snapshot = self.health.snapshot(self.at(self.now_ms));
        snapshot
            .hosts
            .into_iter()
            .find(|h| h.host == host)
            .expect("known host")
    }

    pub(crate) fn state(&self, host: u32) -> StateKind {
        self.host(host).state
    }

    /// Transitions of one host, as (ms, to-state).
    pub(crate) fn history(&self, host: u32) -> Vec<(u64, StateKind)> {
        self.log
            .iter()
            .filter(|t| t.host == host)
            .map(|t| (self.ms_of(t.at), t.to))
            .collect()
    }

    /// The first time `host` entered `kind`.
    pub(crate) fn first(&self, host: u32, kind: StateKind) -> Option<(u64, Transition<u32>)> {
        self.log
            .iter()
            .find(|t| t.host == host && t.to == kind)
            .map(|t| (self.ms_of(t.at), *t))
    }
}
