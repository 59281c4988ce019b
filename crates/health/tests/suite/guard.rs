//! The cascade guard on scripted timelines: simulated time (an origin, then `t0 + Duration`;
//! nothing sleeps), hosts whose traffic is simulated tick by tick (50 ms, as the router
//! samples): Vals whose requests arrive at a steady rate and are answered after a fixed
//! latency, and poison Vals whose requests get stuck and age.

use std::time::{Duration, Instant};

use ringward_health::guard::{Guard, GuardConfig, ValReason, ValState, ValTransition};

use super::sim::origin;

type Host = &'static str;
type Transition = ValTransition<Host, u64>;

/// The router's sampling tick.
const TICK: Duration = Duration::from_millis(50);

/// The Val whose requests get stuck (the post-mortem's "flurry of parallel edits").
const POISON: u64 = 666;

/// The everyday Vals of a busy host.
const EVERYDAY: std::ops::RangeInclusive<u64> = 1..=30;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Requests of one Val on one host: `parallel` of them every `every`, each answered after
/// `latency`.
#[derive(Debug, Clone, Copy)]
struct Flow {
    host: Host,
    val: u64,
    every: Duration,
    parallel: u32,
    latency: Duration,
    next: Instant,
}

/// A request in flight; `latency: None` is stuck (never answered).
#[derive(Debug, Clone, Copy)]
struct Request {
    host: Host,
    val: u64,
    start: Instant,
    latency: Option<Duration>,
}

/// A guard and the traffic of its hosts, advanced tick by tick as the router's owner task
/// would: arrivals, answers (`record_completion`), then a `sample` of each host.
struct Sim {
    guard: Guard<Host, u64>,
    t0: Instant,
    now: Instant,
    hosts: Vec<Host>,
    flows: Vec<Flow>,
    in_flight: Vec<Request>,
    /// Hosts on which nothing is answered any more (every request in flight ages).
    stalled: Vec<Host>,
    /// Every transition so far.
    log: Vec<Transition>,
}

impl Sim {
    fn new(config: GuardConfig, hosts: &[Host]) -> Sim {
        let t0 = origin();
        let mut guard = Guard::new(config);
        guard.set_hosts(hosts.iter().copied());
        Sim {
            guard,
            t0,
            now: t0,
            hosts: hosts.to_vec(),
            flows: Vec::new(),
            in_flight: Vec::new(),
            stalled: Vec::new(),
            log: Vec::new(),
        }
    }

    /// `val` sends `parallel` requests to `host` every `every` from `phase` on, each
    /// answered after `latency`.
    fn flow(
        &mut self,
        host: Host,
        val: u64,
        every: Duration,
        parallel: u32,
        latency: Duration,
        phase: Duration,
    ) {
        self.flows.push(Flow {
            host,
            val,
            every,
            parallel,
            latency,
            next: self.now + phase,
        });
    }

    /// `val` sends `rate` requests a second to `host`, evenly spaced, each answered after
    /// `latency`.
    fn rate(&mut self, host: Host, val: u64, rate: f64, latency: Duration) {
        let every = Duration::from_secs_f64(1.0 / rate);
        // Spread the Vals' phases (a Val's phase depends on the Val only).
        let phase = every.mul_f64((val % 97) as f64 / 97.0);
        self.flow(host, val, every, 1, latency, phase);
    }

    /// `n` requests of `val` start on `host` now, answered after `latency`.
    fn once(&mut self, host: Host, val: u64, n: u32, latency: Duration) {
        let (start, latency) = (self.now, Some(latency));
        self.in_flight.extend((0..n).map(|_| Request {
            host,
            val,
            start,
            latency,
        }));
    }

    /// `n` requests of `val` start on `host` now and never get an answer.
    fn burst(&mut self, host: Host, val: u64, n: u32) {
        let start = self.now;
        self.in_flight.extend((0..n).map(|_| Request {
            host,
            val,
            start,
            latency: None,
        }));
    }

    /// From now on `host` answers nothing: its requests in flight, and new ones, all age.
    fn stall(&mut self, host: Host) {
        self.stalled.push(host);
    }

    /// `host` is out (ejected, its connections reset): its traffic stops, its requests in
    /// flight are dropped unanswered.
    fn take_out(&mut self, host: Host) {
        self.flows.retain(|f| f.host != host);
        self.in_flight.retain(|r| r.host != host);
        self.stalled.retain(|h| *h != host);
    }

    /// Requests of `val` stuck on `host` are dropped (timed out, unanswered).
    fn drop_stuck(&mut self, host: Host, val: u64) {
        self.in_flight
            .retain(|r| !(r.host == host && r.val == val && r.latency.is_none()));
    }

    /// `host`'s stall ends: what was stuck in the stall is dropped (timed out, unanswered).
    fn unstall(&mut self, host: Host) {
        self.stalled.retain(|h| *h != host);
        self.in_flight.retain(|r| r.host != host);
    }

    fn tick(&mut self) {
        self.now += TICK;
        let now = self.now;
        for f in &mut self.flows {
            while f.next <= now {
                let (host, val, start) = (f.host, f.val, f.next);
                let latency = Some(f.latency);
                self.in_flight.extend((0..f.parallel).map(|_| Request {
                    host,
                    val,
                    start,
                    latency,
                }));
                f.next += f.every;
            }
        }
        let guard = &mut self.guard;
        let stalled = &self.stalled;
        self.in_flight.retain(|r| match r.latency {
            Some(latency) if r.start + latency <= now && !stalled.contains(&r.host) => {
                guard.record_completion(r.host, r.val, latency, now);
                false
            }
            _ => true,
        });
        for &host in &self.hosts {
            let requests = self
                .in_flight
                .iter()
                .filter(|r| r.host == host)
                .map(|r| (r.val, now.saturating_duration_since(r.start)));
            self.guard.sample(host, requests);
        }
    }

