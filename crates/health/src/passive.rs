//! Passive detection from real traffic: consecutive gateway failures, the failure rate
//! over a fixed-array window, and hung requests (from in-flight ages).

use std::time::{Duration, Instant};

use crate::config::HealthConfig;
use crate::outcome::Outcome;

/// Buckets in the failure-rate window (a fixed array: no allocation on the hot path).
const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which tick this bucket counts, plus one (0 = never used).
    tick: u64,
    total: u32,
    failures: u32,
}

/// Requests and failures over the last `BUCKETS` ticks.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FailureWindow {
    buckets: [Bucket; BUCKETS],
}

impl FailureWindow {
    fn record(&mut self, tick: u64, failed: bool) {
        let bucket = &mut self.buckets[(tick % BUCKETS as u64) as usize];
        if bucket.tick != tick + 1 {
            *bucket = Bucket {
                tick: tick + 1,
                ..Bucket::default()
            };
        }
        bucket.total = bucket.total.saturating_add(1);
        bucket.failures = bucket.failures.saturating_add(u32::from(failed));
    }

    /// (requests, failures) in the window ending at `tick`.
    fn totals(&self, tick: u64) -> (u32, u32) {
        self.buckets
            .iter()
            .filter(|b| b.tick != 0 && b.tick - 1 + BUCKETS as u64 > tick && b.tick - 1 <= tick)
            .fold((0, 0), |(t, f), b| {
                (t.saturating_add(b.total), f.saturating_add(b.failures))
            })
    }
}

/// The latest in-flight observation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InFlightSeen {
    count: u32,
    oldest: Duration,
    at: Instant,
}

/// Passive state of one host.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Passive {
    pub(crate) consecutive_gateway: u32,
    window: FailureWindow,
    pub(crate) rate_firing: bool,
    pub(crate) hung: bool,
    in_flight: Option<InFlightSeen>,
    last_completion: Option<Instant>,
    last_outcome: Option<Instant>,
    /// Latency EWMA of this host's successes, in microseconds (0 = none yet).
    pub(crate) latency_us: f64,
}

/// The width of one bucket of `window`, in nanoseconds (at least 1).
pub(crate) fn bucket_nanos(window: Duration) -> u64 {
    (nanos(window) / BUCKETS as u64).max(1)
}

/// The tick of `now`, counting buckets of `bucket_nanos` from `epoch`.
pub(crate) fn tick(epoch: Instant, now: Instant, bucket_nanos: u64) -> u64 {
    nanos(now.saturating_duration_since(epoch)) / bucket_nanos
}

/// Nanoseconds in 64 bits (585 years), avoiding `as_nanos`'s 128-bit arithmetic.
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

/// Folds one sample into an EWMA held in microseconds.
pub(crate) fn ewma(current: f64, sample: Duration, alpha: f64) -> f64 {
    let sample = sample.as_secs() as f64 * 1e6 + f64::from(sample.subsec_nanos()) * 1e-3;
    if current == 0.0 {
        sample.max(1.0)
    } else {
        current + alpha * (sample - current)
    }
}

impl Passive {
    /// Folds in one outcome; `tick` is the failure window's current tick.
    pub(crate) fn record(
        &mut self,
        outcome: Outcome,
        tick: u64,
        now: Instant,
        config: &HealthConfig,
    ) {
        self.last_outcome = Some(now);
        if outcome.is_completion() {
            self.last_completion = Some(now);
            self.hung = false;
        }
        if let Outcome::Success { latency } = outcome {
            self.latency_us = ewma(self.latency_us, latency, 0.1);
        }
        if outcome.is_gateway_failure() {
            self.consecutive_gateway = self.consecutive_gateway.saturating_add(1);
        } else {
            self.consecutive_gateway = 0;
        }
        let failed = outcome.is_failure();
        self.window.record(tick, failed);
        // Only a failure can raise the rate, and only a firing rate needs re-checking.
        if failed || self.rate_firing {
            let (total, failures) = self.window.totals(tick);
            self.rate_firing = total >= config.failure_rate_min_requests
                && f64::from(failures) >= config.failure_rate * f64::from(total);
        }
    }

    /// Notes the in-flight figures reported by the shell.
    pub(crate) fn see_in_flight(&mut self, count: u32, oldest: Option<Duration>, now: Instant) {
        // Hung is a judgement of the latest figures: re-judged from these.
        self.hung = false;
        self.in_flight = match (count, oldest) {
            (0, _) | (_, None) => None,
            (count, Some(oldest)) => Some(InFlightSeen {
                count,
                oldest,
                at: now,
            }),
        };
    }

