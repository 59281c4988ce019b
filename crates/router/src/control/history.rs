//! A short history for the status page, in bounded memory: per host, one point a second for
//! the last five minutes (requests per second, p99 latency, DB pool use, state), and the
//! last [`EVENTS`] events (ejections with their reason, probation steps, restores, reloads,
//! the cascade guard's quarantines and releases).
//!
//! Fed only by the health task: it records the transitions it already logs, and once a
//! second it samples the counters the request path keeps anyway (each host's response
//! counts and latency histogram, atomics read with `Relaxed` loads) and the pool figures of
//! the health view. The request path never touches the history. The p99 of a second is
//! computed from the histogram's bucket deltas over that second, the way Prometheus's
//! `histogram_quantile` does over a `rate()`.
//!
//! Memory is fixed: each host's series is allocated once ([`POINTS`] points) and overwritten
//! in a ring; a host removed by a reload loses its series at the next sample, so the history
//! is bounded by the hosts of the current config; the event list never holds more than
//! [`EVENTS`]. Time is injected: [`Recorder`] takes `now` everywhere (the pure part, unit
//! tested); [`History`] is the recorder behind a mutex that the health task and the page
//! share (never held across an await, never on the request path).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use health::guard::{ValReason, ValState};
use health::{HostState, PoolReport, Reason, StateKind, Transition};

use crate::control::fleet::HostKey;
use crate::metrics::{BUCKETS, HostMetrics};

/// Points kept per host: one a second for five minutes.
pub(crate) const POINTS: usize = 300;

/// How often the health task samples the per-host series.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Events kept (the oldest is dropped first).
pub(crate) const EVENTS: usize = 200;

/// Buckets of a latency histogram (the finite ones and `+Inf`).
const NBUCKETS: usize = BUCKETS.len() + 1;

/// The counters of one host at one instant: responses and the latency histogram's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Responses sent, every status class.
    pub(crate) requests: u64,
    /// Latency observations per bucket (not cumulative).
    pub(crate) buckets: [u64; NBUCKETS],
}

impl Counts {
    /// Reads a host's metrics (relaxed loads; the request path is not slowed or locked).
    pub(crate) fn read(m: &HostMetrics) -> Counts {
        use std::sync::atomic::Ordering::Relaxed;
        let mut buckets = [0; NBUCKETS];
        for (b, c) in buckets.iter_mut().zip(&m.latency.counts) {
            *b = c.load(Relaxed);
        }
        Counts {
            requests: m.requests.iter().map(|c| c.load(Relaxed)).sum(),
            buckets,
        }
    }
}

/// A host's DB pool figures at a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolUse {
    /// Connections in use.
    pub(crate) in_use: u32,
    /// The pool's size.
    pub(crate) max: u32,
    /// Callers waiting for a connection.
    pub(crate) waiting: u32,
}

