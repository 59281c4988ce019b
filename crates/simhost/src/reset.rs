//! A handler's way to ask its connection task to reset the connection (the `reset` fault).

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A handler's way to ask its connection task to reset the connection.
#[derive(Debug, Default)]
pub(crate) struct ResetSignal {
    fired: AtomicBool,
    notify: Notify,
}

impl ResetSignal {
    pub(crate) fn fire(&self) {
        self.fired.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    /// True once fired.
    pub(crate) fn has_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    pub(crate) async fn fired(&self) {
        self.notify.notified().await;
    }
}