    /// Runs the traffic for `d` (a whole number of ticks).
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now + TICK <= end {
            self.tick();
        }
        assert_eq!(self.now, end, "runs are whole ticks");
    }

    /// Time jumps to `at` with nothing sampled on the way (flows resume at their next
    /// arrival after it; no burst of the arrivals skipped).
    fn jump_to(&mut self, at: Instant) {
        assert!(at >= self.now, "time runs forwards");
        self.now = at;
        for f in &mut self.flows {
            if f.next < at {
                let behind = (at - f.next).as_nanos().div_ceil(f.every.as_nanos());
                f.next += f.every * u32::try_from(behind).expect("a sane jump");
            }
        }
    }

    /// Time passes with no traffic at all (nothing in flight, nothing sampled).
    fn idle(&mut self, d: Duration) {
        assert!(self.in_flight.is_empty(), "idle with nothing in flight");
        self.jump_to(self.now + d);
    }

    /// `host` fails now (exhausted, hung or ejected).
    fn fail(&mut self, host: Host) -> Vec<Transition> {
        let mut out = Vec::new();
        self.guard.on_host_failure(host, self.now, &mut out);
        self.log.extend(out.iter().cloned());
        out
    }

    /// The owner's timer at `at` (time jumps there), with the hosts `out` still out.
    fn timeout_at(&mut self, at: Instant, out: &[Host]) -> Vec<Transition> {
        self.jump_to(at);
        let mut fired = Vec::new();
        self.guard
            .handle_timeout(at, |h: &Host| out.contains(h), &mut fired);
        self.log.extend(fired.iter().cloned());
        fired
    }
}

/// A busy host: 30 Vals, each sending a pair of parallel requests every 500 ms answered in
/// 20 ms (120 requests a second), and the poison Val one request a second, 20 ms too.
fn everyday_traffic(sim: &mut Sim, host: Host) {
    for val in EVERYDAY {
        let phase = ms(500).mul_f64((val - 1) as f64 / 30.0);
        sim.flow(host, val, ms(500), 2, ms(20), phase);
    }
    sim.flow(host, POISON, secs(1), 1, ms(20), ms(7));
}

/// On a warmed-up busy host: `n` requests of `val` get stuck, the host fails `after` later.
/// Returns what the failure did; the stuck requests are dropped after (the host was reset).
fn poison_burst(sim: &mut Sim, host: Host, val: u64, n: u32, after: Duration) -> Vec<Transition> {
    sim.burst(host, val, n);
    sim.run(after);
    let out = sim.fail(host);
    sim.drop_stuck(host, val);
    out
}

fn only(out: &[Transition]) -> &Transition {
    assert_eq!(out.len(), 1, "exactly one transition: {out:#?}");
    &out[0]
}

/// The control of a no-false-positive test: Vals judged on their share alone, whatever
/// their baseline (an overrepresentation of 0, below the validated minimum of 1 on purpose:
/// the guard takes its config as given).
fn share_alone() -> GuardConfig {
    GuardConfig {
        overrepresentation: 0.0,
        ..GuardConfig::default()
    }
}

fn infos_len(sim: &Sim) -> usize {
    sim.guard.infos().len()
}

// --- 1. The post-mortem ---------------------------------------------------------------

#[test]
fn incident_a_burst_of_stuck_requests_is_quarantined_at_the_host_failure() {
    let mut sim = Sim::new(GuardConfig::default(), &["a", "b"]);
    everyday_traffic(&mut sim, "a");
    everyday_traffic(&mut sim, "b");
    sim.run(secs(30));
    // The flurry of parallel edits: 32 requests of one Val stuck on host a, while the 30
    // everyday Vals keep flowing; the host fails half a second later.
    let burst_at = sim.now;
    sim.burst("a", POISON, 32);
    sim.run(ms(500));
    let out = sim.fail("a");
    let t = only(&out);
    assert_eq!(
        (t.val, t.from, t.to, t.reason),
        (
            POISON,
            ValState::Normal,
            ValState::Quarantined,
            ValReason::Dominant
        )
    );
    assert_eq!(t.until, Some(sim.now + secs(30)), "a first offence: 30 s");
    let e = t.evidence.expect("the evidence");
    assert_eq!(e.host, "a");
    assert_eq!(e.at, sim.now);
    assert!(e.share > 0.5 && e.share <= 1.0, "{e:?}");
    assert!(
        e.baseline_share < 0.03,
        "one 20 ms request a second among 121, and its 32 in flight: {e:?}"
    );
    assert_eq!(e.in_flight, 32);
    assert_eq!(e.oldest, sim.now - burst_at);
    assert_eq!(e.oldest, ms(500));

    assert_eq!(sim.guard.state_of(POISON), ValState::Quarantined);
    for val in EVERYDAY {
        assert_eq!(sim.guard.state_of(val), ValState::Normal, "Val {val}");
        assert_eq!(sim.guard.info(val), None, "Val {val}");
    }
    let infos = sim.guard.infos();
    assert_eq!(infos.len(), 1, "only the poison has a record: {infos:#?}");
    assert_eq!(infos[0].val, POISON);
    assert_eq!(infos[0].offences, 1);
    assert_eq!(infos[0].implications, [e]);
    let restricted: Vec<_> = sim.guard.restricted().collect();
    assert_eq!(restricted, [(POISON, ValState::Quarantined, t.until)]);
    assert_eq!(sim.guard.next_deadline(), t.until);
    // Host b only had the poison's everyday trickle: its failure implicates nobody.
    assert_eq!(sim.fail("b"), []);
    assert_eq!(sim.log.len(), 1);
}

#[test]
fn a_burst_a_single_stuck_request_or_an_unknown_host_is_not_enough() {
    let mut sim = Sim::new(GuardConfig::default(), &["a"]);
    everyday_traffic(&mut sim, "a");
    sim.run(secs(30));
    // One stuck request, however old, is below `min_in_flight` (2).
    sim.burst("a", POISON, 1);
    sim.run(secs(3));
    assert_eq!(sim.fail("a"), []);
    // A host the guard does not know.
    assert_eq!(sim.fail("zz"), []);
    assert_eq!(infos_len(&sim), 0);
}

