//! Ringward's consistent-hash ring as a [Pingora] [`BackendSelection`].
//!
//! A *Val* is a user function; every request for it carries its key, and the worker that
//! served it last has it warm. With [`RingwardSelection`] a Pingora `LoadBalancer` sends
//! every request for a Val to one backend, and when Pingora's health checks (or
//! `set_enable(.., false)`) take a backend out, its Vals, and only its Vals, walk on to
//! their next preference; they come back when it does. The walk is `router-core`'s
//! (`Ring::candidates`): weight-proportional, allocation-free, the same order the
//! `ringward` router uses for the same host names.
//!
//! Backends are named on the ring by their address (`ip:port`), so two Pingora processes
//! with the same backends, or a Pingora process and a `ringward` router whose `[[hosts]]`
//! are named by address, agree on every key's backend.
//!
//! What this does not bring from Ringward: its health signals (pool exhaustion, hung
//! requests, in-band reports) and the cascade guard live in `ringward-embed` and `health`;
//! here Pingora's own health checks decide who is up.
//!
//! [Pingora]: https://github.com/cloudflare/pingora
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use pingora_load_balancing::Backend;
use pingora_load_balancing::selection::{BackendIter, BackendSelection};
use router_core::{HostId, HostSpec, KeyHash, Ring};

/// Ringward's ring over a Pingora backend set.
pub struct RingwardSelection {
    /// `None` when the backend set is empty or refused (more than `router_core::MAX_HOSTS`).
    ring: Option<Ring>,
    /// Backends by [`HostId`] index.
    backends: Vec<Backend>,
}

impl BackendSelection for RingwardSelection {
    type Iter = RingwardIter;

    fn build(backends: &BTreeSet<Backend>) -> Self {
        let backends: Vec<Backend> = backends.iter().cloned().collect();
        let ring = Ring::try_new(backends.iter().map(|b| HostSpec {
            name: b.addr.to_string(),
            // Ringward's weights are u32 and at least 1, as Pingora's usually are.
            weight: u32::try_from(b.weight).unwrap_or(u32::MAX).max(1),
        }))
        .ok();
        // The ring numbers hosts in its own order: keep the backends in that order.
        let backends = match &ring {
            Some(ring) => (0..ring.len())
                .map(|i| {
                    let name = &ring.host(HostId(i as u32)).name;
                    backends
                        .iter()
                        .find(|b| b.addr.to_string() == *name)
                        .cloned()
                        .expect("every ring host is a backend")
                })
                .collect(),
            None => Vec::new(),
        };
        RingwardSelection { ring, backends }
    }

    fn iter(self: &Arc<Self>, key: &[u8]) -> RingwardIter {
        RingwardIter {
            selection: Arc::clone(self),
            hash: KeyHash::of(key),
            rank: 0,
        }
    }
}

/// A key's backends in the ring's preference order.
pub struct RingwardIter {
    selection: Arc<RingwardSelection>,
    hash: KeyHash,
    rank: usize,
}

impl BackendIter for RingwardIter {
    fn next(&mut self) -> Option<&Backend> {
        let ring = self.selection.ring.as_ref()?;
        // The walk borrows the ring, so it is replayed up to this rank: Pingora's callers
        // stop after the first usable backend (one or two steps), and nothing is allocated.
        let id = ring.candidates(self.hash).nth(self.rank)?;
        self.rank += 1;
        self.selection.backends.get(id.index())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use pingora_load_balancing::LoadBalancer;

    use super::*;

    fn balancer(n: u16) -> LoadBalancer<RingwardSelection> {
        LoadBalancer::try_from_iter((0..n).map(|i| format!("127.0.0.1:{}", 9001 + i)))
            .expect("backends")
    }

    fn keys() -> impl Iterator<Item = String> {
        (0..2000).map(|i| format!("val-{i}"))
    }

    #[test]
    fn a_val_always_gets_the_same_backend_and_keys_spread() {
        let lb = balancer(4);
        let mut per_backend: HashMap<String, usize> = HashMap::new();
        for key in keys() {
            let first = lb.select(key.as_bytes(), 8).expect("a backend");
            let again = lb.select(key.as_bytes(), 8).expect("a backend");
            assert_eq!(first, again, "{key}");
            *per_backend.entry(first.addr.to_string()).or_default() += 1;
        }
        assert_eq!(per_backend.len(), 4);
        for (backend, n) in &per_backend {
            assert!((300..=700).contains(n), "{backend} got {n} of 2000");
        }
    }

    #[test]
    fn the_same_order_as_the_ringward_router_for_the_same_host_names() {
        let lb = balancer(3);
        let ring = Ring::try_new((0..3).map(|i| HostSpec {
            name: format!("127.0.0.1:{}", 9001 + i),
            weight: 1,
        }))
        .expect("ring");
        for key in keys().take(200) {
            let want = ring
                .host(ring.primary(KeyHash::of(key.as_bytes())))
                .name
                .clone();
            let got = lb.select(key.as_bytes(), 8).expect("a backend");
            assert_eq!(got.addr.to_string(), want, "{key}");
        }
    }

    #[test]
    fn a_disabled_backend_moves_only_its_own_vals_and_they_come_back() {
        let lb = balancer(4);
        let before: Vec<Backend> = keys()
            .map(|k| lb.select(k.as_bytes(), 8).expect("a backend"))
            .collect();
        let sick = before[0].clone();
        lb.backends().set_enable(&sick, false);
        for (key, was) in keys().zip(&before) {
            let now = lb.select(key.as_bytes(), 8).expect("a backend");
            if *was == sick {
                assert_ne!(now, sick, "{key} left the disabled backend");
            } else {
                assert_eq!(now, *was, "{key} stayed where it was");
            }
        }
        lb.backends().set_enable(&sick, true);
        for (key, was) in keys().zip(&before) {
            assert_eq!(
                lb.select(key.as_bytes(), 8).as_ref(),
                Some(was),
                "{key} came back"
            );
        }
    }

    #[test]
    fn the_walk_visits_every_backend_once() {
        let lb = balancer(5);
        let selection = RingwardSelection::build(&lb.backends().get_backend());
        let mut iter = Arc::new(selection).iter(b"alice-hello");
        let mut seen = BTreeSet::new();
        while let Some(b) = iter.next() {
            assert!(seen.insert(b.addr.to_string()), "{} twice", b.addr);
        }
        assert_eq!(seen.len(), 5);
    }
}
