//! One host's attribution trace: what it has in flight now (each Val's requests and their
//! ages), and each Val's normal share of its work, from the requests it answered.

use std::time::{Duration, Instant};

use super::config::GuardConfig;
use super::sketch::TopK;

/// The least in-flight time an answered request counts for (seconds), so that instant
/// answers still count as work.
const MIN_LATENCY: f64 = 1e-4;

/// A Val's requests in flight on the host at the last sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct InFlightNow<V> {
    pub(crate) val: V,
    pub(crate) count: u32,
    /// Those of them that are stuck (older than the host's stuck age).
    pub(crate) stuck: u32,
    /// The sum of the stuck ones' ages, in seconds: their part of the host's stuck time.
    pub(crate) stuck_time: f64,
    pub(crate) oldest: Duration,
}

/// A Val with stuck requests on a host, with its shares.
pub(crate) type Finding<V> = ValShare<V>;

/// A Val's part in what a host had in flight (at the last sample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ValShare<V> {
    /// The Val.
    pub(crate) val: V,
    /// Its share of the host's stuck in-flight time: the ages of its stuck requests (those
    /// in flight longer than the stuck age) over the ages of all stuck requests (0..=1).
    pub(crate) share: f64,
    /// Its normal share of the host's work: the larger of its share of the time the host's
    /// answered requests took and its share of their number.
    pub(crate) baseline_share: f64,
    /// Its requests in flight now.
    pub(crate) in_flight: u32,
    /// How many of them are stuck.
    pub(crate) stuck: u32,
    /// The age of the oldest of them.
    pub(crate) oldest: Duration,
}

#[derive(Debug, Clone)]
pub(crate) struct HostTrace<V> {
    /// Seconds the host's answered requests took, per Val.
    answered_time: TopK<V>,
    /// The host's answered requests, per Val.
    answered: TopK<V>,
    /// The last sample, one entry per Val, sorted by Val.
    now: Vec<InFlightNow<V>>,
    /// Scratch for sorting a sample (kept to reuse its allocation).
    scratch: Vec<(V, Duration)>,
}

