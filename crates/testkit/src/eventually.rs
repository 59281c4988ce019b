//! Waiting without sleeping blind: poll a condition until it holds or a deadline passes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often the helpers re-check their condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Polls `cond` until it is true.
///
/// # Panics
/// When `deadline` passes first; the message names `what`.
pub async fn eventually(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(deadline, what, || cond().then_some(())).await;
}

/// Polls `probe` until it gives a value, and returns it.
///
/// # Panics
/// When `deadline` passes first; the message names `what`.
pub async fn wait_for<T>(
    deadline: Duration,
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Like [`eventually`], for a condition that must itself await (an HTTP call, say).
/// Each attempt is bounded by what is left of the deadline.
///
/// # Panics
/// When `deadline` passes first; the message names `what`.
pub async fn eventually_async<F, Fut>(deadline: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, cond()).await == Ok(true) {
            return;
        }
        assert!(Instant::now() < end, "not within {deadline:?}: {what}");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Asserts that `fut` has not completed after `bound`: for faults that must never answer.
/// Pass `&mut fut` to keep the future afterwards.
///
/// # Panics
/// When `fut` completes within `bound`.
pub async fn stays_pending<F: Future>(bound: Duration, what: &str, fut: F) {
    if tokio::time::timeout(bound, fut).await.is_ok() {
        panic!("{what}: completed, but must not within {bound:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn polls_until_the_condition_holds() {
        let calls = AtomicU32::new(0);
        eventually(Duration::from_secs(1), "third call", || {
            calls.fetch_add(1, Ordering::SeqCst) == 2
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let v = wait_for(Duration::from_secs(1), "a value", || Some(7)).await;
        assert_eq!(v, 7);
    }

    #[tokio::test]
    #[should_panic(expected = "not within 100ms: never")]
    async fn panics_at_the_deadline() {
        eventually(Duration::from_millis(100), "never", || false).await;
    }

    #[tokio::test]
    async fn async_conditions_and_pending_futures() {
        let mut n = 0;
        eventually_async(Duration::from_secs(1), "second try", || {
            n += 1;
            let ok = n >= 2;
            async move { ok }
        })
        .await;
        stays_pending(
            Duration::from_millis(50),
            "pending",
            std::future::pending::<()>(),
        )
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "must not")]
    async fn stays_pending_fails_on_completion() {
        stays_pending(Duration::from_millis(50), "ready", async {}).await;
    }
}
