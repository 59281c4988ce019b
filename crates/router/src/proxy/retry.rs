//! The retry budget: retries (including rescues) may be at most a share of the traffic,
//! so a sick fleet is not hit with a retry storm (the idea of linkerd's and Finagle's budgets).
//!
//! Every request deposits `ratio` of a token; every retry withdraws one whole token. The
//! balance starts at `min` tokens and is capped at `min` plus a window of deposits, so a quiet
//! period cannot save up an unbounded burst.

use std::sync::atomic::{AtomicI64, Ordering};

use http::Method;

/// Tokens are counted in thousandths so the ratio can be fractional with an integer atomic.
const SCALE: i64 = 1000;

/// A lock-free retry budget.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    balance: AtomicI64,
    deposit: i64,
    cap: i64,
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per request, with a reserve of `min` retries.
    pub(crate) fn new(ratio: f64, min: u32) -> Self {
        let deposit = (ratio.clamp(0.0, 1.0) * SCALE as f64).round() as i64;
        let reserve = i64::from(min) * SCALE;
        RetryBudget {
            balance: AtomicI64::new(reserve),
            deposit,
            // At most 1000 requests' worth of deposits can be saved on top of the reserve.
            cap: reserve + deposit * 1000,
        }
    }

    /// Records one request (call once per client request, not per attempt).
    pub(crate) fn deposit(&self) {
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b < self.cap).then(|| (b + self.deposit).min(self.cap))
            });
    }

    /// Takes a token for one retry; false when the budget is spent.
    pub(crate) fn try_withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b >= SCALE).then_some(b - SCALE)
            })
            .is_ok()
    }
}

/// Methods that may be re-sent after part of the request reached a host (RFC 9110 9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_then_ratio() {
        let b = RetryBudget::new(0.2, 2);
        assert!(b.try_withdraw());
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw(), "reserve of 2 is spent");
        for _ in 0..4 {
            b.deposit();
        }
        assert!(!b.try_withdraw(), "4 requests at 0.2 give 0.8 of a token");
        b.deposit();
        assert!(b.try_withdraw(), "5 requests give one retry");
        assert!(!b.try_withdraw());
    }

    #[test]
    fn savings_are_capped() {
        let b = RetryBudget::new(0.5, 0);
        for _ in 0..100_000 {
            b.deposit();
        }
        let mut n = 0;
        while b.try_withdraw() && n < 10_000 {
            n += 1;
        }
        assert_eq!(n, 500, "at most 1000 requests of savings");
    }

    #[test]
    fn zero_ratio_zero_min_never_retries() {
        let b = RetryBudget::new(0.0, 0);
        b.deposit();
        assert!(!b.try_withdraw());
    }

    #[test]
    fn idempotent_methods() {
        assert!(is_idempotent(&Method::GET));
        assert!(is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }
}