impl<V: Copy + Ord> HostTrace<V> {
    pub(crate) fn new(config: &GuardConfig) -> Self {
        HostTrace {
            answered_time: TopK::new(config.top_k, config.baseline_half_life),
            answered: TopK::new(config.top_k, config.baseline_half_life),
            now: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// A sample of the requests in flight (Val, age): it replaces the previous one. A
    /// request is stuck when it is older than both `config.stuck_after` and
    /// `config.stuck_latency_multiple` times the host's mean answered latency.
    pub(crate) fn sample(
        &mut self,
        config: &GuardConfig,
        requests: impl IntoIterator<Item = (V, Duration)>,
    ) {
        let mean = self.answered_time.total() / self.answered.total().max(1.0);
        let stuck_after = config
            .stuck_after
            .as_secs_f64()
            .max(mean * f64::from(config.stuck_latency_multiple));
        self.scratch.clear();
        self.scratch.extend(requests);
        self.scratch.sort_unstable_by_key(|r| r.0);
        self.now.clear();
        for &(val, age) in &self.scratch {
            let secs = age.as_secs_f64();
            let stuck = secs >= stuck_after;
            let entry = match self.now.last_mut() {
                Some(last) if last.val == val => last,
                _ => {
                    self.now.push(InFlightNow {
                        val,
                        count: 0,
                        stuck: 0,
                        stuck_time: 0.0,
                        oldest: Duration::ZERO,
                    });
                    self.now.last_mut().expect("just pushed")
                }
            };
            entry.count += 1;
            entry.oldest = entry.oldest.max(age);
            if stuck {
                entry.stuck += 1;
                entry.stuck_time += secs;
            }
        }
    }

    /// A request of `val` answered after `latency`: the baseline of normal work.
    pub(crate) fn record_completion(&mut self, val: V, latency: Duration, now: Instant) {
        self.answered_time
            .add(val, latency.as_secs_f64().max(MIN_LATENCY), now);
        self.answered.add(val, 1.0, now);
    }

    /// Every Val with stuck requests at the last sample, with its shares, heaviest first.
    pub(crate) fn shares(&self) -> Vec<Finding<V>> {
        let total: f64 = self.now.iter().map(|g| g.stuck_time).sum();
        if total <= 0.0 {
            return Vec::new();
        }
        // What is in flight now counts in the baselines too, as if just answered: a Val with
        // no history at all is judged against its current requests, not against zero.
        let count_now: f64 = self.now.iter().map(|g| f64::from(g.count)).sum();
        let time_total = self.answered_time.total() + count_now * MIN_LATENCY;
        let count_total = self.answered.total() + count_now;
        let mut all: Vec<Finding<V>> = self
            .now
            .iter()
            .filter(|g| g.stuck > 0)
            .map(|g| {
                let n = f64::from(g.count);
                // Untracked: it may have weighed as much as the lightest tracked Val.
                let time = self
                    .answered_time
                    .get(g.val)
                    .unwrap_or(self.answered_time.floor())
                    + n * MIN_LATENCY;
                let count = self.answered.get(g.val).unwrap_or(self.answered.floor()) + n;
                let baseline = (time / time_total).max(count / count_total);
                Finding {
                    val: g.val,
                    share: (g.stuck_time / total).min(1.0),
                    baseline_share: baseline.min(1.0),
                    in_flight: g.count,
                    stuck: g.stuck,
                    oldest: g.oldest,
                }
            })
            .collect();
        all.sort_by(|a, b| b.share.total_cmp(&a.share));
        all
    }

    /// The Vals implicated in a failure at the last sample, heaviest first.
    pub(crate) fn findings(&self, config: &GuardConfig) -> Vec<Finding<V>> {
        let mut found = self.shares();
        found.retain(|f| {
            f.stuck >= config.min_in_flight
                && f.share >= config.implicated_share
                && f.share >= config.overrepresentation * f.baseline_share
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(50);

    fn config() -> GuardConfig {
        GuardConfig::default()
    }

    /// `n` ticks in which `stuck` requests of Val 7 age while Val 1 has `busy` requests of
    /// 10 ms in flight; returns the time after.
    fn run(trace: &mut HostTrace<u64>, t: Instant, n: u32, stuck: usize, busy: usize) -> Instant {
        let mut t = t;
        for i in 0..n {
            let age = TICK * i;
            let sample = std::iter::repeat_n((7u64, age), stuck)
                .chain(std::iter::repeat_n((1u64, Duration::from_millis(10)), busy));
            trace.sample(&config(), sample);
            t += TICK;
        }
        t
    }

    #[test]
    fn a_val_stuck_on_the_host_dominates_its_in_flight_time() {
        let t0 = crate::test_origin();
        let mut trace = HostTrace::new(&config());
        // History: Val 1 answered 500 requests of 2 ms.
        for i in 0..500u32 {
            trace.record_completion(1, Duration::from_millis(2), t0 + TICK * i / 10);
        }
        let t = run(&mut trace, t0 + Duration::from_secs(3), 10, 4, 2);
        let found = trace.findings(&config());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].val, 7);
        assert!(found[0].share > 0.6, "{found:?}");
        assert!(found[0].baseline_share < 0.05, "{found:?}");
        assert_eq!(found[0].in_flight, 4);
        assert_eq!(found[0].oldest, TICK * 9);
        let _ = t;
    }

    #[test]
    fn a_popular_val_is_not_implicated_however_large_its_share() {
        let t0 = crate::test_origin();
        let mut trace = HostTrace::new(&config());
        // Val 1 is nearly all the host's traffic, and all its in-flight time at the failure.
        for i in 0..2000u32 {
            trace.record_completion(1, Duration::from_millis(5), t0 + TICK * i / 40);
            if i % 20 == 0 {
                trace.record_completion(2, Duration::from_millis(5), t0 + TICK * i / 40);
            }
        }
        run(&mut trace, t0 + Duration::from_secs(3), 10, 0, 40);
        assert!(trace.findings(&config()).is_empty());
    }

    #[test]
    fn a_slow_val_is_judged_against_its_own_slowness() {
        let t0 = crate::test_origin();
        let mut trace = HostTrace::new(&config());
        // Val 7 is rare but slow (2 s per request): most of the host's answered time is its.
        for i in 0..100u32 {
            trace.record_completion(1, Duration::from_millis(5), t0 + TICK * i);
            if i % 10 == 0 {
                trace.record_completion(7, Duration::from_secs(2), t0 + TICK * i);
            }
        }
        run(&mut trace, t0 + Duration::from_secs(5), 10, 3, 0);
        assert!(
            trace.findings(&config()).is_empty(),
            "{:?}",
            trace.findings(&config())
        );
    }

    #[test]
    fn one_request_in_flight_is_not_enough() {
        let t0 = crate::test_origin();
        let mut trace = HostTrace::new(&config());
        run(&mut trace, t0, 10, 1, 0);
        assert!(trace.findings(&config()).is_empty());
    }
}
