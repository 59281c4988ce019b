//! The routing snapshot: ring plus per-host admission, read lock-free.

use std::sync::Arc;

use crate::admission::{Admission, SkipReason, ramp_bucket};
use crate::bounded::BoundedLoads;
use crate::explain::{Explain, Quiet, Recorder, WalkStep};
use crate::hash::KeyHash;
use crate::host::HostId;
use crate::inflight::InFlight;
use crate::ring::Ring;
use crate::walk::probe;

/// An immutable view for routing: the ring, each host's admission and a generation. The
/// owner publishes it whole (the router and `ringward-embed` through `arc_swap::ArcSwap`).
#[derive(Debug, Clone)]
pub struct Snapshot {
    ring: Arc<Ring>,
    admission: Box<[Admission]>,
    /// Host weights, copied so the hot path reads one small array.
    weights: Box<[u32]>,
    /// Sum of the weights of hosts that are not closed.
    eligible_weight: u64,
    generation: u64,
}

impl Snapshot {
    /// A snapshot of `ring` with one admission per host (indexed by [`HostId`]).
    ///
    /// # Panics
    /// If `admission.len() != ring.len()`.
    pub fn new(ring: Arc<Ring>, admission: Vec<Admission>, generation: u64) -> Snapshot {
        assert_eq!(
            admission.len(),
            ring.len(),
            "one admission per host of the ring"
        );
        let weights: Box<[u32]> = ring.hosts().map(|(_, h)| h.weight).collect();
        let eligible_weight = weights
            .iter()
            .zip(&admission)
            .filter(|(_, a)| a.is_eligible())
            .map(|(&w, _)| u64::from(w))
            .sum();
        Snapshot {
            ring,
            admission: admission.into_boxed_slice(),
            weights,
            eligible_weight,
            generation,
        }
    }

    /// A snapshot with every host [`Admission::Open`].
    pub fn all_open(ring: Arc<Ring>, generation: u64) -> Snapshot {
        let admission = vec![Admission::Open; ring.len()];
        Snapshot::new(ring, admission, generation)
    }

    /// The ring.
    pub fn ring(&self) -> &Arc<Ring> {
        &self.ring
    }

    /// A host's admission.
    ///
    /// # Panics
    /// If `id` is not an id of this snapshot's ring.
    pub fn admission(&self, id: HostId) -> Admission {
        self.admission[id.index()]
    }

    /// The generation the publisher stamped on this snapshot.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The hot path: the first host on the key's walk that is admitted, under
    /// its hard limit and under its bounded-load cap. Allocation-free.
    ///
    /// Closed hosts are skipped; `OwnKeysOnly` hosts only take the key when
    /// they come first on its walk, `Ramp` hosts only when, besides, the key
    /// is within their probation share. If every admitted host is over its balance
    /// cap (never with caps summing above the load), the first of them is
    /// chosen: balance is a preference, hard limits are not. `None` = no
    /// eligible host.
    #[inline]
    pub fn route(
        &self,
        hash: KeyHash,
        loads: &impl InFlight,
        bounded: &BoundedLoads,
    ) -> Option<HostId> {
        if self.admission.is_empty() {
            return None; // an empty ring: nothing to route to
        }
        // Fast path, the same decision as the walk's first step: the key's own
        // host is open, under its hard limit and under the floor.
        let own = self.ring.primary(hash);
        match self.admission[own.index()] {
            Admission::Open if self.light(own, loads, bounded) => return Some(own),
            Admission::Closed(_) => {
                // The key's own host is out: when the first probe lands on
                // another host it is the walk's second host, and if that one
                // is open and light the walk would stop there too.
                let next = HostId(u32::from(probe(&self.ring, hash.0, 1)));
                if next != own
                    && self.admission[next.index()] == Admission::Open
                    && self.light(next, loads, bounded)
                {
                    return Some(next);
                }
            }
            _ => {}
        }
        self.route_slow(hash, loads, bounded)
    }

    /// Under the bounded-load floor and the hard limit: taken whatever the average.
    #[inline]
    fn light(&self, host: HostId, loads: &impl InFlight, bounded: &BoundedLoads) -> bool {
        let n = loads.in_flight(host);
        n < bounded.floor && loads.hard_limit(host).is_none_or(|limit| n < limit)
    }

    /// The walk beyond the key's own host, kept out of line so the fast path
    /// stays small.
    #[inline(never)]
    fn route_slow(
        &self,
        hash: KeyHash,
        loads: &impl InFlight,
        bounded: &BoundedLoads,
    ) -> Option<HostId> {
        self.decide(hash, loads, bounded, &mut Quiet)
    }

    /// The same decision as [`route`](Self::route), with the reason for every
    /// skipped host (allocates; for the admin API and tests).
    pub fn explain(&self, hash: KeyHash, loads: &impl InFlight, bounded: &BoundedLoads) -> Explain {
        let mut walk: Vec<WalkStep> = Vec::new();
        let chosen = self.decide(hash, loads, bounded, &mut walk);
        if let Some(host) = chosen {
            match walk.iter_mut().find(|s| s.host == host) {
                // Chosen as the over-balance fallback: it was visited already.
                Some(step) => step.skipped = None,
                None => walk.push(WalkStep {
                    host,
                    skipped: None,
                }),
            }
            if let Some(pos) = walk.iter().position(|s| s.host == host) {
                walk.truncate(pos + 1);
            }
        }
        Explain { chosen, walk }
    }

    #[inline]
    fn decide<R: Recorder>(
        &self,
        hash: KeyHash,
        loads: &impl InFlight,
        bounded: &BoundedLoads,
        rec: &mut R,
    ) -> Option<HostId> {
        let mut over_balance: Option<HostId> = None;
        let mut total: Option<u64> = None;
        for (rank, host) in self.ring.candidates(hash).enumerate() {
            let degraded = match self.admission[host.index()] {
                Admission::Open => false,
                Admission::OwnKeysOnly if rank == 0 => true,
                Admission::OwnKeysOnly => {
                    rec.skip(host, SkipReason::Degraded);
                    continue;
                }
                Admission::Ramp(per_mille) if rank == 0 && ramp_bucket(hash) < per_mille => true,
                Admission::Ramp(_) => {
                    rec.skip(host, SkipReason::Probation);
                    continue;
                }
                Admission::Closed(reason) => {
                    rec.skip(host, reason);
                    continue;
                }
            };
            let n = loads.in_flight(host);
            if loads.hard_limit(host).is_some_and(|limit| n >= limit) {
                rec.skip(host, SkipReason::AtCapacity);
                continue;
            }
            // Fast path: under the floor never spills, whatever the average.
            if degraded || n >= bounded.floor {
                let total = *total.get_or_insert_with(|| loads.total());
                let weight = self.weights[host.index()];
                let cap = bounded.cap(weight, self.eligible_weight, total, degraded);
                if n >= cap {
                    rec.skip(host, SkipReason::OverBalance);
                    over_balance.get_or_insert(host);
                    continue;
                }
            }
            return Some(host);
        }
        over_balance
    }
}
