//! A proxy worker's outbox for health events: the request path's outcomes and reports are
//! gathered per worker thread and reach the health task in one message per batch, instead of
//! one cross-thread wake-up per request (measured: about one context switch per request on
//! the router's process before, docs/benchmarks.md).
//!
//! An outcome that is a failure (a gateway failure, a timeout, a 5xx) is sent at once with
//! whatever was gathered before it, so the health state machine sees trouble as soon as it
//! did before; successes and reports wait at most [`FLUSH_AFTER`]. A thread without an
//! outbox (anything but a proxy worker) sends every event as it comes.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use health::Outcome;
use tokio::sync::Notify;

use crate::control::messages::HealthEvent;

/// The longest a success or a report waits in the outbox (the health task's tick is 50 ms).
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(5);

/// Events gathered before a batch goes regardless of time.
const BATCH: usize = 512;

struct Local {
    events: Vec<HealthEvent>,
    /// Wakes this worker's flusher when the outbox stops being empty.
    notify: Arc<Notify>,
}

thread_local! {
    static OUTBOX: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Installs an outbox on this thread (a proxy worker's) and returns the future that flushes
/// it through `send` (the health task's queue: an event and how many it holds); run it as a
/// task on the worker's runtime, so it runs on this same thread.
pub(crate) fn install<F>(send: F) -> impl Future<Output = ()> + Send + 'static
where
    F: Fn(HealthEvent, usize) + Send + Sync + 'static,
{
    let notify = Arc::new(Notify::new());
    OUTBOX.with(|o| {
        *o.borrow_mut() = Some(Local {
            events: Vec::with_capacity(BATCH),
            notify: Arc::clone(&notify),
        });
    });
    async move {
        loop {
            notify.notified().await;
            tokio::time::sleep(FLUSH_AFTER).await;
            flush(&send);
        }
    }
}

/// Sends what this thread's outbox holds, if anything, through `send`.
pub(crate) fn flush(send: &impl Fn(HealthEvent, usize)) {
    let batch = OUTBOX.with(|o| {
        o.borrow_mut()
            .as_mut()
            .map(|local| std::mem::replace(&mut local.events, Vec::with_capacity(BATCH)))
    });
    if let Some(batch) = batch.filter(|b| !b.is_empty()) {
        let n = batch.len();
        send(HealthEvent::Batch(batch), n);
    }
}

/// Queues `event` in this thread's outbox, or sends it through `send` at once when it is
/// urgent or there is no outbox here.
pub(crate) fn post(event: HealthEvent, send: &impl Fn(HealthEvent, usize)) {
    let urgent = matches!(
        event,
        HealthEvent::Outcome {
            outcome: Outcome::GatewayFailure(_)
                | Outcome::Timeout { .. }
                | Outcome::ServerError { .. },
            ..
        }
    );
    let queued = OUTBOX.with(|o| match o.borrow_mut().as_mut() {
        None => Err(event),
        Some(local) => {
            local.events.push(event);
            Ok(local.events.len())
        }
    });
    match queued {
        Err(event) => send(event, 1),
        Ok(n) if urgent || n >= BATCH => flush(send),
        // The first event of a batch starts the flusher's clock.
        Ok(1) => OUTBOX.with(|o| {
            if let Some(local) = o.borrow().as_ref() {
                local.notify.notify_one();
            }
        }),
        Ok(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use health::GatewayFailure;

    use super::*;
    use crate::control::fleet::HostKey;

    fn success() -> HealthEvent {
        HealthEvent::Outcome {
            host: HostKey(0),
            val: 1,
            outcome: Outcome::Success {
                latency: Duration::from_millis(1),
            },
        }
    }

    fn events_in(ev: &HealthEvent) -> usize {
        match ev {
            HealthEvent::Batch(b) => b.len(),
            _ => 1,
        }
    }

    /// A queue like the health task's, and the sender the outbox is given.
    fn queue() -> (
        impl Fn(HealthEvent, usize) + Clone + Send + Sync + 'static,
        tokio::sync::mpsc::UnboundedReceiver<HealthEvent>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (move |ev, _n| drop(tx.send(ev)), rx)
    }

    #[tokio::test]
    async fn without_an_outbox_every_event_goes_at_once() {
        let (send, mut rx) = queue();
        post(success(), &send);
        assert!(matches!(rx.try_recv(), Ok(HealthEvent::Outcome { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn successes_wait_for_the_flusher_and_a_failure_takes_them_along() {
        let (send, mut rx) = queue();
        let flusher = tokio::spawn(install(send.clone()));
        post(success(), &send);
        post(success(), &send);
        assert!(rx.try_recv().is_err(), "successes wait in the outbox");
        // The flusher sends them within FLUSH_AFTER, as one message.
        let batch = tokio::time::timeout(FLUSH_AFTER * 2, rx.recv())
            .await
            .expect("flushed in time")
            .expect("a message");
        assert_eq!(events_in(&batch), 2);

        post(success(), &send);
        post(
            HealthEvent::Outcome {
                host: HostKey(0),
                val: 1,
                outcome: Outcome::GatewayFailure(GatewayFailure::ConnectRefused),
            },
            &send,
        );
        let urgent = rx.try_recv().expect("a failure goes at once");
        assert_eq!(
            events_in(&urgent),
            2,
            "with the success before it, in order"
        );
        flusher.abort();
        OUTBOX.with(|o| *o.borrow_mut() = None);
    }
}
