//! Zipf popularity over Vals: a few Vals take most requests, as in a real fleet.

use rand::Rng;

/// Samples Val indices `0..n` with probability proportional to `1 / (rank + 1)^s`.
#[derive(Debug, Clone)]
pub(crate) struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A sampler over `n` Vals (at least one) with exponent `s` (0 = uniform).
    pub(crate) fn new(n: u32, s: f64) -> Self {
        let n = n.max(1);
        let mut cdf = Vec::with_capacity(n as usize);
        let mut sum = 0.0;
        for rank in 0..n {
            sum += 1.0 / f64::from(rank + 1).powf(s);
            cdf.push(sum);
        }
        for p in &mut cdf {
            *p /= sum;
        }
        Self { cdf }
    }

    /// One Val index.
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> u32 {
        let u: f64 = rng.random();
        let i = self.cdf.partition_point(|&p| p < u);
        // `u < 1.0` always, and the last entry is 1.0, so `i` is in range.
        i.min(self.cdf.len() - 1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn popular_vals_come_first_and_every_index_is_in_range() {
        let zipf = Zipf::new(100, 1.1);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 100];
        for _ in 0..20_000 {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        assert!(counts[0] > counts[1], "{counts:?}");
        assert!(counts[1] > counts[10], "{counts:?}");
        assert!(
            counts[0] > 20_000 / 10,
            "rank 0 takes a large share: {}",
            counts[0]
        );
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let zipf = Zipf::new(4, 0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[zipf.sample(&mut rng) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
