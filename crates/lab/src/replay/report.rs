//! What one run measured, computed from the load samples and the watchers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use super::load::{Ending, Sample};

/// The timeline of one run, from its start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeline {
    /// When the sick host's pool was exhausted (the deadlock fault).
    pub(crate) fault_at: Duration,
    /// When the fault was cleared.
    pub(crate) clear_at: Duration,
    /// When sending stopped.
    pub(crate) end: Duration,
    /// How long after the fault, and after the clear, placements are given to settle
    /// before they are compared.
    pub(crate) settle: Duration,
}

/// One run's results.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `ringward`, `baseline` or `external`.
    pub name: String,
    /// The host whose pool was deadlocked.
    pub sick_host: String,
    /// Requests sent.
    pub requests: u64,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests that failed, by status (`"503"`) or `"error"` for a broken connection.
    pub failed: BTreeMap<String, u64>,
    /// Requests still unanswered when the run ended.
    pub pending_at_end: u64,
    /// The router's whole-request timeout the run was judged against, in ms.
    pub timeout_ms: u64,
    /// Requests that took longer than the timeout, pending ones included.
    pub over_timeout: u64,
    /// Requests that took longer than 2 s, pending ones included.
    pub over_2s: u64,
    /// The slowest answered request, in ms.
    pub max_latency_ms: u64,
    /// Time from pool exhaustion to the router marking the host ejected, in ms.
    pub ejected_after_ms: Option<u64>,
    /// Time from pool exhaustion to the last request the sick host received
    /// while sick (before the fault was cleared), in ms.
    pub last_request_to_sick_after_ms: Option<u64>,
    /// Time from the clear to the router reporting the host healthy again
    /// (ejection served, probation passed), in ms.
    pub recovered_after_clear_ms: Option<u64>,
    /// Vals answered both before the fault and during it.
    pub vals_observed: u64,
    /// Vals that moved during the fault.
    pub vals_moved: u64,
    /// Of the moved Vals, those that were on the sick host before.
    pub vals_moved_from_sick: u64,
    /// Of the moved Vals, those answered again after the host was back.
    pub vals_moved_seen_after: u64,
    /// Of those, the ones back on their first host.
    pub vals_returned: u64,
    /// Vals on another host at the end than at the start, that did not move during the fault.
    pub vals_displaced: u64,
    /// Exactly the sick host's Vals moved, and exactly they came back.
    pub exact_return: bool,
    /// Answered 2xx per second over the whole run.
    pub goodput_rps: f64,
    /// Per-second figures, bucketed by send time.
    pub per_second: Vec<Second>,
}

/// One second of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    /// Seconds since the start.
    pub t: u32,
    /// Requests sent in this second.
    pub sent: u32,
    /// Of those, answered 2xx.
    pub ok: u32,
    /// Of those, failed (non-2xx or broken).
    pub failed: u32,
    /// Of those, still pending at the end.
    pub pending: u32,
    /// Of those, answered but only after more than 1 s.
    pub over_1s: u32,
    /// Latency percentiles of this second's requests (pending ones count with their wait so far), in ms.
    pub p50_ms: f64,
    /// 99th percentile, in ms.
    pub p99_ms: f64,
    /// Slowest, in ms.
    pub max_ms: f64,
}

/// What the watchers saw, for [`analyse`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Watched {
    pub(crate) ejected_at: Option<Duration>,
    pub(crate) last_request_to_sick: Option<Duration>,
    /// When the router reported the host healthy again after the clear.
    pub(crate) recovered_at: Option<Duration>,
}