// --- 2. A popular Val ------------------------------------------------------------------

/// A host with 400 requests a second: Val 1 `hot` of them (answered after `hot_latency`),
/// Val 2 `second` of them, Vals 3..=7 the rest (all answered after `latency`).
fn popular_traffic(
    sim: &mut Sim,
    host: Host,
    (hot, second): (f64, f64),
    hot_latency: Duration,
    latency: Duration,
) {
    let total = 400.0;
    sim.rate(host, 1, hot * total, hot_latency);
    sim.rate(host, 2, second * total, latency);
    for val in 3..=7 {
        sim.rate(host, val, (1.0 - hot - second) * total / 5.0, latency);
    }
}

/// Warm-up, then the whole host stalls for everyone for `stall`, then fails.
fn whole_host_stall(
    config: GuardConfig,
    split: (f64, f64),
    hot_latency: Duration,
    latency: Duration,
) -> (Sim, Vec<Transition>) {
    let mut sim = Sim::new(config, &["a"]);
    popular_traffic(&mut sim, "a", split, hot_latency, latency);
    sim.run(secs(30));
    sim.stall("a");
    sim.run(secs(1));
    // Every Val's requests pile up in proportion to its traffic.
    let stuck = |val: u64| sim.in_flight.iter().filter(|r| r.val == val).count() as f64;
    let all = sim.in_flight.len() as f64;
    assert!(all > 380.0, "a second of 400 requests a second: {all}");
    assert!(
        (stuck(1) / all - split.0).abs() < 0.02,
        "{} of {all}",
        stuck(1)
    );
    let out = sim.fail("a");
    (sim, out)
}

#[test]
fn a_popular_val_is_not_implicated_when_the_whole_host_stalls() {
    for split in [(0.6, 0.3), (0.75, 0.2), (0.9, 0.08)] {
        let (sim, out) = whole_host_stall(GuardConfig::default(), split, ms(10), ms(10));
        assert_eq!(out, [], "split {split:?}");
        assert_eq!(infos_len(&sim), 0, "split {split:?}");
        assert_eq!(sim.guard.next_deadline(), None);

        // The control: judged on its share alone, the popular Val would be quarantined by
        // that very stall. The baseline is what spares it.
        let (_, out) = whole_host_stall(share_alone(), split, ms(10), ms(10));
        let hot = out
            .iter()
            .find(|t| t.val == 1)
            .expect("the control implicates");
        assert_eq!(
            (hot.to, hot.reason),
            (ValState::Quarantined, ValReason::Dominant)
        );
        let share = hot.evidence.unwrap().share;
        assert!(
            (share - split.0).abs() < 0.1,
            "split {split:?}: share {share}"
        );
    }
}

#[test]
fn a_popular_val_survives_ten_minutes_of_whole_host_stalls_on_two_hosts() {
    let mut sim = Sim::new(GuardConfig::default(), &["a", "b"]);
    for host in ["a", "b"] {
        popular_traffic(&mut sim, host, (0.75, 0.15), ms(10), ms(10));
    }
    sim.run(secs(30));
    // Every 30 s one host or the other stalls for everyone for a second and fails: two
    // hosts within the window, again and again.
    for round in 0..20 {
        let host = if round % 2 == 0 { "a" } else { "b" };
        sim.run(secs(29));
        sim.stall(host);
        sim.run(secs(1));
        assert_eq!(sim.fail(host), [], "round {round}");
        sim.unstall(host);
        let now = sim.now;
        assert_eq!(sim.timeout_at(now, &[host]), [], "round {round}");
    }
    assert_eq!(sim.now - sim.t0, secs(630));
    assert_eq!(sim.log, []);
    assert_eq!(infos_len(&sim), 0);
    assert_eq!(sim.guard.state_of(1), ValState::Normal);
}

// --- 3. A slow but normal Val ----------------------------------------------------------

/// The busy host, and Val 50: one request every 2 s, each answered after 5 s (so 2 or 3
/// in flight at any time).
fn slow_val_host(config: GuardConfig) -> Sim {
    let mut sim = Sim::new(config, &["a"]);
    everyday_traffic(&mut sim, "a");
    sim.flow("a", 50, secs(2), 1, secs(5), ms(3));
    sim.run(secs(90));
    sim
}

#[test]
fn a_slow_but_answered_val_is_not_implicated_when_the_host_fails_for_another_reason() {
    let mut sim = slow_val_host(GuardConfig::default());
    let slow_in_flight = sim.in_flight.iter().filter(|r| r.val == 50).count();
    assert!(slow_in_flight >= 2, "{slow_in_flight} in flight");
    assert!(
        sim.in_flight
            .iter()
            .filter(|r| r.val == 50)
            .any(|r| sim.now - r.start >= secs(3)),
        "its requests are seconds old"
    );
    // The host fails for a reason of its own (its probe, say): traffic is as usual.
    assert_eq!(sim.fail("a"), []);
    assert_eq!(infos_len(&sim), 0);
    // And so at every moment of its cycle.
    for _ in 0..40 {
        sim.run(ms(100));
        assert_eq!(sim.fail("a"), [], "at {:?}", sim.now - sim.t0);
    }

    // The control: judged on its share alone it would be quarantined.
    let mut naive = slow_val_host(share_alone());
    let out = naive.fail("a");
    let slow = only(&out);
    assert_eq!(
        (slow.val, slow.to, slow.reason),
        (50, ValState::Quarantined, ValReason::Dominant)
    );
    let e = slow.evidence.unwrap();
    // Its seconds-old requests hold nearly all the in-flight time; its baseline share
    // (about 0.5 of the time the host's answers take) is what spares it.
    assert!(e.share >= 0.9 && e.baseline_share > e.share / 3.0, "{e:?}");
    assert!(e.in_flight >= 2 && e.oldest >= secs(3), "{e:?}");
}

