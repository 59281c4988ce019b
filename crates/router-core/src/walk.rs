//! The preference walk: a key's hosts in order, without allocating.

use crate::hash::{mix, stream};
use crate::host::HostId;
use crate::ring::Ring;

impl Ring {
    /// The key's hosts in preference order: distinct, eventually every host.
    ///
    /// Allocation-free; the first item is the key's own host.
    #[inline]
    pub fn candidates(&self, hash: crate::KeyHash) -> Candidates<'_> {
        Candidates::new(self, hash.0)
    }
}

/// Hosts remembered inline to keep the probe phase distinct.
const SEEN: usize = 8;
/// Rehash probes tried before the fallback scan.
const MAX_PROBES: u32 = 24;
/// Slots per 64-byte cache line (2-byte entries).
const LINE: usize = 32;
/// The first probes stay in the rank-0 slot's cache line: its slots hold
/// independent weight-proportional draws (about two vnode points fall in each
/// slot), and a probe there costs no second memory miss.
const LOCAL_PROBES: u32 = 4;
/// Salt that decorrelates the fallback scan offset from the slot bits.
const SCAN_SALT: u64 = 0x5CA7_5CA7_5CA7_5CA7;

/// A key's hosts in preference order; see [`Ring::candidates`].
///
/// Rank 0 is `table[slot(h)]`; further ranks probe rehashed slots (the
/// first four inside rank 0's cache line, then anywhere) skipping hosts
/// already yielded, so each rank is a weight-proportional draw
/// among the hosts not yet seen. After 8 distinct hosts (or 24
/// probes) a scan over all host ids from a hash-derived offset yields the
/// rest, so every host appears exactly once. The walk is a pure function of
/// the key and the ring: skipping ineligible hosts at lookup therefore moves
/// only the keys of those hosts, and restoring them brings exactly those back.
#[derive(Debug, Clone)]
pub struct Candidates<'a> {
    ring: &'a Ring,
    hash: u64,
    seen: [u16; SEEN],
    n_seen: usize,
    probes: u32,
    scanned: u32,
    yielded: u32,
}

impl<'a> Candidates<'a> {
    pub(crate) fn new(ring: &'a Ring, hash: u64) -> Candidates<'a> {
        Candidates {
            ring,
            hash,
            seen: [0; SEEN],
            n_seen: 0,
            probes: 0,
            scanned: 0,
            yielded: 0,
        }
    }

    #[inline]
    fn is_seen(&self, host: u16) -> bool {
        self.seen[..self.n_seen].contains(&host)
    }

    #[inline]
    fn take(&mut self, host: u16) -> Option<HostId> {
        if self.n_seen < SEEN {
            self.seen[self.n_seen] = host;
            self.n_seen += 1;
        }
        self.yielded += 1;
        Some(HostId(u32::from(host)))
    }
}

/// The host of the walk's `i`-th probe (`i >= 1`).
#[inline]
pub(crate) fn probe(ring: &Ring, hash: u64, i: u32) -> u16 {
    let r = stream(hash, u64::from(i));
    if i <= LOCAL_PROBES {
        let line = ring.slot_of(hash) & !(LINE - 1);
        ring.host_at(line | (r >> (64 - LINE.trailing_zeros())) as usize)
    } else {
        ring.slot_host(r)
    }
}

impl Iterator for Candidates<'_> {
    type Item = HostId;

    #[inline]
    fn next(&mut self) -> Option<HostId> {
        let n = self.ring.len() as u32;
        if self.yielded >= n {
            return None;
        }
        if self.probes == 0 {
            self.probes = 1;
            let host = self.ring.slot_host(self.hash);
            return self.take(host);
        }
        while self.n_seen < SEEN && self.probes <= MAX_PROBES {
            let host = probe(self.ring, self.hash, self.probes);
            self.probes += 1;
            if !self.is_seen(host) {
                return self.take(host);
            }
        }
        // Fallback: every host not yielded yet, from a hash-derived offset.
        let start = ((u128::from(mix(self.hash ^ SCAN_SALT)) * u128::from(n)) >> 64) as u32;
        while self.scanned < n {
            let host = ((start + self.scanned) % n) as u16;
            self.scanned += 1;
            if !self.is_seen(host) {
                self.yielded += 1;
                return Some(HostId(u32::from(host)));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.ring.len() as u32 - self.yielded) as usize;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use crate::{HostSpec, KeyHash, Ring};

    #[test]
    fn walk_is_distinct_and_complete() {
        for n in [1, 2, 3, 9, 50] {
            let ring =
                Ring::try_new((0..n).map(|i| HostSpec::new(format!("h{i}"), 1 + i % 3))).unwrap();
            for k in 0..200u32 {
                let mut ids: Vec<u32> = ring
                    .candidates(KeyHash::of(&k.to_le_bytes()))
                    .map(|h| h.0)
                    .collect();
                assert_eq!(ids.len(), n as usize);
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), n as usize, "n={n} key={k}: repeated host");
            }
        }
    }

    #[test]
    fn first_candidate_is_primary() {
        let ring = Ring::try_new((0..20).map(|i| HostSpec::new(format!("h{i}"), 1))).unwrap();
        for k in 0..100u32 {
            let h = KeyHash::of(&k.to_le_bytes());
            assert_eq!(ring.candidates(h).next(), Some(ring.primary(h)));
        }
    }
}