impl PoolUse {
    /// The fuller of two: the larger share in use, then more waiting.
    fn fuller(a: Option<PoolUse>, b: Option<PoolUse>) -> Option<PoolUse> {
        let key = |p: &PoolUse| {
            let share = u64::from(p.in_use) * 1_000_000 / u64::from(p.max.max(1));
            (share, p.waiting)
        };
        match (a, b) {
            (Some(a), Some(b)) => Some(if key(&b) > key(&a) { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

impl From<PoolReport> for PoolUse {
    fn from(p: PoolReport) -> Self {
        PoolUse {
            in_use: p.in_use,
            max: p.max,
            waiting: p.waiting,
        }
    }
}

/// What the health task reads about one host once a second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostSample {
    /// The host.
    pub(crate) key: HostKey,
    /// Its counters now.
    pub(crate) counts: Counts,
    /// Its last reported pool figures.
    pub(crate) pool: Option<PoolUse>,
    /// Its state now.
    pub(crate) state: StateKind,
}

/// One second of one host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// The end of the interval.
    pub(crate) at: Instant,
    /// Responses per second over the interval.
    pub(crate) rps: f32,
    /// The interval's p99 latency in seconds (none without responses).
    pub(crate) p99: Option<f32>,
    /// The pool figures at the sample (none before the host reported any).
    pub(crate) pool: Option<PoolUse>,
    /// The host's state at the sample.
    pub(crate) state: StateKind,
}

/// One host's series: a ring of [`POINTS`] points, allocated once.
#[derive(Debug)]
struct Series {
    key: HostKey,
    /// At most `POINTS` long; its capacity is reserved at creation, so pushes never
    /// reallocate, and once full the oldest point is overwritten at `next`.
    points: Vec<Point>,
    next: usize,
    /// The counters at the previous sample (the interval's start).
    last: Option<(Instant, Counts)>,
    /// The fullest pool figures noted since the previous sample.
    pool_peak: Option<PoolUse>,
    /// The sample round that last saw the host (a host not seen is removed).
    seen: u64,
}

impl Series {
    fn new(key: HostKey) -> Series {
        Series {
            key,
            points: Vec::with_capacity(POINTS),
            next: 0,
            last: None,
            pool_peak: None,
            seen: 0,
        }
    }

    fn push(&mut self, p: Point) {
        if self.points.len() < POINTS {
            self.points.push(p);
        } else {
            self.points[self.next] = p;
        }
        self.next = (self.next + 1) % POINTS;
    }

    /// Oldest first.
    fn iter(&self) -> impl Iterator<Item = &Point> {
        let (newer, older) = if self.points.len() < POINTS {
            self.points.split_at(0)
        } else {
            self.points.split_at(self.next)
        };
        older.iter().chain(newer)
    }
}

/// How an event reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    /// Something went out or was refused (ejection, quarantine).
    Bad,
    /// On its way back, or restricted a little (probation, degraded, suspect, drain).
    Warn,
    /// Back to normal (restored, released).
    Good,
    /// Neither (a reload).
    Info,
}

impl Tone {
    /// The CSS class the page uses.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Tone::Bad => "bad",
            Tone::Warn => "warn",
            Tone::Good => "good",
            Tone::Info => "info",
        }
    }
}

/// One recent event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// When it happened.
    pub(crate) at: Instant,
    /// How it reads.
    pub(crate) tone: Tone,
    /// The host or Val it is about (empty for the router itself).
    pub(crate) subject: String,
    /// What happened, in words.
    pub(crate) text: String,
}

/// A host's change of state, as the event list words it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostChange {
    /// The state it left.
    pub(crate) from: StateKind,
    /// The state it entered.
    pub(crate) to: StateKind,
    /// Why.
    pub(crate) reason: Reason,
    /// When an ejection ends.
    pub(crate) until: Option<Instant>,
    /// In probation: the step it is on now (1-based) and the number of steps.
    pub(crate) step: Option<(u32, u32)>,
}

/// A Val's change of state, as the event list words it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValChange<'a> {
    /// The state it left.
    pub(crate) from: ValState,
    /// The state it entered.
    pub(crate) to: ValState,
    /// Why.
    pub(crate) reason: ValReason,
    /// The host that implicated it, if one did.
    pub(crate) host: Option<&'a str>,
    /// When the new state ends by itself.
    pub(crate) until: Option<Instant>,
}

/// An ejection reason in plain words.
pub(crate) fn reason_words(r: Reason) -> &'static str {
    match r {
        Reason::PoolExhausted => "its DB pool is exhausted",
        Reason::StuckSlots => "DB connections are stuck",
        Reason::ConsecutiveGatewayFailures => "gateway failures in a row",
        Reason::FailureRate => "too many failed requests",
        Reason::HungRequests => "its requests hang",
        Reason::ProbeFailures => "its health probes fail",
        Reason::Operator => "an operator's command",
        Reason::Peer => "another router ejected it",
        Reason::EjectionExpired => "its ejection ended",
        Reason::ProbationAdvanced => "probation step earned",
        Reason::ProbationPassed => "probation passed",
        Reason::ProbationQuiet => "a quiet probation step passed",
        Reason::Recovered => "it recovered",
        Reason::Added => "it joined",
        _ => "",
    }
}