/// Builds a run's report.
pub(crate) fn analyse(
    name: &str,
    sick_host: &str,
    samples: &[Sample],
    timeline: Timeline,
    timeout: Duration,
    watched: &Watched,
) -> RunReport {
    let mut failed = BTreeMap::new();
    let (mut ok, mut pending, mut over_timeout, mut over_2s) = (0, 0, 0, 0);
    let mut max_latency = Duration::ZERO;
    for s in samples {
        match &s.ending {
            Ending::Status(code) if (200..300).contains(code) => ok += 1,
            Ending::Status(code) => *failed.entry(code.to_string()).or_insert(0) += 1,
            Ending::Error => *failed.entry("error".to_owned()).or_insert(0) += 1,
            Ending::Pending => pending += 1,
        }
        if s.ending == Ending::Pending || s.latency > timeout {
            over_timeout += 1;
        }
        if s.ending == Ending::Pending || s.latency > Duration::from_secs(2) {
            over_2s += 1;
        }
        if s.ending != Ending::Pending {
            max_latency = max_latency.max(s.latency);
        }
    }

    // Where the router says when the host is back, Vals are compared from
    // then on; otherwise over the last quarter of the time after the clear
    // (a router may hold a recovered host back for a while, as Ringward's
    // ejection and probation do).
    let back_from = watched.recovered_at.unwrap_or_else(|| {
        let quarter = timeline.end.saturating_sub(timeline.clear_at) / 4;
        (timeline.end - quarter).max(timeline.clear_at + timeline.settle)
    });
    let placement = Placement::of(samples, sick_host, timeline, back_from);
    let after_fault =
        |at: Option<Duration>| at.map(|t| t.saturating_sub(timeline.fault_at).as_millis() as u64);
    RunReport {
        name: name.to_owned(),
        sick_host: sick_host.to_owned(),
        requests: samples.len() as u64,
        ok,
        failed,
        pending_at_end: pending,
        timeout_ms: timeout.as_millis() as u64,
        over_timeout,
        over_2s,
        max_latency_ms: max_latency.as_millis() as u64,
        ejected_after_ms: after_fault(watched.ejected_at),
        last_request_to_sick_after_ms: after_fault(watched.last_request_to_sick),
        recovered_after_clear_ms: watched
            .recovered_at
            .map(|t| t.saturating_sub(timeline.clear_at).as_millis() as u64),
        vals_observed: placement.observed,
        vals_moved: placement.moved,
        vals_moved_from_sick: placement.moved_from_sick,
        vals_moved_seen_after: placement.moved_seen_after,
        vals_returned: placement.returned,
        vals_displaced: placement.displaced,
        exact_return: placement.moved > 0
            && placement.moved == placement.moved_from_sick
            && placement.moved_seen_after > 0
            && placement.returned == placement.moved_seen_after
            && placement.displaced == 0,
        goodput_rps: ok as f64 / timeline.end.as_secs_f64().max(f64::EPSILON),
        per_second: per_second(samples, timeline.end),
    }
}

/// Where each Val was served before, during and after the fault.
struct Placement {
    observed: u64,
    moved: u64,
    moved_from_sick: u64,
    moved_seen_after: u64,
    returned: u64,
    displaced: u64,
}

impl Placement {
    fn of(samples: &[Sample], sick_host: &str, t: Timeline, back_from: Duration) -> Self {
        let before = last_host_in(samples, Duration::ZERO, t.fault_at);
        let during = last_host_in(samples, t.fault_at + t.settle, t.clear_at);
        let after = last_host_in(samples, back_from, t.end);
        let mut p = Placement {
            observed: 0,
            moved: 0,
            moved_from_sick: 0,
            moved_seen_after: 0,
            returned: 0,
            displaced: 0,
        };
        for (val, first) in &before {
            let moved = match during.get(val) {
                Some(now) => {
                    p.observed += 1;
                    now != first
                }
                None => false,
            };
            if moved {
                p.moved += 1;
                p.moved_from_sick += u64::from(*first == sick_host);
                if let Some(last) = after.get(val) {
                    p.moved_seen_after += 1;
                    p.returned += u64::from(last == first);
                }
            } else if after.get(val).is_some_and(|last| last != first) {
                p.displaced += 1;
            }
        }
        p
    }
}

/// For each Val answered 2xx among the requests sent in `[from, to)`, the host of the last one.
fn last_host_in(samples: &[Sample], from: Duration, to: Duration) -> HashMap<u32, &str> {
    samples
        .iter()
        .filter(|s| s.sent >= from && s.sent < to)
        .filter(|s| matches!(s.ending, Ending::Status(c) if (200..300).contains(&c)))
        .filter_map(|s| Some((s.val, s.host.as_deref()?)))
        .collect()
}