// --- 4. Implicated on two hosts ---------------------------------------------------------

/// Hosts a, b and c with everyday traffic, warmed up.
fn three_busy_hosts(config: GuardConfig) -> Sim {
    let mut sim = Sim::new(config, &["a", "b", "c"]);
    for host in ["a", "b", "c"] {
        everyday_traffic(&mut sim, host);
    }
    sim.run(secs(30));
    sim
}

/// On a warmed-up busy host, a stall for everyone in which 16 requests of `val` are stuck
/// from its start; the host fails half a second later. Everyone's requests age, so `val`'s
/// share is between `implicated_share` and `dominant_share` (about 0.35), far above its
/// baseline: a suspect. What was stuck is dropped after (the host was reset).
fn suspect_burst(sim: &mut Sim, host: Host, val: u64) -> Vec<Transition> {
    sim.stall(host);
    sim.burst(host, val, 16);
    sim.run(ms(500));
    let out = sim.fail(host);
    sim.unstall(host);
    out
}

fn assert_suspect_share(t: &Transition) {
    let share = t.evidence.expect("evidence").share;
    assert!((0.25..0.5).contains(&share), "a suspect's share: {t:?}");
}

#[test]
fn a_suspect_implicated_on_a_second_host_within_the_window_is_quarantined() {
    let mut sim = three_busy_hosts(GuardConfig::default());
    let out = suspect_burst(&mut sim, "a", POISON);
    let first = only(&out).clone();
    let at_a = sim.now;
    assert_eq!(
        (first.val, first.from, first.to, first.reason),
        (
            POISON,
            ValState::Normal,
            ValState::Suspect,
            ValReason::Implicated
        )
    );
    assert_suspect_share(&first);
    assert_eq!(first.evidence.unwrap().host, "a");
    assert_eq!(
        first.until,
        Some(at_a + secs(60)),
        "a suspect for the window"
    );
    assert_eq!(sim.guard.next_deadline(), Some(at_a + secs(60)));

    // Host a is out; the Val follows its ring walk to host b, 20 s later, and does it again.
    sim.take_out("a");
    sim.run(secs(20));
    let out = suspect_burst(&mut sim, "b", POISON);
    let second = only(&out);
    assert_eq!(
        (second.from, second.to, second.reason),
        (
            ValState::Suspect,
            ValState::Quarantined,
            ValReason::ImplicatedTwice
        )
    );
    assert_suspect_share(second);
    assert_eq!(second.evidence.unwrap().host, "b");
    assert_eq!(second.until, Some(sim.now + secs(30)));
    let info = sim.guard.info(POISON).unwrap();
    let hosts: Vec<_> = info.implications.iter().map(|i| i.host).collect();
    assert_eq!(hosts, ["a", "b"]);
    assert_eq!((info.offences, info.since), (1, sim.now));

    // Its quarantine is held while host a (or b) is out, and ends once both are back.
    let until = second.until.unwrap();
    assert_eq!(sim.timeout_at(until, &["a"]), []);
    assert_eq!(sim.timeout_at(until + secs(5), &["b", "c"]), []);
    let end = sim.timeout_at(until + secs(6), &["c"]);
    let end = only(&end);
    assert_eq!(
        (end.from, end.to, end.reason),
        (ValState::Quarantined, ValState::Normal, ValReason::Expired)
    );
}

#[test]
fn a_second_implication_after_the_window_leaves_a_suspect_only() {
    let mut sim = three_busy_hosts(GuardConfig::default());
    let out = suspect_burst(&mut sim, "a", POISON);
    assert_eq!(only(&out).to, ValState::Suspect);
    let at_a = sim.now;
    // The suspicion ends with the window.
    sim.run(secs(59) + ms(500));
    assert_eq!(sim.timeout_at(at_a + secs(60) - ms(1), &[]), []);
    let out = sim.timeout_at(at_a + secs(60), &["a"]);
    let end = only(&out);
    assert_eq!(
        (end.val, end.from, end.to, end.reason, end.until),
        (
            POISON,
            ValState::Suspect,
            ValState::Normal,
            ValReason::Expired,
            None
        )
    );
    // 61 s after host a, implicated on host b: a suspect again, not quarantined.
    sim.run(ms(500));
    let out = suspect_burst(&mut sim, "b", POISON);
    assert_eq!(sim.now - at_a, secs(61));
    let again = only(&out);
    assert_eq!(
        (again.from, again.to, again.reason),
        (ValState::Normal, ValState::Suspect, ValReason::Implicated)
    );
    assert_eq!(again.evidence.unwrap().host, "b");
    assert_eq!(sim.guard.info(POISON).unwrap().offences, 0);
}

#[test]
fn implicated_twice_on_the_same_host_stays_a_suspect() {
    let mut sim = three_busy_hosts(GuardConfig::default());
    let out = suspect_burst(&mut sim, "a", POISON);
    assert_eq!(only(&out).to, ValState::Suspect);
    sim.run(secs(10));
    // The same host again, within the window: no change of state, the suspicion is
    // extended.
    let out = suspect_burst(&mut sim, "a", POISON);
    assert_eq!(out, []);
    let info = sim.guard.info(POISON).unwrap();
    assert_eq!(
        (info.state, info.reason),
        (ValState::Suspect, ValReason::Implicated)
    );
    assert_eq!(info.implications.len(), 2);
    assert_eq!(info.until, Some(sim.now + secs(60)));
    // A third host within the window: quarantined.
    let out = suspect_burst(&mut sim, "c", POISON);
    assert_eq!(only(&out).reason, ValReason::ImplicatedTwice);
}

// --- 5. Expiry --------------------------------------------------------------------------