/// A duration for a person: `850 ms`, `4.2 s`, `42 s`, `3 min 12 s`, `2 h 5 min`, `3 d 4 h`
/// (a no-break space between number and unit, so it never wraps inside).
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}\u{a0}ms", d.as_millis()),
        1..10 => format!("{:.1}\u{a0}s", d.as_secs_f64()),
        10..60 => format!("{s}\u{a0}s"),
        60..3600 => format!("{}\u{a0}min {}\u{a0}s", s / 60, s % 60),
        3600..86_400 => format!("{}\u{a0}h {}\u{a0}min", s / 3600, s % 3600 / 60),
        _ => format!("{}\u{a0}d {}\u{a0}h", s / 86_400, s % 86_400 / 3600),
    }
}

impl Event {
    /// A host's change of state at `at`.
    pub(crate) fn host(at: Instant, host: &str, c: HostChange) -> Event {
        let why = reason_words(c.reason);
        let code = c.reason.as_str();
        let lasting = c
            .until
            .map(|u| format!(", out for {}", human(u.saturating_duration_since(at))))
            .unwrap_or_default();
        let step = c
            .step
            .map(|(n, of)| format!(" step {n} of {of}"))
            .unwrap_or_default();
        let (tone, text) = match (c.from, c.to, c.reason) {
            (_, StateKind::Ejected, Reason::Operator) => {
                (Tone::Bad, format!("ejected by an operator{lasting}"))
            }
            (StateKind::Ejected, StateKind::Ejected, _) => (
                Tone::Bad,
                format!("ejection extended: {why} ({code}){lasting}"),
            ),
            (StateKind::Probation, StateKind::Ejected, _) => (
                Tone::Bad,
                format!("ejected again during probation: {why} ({code}){lasting}"),
            ),
            (_, StateKind::Ejected, _) => (Tone::Bad, format!("ejected: {why} ({code}){lasting}")),
            (_, StateKind::Probation, Reason::EjectionExpired) => (
                Tone::Warn,
                format!("ejection over: probation{step}, a share of its own Vals"),
            ),
            (_, StateKind::Probation, Reason::ProbationQuiet) => (
                Tone::Warn,
                format!(
                    "probation{step}: the step before passed quietly (too few requests to earn it)"
                ),
            ),
            (_, StateKind::Probation, _) => (
                Tone::Warn,
                format!("probation{step}: the step before earned with real requests"),
            ),
            (_, StateKind::Healthy, Reason::Operator) => {
                (Tone::Good, "restored by an operator".to_owned())
            }
            (StateKind::Probation, StateKind::Healthy, Reason::ProbationQuiet) => (
                Tone::Good,
                "restored: probation's last step passed quietly, back to all its Vals".to_owned(),
            ),
            (StateKind::Probation, StateKind::Healthy, _) => (
                Tone::Good,
                "restored: probation passed, back to all its Vals".to_owned(),
            ),
            (_, StateKind::Healthy, Reason::Added) => (Tone::Info, "joined".to_owned()),
            (_, StateKind::Healthy, _) => (Tone::Good, format!("healthy again: {why}")),
            (_, StateKind::Degraded, _) => (
                Tone::Warn,
                format!("degraded: {why} ({code}); keeps its own Vals, takes no others"),
            ),
            (_, StateKind::Draining, _) => (
                Tone::Warn,
                "draining (an operator's command): no new requests".to_owned(),
            ),
        };
        Event {
            at,
            tone,
            subject: host.to_owned(),
            text,
        }
    }

    /// A Val's change of state at `at`.
    pub(crate) fn val(at: Instant, val: &str, c: ValChange<'_>) -> Event {
        let code = c.reason.as_str();
        let on = c.host.map(|h| format!(" on {h}")).unwrap_or_default();
        let until = c.until.map_or_else(
            || "until released".to_owned(),
            |u| format!("for {}", human(u.saturating_duration_since(at))),
        );
        let (tone, text) = match c.to {
            ValState::Quarantined if c.reason == ValReason::Operator => (
                Tone::Bad,
                format!("quarantined by an operator: answered 503, {until}"),
            ),
            ValState::Quarantined => (
                Tone::Bad,
                format!(
                    "quarantined ({code}{on}): answered 503, not carried to other hosts, {until}"
                ),
            ),
            ValState::Suspect => (
                Tone::Warn,
                format!("suspect ({code}{on}): kept to its own host, no retry, rescue or spill"),
            ),
            ValState::Normal if c.from == ValState::Quarantined => {
                (Tone::Good, format!("released from quarantine ({code})"))
            }
            ValState::Normal => (Tone::Good, format!("no longer a suspect ({code})")),
        };
        Event {
            at,
            tone,
            subject: val.to_owned(),
            text,
        }
    }

