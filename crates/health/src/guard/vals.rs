//! The guard: per-host traces, per-Val records, and the rules that move a Val between
//! normal, suspect and quarantined.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use super::config::GuardConfig;
use super::record::{Implication, ValInfo, ValReason, ValState, ValTransition};
use super::trace::HostTrace;

/// Implications kept per Val (the newest).
const MAX_IMPLICATIONS: usize = 8;

/// While a quarantine is held by a host that is still out, it is looked at again this often
/// (and this is the Retry-After its requests get).
const HOLD_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Val records kept at most (suspects and quarantines first; forgotten offenders go first).
const MAX_RECORDS: usize = 4096;

#[derive(Debug, Clone)]
struct Record<H> {
    name: Option<String>,
    state: ValState,
    reason: ValReason,
    since: Instant,
    until: Option<Instant>,
    offences: u32,
    last_offence: Option<Instant>,
    implications: Vec<Implication<H>>,
}

impl<H: Copy + Eq> Record<H> {
    fn new(now: Instant) -> Self {
        Record {
            name: None,
            state: ValState::Normal,
            reason: ValReason::Expired,
            since: now,
            until: None,
            offences: 0,
            last_offence: None,
            implications: Vec::new(),
        }
    }

    fn implicate(&mut self, i: Implication<H>) {
        if self.implications.len() == MAX_IMPLICATIONS {
            self.implications.remove(0);
        }
        self.implications.push(i);
    }

    /// Distinct hosts it was implicated on since `from`.
    fn hosts_since(&self, from: Instant) -> usize {
        let recent: Vec<H> = self
            .implications
            .iter()
            .filter(|i| i.at >= from)
            .map(|i| i.host)
            .collect();
        recent
            .iter()
            .enumerate()
            .filter(|(n, h)| !recent[..*n].contains(h))
            .count()
    }
}

/// The cascade guard over hosts `H` and Vals `V` (the router uses the key's 64-bit hash).
/// See the [module docs](crate::guard).
#[derive(Debug, Clone)]
pub struct Guard<H, V> {
    config: GuardConfig,
    hosts: HashMap<H, HostTrace<V>>,
    vals: HashMap<V, Record<H>>,
}

