//! A running router: the proxy listener, the admin listener, the health task and the prober,
//! sharing one [`Shared`]. Started with [`Router::start`], reconfigured with [`Router::reload`],
//! stopped with [`Router::shutdown`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::info;

use crate::clock::{Clock, TokioClock};
use crate::config::{Config, ConfigErrors};
use crate::conn::cap::ConnCap;
use crate::conn::server;
use crate::conn::workers::{self, Workers};
use crate::control::etcd::{self, EtcdLink};
use crate::control::fleet::{Fleet, HostKeys};
use crate::control::inflight::GlobalLoad;
use crate::control::resolve::{self, Names};
use crate::control::resolver::{Resolve, SystemResolver};
use crate::control::shared::Shared;
use crate::control::task::{EVENT_QUEUE, HealthTask};
use crate::control::{outbox, probe};
use crate::error::StartError;
use crate::metrics::Metrics;
use crate::proxy::access_log;
use crate::proxy::client::UpstreamClients;
use crate::proxy::headers::{ForwardingCache, Scheme};
use crate::{admin, proxy};

/// A running router.
pub struct Router {
    shared: Arc<Shared>,
    listen_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// The admin listener stops only after the proxy has drained, so
    /// `/readyz` can answer 503 (and metrics be read) during the drain.
    admin_shutdown: watch::Sender<bool>,
    /// The proxy listener's worker threads.
    proxy_workers: Workers,
    admin_server: JoinHandle<()>,
    background: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("listen_addr", &self.listen_addr)
            .field("tls_addr", &self.tls_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

impl Router {
    /// Binds both listeners and starts every task.
    ///
    /// # Errors
    /// A listener cannot bind (the error names it and its address), or the admin listener
    /// is off loopback without a token.
    pub async fn start(config: Config) -> Result<Router, StartError> {
        Router::start_with_clock(config, Arc::new(TokioClock)).await
    }

    /// [`Router::start`] for `config`, read from the file at `path`: the start line names
    /// the file, and the router reloads it on SIGHUP and on change ([`Router::watch_config`]).
    ///
    /// # Errors
    /// As [`Router::start`].
    pub async fn start_from_file(config: Config, path: PathBuf) -> Result<Router, StartError> {
        // Absolute in the log: a journal does not show the working directory.
        let shown = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let router = Router::start_inner(
            config,
            Arc::new(TokioClock),
            Arc::new(SystemResolver),
            Some(&shown),
        )
        .await?;
        router.watch_config(path);
        Ok(router)
    }

    /// [`Router::start`] with an injected clock.
    ///
    /// # Errors
    /// As [`Router::start`].
    pub async fn start_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Router, StartError> {
        Router::start_inner(config, clock, Arc::new(SystemResolver), None).await
    }

    /// [`Router::start_with_clock`] with the resolver that looks up the hosts given by name
    /// (`[[hosts]].addr = "name:port"`) in place of the system's ([`SystemResolver`]): for
    /// an embedder with its own service discovery, or a test that makes a name stop
    /// resolving. Names are looked up before this returns (each lookup bounded by 5 s), so a
    /// host whose name resolves takes requests from the start; one whose name does not is
    /// closed until it does.
    ///
    /// # Errors
    /// As [`Router::start`].
    pub async fn start_with_resolver(
        config: Config,
        clock: Arc<dyn Clock>,
        resolver: Arc<dyn Resolve>,
    ) -> Result<Router, StartError> {
        Router::start_inner(config, clock, resolver, None).await
    }

    /// Starts the router; `source` is the config file, if it came from one.
    async fn start_inner(
        config: Config,
        clock: Arc<dyn Clock>,
        resolver: Arc<dyn Resolve>,
        source: Option<&Path>,
    ) -> Result<Router, StartError> {
        // The parser's rule, enforced here too for configs built in code (`Config::for_hosts`
        // plus edits): an admin listener off loopback needs a token. Checked before binding.
        if config.admin.token.is_none() && !config.admin.addr.ip().is_loopback() {
            return Err(StartError::Config(ConfigErrors::single(
                "admin.token",
                format!(
                    "required when admin.addr ({}) is not a loopback address",
                    config.admin.addr
                ),
            )));
        }
        let worker_count = workers::count(config.listen.workers);
        let listen_at = config.listen.addr;
        let bind_error = move |source| StartError::Bind {
            what: "listen",
            addr: listen_at,
            source,
        };
        let listeners = workers::bind(config.listen.addr, worker_count).map_err(bind_error)?;
        let listen_addr = listeners[0].local_addr().map_err(bind_error)?;
        // Each worker accepts on its own TLS socket too, beside its plaintext one.
        let (tls_listeners, tls_addr) = match &config.listen.tls {
            Some(tls) => {
                let tls_error = |source| StartError::Bind {
                    what: "listen.tls",
                    addr: tls.addr,
                    source,
                };
                let bound = workers::bind(tls.addr, worker_count).map_err(tls_error)?;
                let addr = bound[0].local_addr().map_err(tls_error)?;
                (bound.into_iter().map(Some).collect(), Some(addr))
            }
            None => (
                std::iter::repeat_with(|| None)
                    .take(listeners.len())
                    .collect::<Vec<_>>(),
                None,
            ),
        };
        let sockets: Vec<Vec<std::net::TcpListener>> = listeners
            .into_iter()
            .zip(tls_listeners)
            .map(|(plain, tls)| std::iter::once(plain).chain(tls).collect())
            .collect();
        let admin_listener = bind("admin", config.admin.addr).await?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                what: "admin",
                addr: config.admin.addr,
                source,
            })?;

        let metrics = Metrics::default();
        let keys = HostKeys::default();
        let global = Arc::new(GlobalLoad::new(config.limits.global_in_flight));
        // Fleet mode: the hosts registered in etcd join the first ring (if etcd answers now;
        // the link keeps trying otherwise).
        let etcd = match &config.discovery.etcd {
            Some(etcd) => Some(Arc::new(EtcdLink::new(etcd)?)),
            None => None,
        };
        let discovered = match &etcd {
            Some(link) => etcd::start_hosts(link, clock.now()).await,
            None => Vec::new(),
        };
        let hosts = crate::control::reload::effective_hosts(&config.hosts, &discovered);
        let names = Names::resolve_at_start(&hosts, &resolver, &metrics, || clock.now()).await;
        let fleet = Arc::new(Fleet::build(
            &hosts,
            config.limits.per_host_in_flight,
            &keys,
            &metrics,
            clock.now(),
            |h| names.location(h),
        )?);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let upstream = UpstreamClients::build(&config.upstream, worker_count);
        let passive = config.health.passive.clone();
        let guard = config.guard.clone();
        let listen_cfg = config.listen.clone();
        // A client that reads nothing for this long is as silent as a stalled body.
        let write_stall = config.upstream.body_idle_timeout;
        let conn_cap = ConnCap::new(
            usize::try_from(config.limits.max_connections).unwrap_or(usize::MAX),
            Arc::clone(&metrics.connections),
        );
        let mut shared = Shared::new(
            config, fleet, global, upstream, metrics, keys, events_tx, control_tx, clock,
        );
        shared.etcd = etcd.clone();
        let shared = Arc::new(shared);
        let (shutdown, _) = watch::channel(false);
        let (admin_shutdown, _) = watch::channel(false);

        let mut background = Vec::new();
        let task = HealthTask::new(Arc::clone(&shared), passive, guard);
        background.push(tokio::spawn(task.run(events_rx, control_rx)));
        background.push(tokio::spawn(probe::run(
            Arc::clone(&shared),
            shutdown.subscribe(),
        )));
        if let Some(link) = etcd {
            background.push(tokio::spawn(etcd::run(
                Arc::clone(&shared),
                link,
                shutdown.subscribe(),
            )));
        }
        background.push(tokio::spawn(resolve::run(
            Arc::clone(&shared),
            resolver,
            names,
            shutdown.subscribe(),
        )));

        let proxy_shared = Arc::clone(&shared);
        let proxy_shutdown = shutdown.subscribe();
        let proxy_listen = listen_cfg.clone();
        let proxy_options = server::ServeOptions {
            grace: listen_cfg.shutdown_grace,
            write_stall,
            first_byte: listen_cfg.header_read_timeout,
            what: "listen",
            cap: Some(conn_cap),
            tls: None,
        };
        let tls_options = shared
            .tls
            .clone()
            .zip(listen_cfg.tls.as_ref())
            .map(|(acceptor, tls)| server::ServeOptions {
                what: "listen.tls",
                tls: Some((acceptor, tls.handshake_timeout)),
                ..proxy_options.clone()
            });
        let proxy_workers = Workers::spawn(sockets, move |worker, listeners| {
            let shared = Arc::clone(&proxy_shared);
            let make_service = move |scheme| {
                let shared = Arc::clone(&shared);
                move |remote| {
                    let shared = Arc::clone(&shared);
                    // Per connection: its requests reuse the forwarding header values.
                    let conn = Arc::new(ForwardingCache::new(remote, scheme));
                    service_fn(move |req| {
                        let shared = Arc::clone(&shared);
                        let conn = Arc::clone(&conn);
                        async move {
                            Ok::<_, Infallible>(proxy::handle(shared, req, conn, worker).await)
                        }
                    })
                }
            };
            let mut listeners = listeners.into_iter();
            let plain = listeners.next().map(|listener| {
                server::serve(
                    listener,
                    server::builder(&proxy_listen),
                    make_service(Scheme::Http),
                    proxy_shutdown.clone(),
                    proxy_options.clone(),
                )
            });
            let tls = listeners
                .next()
                .zip(tls_options.clone())
                .map(|(listener, options)| {
                    server::serve(
                        listener,
                        server::builder(&proxy_listen),
                        make_service(Scheme::Https),
                        proxy_shutdown.clone(),
                        options,
                    )
                });
            let serve = async move {
                let plain = async move {
                    if let Some(plain) = plain {
                        plain.await;
                    }
                };
                let tls = async move {
                    if let Some(tls) = tls {
                        tls.await;
                    }
                };
                tokio::join!(plain, tls);
            };
            proxy_worker(Arc::clone(&proxy_shared), worker, serve)
        })
        .map_err(bind_error)?;
        let _ = shared
            .worker_runtimes
            .set(proxy_workers.runtimes().to_vec());
        let admin_shared = Arc::clone(&shared);
        let admin_server = tokio::spawn(server::serve(
            admin_listener,
            server::builder(&listen_cfg),
            move |_remote| {
                let shared = Arc::clone(&admin_shared);
                service_fn(move |req| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(admin::handle(shared, req).await) }
                })
            },
            admin_shutdown.subscribe(),
            server::ServeOptions {
                grace: listen_cfg.shutdown_grace,
                write_stall,
                first_byte: listen_cfg.header_read_timeout,
                what: "admin",
                // Not capped: an operator must reach the admin API during a connection flood.
                cap: None,
                tls: None,
            },
        ));
        info!(
            version = env!("CARGO_PKG_VERSION"),
            config = %source.map_or_else(|| "(built in code)".into(), |p| p.display().to_string()),
            %listen_addr,
            tls_addr = %tls_addr.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            %admin_addr,
            workers = worker_count,
            hosts = shared.fleet().hosts.len(),
            "ringward started"
        );
        Ok(Router {
            shared,
            listen_addr,
            tls_addr,
            admin_addr,
            shutdown,
            admin_shutdown,
            proxy_workers,
            admin_server,
            background,
        })
    }

    /// Where clients connect.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Where TLS clients connect (`[listen.tls]`), if configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Applies a new config (what SIGHUP and a file change call). In-flight requests keep
    /// their host; a membership change rebuilds the ring, keeping surviving hosts' health.
    /// Listener addresses and health state-machine settings apply only after a restart.
    ///
    /// # Errors
    /// The new config cannot be applied; the old one keeps serving.
    pub fn reload(&self, config: Config) -> Result<(), ConfigErrors> {
        let diff = crate::control::reload::apply(&self.shared, config)?;
        crate::control::reload::log_applied(&diff, "-", "Router::reload");
        Ok(())
    }

    /// Watches `path` (modification time, every `reload.poll_interval`, when `reload.watch`)
    /// and reloads on SIGHUP (Unix); a bad file is refused with its errors logged.
    pub fn watch_config(&self, path: PathBuf) {
        let shared = Arc::clone(&self.shared);
        let shutdown = self.shutdown.subscribe();
        let handle = tokio::spawn(crate::control::reload::watch(shared, path, shutdown));
        // Detached on purpose: it ends when shutdown flips.
        drop(handle);
    }

    /// Stops accepting, lets in-flight requests finish within `listen.shutdown_grace`, then
    /// stops the admin listener (it answers `/readyz` 503 meanwhile) and the background tasks.
    pub async fn shutdown(self) {
        self.shared.shutting_down.store(true, Ordering::Relaxed);
        let grace = self.shared.config.load().listen.shutdown_grace;
        // Tunnels are not requests: they get the same grace, then are cut.
        self.shared.tunnels.close(grace);
        let _ = self.shutdown.send(true);
        self.proxy_workers.join().await;
        let _ = self.admin_shutdown.send(true);
        rejoin(self.admin_server).await;
        for b in self.background {
            b.abort();
            let _ = b.await;
        }
        info!("ringward stopped");
    }
}

/// Runs on a proxy worker's thread: its health-event outbox and access-log buffer with their
/// flushers, then `serve` until shutdown, then its tunnels' grace, then what is left in both.
async fn proxy_worker(shared: Arc<Shared>, worker: usize, serve: impl Future<Output = ()>) {
    let to_health = Arc::clone(&shared);
    let outbox = tokio::spawn(outbox::install(move |e, n| to_health.send_now(e, n)));
    let log = shared.access_log.clone();
    let log_flusher = log.clone().map(|l| tokio::spawn(access_log::install(l)));
    tracing::debug!(worker, "proxy worker serving");
    serve.await;
    // The worker's tunnels live on its runtime, which ends with this function: let them end
    // within their grace first (they were told at shutdown).
    let grace = shared.config.load().listen.shutdown_grace;
    shared
        .tunnels
        .wait_closed(tokio::time::Instant::now() + grace)
        .await;
    outbox.abort();
    outbox::flush(&|e, n| shared.send_now(e, n));
    if let (Some(task), Some(log)) = (log_flusher, log) {
        task.abort();
        access_log::flush(&log);
    }
}

/// Waits for a server task, re-raising its panic.
async fn rejoin(server: JoinHandle<()>) {
    if let Err(e) = server.await
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
}