    /// Something that happened to the router as a whole (a reload).
    pub(crate) fn router(at: Instant, text: String) -> Event {
        Event {
            at,
            tone: Tone::Info,
            subject: String::new(),
            text,
        }
    }
}

/// The event of host `name`'s transition `t`. `now` is the host's state after the batch of
/// transitions `t` belongs to: it gives an ejection's end and the probation step, when it is
/// still the state `t` entered.
pub(crate) fn host_event(
    t: &Transition<HostKey>,
    name: &str,
    now: Option<HostState>,
    probation_steps: u32,
) -> Event {
    let now = now.filter(|s| s.kind() == t.to);
    let until = match now {
        Some(HostState::Ejected { until, .. }) => Some(until),
        _ => None,
    };
    let step = match now {
        Some(HostState::Probation { step, .. }) => Some((step + 1, probation_steps)),
        _ => None,
    };
    Event::host(
        t.at,
        name,
        HostChange {
            from: t.from,
            to: t.to,
            reason: t.reason,
            until,
            step,
        },
    )
}

/// The history itself, with time injected (see the module's documentation).
#[derive(Debug)]
pub(crate) struct Recorder {
    series: Vec<Series>,
    events: VecDeque<Event>,
    round: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            series: Vec::new(),
            events: VecDeque::with_capacity(EVENTS),
            round: 0,
        }
    }
}

impl Recorder {
    /// Takes one sample of every current host at `now`: each gets the point for the interval
    /// since its previous sample (a host's first sample only sets its baseline). Hosts that
    /// are not in `hosts` (removed by a reload) lose their series.
    pub(crate) fn sample(&mut self, now: Instant, hosts: impl IntoIterator<Item = HostSample>) {
        self.round += 1;
        for h in hosts {
            let i = match self.series.iter().position(|s| s.key == h.key) {
                Some(i) => i,
                None => {
                    self.series.push(Series::new(h.key));
                    self.series.len() - 1
                }
            };
            let s = &mut self.series[i];
            s.seen = self.round;
            if let Some((then, before)) = s.last {
                let secs = now.saturating_duration_since(then).as_secs_f64();
                if secs <= 0.0 {
                    continue;
                }
                let mut delta = [0; NBUCKETS];
                for (d, (a, b)) in delta
                    .iter_mut()
                    .zip(h.counts.buckets.iter().zip(before.buckets))
                {
                    *d = a.saturating_sub(b);
                }
                let requests = h.counts.requests.saturating_sub(before.requests);
                s.push(Point {
                    at: now,
                    rps: (requests as f64 / secs) as f32,
                    p99: quantile(&delta, 0.99).map(|q| q as f32),
                    pool: PoolUse::fuller(s.pool_peak, h.pool),
                    state: h.state,
                });
            }
            s.last = Some((now, h.counts));
            s.pool_peak = None;
        }
        let round = self.round;
        self.series.retain(|s| s.seen == round);
    }

    /// Notes host `key`'s pool figures between samples: the next point shows the fullest
    /// pool of its interval, so a pool that filled for half a second is not missed. (A host
    /// not sampled yet has no interval to note it in.)
    pub(crate) fn note_pool(&mut self, key: HostKey, pool: PoolUse) {
        if let Some(s) = self.series.iter_mut().find(|s| s.key == key) {
            s.pool_peak = PoolUse::fuller(s.pool_peak, Some(pool));
        }
    }

    /// Adds an event, dropping the oldest when [`EVENTS`] are kept.
    pub(crate) fn event(&mut self, e: Event) {
        if self.events.len() == EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Host `key`'s points, oldest first (empty for a host not sampled yet).
    pub(crate) fn points(&self, key: HostKey) -> impl Iterator<Item = &Point> {
        self.series
            .iter()
            .find(|s| s.key == key)
            .into_iter()
            .flat_map(Series::iter)
    }

    /// The events, newest first.
    pub(crate) fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().rev()
    }