impl<H, V> Guard<H, V>
where
    H: Copy + Eq + Hash,
    V: Copy + Eq + Hash + Ord,
{
    /// A guard with no hosts.
    pub fn new(config: GuardConfig) -> Self {
        Guard {
            config,
            hosts: HashMap::new(),
            vals: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Sets the hosts: traces of hosts that stay are kept, of others dropped.
    pub fn set_hosts(&mut self, hosts: impl IntoIterator<Item = H>) {
        let mut next = HashMap::new();
        for h in hosts {
            let trace = self
                .hosts
                .remove(&h)
                .unwrap_or_else(|| HostTrace::new(&self.config));
            next.insert(h, trace);
        }
        self.hosts = next;
    }

    /// The requests in flight on `host` now, as (Val, age): the picture a failure of the host
    /// is judged by. Call it on a steady tick (the router: every 50 ms).
    pub fn sample(
        &mut self,
        host: H,
        requests: impl IntoIterator<Item = (V, std::time::Duration)>,
    ) {
        if !self.config.enabled {
            return;
        }
        if let Some(trace) = self.hosts.get_mut(&host) {
            trace.sample(&self.config, requests);
        }
    }

    /// A request of `val` that `host` answered after `latency` (success or a server error;
    /// not timeouts or broken connections, which are no measure of normal work).
    pub fn record_completion(
        &mut self,
        host: H,
        val: V,
        latency: std::time::Duration,
        now: Instant,
    ) {
        if !self.config.enabled {
            return;
        }
        if let Some(trace) = self.hosts.get_mut(&host) {
            trace.record_completion(val, latency, now);
        }
    }

    /// The early warning, after each [`Guard::sample`] of a host that has not failed: a Val
    /// that already holds `dominant_share` of the host's stuck time (with the same
    /// `min_in_flight` and `overrepresentation` rules) becomes a suspect (`Stuck`), so it is
    /// kept on that host, and neither bounded-load spill nor a retry carries it to the next
    /// one before the host's failure is confirmed. Not an implication: it does not count
    /// towards a quarantine.
    pub fn watch(&mut self, host: H, now: Instant, out: &mut Vec<ValTransition<H, V>>) {
        if !self.config.enabled {
            return;
        }
        let Some(trace) = self.hosts.get(&host) else {
            return;
        };
        for f in trace.findings(&self.config) {
            if f.share < self.config.dominant_share {
                continue;
            }
            let rec = self.vals.entry(f.val).or_insert_with(|| Record::new(now));
            if rec.state != ValState::Normal {
                continue;
            }
            rec.state = ValState::Suspect;
            rec.reason = ValReason::Stuck;
            rec.since = now;
            rec.until = Some(now + self.config.window);
            out.push(ValTransition {
                val: f.val,
                name: rec.name.clone(),
                from: ValState::Normal,
                to: ValState::Suspect,
                reason: ValReason::Stuck,
                evidence: Some(Implication::of(host, now, &f)),
                until: rec.until,
            });
        }
    }

    /// `host` turned exhausted, hung or ejected at `now`: implicate the Vals that explain it,
    /// pushing each change of state to `out`.
    pub fn on_host_failure(&mut self, host: H, now: Instant, out: &mut Vec<ValTransition<H, V>>) {
        if !self.config.enabled {
            return;
        }
        let Some(trace) = self.hosts.get(&host) else {
            return;
        };
        let findings = trace.findings(&self.config);
        for f in findings {
            let evidence = Implication::of(host, now, &f);
            let auto_quarantined = self.auto_quarantined();
            let config = &self.config;
            let rec = self.vals.entry(f.val).or_insert_with(|| Record::new(now));
            rec.implicate(evidence);
            if rec.state == ValState::Quarantined {
                continue;
            }
            if rec
                .last_offence
                .is_some_and(|t| now.saturating_duration_since(t) >= config.forget_after)
            {
                rec.offences = 0;
            }
            let window_start = now.checked_sub(config.window).unwrap_or(now);
            let reason = if f.share >= config.dominant_share {
                Some(ValReason::Dominant)
            } else if rec.hosts_since(window_start) >= 2 {
                Some(ValReason::ImplicatedTwice)
            } else {
                None
            };
            let from = rec.state;
            let from_reason = rec.reason;
            match reason {
                Some(reason) if auto_quarantined < config.max_quarantined => {
                    rec.offences += 1;
                    rec.last_offence = Some(now);
                    rec.state = ValState::Quarantined;
                    rec.reason = reason;
                    rec.since = now;
                    rec.until = Some(now + config.quarantine_for(rec.offences));
                }
                _ => {
                    let reason = if reason.is_some() {
                        ValReason::CapReached
                    } else {
                        ValReason::Implicated
                    };
                    if from == ValState::Normal {
                        rec.since = now;
                    }
                    rec.state = ValState::Suspect;
                    rec.reason = reason;
                    rec.until = Some(now + config.window);
                }
            }
            if from != rec.state || from_reason != rec.reason {
                out.push(ValTransition {
                    val: f.val,
                    name: rec.name.clone(),
                    from,
                    to: rec.state,
                    reason: rec.reason,
                    evidence: Some(evidence),
                    until: rec.until,
                });
            }
        }
        self.prune(now);
    }

    /// Ends quarantines and suspicions whose time is up at `now`. A quarantine is held while
    /// a host it was implicated on is still out (`host_out`), so the Val returns to its own
    /// host rather than to a new one, but never beyond `quarantine_max` from its start.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        host_out: impl Fn(&H) -> bool,
        out: &mut Vec<ValTransition<H, V>>,
    ) {
        let config = &self.config;
        for (val, rec) in &mut self.vals {
            let Some(until) = rec.until else { continue };
            if now < until {
                continue;
            }
            if rec.state == ValState::Quarantined {
                let episode = rec.since.checked_sub(config.window).unwrap_or(rec.since);
                let held = rec
                    .implications
                    .iter()
                    .any(|i| i.at >= episode && host_out(&i.host));
                let cap = rec.since + config.quarantine_max;
                if held && now < cap {
                    rec.until = Some((now + HOLD_RECHECK).min(cap));
                    continue;
                }
            }
            let from = rec.state;
            rec.state = ValState::Normal;
            rec.reason = ValReason::Expired;
            rec.since = now;
            rec.until = None;
            out.push(ValTransition {
                val: *val,
                name: rec.name.clone(),
                from,
                to: ValState::Normal,
                reason: ValReason::Expired,
                evidence: None,
                until: None,
            });
        }
        self.prune(now);
    }

    /// The earliest instant [`Guard::handle_timeout`] may change something.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.vals.values().filter_map(|r| r.until).min()
    }

    /// An operator quarantines `val` (named `name`) until released by hand.
    pub fn quarantine(
        &mut self,
        val: V,
        name: Option<&str>,
        now: Instant,
    ) -> Option<ValTransition<H, V>> {
        let rec = self.vals.entry(val).or_insert_with(|| Record::new(now));
        if let Some(name) = name {
            rec.name.get_or_insert_with(|| name.to_owned());
        }
        let from = rec.state;
        if from == ValState::Quarantined && rec.reason == ValReason::Operator {
            return None;
        }
        rec.state = ValState::Quarantined;
        rec.reason = ValReason::Operator;
        rec.since = now;
        rec.until = None;
        Some(ValTransition {
            val,
            name: rec.name.clone(),
            from,
            to: ValState::Quarantined,
            reason: ValReason::Operator,
            evidence: None,
            until: None,
        })
    }

    /// Adopts another router's quarantine of `val` (fleet mode): quarantined here too until
    /// `until`, as that router's guard judged it from the same kind of evidence. It counts
    /// against `max_quarantined` like this guard's own quarantines and is refused at it, so a
    /// faulty peer cannot quarantine every Val; no offence is counted here. A Val already
    /// quarantined is left as it is.
    pub fn adopt_peer_quarantine(
        &mut self,
        val: V,
        name: Option<&str>,
        until: Instant,
        now: Instant,
    ) -> Option<ValTransition<H, V>> {
        if until <= now
            || self.state_of(val) == ValState::Quarantined
            || self.auto_quarantined() >= self.config.max_quarantined
        {
            return None;
        }
        let rec = self.vals.entry(val).or_insert_with(|| Record::new(now));
        if let Some(name) = name {
            rec.name.get_or_insert_with(|| name.to_owned());
        }
        let from = rec.state;
        rec.state = ValState::Quarantined;
        rec.reason = ValReason::Peer;
        rec.since = now;
        rec.until = Some(until);
        Some(ValTransition {
            val,
            name: rec.name.clone(),
            from,
            to: ValState::Quarantined,
            reason: ValReason::Peer,
            evidence: None,
            until: Some(until),
        })
    }

    /// An operator releases `val` (quarantined or suspect) now. Its offences are kept, so a
    /// Val that is still poison is quarantined longer the next time.
    pub fn release(&mut self, val: V, now: Instant) -> Option<ValTransition<H, V>> {
        let rec = self.vals.get_mut(&val)?;
        let from = rec.state;
        if from == ValState::Normal {
            return None;
        }
        rec.state = ValState::Normal;
        rec.reason = ValReason::Operator;
        rec.since = now;
        rec.until = None;
        rec.implications.clear();
        Some(ValTransition {
            val,
            name: rec.name.clone(),
            from,
            to: ValState::Normal,
            reason: ValReason::Operator,
            evidence: None,
            until: None,
        })
    }

    /// Remembers `val`'s name (for logs and the admin API), if the guard has a record of it.
    pub fn set_name(&mut self, val: V, name: &str) {
        if let Some(rec) = self.vals.get_mut(&val) {
            rec.name.get_or_insert_with(|| name.to_owned());
        }
    }

    /// True when the guard has a record of `val` but not its name.
    pub fn needs_name(&self, val: V) -> bool {
        self.vals.get(&val).is_some_and(|r| r.name.is_none())
    }

    /// `val`'s state.
    pub fn state_of(&self, val: V) -> ValState {
        self.vals.get(&val).map_or(ValState::Normal, |r| r.state)
    }

    /// Suspects and quarantined Vals, with when their state ends by itself (for the
    /// routing set the request path reads).
    pub fn restricted(&self) -> impl Iterator<Item = (V, ValState, Option<Instant>)> + '_ {
        self.vals
            .iter()
            .filter(|(_, r)| r.state != ValState::Normal)
            .map(|(v, r)| (*v, r.state, r.until))
    }

    /// What the guard knows of `val`.
    pub fn info(&self, val: V) -> Option<ValInfo<H, V>> {
        self.vals.get(&val).map(|r| ValInfo {
            val,
            name: r.name.clone(),
            state: r.state,
            reason: r.reason,
            since: r.since,
            until: r.until,
            offences: r.offences,
            implications: r.implications.clone(),
        })
    }

    /// Every Val the guard has a record of: suspects and quarantines, and recent offenders.
    pub fn infos(&self) -> Vec<ValInfo<H, V>> {
        let mut all: Vec<_> = self.vals.keys().filter_map(|v| self.info(*v)).collect();
        all.sort_by_key(|v| std::cmp::Reverse(v.since));
        all
    }

    /// Vals quarantined automatically now.
    fn auto_quarantined(&self) -> usize {
        self.vals
            .values()
            .filter(|r| r.state == ValState::Quarantined && r.reason != ValReason::Operator)
            .count()
    }

    /// Drops records with nothing left to remember, and the oldest if there are too many.
    fn prune(&mut self, now: Instant) {
        let config = &self.config;
        let forgotten = |r: &Record<H>| {
            r.state == ValState::Normal
                && r.last_offence
                    .is_none_or(|t| now.saturating_duration_since(t) >= config.forget_after)
                && r.implications
                    .iter()
                    .all(|i| now.saturating_duration_since(i.at) >= config.window)
        };
        self.vals.retain(|_, r| !forgotten(r));
        if self.vals.len() > MAX_RECORDS {
            let mut normal: Vec<(Instant, V)> = self
                .vals
                .iter()
                .filter(|(_, r)| r.state == ValState::Normal)
                .map(|(v, r)| (r.since, *v))
                .collect();
            normal.sort();
            for (_, v) in normal.into_iter().take(self.vals.len() - MAX_RECORDS) {
                self.vals.remove(&v);
            }
        }
    }
}
