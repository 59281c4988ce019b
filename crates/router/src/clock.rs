//! The one clock of the IO shell. Pure crates take `now` as an argument; the shell reads it here.

use std::time::Instant;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The production clock: tokio's, so tests with paused time stay coherent.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time() {
        let c = TokioClock;
        let a = c.now();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(c.now() - a >= Duration::from_secs(3));
    }
}
