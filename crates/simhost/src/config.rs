//! How a simulated host is set up: its name, pool size and service-time model.

use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

use crate::SimError;

/// The settings of one simulated host.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The host's name: in `x-simhost`, the Val body and the stats.
    pub name: String,
    /// Capacity of the modelled DB connection pool (at least 1).
    pub pool_size: u32,
    /// How long a Val request holds its DB connection.
    pub service_time: ServiceTime,
    /// Give up waiting for a connection after this long and answer 503; `None` (the default,
    /// as in the incident) waits forever.
    pub acquire_timeout: Option<Duration>,
    /// A checkout older than this is a stuck slot in `/healthz` (`warn`, or `fail` when full).
    pub stuck_after: Duration,
    /// Drop a Val request's work (and its place in the pool queue) when its client hangs up.
    /// Off by default: like most app servers, abandoned requests keep waiting for the pool.
    pub cancel_on_disconnect: bool,
    /// Seed for service-time and error-rate draws; `None` seeds from the OS.
    pub seed: Option<u64>,
}

impl SimConfig {
    /// The defaults, with this name.
    pub fn named(name: impl Into<String>) -> SimConfig {
        SimConfig {
            name: name.into(),
            ..SimConfig::default()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            name: "simhost".to_owned(),
            pool_size: 10,
            service_time: ServiceTime::Fixed(Duration::from_millis(5)),
            acquire_timeout: None,
            stuck_after: Duration::from_secs(10),
            cancel_on_disconnect: false,
            seed: None,
        }
    }
}

/// How long a Val request holds its DB connection.
///
/// Parses from text: `5ms` (fixed), `uniform:2ms..8ms`, `exp:5ms` (exponential with that mean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceTime {
    /// Always the same.
    Fixed(Duration),
    /// Uniform between `min` and `max` inclusive.
    Uniform {
        /// The shortest service time.
        min: Duration,
        /// The longest service time.
        max: Duration,
    },
    /// Exponentially distributed (capped at 20 means, so one draw cannot stall a test).
    Exponential {
        /// The mean service time.
        mean: Duration,
    },
}

impl ServiceTime {
    /// Draws one service time.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            ServiceTime::Fixed(d) => d,
            ServiceTime::Uniform { min, max } if max <= min => min,
            ServiceTime::Uniform { min, max } => {
                let (lo, hi) = (nanos(min), nanos(max));
                Duration::from_nanos(rng.random_range(lo..=hi))
            }
            ServiceTime::Exponential { mean } => {
                let u: f64 = rng.random();
                // Inverse CDF; 1 - u is in (0, 1], so ln is finite.
                let factor = (-(1.0 - u).ln()).min(20.0);
                mean.mul_f64(factor)
            }
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl FromStr for ServiceTime {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| SimError::ServiceTime {
            input: s.to_owned(),
            reason,
        };
        let dur = |t: &str| {
            humantime::parse_duration(t.trim())
                .map_err(|_| err("not a duration (try 5ms, uniform:2ms..8ms or exp:5ms)"))
        };
        if let Some(rest) = s.strip_prefix("uniform:") {
            let (min, max) = rest
                .split_once("..")
                .ok_or_else(|| err("uniform needs MIN..MAX"))?;
            let (min, max) = (dur(min)?, dur(max)?);
            if max < min {
                return Err(err("uniform max is below min"));
            }
            Ok(ServiceTime::Uniform { min, max })
        } else if let Some(rest) = s.strip_prefix("exp:") {
            Ok(ServiceTime::Exponential { mean: dur(rest)? })
        } else {
            Ok(ServiceTime::Fixed(dur(s)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn parses_the_three_forms() {
        let ms = Duration::from_millis;
        assert_eq!(
            "5ms".parse::<ServiceTime>().unwrap(),
            ServiceTime::Fixed(ms(5))
        );
        assert_eq!(
            "uniform:2ms..8ms".parse::<ServiceTime>().unwrap(),
            ServiceTime::Uniform {
                min: ms(2),
                max: ms(8)
            }
        );
        assert_eq!(
            "exp:5ms".parse::<ServiceTime>().unwrap(),
            ServiceTime::Exponential { mean: ms(5) }
        );
        assert!("uniform:8ms..2ms".parse::<ServiceTime>().is_err());
        assert!("uniform:2ms".parse::<ServiceTime>().is_err());
        assert!("fast".parse::<ServiceTime>().is_err());
    }

    #[test]
    fn samples_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(7);
        let ms = Duration::from_millis;
        let uniform = ServiceTime::Uniform {
            min: ms(2),
            max: ms(8),
        };
        let exp = ServiceTime::Exponential { mean: ms(5) };
        let mut exp_total = Duration::ZERO;
        for _ in 0..2000 {
            let d = uniform.sample(&mut rng);
            assert!((ms(2)..=ms(8)).contains(&d), "{d:?}");
            let e = exp.sample(&mut rng);
            assert!(e <= ms(100), "{e:?}");
            exp_total += e;
        }
        // The mean of 2000 exponential draws lands well within 20% of 5ms.
        let mean = exp_total / 2000;
        assert!((ms(4)..=ms(6)).contains(&mean), "{mean:?}");
        assert_eq!(ServiceTime::Fixed(ms(3)).sample(&mut rng), ms(3));
    }
}