/// The busy hosts a and b, the poison quarantined (dominant) on host a at the returned
/// instant.
fn quarantined_on_a() -> (Sim, Instant) {
    let mut sim = Sim::new(GuardConfig::default(), &["a", "b"]);
    everyday_traffic(&mut sim, "a");
    everyday_traffic(&mut sim, "b");
    sim.run(secs(30));
    let out = poison_burst(&mut sim, "a", POISON, 32, ms(500));
    assert_eq!(only(&out).reason, ValReason::Dominant);
    let at = sim.now;
    (sim, at)
}

#[test]
fn a_quarantine_ends_at_until_once_its_hosts_are_back() {
    let (mut sim, at) = quarantined_on_a();
    assert_eq!(sim.guard.next_deadline(), Some(at + secs(30)));
    assert_eq!(sim.timeout_at(at + secs(30) - ms(1), &[]), []);
    assert_eq!(sim.guard.state_of(POISON), ValState::Quarantined);
    let out = sim.timeout_at(at + secs(30), &[]);
    let end = only(&out);
    assert_eq!(
        (end.val, end.from, end.to, end.reason),
        (
            POISON,
            ValState::Quarantined,
            ValState::Normal,
            ValReason::Expired
        )
    );
    assert_eq!((end.evidence, end.until), (None, None));
    assert_eq!(sim.guard.state_of(POISON), ValState::Normal);
    assert_eq!(sim.guard.next_deadline(), None);
    assert_eq!(sim.guard.restricted().count(), 0);
    // A recent offender keeps its record (its offence counts for an hour).
    let info = sim.guard.info(POISON).expect("a recent offender");
    assert_eq!(
        (info.state, info.offences, info.until),
        (ValState::Normal, 1, None)
    );
    // Nothing more to end.
    assert_eq!(sim.timeout_at(at + secs(300), &[]), []);
}

#[test]
fn a_quarantine_is_held_while_its_host_is_out_but_not_beyond_quarantine_max() {
    let (mut sim, at) = quarantined_on_a();
    // Host a is still out at until: held.
    assert_eq!(sim.timeout_at(at + secs(30), &["a"]), []);
    assert_eq!(sim.timeout_at(at + secs(44), &["a", "b"]), []);
    assert_eq!(sim.guard.state_of(POISON), ValState::Quarantined);
    // Only host b is out: not one of the poison's hosts.
    let out = sim.timeout_at(at + secs(45), &["b"]);
    assert_eq!(
        (only(&out).to, only(&out).reason),
        (ValState::Normal, ValReason::Expired)
    );

    // Host a never comes back: the quarantine ends at since + quarantine_max (10 min).
    let (mut sim, at) = quarantined_on_a();
    for s in (30..600).step_by(30) {
        assert_eq!(sim.timeout_at(at + secs(s), &["a"]), [], "at {s} s");
    }
    assert_eq!(sim.timeout_at(at + secs(600) - ms(1), &["a"]), []);
    assert_eq!(sim.guard.state_of(POISON), ValState::Quarantined);
    let out = sim.timeout_at(at + secs(600), &["a"]);
    assert_eq!(
        (only(&out).from, only(&out).to, only(&out).reason),
        (ValState::Quarantined, ValState::Normal, ValReason::Expired)
    );
}

#[test]
fn repeat_offences_double_the_quarantine_until_forgotten() {
    let (mut sim, at) = quarantined_on_a();
    let mut lengths = vec![(1, secs(30))];
    let mut until = at + secs(30);
    // It offends again right after each quarantine: 60 s, 120 s, 240 s.
    for offence in 2..=4 {
        let wait = until - sim.now;
        sim.run(wait);
        let end = sim.timeout_at(until, &[]);
        assert_eq!(only(&end).to, ValState::Normal);
        sim.run(secs(5));
        let out = poison_burst(&mut sim, "a", POISON, 32, ms(500));
        let t = only(&out);
        assert_eq!(
            (t.from, t.to, t.reason),
            (ValState::Normal, ValState::Quarantined, ValReason::Dominant)
        );
        until = t.until.unwrap();
        lengths.push((offence, until - sim.now));
        assert_eq!(sim.guard.info(POISON).unwrap().offences, offence);
    }
    assert_eq!(
        lengths,
        [(1, secs(30)), (2, secs(60)), (3, secs(120)), (4, secs(240))]
    );
    let last_offence = sim.now;

    // Quiet for more than forget_after (1 h) since the last offence: back to 30 s.
    let wait = until - sim.now;
    sim.run(wait);
    assert_eq!(only(&sim.timeout_at(until, &[])).to, ValState::Normal);
    sim.take_out("a");
    sim.take_out("b");
    sim.idle(secs(3600));
    everyday_traffic(&mut sim, "a");
    sim.run(secs(30));
    let out = poison_burst(&mut sim, "a", POISON, 32, ms(500));
    assert!(sim.now - last_offence > secs(3600));
    let t = only(&out);
    assert_eq!(
        (t.to, t.reason),
        (ValState::Quarantined, ValReason::Dominant)
    );
    assert_eq!(t.until, Some(sim.now + secs(30)));
    assert_eq!(sim.guard.info(POISON).unwrap().offences, 1);
}

#[test]
fn offences_within_forget_after_still_count() {
    let (mut sim, at) = quarantined_on_a();
    assert_eq!(
        only(&sim.timeout_at(at + secs(30), &[])).to,
        ValState::Normal
    );
    // 59 minutes after the first offence (quiet since): the second doubles.
    sim.take_out("a");
    sim.take_out("b");
    sim.idle(secs(3540) - secs(30) - secs(30) - ms(500));
    everyday_traffic(&mut sim, "a");
    sim.run(secs(30));
    let out = poison_burst(&mut sim, "a", POISON, 32, ms(500));
    assert_eq!(sim.now - at, secs(3540), "59 min");
    assert_eq!(only(&out).until, Some(sim.now + secs(60)));
    assert_eq!(sim.guard.info(POISON).unwrap().offences, 2);
}

