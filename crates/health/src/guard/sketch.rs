//! A decayed top-K ("space-saving" with exponential decay): the heaviest keys by a weight
//! that halves every `half_life`, in `k` entries whatever the number of keys.

use std::time::{Duration, Instant};

/// Weights below this are dropped when the sketch decays (they no longer matter).
const NEGLIGIBLE: f64 = 1e-9;

/// The heaviest keys by decayed weight, and the decayed total of every key's weight.
#[derive(Debug, Clone)]
pub(crate) struct TopK<V> {
    entries: Vec<(V, f64)>,
    total: f64,
    k: usize,
    half_life: Duration,
    last: Option<Instant>,
}

impl<V: Copy + Eq> TopK<V> {
    pub(crate) fn new(k: usize, half_life: Duration) -> Self {
        TopK {
            entries: Vec::with_capacity(k),
            total: 0.0,
            k: k.max(1),
            half_life,
            last: None,
        }
    }

    /// Ages every weight to `now`.
    pub(crate) fn decay(&mut self, now: Instant) {
        let Some(last) = self.last else {
            self.last = Some(now);
            return;
        };
        let dt = now.saturating_duration_since(last);
        if dt.is_zero() {
            return;
        }
        self.last = Some(now);
        let factor = (-dt.as_secs_f64() / self.half_life.as_secs_f64()).exp2();
        self.total *= factor;
        self.entries.retain_mut(|(_, w)| {
            *w *= factor;
            *w > NEGLIGIBLE
        });
        if self.total < NEGLIGIBLE {
            self.total = 0.0;
        }
    }

    /// Adds `weight` to `key` at `now`. A key that is not tracked while the sketch is full
    /// takes the lightest entry's place and weight (space-saving: it may be overestimated by
    /// that much, never underestimated).
    pub(crate) fn add(&mut self, key: V, weight: f64, now: Instant) {
        self.decay(now);
        self.total += weight;
        if let Some(entry) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            entry.1 += weight;
        } else if self.entries.len() < self.k {
            self.entries.push((key, weight));
        } else if let Some(lightest) = self.entries.iter_mut().min_by(|a, b| a.1.total_cmp(&b.1)) {
            *lightest = (key, lightest.1 + weight);
        }
    }

    /// The key's weight, if tracked.
    pub(crate) fn get(&self, key: V) -> Option<f64> {
        self.entries.iter().find(|(k, _)| *k == key).map(|e| e.1)
    }

    /// The most an untracked key can weigh: the lightest entry's weight when the sketch is
    /// full (it would have taken that place), else 0.
    pub(crate) fn floor(&self) -> f64 {
        if self.entries.len() < self.k {
            0.0
        } else {
            self.entries
                .iter()
                .map(|e| e.1)
                .fold(f64::INFINITY, f64::min)
        }
    }

    /// The decayed total of every key's weight (exact, tracked or not).
    pub(crate) fn total(&self) -> f64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_keys_survive_a_crowd_of_light_ones() {
        let t0 = crate::test_origin();
        let mut s = TopK::new(4, Duration::from_secs(10));
        // Space-saving keeps every key heavier than total / k: 50 > 150 / 4.
        s.add(99u64, 50.0, t0);
        for i in 0..100u64 {
            s.add(1000 + i, 1.0, t0);
        }
        assert_eq!(s.get(99), Some(50.0));
        assert!((s.total() - 150.0).abs() < 1e-9);
        assert!(
            s.floor() >= 1.0,
            "full: an untracked key may weigh up to the lightest"
        );
        assert_eq!(s.entries.len(), 4, "bounded");
    }

    #[test]
    fn weights_halve_every_half_life() {
        let t0 = crate::test_origin();
        let mut s = TopK::new(4, Duration::from_secs(2));
        s.add(1u64, 8.0, t0);
        s.decay(t0 + Duration::from_secs(4));
        assert!((s.get(1).unwrap() - 2.0).abs() < 1e-9);
        assert!((s.total() - 2.0).abs() < 1e-9);
        assert_eq!(s.floor(), 0.0, "not full");
        s.decay(t0 + Duration::from_secs(400));
        assert_eq!(s.get(1), None, "negligible weights are dropped");
    }
}
