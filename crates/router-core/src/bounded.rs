//! Bounded loads: the per-host cap on in-flight requests.

/// How much a degraded (`OwnKeysOnly`) host's cap is scaled down.
pub const DEGRADED_CAP_SCALE: f64 = 0.5;

/// Bounded-load settings ("Consistent Hashing with Bounded Loads", Mirrokni,
/// Thorup, Zadimoghaddam; HAProxy's `hash-balance-factor`).
///
/// A host with weight `w` may hold at most
/// `max(floor, ceil(factor x (total_in_flight + 1) x w / eligible_weight))`
/// requests; a request over the cap walks on to the key's next host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundedLoads {
    /// The balance factor c; `0` turns bounded loads off. Default 1.25.
    pub factor: f64,
    /// The smallest cap, so a lightly loaded fleet never spills. Default 16.
    pub floor: u32,
}

impl BoundedLoads {
    /// Bounded loads turned off (only hard limits and admission apply).
    pub const OFF: BoundedLoads = BoundedLoads {
        factor: 0.0,
        floor: 0,
    };

    /// Whether the balance cap applies.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.factor > 0.0 && self.factor.is_finite()
    }

    /// The cap for a host of `weight` out of `eligible_weight`, with `total`
    /// requests in flight; `degraded` scales it down (never below 1).
    #[inline]
    pub fn cap(&self, weight: u32, eligible_weight: u64, total: u64, degraded: bool) -> u32 {
        let base = if self.is_on() {
            let avg = (total + 1) as f64 * f64::from(weight) / eligible_weight.max(1) as f64;
            let cap = (self.factor * avg).ceil();
            cap.max(f64::from(self.floor)).min(f64::from(u32::MAX))
        } else if degraded {
            // Off: a degraded host is still held to a scaled floor.
            f64::from(self.floor)
        } else {
            return u32::MAX;
        };
        if degraded {
            (base * DEGRADED_CAP_SCALE).ceil().max(1.0) as u32
        } else {
            base as u32
        }
    }
}

impl Default for BoundedLoads {
    fn default() -> Self {
        BoundedLoads {
            factor: 1.25,
            floor: 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_is_factor_times_weighted_average_with_floor() {
        let b = BoundedLoads::default();
        // 1000 in flight over 10 equal hosts: ceil(1.25 x 100.1) = 126.
        assert_eq!(b.cap(1, 10, 1000, false), 126);
        // Weight 2 of 11: twice the share.
        assert_eq!(b.cap(2, 11, 1099, false), 250);
        // Light load: the floor.
        assert_eq!(b.cap(1, 10, 20, false), 16);
        assert_eq!(b.cap(1, 10, 20, true), 8);
        assert_eq!(b.cap(1, 10, 1000, true), 63);
    }

    #[test]
    fn off_means_no_cap_but_degraded_keeps_a_floor() {
        let off = BoundedLoads {
            factor: 0.0,
            floor: 16,
        };
        assert_eq!(off.cap(1, 10, 1_000_000, false), u32::MAX);
        assert_eq!(off.cap(1, 10, 1_000_000, true), 8);
        assert_eq!(BoundedLoads::OFF.cap(1, 1, 5, true), 1);
    }
}