#[test]
fn next_deadline_is_the_earliest_until() {
    const OTHER: u64 = 777;
    let mut sim = three_busy_hosts(GuardConfig::default());
    assert_eq!(sim.guard.next_deadline(), None);
    let t1 = sim.now + ms(500);
    assert_eq!(
        only(&poison_burst(&mut sim, "a", POISON, 32, ms(500))).until,
        Some(t1 + secs(30))
    );
    sim.run(secs(5));
    // Another Val, a suspect on host b (until its window ends, 65.5 s after t1).
    let t2 = sim.now + ms(500);
    let out = suspect_burst(&mut sim, "b", OTHER);
    assert_eq!(only(&out).until, Some(t2 + secs(60)));
    assert_eq!(sim.guard.next_deadline(), Some(t1 + secs(30)));
    // The first quarantine ends: the suspicion is next.
    assert_eq!(only(&sim.timeout_at(t1 + secs(30), &[])).val, POISON);
    assert_eq!(sim.guard.next_deadline(), Some(t2 + secs(60)));
    assert_eq!(only(&sim.timeout_at(t2 + secs(60), &[])).val, OTHER);
    assert_eq!(sim.guard.next_deadline(), None);
}

/// A held quarantine keeps its `until` (already past) as the guard's next deadline: an
/// owner that sleeps until `next_deadline` wakes at once, over and over, until a host
/// comes back or `quarantine_max` (10 min of busy loop). It should report the cap (or
/// nothing) instead.
#[test]
fn a_held_quarantine_does_not_leave_next_deadline_in_the_past() {
    let (mut sim, at) = quarantined_on_a();
    assert_eq!(sim.timeout_at(at + secs(30), &["a"]), []);
    let next = sim.guard.next_deadline();
    assert!(
        next.is_none_or(|n| n > sim.now),
        "next_deadline {:?} after the origin, now {:?}",
        next.map(|n| n - sim.t0),
        sim.now - sim.t0
    );
}

// --- 6. Operator commands --------------------------------------------------------------

#[test]
fn an_operator_quarantine_holds_until_released_by_hand() {
    const DOC: u64 = 4242;
    let mut sim = three_busy_hosts(GuardConfig::default());
    let t = sim
        .guard
        .quarantine(DOC, Some("doc-42"), sim.now)
        .expect("a change");
    assert_eq!(
        (
            t.val,
            t.name.as_deref(),
            t.from,
            t.to,
            t.reason,
            t.evidence,
            t.until
        ),
        (
            DOC,
            Some("doc-42"),
            ValState::Normal,
            ValState::Quarantined,
            ValReason::Operator,
            None,
            None
        )
    );
    let since = sim.now;
    let info = sim.guard.info(DOC).unwrap();
    assert_eq!(info.name.as_deref(), Some("doc-42"));
    assert_eq!(
        (
            info.state,
            info.reason,
            info.until,
            info.since,
            info.offences
        ),
        (ValState::Quarantined, ValReason::Operator, None, since, 0)
    );
    assert_eq!(sim.guard.next_deadline(), None);
    // No timer ends it, whatever the hosts.
    for (h, out) in [(1, &[][..]), (24, &["a"][..]), (24 * 30, &[][..])] {
        assert_eq!(sim.timeout_at(since + secs(3600 * h), out), []);
    }
    assert_eq!(sim.guard.state_of(DOC), ValState::Quarantined);
    // Stuck on a host meanwhile, it is implicated but stays the operator's.
    sim.run(secs(30));
    let out = poison_burst(&mut sim, "a", DOC, 32, ms(500));
    assert_eq!(out, []);
    let info = sim.guard.info(DOC).unwrap();
    assert_eq!(
        (info.state, info.reason, info.until),
        (ValState::Quarantined, ValReason::Operator, None)
    );
    assert_eq!(info.implications.len(), 1);
    assert_eq!(info.offences, 0);

    let released = sim.guard.release(DOC, sim.now).expect("a change");
    assert_eq!(
        (
            released.name.as_deref(),
            released.from,
            released.to,
            released.reason,
            released.until
        ),
        (
            Some("doc-42"),
            ValState::Quarantined,
            ValState::Normal,
            ValReason::Operator,
            None
        )
    );
    assert_eq!(sim.guard.state_of(DOC), ValState::Normal);
    assert_eq!(sim.guard.restricted().count(), 0);
}

#[test]
fn operator_commands_that_change_nothing_return_none() {
    let (mut sim, at) = quarantined_on_a();
    let now = sim.now;
    // Releasing a Val the guard never heard of, or a Normal one.
    assert_eq!(sim.guard.release(12345, now), None);
    assert!(sim.guard.quarantine(9, None, now).is_some());
    assert!(sim.guard.release(9, now).is_some());
    assert_eq!(sim.guard.release(9, now), None, "already normal");
    // Quarantining twice: the second changes nothing (and keeps the first name).
    assert!(sim.guard.quarantine(10, Some("first"), now).is_some());
    assert_eq!(
        sim.guard.quarantine(10, Some("second"), now + secs(1)),
        None
    );
    assert_eq!(sim.guard.quarantine(10, None, now + secs(2)), None);
    let info = sim.guard.info(10).unwrap();
    assert_eq!((info.name.as_deref(), info.since), (Some("first"), now));

    // An automatic quarantine taken over by hand: no end any more.
    assert!(sim.guard.needs_name(POISON));
    sim.guard.set_name(POISON, "hot-doc");
    assert!(!sim.guard.needs_name(POISON));
    let t = sim.guard.quarantine(POISON, None, now).expect("a change");
    assert_eq!(
        (t.name.as_deref(), t.from, t.to, t.reason, t.until),
        (
            Some("hot-doc"),
            ValState::Quarantined,
            ValState::Quarantined,
            ValReason::Operator,
            None
        )
    );
    assert_eq!(sim.timeout_at(at + secs(600), &[]), []);
    assert_eq!(sim.guard.state_of(POISON), ValState::Quarantined);
    // Released by hand: its offence is kept for the next time.
    assert!(sim.guard.release(POISON, sim.now).is_some());
    assert_eq!(sim.guard.info(POISON).unwrap().offences, 1);
}

