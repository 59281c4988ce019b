//! The proxy listener's workers: one single-threaded tokio runtime per worker thread, each
//! accepting on its own `SO_REUSEPORT` socket bound to the listen address, in the spirit of
//! nginx's worker processes and HAProxy's threads.
//!
//! A request then stays on one thread from accept to response: its client connection, the
//! pooled upstream connection it is sent on (each worker has its own upstream client, whose
//! connection tasks are spawned on the worker's runtime) and the response body. On a
//! work-stealing runtime the same request crossed tasks, and often cores, several times.
//! What workers share is read without locks: the routing snapshot (`ArcSwap`), in-flight
//! counts and metrics (atomics), the health event queue (`try_send`).

use std::io;
use std::net::SocketAddr;
use std::thread;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

/// Pending connections per listening socket (tokio's own `TcpListener::bind` uses 1024).
const BACKLOG: u32 = 1024;

/// The number of workers `configured` asks for: itself, or one per core when 0.
pub(crate) fn count(configured: u32) -> usize {
    match configured {
        0 => thread::available_parallelism().map_or(1, usize::from),
        n => n as usize,
    }
}

/// `n` listening sockets on `addr` (on the port the first one got, if `addr`'s is 0), with
/// `SO_REUSEPORT` when there is more than one so the kernel spreads connections over them.
/// Unregistered (std) sockets, for each worker to register with its own runtime.
///
/// # Errors
/// A socket cannot be created, bound or put to listen.
pub(crate) fn bind(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::with_capacity(n);
    let mut at = addr;
    for _ in 0..n.max(1) {
        let socket = if at.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As TcpListener::bind does: a restarted router can bind at once.
        socket.set_reuseaddr(true)?;
        if n > 1 {
            socket.set_reuseport(true)?;
        }
        socket.bind(at)?;
        let listener = socket.listen(BACKLOG)?;
        at = listener.local_addr()?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// The running worker threads.
#[derive(Debug)]
pub(crate) struct Workers {
    running: Vec<(thread::JoinHandle<()>, oneshot::Receiver<()>)>,
    runtimes: Vec<tokio::runtime::Handle>,
}

impl Workers {
    /// Starts one thread per entry of `sockets` (a worker's listening sockets: the plaintext
    /// one, and the TLS one when there is one), named `ringward-worker-{i}`, each running
    /// `serve(i, listeners)` on a runtime of its own until that future ends.
    ///
    /// # Errors
    /// A thread or a runtime cannot be started.
    pub(crate) fn spawn<F, Fut>(
        sockets: Vec<Vec<std::net::TcpListener>>,
        serve: F,
    ) -> io::Result<Workers>
    where
        F: Fn(usize, Vec<TcpListener>) -> Fut + Send + Clone + 'static,
        Fut: Future<Output = ()>,
    {
        let mut running = Vec::with_capacity(sockets.len());
        let mut runtimes = Vec::with_capacity(sockets.len());
        for (i, listeners) in sockets.into_iter().enumerate() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtimes.push(runtime.handle().clone());
            let serve = serve.clone();
            let (done, finished) = oneshot::channel();
            let thread = thread::Builder::new()
                .name(format!("ringward-worker-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        // Registered with this worker's runtime, so it must happen on it.
                        let registered: io::Result<Vec<TcpListener>> =
                            listeners.into_iter().map(TcpListener::from_std).collect();
                        match registered {
                            Ok(listeners) => serve(i, listeners).await,
                            Err(e) => {
                                tracing::error!(worker = i, error = %e, "worker cannot listen")
                            }
                        }
                    });
                    // Tasks still on the runtime (idle upstream connections) end with it.
                    drop(runtime);
                    let _ = done.send(());
                })?;
            running.push((thread, finished));
        }
        Ok(Workers { running, runtimes })
    }

    /// Each worker's runtime (for its figures: tasks alive).
    pub(crate) fn runtimes(&self) -> &[tokio::runtime::Handle] {
        &self.runtimes
    }

    /// Waits until every worker has ended, re-raising a worker's panic.
    pub(crate) async fn join(self) {
        for (thread, finished) in self.running {
            // Err: the thread ended without saying so, i.e. it panicked; join to find out.
            let _ = finished.await;
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if let Ok(Err(panic)) = joined {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_one_per_core() {
        assert!(count(0) >= 1);
        assert_eq!(count(3), 3);
    }

    #[tokio::test]
    async fn every_socket_shares_the_port_the_first_one_got() {
        let listeners = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 3).expect("bind");
        let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(addrs.len(), 3);
        assert_ne!(addrs[0].port(), 0);
        assert!(addrs.iter().all(|a| *a == addrs[0]), "{addrs:?}");
    }

    #[tokio::test]
    async fn a_single_worker_does_not_share_its_port() {
        let first = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 1).expect("bind");
        let taken = first[0].local_addr().unwrap();
        assert!(
            bind(taken, 1).is_err(),
            "without SO_REUSEPORT a second bind on {taken} fails"
        );
    }

    #[tokio::test]
    async fn workers_serve_until_their_future_ends_and_join_reports_it() {
        let listeners = bind(SocketAddr::from(([127, 0, 0, 1], 0)), 2).expect("bind");
        let addr = listeners[0].local_addr().unwrap();
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let sockets = listeners.into_iter().map(|l| vec![l]).collect();
        let workers = Workers::spawn(sockets, move |i, listeners: Vec<TcpListener>| {
            let seen = seen_tx.clone();
            async move {
                let (_stream, _) = listeners[0].accept().await.expect("accept");
                let name = thread::current().name().map(str::to_owned);
                let _ = seen.send((i, name));
            }
        })
        .expect("spawn");
        // Each worker ends after one connection; SO_REUSEPORT spreads them by address
        // and port, so connect until both have taken one (bounded).
        let mut seen = Vec::new();
        let mut held = Vec::new();
        for _ in 0..200 {
            if seen.len() == 2 {
                break;
            }
            held.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
            while let Ok(s) = seen_rx.try_recv() {
                seen.push(s);
            }
            if seen.len() < 2 {
                if let Ok(Some(s)) =
                    tokio::time::timeout(std::time::Duration::from_millis(20), seen_rx.recv()).await
                {
                    seen.push(s);
                }
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![
                (0, Some("ringward-worker-0".to_owned())),
                (1, Some("ringward-worker-1".to_owned()))
            ]
        );
        workers.join().await;
    }
}