    /// Hosts with a series.
    #[cfg(test)]
    pub(crate) fn hosts(&self) -> usize {
        self.series.len()
    }

    /// The oldest point of any host.
    pub(crate) fn oldest(&self) -> Option<Instant> {
        self.series
            .iter()
            .filter_map(|s| s.iter().next().map(|p| p.at))
            .min()
    }
}

/// The `q` quantile (0..1) in seconds of a histogram's observations given per bucket (not
/// cumulative) over [`BUCKETS`]: linear within the bucket that holds rank `q * n`, as
/// Prometheus's `histogram_quantile` does; in the `+Inf` bucket, the largest finite bound.
/// None without observations.
pub(crate) fn quantile(counts: &[u64; NBUCKETS], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &c) in counts.iter().enumerate() {
        if c > 0 && (below + c) as f64 >= rank {
            let Some(&upper) = BUCKETS.get(i) else {
                return BUCKETS.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
            let within = ((rank - below as f64) / c as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * within);
        }
        below += c;
    }
    BUCKETS.last().copied()
}

/// The recorder the health task writes and the status page reads, with the instant the
/// router started (for its uptime).
#[derive(Debug)]
pub(crate) struct History {
    started: Instant,
    recorder: Mutex<Recorder>,
}

impl History {
    /// An empty history for a router started at `started`.
    pub(crate) fn new(started: Instant) -> History {
        History {
            started,
            recorder: Mutex::new(Recorder::default()),
        }
    }

    /// When the router started.
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// The recorder, locked (briefly: never across an await).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: HostKey = HostKey(0);
    const B: HostKey = HostKey(1);

    fn counts(requests: u64, buckets: &[(usize, u64)]) -> Counts {
        let mut c = Counts {
            requests,
            buckets: [0; NBUCKETS],
        };
        for &(i, n) in buckets {
            c.buckets[i] = n;
        }
        c
    }