// --- 7. The cap on automatic quarantines -----------------------------------------------

#[test]
fn automatic_quarantines_stop_at_max_quarantined() {
    let config = GuardConfig {
        max_quarantined: 2,
        ..GuardConfig::default()
    };
    let mut sim = Sim::new(config, &["a", "b", "c", "d"]);
    for host in ["a", "b", "c", "d"] {
        everyday_traffic(&mut sim, host);
    }
    // An operator quarantine does not count against the cap.
    assert!(
        sim.guard
            .quarantine(900, Some("by-hand"), sim.now)
            .is_some()
    );
    sim.run(secs(30));
    for (host, val) in [("a", 101), ("b", 102)] {
        let out = poison_burst(&mut sim, host, val, 32, ms(500));
        let t = only(&out);
        assert_eq!(
            (t.val, t.to, t.reason),
            (val, ValState::Quarantined, ValReason::Dominant)
        );
        sim.run(secs(1));
    }
    let q102 = sim.guard.info(102).unwrap().until.unwrap();
    // A third, as dominant, on host c: a suspect only, for the cap.
    let out = poison_burst(&mut sim, "c", 103, 32, ms(500));
    let t = only(&out);
    assert_eq!(
        (t.val, t.from, t.to, t.reason),
        (
            103,
            ValState::Normal,
            ValState::Suspect,
            ValReason::CapReached
        )
    );
    assert!(t.evidence.unwrap().share >= 0.5, "{t:?}");
    assert_eq!(t.evidence.unwrap().host, "c");
    assert_eq!(t.until, Some(sim.now + secs(60)));
    let mut restricted: Vec<_> = sim.guard.restricted().map(|(v, s, _)| (v, s)).collect();
    restricted.sort_unstable_by_key(|r| r.0);
    assert_eq!(
        restricted,
        [
            (101, ValState::Quarantined),
            (102, ValState::Quarantined),
            (103, ValState::Suspect),
            (900, ValState::Quarantined)
        ]
    );
    // Once 101's quarantine ends, 103 can be quarantined: on host d, dominant again.
    let q101 = sim.guard.info(101).unwrap().until.unwrap();
    assert!(q101 < q102);
    let wait = q101 - sim.now;
    sim.run(wait);
    assert_eq!(only(&sim.timeout_at(q101, &[])).val, 101);
    let out = poison_burst(&mut sim, "d", 103, 32, ms(500));
    let t = only(&out);
    assert_eq!(
        (t.from, t.to, t.reason),
        (
            ValState::Suspect,
            ValState::Quarantined,
            ValReason::Dominant
        )
    );
}

// --- 8. Disabled ------------------------------------------------------------------------

#[test]
fn a_disabled_guard_implicates_nothing() {
    let config = GuardConfig {
        enabled: false,
        ..GuardConfig::default()
    };
    let mut sim = three_busy_hosts(config);
    // The post-mortem's burst, then the same Val on two more hosts.
    for host in ["a", "b", "c"] {
        assert_eq!(
            poison_burst(&mut sim, host, POISON, 32, ms(500)),
            [],
            "{host}"
        );
        sim.run(secs(1));
    }
    sim.stall("a");
    sim.run(secs(1));
    assert_eq!(sim.fail("a"), []);
    assert_eq!(sim.guard.state_of(POISON), ValState::Normal);
    assert_eq!(infos_len(&sim), 0);
    assert_eq!(sim.guard.next_deadline(), None);
    // The operator's commands still work.
    let t = sim
        .guard
        .quarantine(POISON, None, sim.now)
        .expect("a change");
    assert_eq!(
        (t.to, t.reason),
        (ValState::Quarantined, ValReason::Operator)
    );
    assert_eq!(sim.guard.state_of(POISON), ValState::Quarantined);
}

// --- 9. Bounded memory ------------------------------------------------------------------

#[test]
fn a_hundred_thousand_vals_leave_no_records() {
    let mut sim = Sim::new(GuardConfig::default(), &["a"]);
    everyday_traffic(&mut sim, "a");
    sim.run(secs(10));
    // 50 new Vals a tick, each with 2 requests of 60 ms (so 2 in flight at a sample):
    // 100,000 distinct Vals in 100 s.
    let crowd = 1_000_000u64;
    for tick in 0..2000u64 {
        for i in 0..50 {
            sim.once("a", crowd + tick * 50 + i, 2, ms(60));
        }
        sim.tick();
        if tick % 400 == 399 {
            assert_eq!(sim.fail("a"), [], "after {} Vals", (tick + 1) * 50);
            assert_eq!(infos_len(&sim), 0, "after {} Vals", (tick + 1) * 50);
        }
    }
    assert_eq!(infos_len(&sim), 0);
    assert_eq!(sim.guard.restricted().count(), 0);
    // The sketches are not spoiled: the crowd gone, a poison is still caught.
    sim.run(secs(20));
    let out = poison_burst(&mut sim, "a", POISON, 32, ms(500));
    assert_eq!(
        (only(&out).val, only(&out).reason),
        (POISON, ValReason::Dominant)
    );
    assert_eq!(infos_len(&sim), 1);
}

// --- Fast popular Vals ------------------------------------------------------------------

/// The module's claim, "a merely popular Val holds the same share of in-flight time as of
/// answered time, so it is never implicated", fails when the popular Val is faster than
/// the rest: in a stall for everyone, requests pile up by *count*, while its baseline is
/// by *time*. Val 1 has 75% of the requests at 1 ms (cache hits), or 30% at 4 ms, the
/// rest 20 ms; the whole host stalls for a second and fails.
#[test]
fn a_popular_fast_val_is_not_implicated_when_the_whole_host_stalls() {
    let mut implicated = Vec::new();
    for (split, hot_latency) in [((0.75, 0.15), ms(1)), ((0.3, 0.4), ms(4))] {
        let (_, out) = whole_host_stall(GuardConfig::default(), split, hot_latency, ms(20));
        implicated.extend(out.into_iter().map(|t| (split, t.to, t.evidence.unwrap())));
    }
    assert_eq!(implicated, [], "{implicated:#?}");
}

