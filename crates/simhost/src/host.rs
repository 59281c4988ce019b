//! A running simulated host: the listener, its accept loop, and graceful shutdown.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderValue;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle, JoinSet};

use crate::SimConfig;
use crate::conn;
use crate::fault::FaultControl;
use crate::pool::{Pool, PoolFigures};
use crate::report::HealthStatus;
use crate::shared::{Shared, ShutdownSignal};
use crate::stats::{Counters, SimStats};

/// How long shutdown lets connections drain before aborting them. Handlers and stalled
/// bodies end as soon as shutdown starts, so this bound is only a backstop.
const DRAIN_BOUND: Duration = Duration::from_secs(5);

/// A running simulated host.
pub struct SimHost {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHost")
            .field("name", &self.name())
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHost {
    /// Binds `addr` (use `127.0.0.1:0` for an ephemeral port) and starts serving.
    ///
    /// # Errors
    /// The bind error.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> io::Result<SimHost> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = watch::channel(false);
        let pool = Pool::new(config.pool_size);
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let shared = Arc::new(Shared {
            name_header: HeaderValue::try_from(config.name.as_str()).ok(),
            faults: FaultControl::new(Arc::clone(&pool)),
            pool,
            counters: Counters::new(),
            rng: Mutex::new(rng),
            shutdown: ShutdownSignal(rx),
            #[cfg(test)]
            panic_next: std::sync::atomic::AtomicBool::new(false),
            config,
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(SimHost {
            addr,
            shared,
            shutdown: tx,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// The settings it was started with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Fault injection (the same as `POST /_sim/fault`).
    pub fn faults(&self) -> &FaultControl {
        &self.shared.faults
    }

    /// Counters and pool figures now.
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// A cloneable, `'static` handle on the counters, for a task that watches the host.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.shared))
    }

    /// The pool figures now.
    pub fn pool(&self) -> PoolFigures {
        self.shared.pool.figures()
    }

    /// The honest health verdict on the pool now (what `/healthz` says unless it lies).
    pub fn health_status(&self) -> HealthStatus {
        HealthStatus::judge(&self.pool(), self.shared.config.stuck_after)
    }

    /// Stops accepting, answers whatever is pending with 503, drains the connections and
    /// waits for every task.
    ///
    /// # Panics
    /// Re-raises a panic from the server's tasks.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            reraise(task.await);
        }
    }
}

/// Reads a host's counters from anywhere (another task), even after the host has stopped.
#[derive(Clone)]
pub struct StatsHandle(Arc<Shared>);

impl std::fmt::Debug for StatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StatsHandle")
            .field(&self.0.config.name)
            .finish()
    }
}

impl StatsHandle {
    /// Counters and pool figures now.
    pub fn stats(&self) -> SimStats {
        self.0.stats()
    }

    /// Val requests received so far (cheap: one atomic load).
    pub fn val_requests(&self) -> u64 {
        self.0.counters.val_requests.load(Ordering::Relaxed)
    }

    /// Health requests received so far (cheap: one atomic load).
    pub fn health_requests(&self) -> u64 {
        self.0.counters.health_requests.load(Ordering::Relaxed)
    }

    /// WebSockets open on the echo endpoint now (cheap: one atomic load).
    pub fn websockets_open(&self) -> u64 {
        self.0.counters.websockets_open.load(Ordering::Relaxed)
    }

    /// How many times the `poison` fault's deadlock triggered here (cheap: one atomic load).
    pub fn poison_triggered(&self) -> u64 {
        self.0.counters.poison_triggered.load(Ordering::Relaxed)
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        // A host dropped without `shutdown` (a failing test) still stops its tasks.
        self.shutdown.send_replace(true);
    }
}

fn reraise(done: Result<(), JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    Counters::bump(&shared.counters.connections);
                    let _ = stream.set_nodelay(true);
                    conns.spawn(conn::serve(stream, Arc::clone(&shared)));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "simhost accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(done) = conns.join_next(), if !conns.is_empty() => reraise(done),
            () = shared.shutdown.wait() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_BOUND, async {
        while let Some(done) = conns.join_next().await {
            reraise(done);
        }
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
        while let Some(done) = conns.join_next().await {
            reraise(done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn shutdown_reraises_a_server_task_panic() {
        let host = SimHost::start(SocketAddr::from(([127, 0, 0, 1], 0)), SimConfig::default())
            .await
            .unwrap();
        host.shared.panic_next.store(true, Ordering::SeqCst);
        let mut stream = tokio::net::TcpStream::connect(host.addr()).await.unwrap();
        stream
            .write_all(b"GET /v/x HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        // The panicking task drops the connection: the read ends (EOF or reset).
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
        let joined = tokio::spawn(host.shutdown()).await;
        let panic = joined.expect_err("shutdown must re-raise").into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"injected test panic"));
    }
}
