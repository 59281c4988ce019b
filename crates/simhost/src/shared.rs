//! What a host's connection tasks share: its config, pool, faults, counters and shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use rand::Rng as _;
use rand::rngs::StdRng;
use tokio::sync::watch;

use crate::SimConfig;
use crate::fault::FaultControl;
use crate::pool::Pool;
use crate::stats::{Counters, SimStats};

/// Everything the connection tasks share.
pub(crate) struct Shared {
    pub(crate) config: SimConfig,
    pub(crate) name_header: Option<HeaderValue>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) faults: FaultControl,
    pub(crate) counters: Counters,
    pub(crate) rng: Mutex<StdRng>,
    pub(crate) shutdown: ShutdownSignal,
    /// Test hook: the next request panics its connection task.
    #[cfg(test)]
    pub(crate) panic_next: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// A uniform draw in `[0, 1)` for the error rate.
    pub(crate) fn draw(&self) -> f64 {
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random()
    }

    pub(crate) fn service_time(&self) -> Duration {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        self.config.service_time.sample(&mut *rng)
    }

    pub(crate) fn stats(&self) -> SimStats {
        self.counters.snapshot(self.pool.figures())
    }
}

/// Completes once shutdown has begun (or the host handle is gone).
#[derive(Clone, Debug)]
pub(crate) struct ShutdownSignal(pub(crate) watch::Receiver<bool>);

impl ShutdownSignal {
    pub(crate) async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means the sender (the `SimHost`) is gone: that is a shutdown too.
        let _ = rx.wait_for(|down| *down).await;
    }
}