// --- The early warning: a Val stuck on a host that has not failed yet ------------------

impl Sim {
    /// The owner's per-tick early warning on `host` (a host still serving).
    fn watch(&mut self, host: Host) -> Vec<Transition> {
        let mut out = Vec::new();
        self.guard.watch(host, self.now, &mut out);
        self.log.extend(out.iter().cloned());
        out
    }
}

#[test]
fn a_val_stuck_on_a_serving_host_is_kept_there_before_the_host_fails() {
    let mut sim = three_busy_hosts(GuardConfig::default());
    // The flurry's first burst: 4 requests stuck on host a, 150 ms in.
    sim.burst("a", POISON, 4);
    sim.run(ms(50));
    assert_eq!(sim.watch("a"), [], "not stuck yet at 50 ms");
    sim.run(ms(100));
    let out = sim.watch("a");
    let t = only(&out);
    assert_eq!(
        (t.val, t.from, t.to, t.reason),
        (
            POISON,
            ValState::Normal,
            ValState::Suspect,
            ValReason::Stuck
        )
    );
    let e = t.evidence.expect("evidence");
    assert_eq!((e.host, e.stuck, e.in_flight), ("a", 4, 4));
    assert!(e.share >= 0.5, "{e:?}");
    assert_eq!(t.until, Some(sim.now + secs(60)));
    // Watching again changes nothing; it is not an implication.
    assert_eq!(sim.watch("a"), []);
    assert!(sim.guard.info(POISON).unwrap().implications.is_empty());
    // The host then fails: the suspect is quarantined (dominant), its evidence host a.
    sim.run(ms(350));
    let out = sim.fail("a");
    let t = only(&out);
    assert_eq!(
        (t.from, t.to, t.reason),
        (
            ValState::Suspect,
            ValState::Quarantined,
            ValReason::Dominant
        )
    );
    assert_eq!(t.evidence.unwrap().host, "a");
}

#[test]
fn the_early_warning_never_counts_as_an_implication() {
    let mut sim = three_busy_hosts(GuardConfig::default());
    // Stuck requests dominate host a, then host b, but neither host fails.
    sim.burst("a", POISON, 4);
    sim.run(ms(200));
    assert_eq!(only(&sim.watch("a")).reason, ValReason::Stuck);
    sim.drop_stuck("a", POISON);
    sim.burst("b", POISON, 4);
    sim.run(ms(200));
    assert_eq!(sim.watch("b"), [], "already a suspect");
    assert_eq!(
        sim.guard.state_of(POISON),
        ValState::Suspect,
        "not quarantined"
    );
    sim.drop_stuck("b", POISON);
    // The suspicion ends with the window, and the record goes.
    let until = sim.guard.next_deadline().expect("a deadline");
    let out = sim.timeout_at(until, &[]);
    assert_eq!(
        (only(&out).from, only(&out).to),
        (ValState::Suspect, ValState::Normal)
    );
    assert_eq!(infos_len(&sim), 0);
}

#[test]
fn the_early_warning_spares_popular_and_slow_vals() {
    // A popular Val in a whole-host stall: its share is its traffic share.
    for split in [(0.6, 0.3), (0.9, 0.08)] {
        let mut sim = Sim::new(GuardConfig::default(), &["a"]);
        popular_traffic(&mut sim, "a", split, ms(10), ms(10));
        sim.run(secs(30));
        sim.stall("a");
        for _ in 0..20 {
            sim.run(ms(50));
            assert_eq!(sim.watch("a"), [], "split {split:?}");
        }
    }
    // A slow Val on a busy host: its seconds-old requests are its normal.
    let mut sim = slow_val_host(GuardConfig::default());
    for _ in 0..40 {
        sim.run(ms(100));
        assert_eq!(sim.watch("a"), [], "at {:?}", sim.now - sim.t0);
    }
    // And a host with only young requests in flight flags nobody.
    let mut sim = three_busy_hosts(GuardConfig::default());
    for _ in 0..20 {
        sim.run(ms(50));
        assert_eq!(sim.watch("a"), []);
    }
}

#[test]
fn a_peer_quarantine_is_adopted_until_its_end_within_max_quarantined() {
    let t0 = origin();
    let config = GuardConfig {
        max_quarantined: 2,
        ..GuardConfig::default()
    };
    let mut guard: Guard<Host, u64> = Guard::new(config);
    guard.set_hosts(["a", "b"]);
    let until = t0 + secs(30);
    let t = guard
        .adopt_peer_quarantine(7, Some("alice-hello"), until, t0)
        .expect("adopted");
    assert_eq!(
        (t.to, t.reason, t.until),
        (ValState::Quarantined, ValReason::Peer, Some(until))
    );
    assert_eq!(guard.state_of(7), ValState::Quarantined);
    // Again, or once more by another peer: nothing changes.
    assert!(
        guard
            .adopt_peer_quarantine(7, None, t0 + secs(60), t0)
            .is_none()
    );
    // A faulty peer quarantines everything: max_quarantined holds.
    assert!(guard.adopt_peer_quarantine(8, None, until, t0).is_some());
    assert!(
        guard.adopt_peer_quarantine(9, None, until, t0).is_none(),
        "at the cap"
    );
    assert_eq!(guard.state_of(9), ValState::Normal);
    // One already over is not adopted.
    assert!(guard.adopt_peer_quarantine(10, None, t0, t0).is_none());
    // It ends on time, as this guard's own would.
    let mut out = Vec::new();
    guard.handle_timeout(until, |_| false, &mut out);
    assert_eq!(guard.state_of(7), ValState::Normal, "{out:?}");
}
