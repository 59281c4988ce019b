//! The stable key hash and the fixed mixing functions the ring is built from.
//!
//! Everything here is part of the placement promise: changing any constant or
//! function in this file changes which host a key maps to, so it must come
//! with a new [`RING_VERSION`].

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The version of the placement algorithm.
///
/// Two builds of Ringward with the same `RING_VERSION` map every key to the
/// same host for the same host set, on every platform. Any change to the hash,
/// the seed, the table construction or the walk bumps this number.
pub const RING_VERSION: u32 = 1;

/// The fixed XXH3-64 seed: the ASCII bytes of "RINGWARD" read big-endian.
///
/// Fixed (never random) so placement is identical in every process.
pub const RING_SEED: u64 = 0x5249_4E47_5741_5244;

/// The 64-bit hash of a routing key: XXH3-64 with seed [`RING_SEED`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash(pub u64);

impl KeyHash {
    /// Hashes a key with XXH3-64 and the fixed [`RING_SEED`].
    #[inline]
    pub fn of(key: &[u8]) -> KeyHash {
        KeyHash(xxh3_64_with_seed(key, RING_SEED))
    }
}

/// The golden-ratio increment of SplitMix64.
pub(crate) const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 finalizer: a fixed, portable 64-bit bijection.
///
/// Used to derive vnode points, rehash ranks and overflow jumps; integer-only
/// so it is identical on every platform.
#[inline]
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th element of the SplitMix64 stream seeded with `seed`.
#[inline]
pub(crate) fn stream(seed: u64, i: u64) -> u64 {
    mix(seed.wrapping_add(i.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// The hash of a host name, the seed of that host's vnode points.
pub(crate) fn host_seed(name: &str) -> u64 {
    xxh3_64_with_seed(name.as_bytes(), RING_SEED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_pinned() {
        // XXH3-64 of these inputs with RING_SEED; a change here is a placement change.
        assert_eq!(KeyHash::of(b""), KeyHash(xxh3_64_with_seed(b"", RING_SEED)));
        assert_ne!(KeyHash::of(b"a"), KeyHash::of(b"b"));
        assert_eq!(RING_SEED.to_be_bytes(), *b"RINGWARD");
    }

    #[test]
    fn mix_is_a_fixed_function() {
        // Reference values of the SplitMix64 finalizer.
        assert_eq!(mix(0), 0);
        assert_eq!(stream(0, 0), 0xE220_A839_7B1D_CDAF);
        assert_ne!(stream(1, 0), stream(1, 1));
    }
}