fn per_second(samples: &[Sample], end: Duration) -> Vec<Second> {
    let seconds = end.as_secs_f64().ceil() as usize;
    let mut buckets: Vec<Vec<&Sample>> = vec![Vec::new(); seconds.max(1)];
    for s in samples {
        let i = (s.sent.as_secs() as usize).min(buckets.len() - 1);
        buckets[i].push(s);
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(t, bucket)| {
            let mut ms: Vec<f64> = bucket
                .iter()
                .map(|s| s.latency.as_secs_f64() * 1e3)
                .collect();
            ms.sort_by(f64::total_cmp);
            let count =
                |f: fn(&Ending) -> bool| bucket.iter().filter(|s| f(&s.ending)).count() as u32;
            Second {
                t: t as u32,
                sent: bucket.len() as u32,
                ok: count(|e| matches!(e, Ending::Status(c) if (200..300).contains(c))),
                failed: count(|e| {
                    matches!(e, Ending::Error)
                        || matches!(e, Ending::Status(c) if !(200..300).contains(c))
                }),
                pending: count(|e| matches!(e, Ending::Pending)),
                over_1s: bucket
                    .iter()
                    .filter(|s| s.ending != Ending::Pending && s.latency > Duration::from_secs(1))
                    .count() as u32,
                p50_ms: percentile(&ms, 0.50),
                p99_ms: percentile(&ms, 0.99),
                max_ms: ms.last().copied().unwrap_or(0.0),
            }
        })
        .collect()
}

/// The `q` quantile of sorted values (nearest rank); 0 for none.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(val: u32, sent_ms: u64, host: &str) -> Sample {
        Sample {
            val,
            sent: Duration::from_millis(sent_ms),
            latency: Duration::from_millis(5),
            ending: Ending::Status(200),
            host: Some(host.to_owned()),
        }
    }

    fn timeline() -> Timeline {
        Timeline {
            fault_at: Duration::from_secs(2),
            clear_at: Duration::from_secs(4),
            end: Duration::from_secs(6),
            settle: Duration::from_millis(500),
        }
    }

    /// Each Val's host before the fault, during it and after the clear (one
    /// answered request in each window), analysed with host `a` as the sick one.
    fn placements(vals: &[(u32, [&str; 3])]) -> RunReport {
        let samples: Vec<Sample> = [100, 3000, 5800]
            .into_iter()
            .enumerate()
            .flat_map(|(window, at)| {
                vals.iter()
                    .map(move |(v, hosts)| sample(*v, at, hosts[window]))
            })
            .collect();
        analyse(
            "t",
            "a",
            &samples,
            timeline(),
            Duration::from_secs(1),
            &Watched::default(),
        )
    }

    #[test]
    fn exact_return_when_only_the_sick_hosts_vals_move_and_come_back() {
        let r = placements(&[(1, ["a", "b", "a"]), (2, ["b", "b", "b"])]);
        assert_eq!(
            (r.vals_moved, r.vals_moved_from_sick, r.vals_returned),
            (1, 1, 1)
        );
        assert!(r.exact_return);
    }

    #[test]
    fn a_val_that_does_not_come_back_or_a_healthy_val_that_moves_is_not_exact() {
        let r = placements(&[(1, ["a", "b", "b"]), (2, ["b", "c", "b"])]);
        assert_eq!(r.vals_moved, 2);
        assert_eq!(r.vals_moved_from_sick, 1);
        assert_eq!(r.vals_returned, 1);
        assert!(!r.exact_return);
    }

    #[test]
    fn pending_and_slow_requests_count_over_the_timeout() {
        let mut slow = sample(1, 100, "a");
        slow.latency = Duration::from_secs(3);
        let mut pending = sample(2, 100, "a");
        pending.ending = Ending::Pending;
        let r = analyse(
            "t",
            "a",
            &[slow, pending, sample(3, 200, "b")],
            timeline(),
            Duration::from_secs(1),
            &Watched::default(),
        );
        assert_eq!(
            (r.over_timeout, r.over_2s, r.pending_at_end, r.ok),
            (2, 2, 1, 2)
        );
        assert_eq!(r.per_second[0].sent, 3);
        assert_eq!(r.per_second[0].pending, 1);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
