//! What the host says about itself: the `/healthz` body (docs/contracts.md: the host health report) and the ORCA
//! `endpoint-load-metrics` TEXT header, both computed from the pool's true figures.

use std::fmt;
use std::time::Duration;

use crate::pool::PoolFigures;
use crate::stats::millis;

/// The ORCA load-report header carried by every Val response.
pub const ORCA_HEADER: &str = "endpoint-load-metrics";

/// The `status` of a health report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    /// Healthy.
    Pass,
    /// Stuck slots, but still capacity.
    Warn,
    /// Exhausted: full with waiters, or full of stuck slots.
    Fail,
}

impl HealthStatus {
    /// The honest verdict on these figures: `fail` when the pool is full and someone waits or
    /// the oldest checkout is older than `stuck_after`; `warn` on stuck slots alone; else `pass`.
    pub fn judge(pool: &PoolFigures, stuck_after: Duration) -> HealthStatus {
        let stuck = pool.in_use > 0 && pool.oldest_checkout >= stuck_after;
        if pool.in_use >= pool.max && (pool.waiting > 0 || stuck) {
            HealthStatus::Fail
        } else if stuck {
            HealthStatus::Warn
        } else {
            HealthStatus::Pass
        }
    }

    /// `pass`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Pass => "pass",
            HealthStatus::Warn => "warn",
            HealthStatus::Fail => "fail",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `/healthz` JSON body (`db_pool` omitted when `None`: a shallow check).
pub fn health_body(status: HealthStatus, pool: Option<&PoolFigures>) -> serde_json::Value {
    match pool {
        Some(p) => serde_json::json!({
            "status": status.as_str(),
            "db_pool": {
                "max": p.max,
                "in_use": p.in_use,
                "waiting": p.waiting,
                "oldest_checkout_ms": millis(p.oldest_checkout),
            },
        }),
        None => serde_json::json!({ "status": status.as_str() }),
    }
}

/// The `endpoint-load-metrics` value, TEXT form, as Envoy parses it.
pub fn orca_text(p: &PoolFigures) -> String {
    format!(
        "TEXT named_metrics.db_pool_max={}, named_metrics.db_pool_in_use={}, \
         named_metrics.db_pool_waiting={}, named_metrics.db_pool_oldest_checkout_ms={}",
        p.max,
        p.in_use,
        p.waiting,
        millis(p.oldest_checkout)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(in_use: u32, waiting: u32, oldest_s: u64) -> PoolFigures {
        PoolFigures {
            max: 10,
            in_use,
            waiting,
            oldest_checkout: Duration::from_secs(oldest_s),
            deadlocked: 0,
            poisoned: 0,
        }
    }

    #[test]
    fn judges_the_figures() {
        let after = Duration::from_secs(10);
        assert_eq!(
            HealthStatus::judge(&pool(3, 0, 1), after),
            HealthStatus::Pass
        );
        assert_eq!(
            HealthStatus::judge(&pool(10, 0, 1), after),
            HealthStatus::Pass
        );
        assert_eq!(
            HealthStatus::judge(&pool(10, 2, 1), after),
            HealthStatus::Fail
        );
        assert_eq!(
            HealthStatus::judge(&pool(10, 0, 11), after),
            HealthStatus::Fail
        );
        assert_eq!(
            HealthStatus::judge(&pool(4, 0, 11), after),
            HealthStatus::Warn
        );
    }

    #[test]
    fn formats_contract_one() {
        let p = PoolFigures {
            max: 20,
            in_use: 20,
            waiting: 7,
            oldest_checkout: Duration::from_millis(41_000),
            deadlocked: 20,
            poisoned: 0,
        };
        assert_eq!(
            orca_text(&p),
            "TEXT named_metrics.db_pool_max=20, named_metrics.db_pool_in_use=20, \
             named_metrics.db_pool_waiting=7, named_metrics.db_pool_oldest_checkout_ms=41000"
        );
        let body = health_body(HealthStatus::Fail, Some(&p));
        assert_eq!(body["status"], "fail");
        assert_eq!(body["db_pool"]["oldest_checkout_ms"], 41_000);
        assert!(
            health_body(HealthStatus::Pass, None)
                .get("db_pool")
                .is_none()
        );
    }
}