    fn sample(key: HostKey, c: Counts) -> HostSample {
        HostSample {
            key,
            counts: c,
            pool: Some(PoolUse {
                in_use: 3,
                max: 10,
                waiting: 0,
            }),
            state: StateKind::Healthy,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_series_is_bounded_and_allocated_once() {
        let t0 = Instant::now();
        let mut r = Recorder::default();
        r.sample(t0, [sample(A, counts(0, &[]))]);
        assert_eq!(
            r.points(A).count(),
            0,
            "the first sample is the baseline only"
        );
        let capacity = r.series[0].points.capacity();
        assert!(capacity >= POINTS);
        for i in 1..=(POINTS as u64 + 50) {
            r.sample(t0 + secs(i), [sample(A, counts(i * 10, &[(0, i * 10)]))]);
        }
        let points: Vec<&Point> = r.points(A).collect();
        assert_eq!(points.len(), POINTS);
        assert_eq!(r.series[0].points.capacity(), capacity, "never reallocated");
        // Oldest first, consecutive, ending with the last sample.
        assert_eq!(points[0].at, t0 + secs(51));
        assert_eq!(points[POINTS - 1].at, t0 + secs(POINTS as u64 + 50));
        assert!(points.windows(2).all(|w| w[1].at - w[0].at == secs(1)));
        assert_eq!(r.oldest(), Some(t0 + secs(51)));
        // 10 responses a second.
        assert!(points.iter().all(|p| (p.rps - 10.0).abs() < 1e-6));
    }

    #[test]
    fn rate_uses_the_real_interval() {
        let t0 = Instant::now();
        let mut r = Recorder::default();
        r.sample(t0, [sample(A, counts(100, &[]))]);
        r.sample(
            t0 + Duration::from_millis(2500),
            [sample(A, counts(150, &[]))],
        );
        let p = r.points(A).next().copied().expect("a point");
        assert!((p.rps - 20.0).abs() < 1e-4, "{}", p.rps);
        assert_eq!(p.p99, None, "no latency observations, no p99");
        assert_eq!(p.pool.map(|p| p.in_use), Some(3));
    }

    #[test]
    fn p99_comes_from_the_intervals_bucket_deltas() {
        let t0 = Instant::now();
        let mut r = Recorder::default();
        // Before: a thousand slow responses (0.5..1 s). They must not count in the next
        // interval, whose own observations are fast.
        r.sample(t0, [sample(A, counts(1000, &[(8, 1000)]))]);
        // The next second: 98 more at <= 1 ms and 2 in 0.1..0.25 s.
        r.sample(
            t0 + secs(1),
            [sample(A, counts(1100, &[(0, 98), (6, 2), (8, 1000)]))],
        );
        let p = r.points(A).last().copied().expect("a point");
        // Rank 99 of 100 falls halfway into the 0.1..0.25 s bucket.
        let p99 = f64::from(p.p99.expect("p99"));
        assert!((p99 - 0.175).abs() < 1e-6, "{p99}");
        // The second after: nothing new, no p99 (not the old slow ones again).
        r.sample(
            t0 + secs(2),
            [sample(A, counts(1100, &[(0, 98), (6, 2), (8, 1000)]))],
        );
        assert_eq!(r.points(A).last().and_then(|p| p.p99), None);
    }

    #[test]
    fn a_point_keeps_the_fullest_pool_of_its_second() {
        let t0 = Instant::now();
        let mut r = Recorder::default();
        let pool = |in_use, waiting| PoolUse {
            in_use,
            max: 10,
            waiting,
        };
        r.sample(t0, [sample(A, counts(0, &[]))]);
        // Within the second: full with waiters for a moment, then back to 3 (the sample's).
        r.note_pool(A, pool(2, 0));
        r.note_pool(A, pool(10, 4));
        r.note_pool(A, pool(10, 1));
        r.note_pool(A, pool(3, 0));
        r.sample(t0 + secs(1), [sample(A, counts(0, &[]))]);
        // The next second: nothing noted, the sample's own figures.
        r.sample(t0 + secs(2), [sample(A, counts(0, &[]))]);
        let pools: Vec<_> = r.points(A).map(|p| p.pool).collect();
        assert_eq!(pools, [Some(pool(10, 4)), Some(pool(3, 0))]);
        assert_eq!(PoolUse::fuller(None, None), None);
        // A larger share in use is fuller, whatever the sizes.
        let big = PoolUse {
            in_use: 50,
            max: 100,
            waiting: 0,
        };
        assert_eq!(
            PoolUse::fuller(Some(big), Some(pool(6, 0))),
            Some(pool(6, 0))
        );
    }

    #[test]
    fn quantiles_of_a_histogram() {
        let mut c = [0; NBUCKETS];
        assert_eq!(quantile(&c, 0.99), None);
        c[0] = 100;
        // All in the first bucket (0..1 ms): 99% of the way through it.
        assert!((quantile(&c, 0.99).unwrap() - 0.00099).abs() < 1e-9);
        c[0] = 0;
        c[3] = 10; // 0.01..0.025 s
        assert!((quantile(&c, 0.5).unwrap() - 0.0175).abs() < 1e-9);
        // Beyond the last finite bound: the largest finite bound.
        c[NBUCKETS - 1] = 1000;
        assert_eq!(quantile(&c, 0.99), Some(30.0));
    }

    #[test]
    fn removed_hosts_lose_their_series() {
        let t0 = Instant::now();
        let mut r = Recorder::default();
        for i in 0..5 {
            r.sample(
                t0 + secs(i),
                [sample(A, counts(i, &[])), sample(B, counts(i, &[]))],
            );
        }
        assert_eq!(r.hosts(), 2);
        assert_eq!(r.points(B).count(), 4);
        // A reload dropped B.
        r.sample(t0 + secs(5), [sample(A, counts(5, &[]))]);
        assert_eq!(r.hosts(), 1);
        assert_eq!(r.points(B).count(), 0);
        assert_eq!(r.points(A).count(), 5);
        // B comes back: a new series from a new baseline.
        r.sample(
            t0 + secs(6),
            [sample(A, counts(6, &[])), sample(B, counts(60, &[]))],
        );
        assert_eq!(r.hosts(), 2);
        assert_eq!(r.points(B).count(), 0);
        // Many reloads of many names: never more series than current hosts.
        for i in 0..1000u32 {
            r.sample(
                t0 + secs(7 + u64::from(i)),
                [sample(HostKey(10 + i), counts(0, &[]))],
            );
            assert_eq!(r.hosts(), 1);
        }
    }

    #[test]
    fn events_are_a_bounded_ring_newest_first() {
        let t0 = Instant::now();
        let mut r = Recorder::default();
        let cap = r.events.capacity();
        for i in 0..(EVENTS as u64 + 30) {
            r.event(Event::router(t0 + secs(i), format!("reload {i}")));
        }
        assert_eq!(r.events().count(), EVENTS);
        assert_eq!(r.events.capacity(), cap, "never grew");
        let texts: Vec<&str> = r.events().map(|e| e.text.as_str()).collect();
        assert_eq!(texts[0], format!("reload {}", EVENTS + 29));
        assert_eq!(texts[EVENTS - 1], "reload 30");
    }

    #[test]
    fn events_in_words() {
        let t0 = Instant::now();
        let ejected = Event::host(
            t0,
            "host-b",
            HostChange {
                from: StateKind::Healthy,
                to: StateKind::Ejected,
                reason: Reason::PoolExhausted,
                until: Some(t0 + secs(5)),
                step: None,
            },
        );
        assert_eq!(ejected.tone, Tone::Bad);
        assert_eq!(ejected.subject, "host-b");
        assert_eq!(
            ejected.text,
            "ejected: its DB pool is exhausted (pool_exhausted), out for 5.0\u{a0}s"
        );
        let step = Event::host(
            t0,
            "host-b",
            HostChange {
                from: StateKind::Probation,
                to: StateKind::Probation,
                reason: Reason::ProbationAdvanced,
                until: None,
                step: Some((2, 3)),
            },
        );
        assert_eq!(step.tone, Tone::Warn);
        assert_eq!(
            step.text,
            "probation step 2 of 3: the step before earned with real requests"
        );
        let back = Event::host(
            t0,
            "host-b",
            HostChange {
                from: StateKind::Probation,
                to: StateKind::Healthy,
                reason: Reason::ProbationPassed,
                until: None,
                step: None,
            },
        );
        assert_eq!(back.tone, Tone::Good);
        assert_eq!(
            back.text,
            "restored: probation passed, back to all its Vals"
        );
        let quarantined = Event::val(
            t0,
            "alice-hello",
            ValChange {
                from: ValState::Suspect,
                to: ValState::Quarantined,
                reason: ValReason::ImplicatedTwice,
                host: Some("host-c"),
                until: Some(t0 + secs(120)),
            },
        );
        assert_eq!(quarantined.tone, Tone::Bad);
        assert!(
            quarantined
                .text
                .starts_with("quarantined (implicated_twice on host-c)"),
            "{}",
            quarantined.text
        );
        assert!(
            quarantined.text.ends_with("for 2\u{a0}min 0\u{a0}s"),
            "{}",
            quarantined.text
        );
        let released = Event::val(
            t0,
            "alice-hello",
            ValChange {
                from: ValState::Quarantined,
                to: ValState::Normal,
                reason: ValReason::Operator,
                host: None,
                until: None,
            },
        );
        assert_eq!(released.tone, Tone::Good);
        assert_eq!(released.text, "released from quarantine (operator)");
    }

    #[test]
    fn durations_for_a_person() {
        assert_eq!(human(Duration::from_millis(850)), "850\u{a0}ms");
        assert_eq!(human(Duration::from_millis(4200)), "4.2\u{a0}s");
        assert_eq!(human(secs(42)), "42\u{a0}s");
        assert_eq!(human(secs(192)), "3\u{a0}min 12\u{a0}s");
        assert_eq!(human(secs(7500)), "2\u{a0}h 5\u{a0}min");
        assert_eq!(human(secs(3 * 86_400 + 4 * 3600)), "3\u{a0}d 4\u{a0}h");
    }
}