    /// The age over which an in-flight request counts as hung: `hung_after`, or a multiple
    /// of the normal latency (the fleet's or this host's, whichever is slower).
    pub(crate) fn hung_threshold(&self, fleet_latency_us: f64, config: &HealthConfig) -> Duration {
        let normal = fleet_latency_us.max(self.latency_us);
        let scaled =
            Duration::from_micros((normal * f64::from(config.hung_latency_multiple)) as u64);
        config.hung_after.max(scaled)
    }

    /// When the host would become hung if nothing else is heard from it (None: it cannot).
    pub(crate) fn hung_deadline(
        &self,
        fleet_latency_us: f64,
        config: &HealthConfig,
    ) -> Option<Instant> {
        let seen = self.in_flight?;
        if self.hung || seen.count < config.hung_min_in_flight {
            return None;
        }
        // Any outcome after the observation may have finished the oldest request.
        if self.last_outcome.is_some_and(|t| t > seen.at) {
            return None;
        }
        // Only now the (floating-point) threshold: the checks above settle the hot path.
        let threshold = self.hung_threshold(fleet_latency_us, config);
        let aged = seen.at + threshold.saturating_sub(seen.oldest);
        let quiet = self.last_completion.map_or(aged, |c| c + threshold);
        Some(aged.max(quiet))
    }

    /// Re-judges hung at `now`: enough requests in flight, the oldest older than the
    /// threshold, and no completion for a whole threshold.
    pub(crate) fn judge_hung(
        &mut self,
        now: Instant,
        fleet_latency_us: f64,
        config: &HealthConfig,
    ) {
        if self.hung {
            return;
        }
        self.hung = self
            .hung_deadline(fleet_latency_us, config)
            .is_some_and(|deadline| deadline <= now);
    }

    /// Forgets traffic-derived state (on ejection: the host gets no traffic for a while).
    pub(crate) fn reset(&mut self) {
        let latency_us = self.latency_us;
        *self = Passive {
            latency_us,
            ..Passive::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_old_buckets() {
        let mut w = FailureWindow::default();
        for tick in 0..10 {
            w.record(tick, tick % 2 == 0);
        }
        assert_eq!(w.totals(9), (10, 5));
        assert_eq!(w.totals(12), (7, 3), "ticks 3..=9 remain");
        w.record(25, true);
        assert_eq!(w.totals(25), (1, 1));
        assert_eq!(w.totals(40), (0, 0));
    }

    #[test]
    fn rate_fires_at_threshold_with_enough_requests() {
        let config = HealthConfig::default();
        let now = crate::test_origin();
        let mut p = Passive::default();
        let ok = Outcome::Success {
            latency: Duration::from_millis(5),
        };
        let err = Outcome::ServerError {
            latency: Duration::from_millis(5),
        };
        for _ in 0..9 {
            p.record(ok, 0, now, &config);
            p.record(err, 0, now, &config);
        }
        assert!(!p.rate_firing, "18 requests are fewer than 20");
        p.record(ok, 0, now, &config);
        p.record(err, 0, now, &config);
        assert!(p.rate_firing);
        p.record(ok, 0, now, &config);
        assert!(!p.rate_firing, "10 of 21 is below half");
        assert_eq!(p.consecutive_gateway, 0, "5xx is not a gateway failure");
    }

    #[test]
    fn hung_needs_age_count_and_silence() {
        let config = HealthConfig::default();
        let t0 = crate::test_origin();
        let ms = |n| t0 + Duration::from_millis(n);
        let fleet = 20_000.0; // 20 ms: the threshold is the 500 ms floor
        let mut p = Passive::default();
        p.record(
            Outcome::Success {
                latency: Duration::from_millis(5),
            },
            0,
            ms(0),
            &config,
        );
        p.see_in_flight(1, Some(Duration::from_millis(900)), ms(1000));
        p.judge_hung(ms(1000), fleet, &config);
        assert!(!p.hung, "one request is not enough");
        p.see_in_flight(3, Some(Duration::from_millis(300)), ms(1000));
        assert_eq!(p.hung_deadline(fleet, &config), Some(ms(1200)));
        p.judge_hung(ms(1199), fleet, &config);
        assert!(!p.hung);
        p.judge_hung(ms(1200), fleet, &config);
        assert!(p.hung);
        p.record(
            Outcome::Success {
                latency: Duration::from_millis(5),
            },
            0,
            ms(1300),
            &config,
        );
        assert!(!p.hung, "a completion proves it is not hung");
        p.see_in_flight(3, Some(Duration::from_millis(900)), ms(2000));
        p.judge_hung(ms(2000), fleet, &config);
        assert!(p.hung);
        p.see_in_flight(0, None, ms(2100));
        p.judge_hung(ms(2100), fleet, &config);
        assert!(!p.hung, "nothing in flight is nothing hung");
    }
}
