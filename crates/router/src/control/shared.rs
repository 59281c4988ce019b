//! State shared by the proxy, the admin API, the health task and the prober.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use arc_swap::ArcSwap;
use router_core::{Admission, Snapshot};
use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::config::{Config, HostConfig};
use crate::control::fleet::{Fleet, HostKeys, Published};
use crate::control::inflight::GlobalLoad;
use crate::control::messages::{Control, HealthEvent};
use crate::control::vals::ValSet;
use crate::control::view::HealthView;
use crate::metrics::Metrics;
use crate::proxy::client::UpstreamClients;
use crate::proxy::retry::RetryBudget;

/// Everything the router's tasks share. Read paths are lock-free (`ArcSwap`, atomics).
pub(crate) struct Shared {
    /// The current config.
    pub(crate) config: ArcSwap<Config>,
    /// What the request path routes by: the routing snapshot and the ring generation (fleet)
    /// it indexes, the one source of truth for both. Published only by
    /// [`Shared::publish_routing`].
    pub(crate) published: ArcSwap<Published>,
    /// The latest health state, for admin and metrics.
    pub(crate) view: ArcSwap<HealthView>,
    /// The status page's short history (per-host series, recent events), fed by the health task.
    pub(crate) history: crate::control::history::History,
    /// Vals the cascade guard restricts (suspects, quarantines), read on every request.
    pub(crate) vals: ArcSwap<ValSet>,
    /// Bumped on every new snapshot; in-flight requests watch it to be rescued on ejection.
    pub(crate) generation: watch::Sender<u64>,
    /// Router-wide in-flight count and cap.
    pub(crate) global: Arc<GlobalLoad>,
    /// The retry budget.
    pub(crate) budget: ArcSwap<RetryBudget>,
    /// The pooled upstream clients, one per proxy worker.
    pub(crate) clients: ArcSwap<UpstreamClients>,
    /// Metrics.
    pub(crate) metrics: Metrics,
    /// Outcomes and reports to the health task (bounded; never awaited on the request path).
    pub(crate) events: mpsc::Sender<HealthEvent>,
    /// Control messages to the health task.
    pub(crate) control: mpsc::UnboundedSender<Control>,
    /// Stable health keys per host name.
    pub(crate) keys: HostKeys,
    /// The clock.
    pub(crate) clock: Arc<dyn Clock>,
    /// The proxy workers' runtimes, set once they run (their figures go to `/metrics`).
    pub(crate) worker_runtimes: std::sync::OnceLock<Vec<tokio::runtime::Handle>>,
    /// The access log's writer (`None`: its thread could not start, logged once).
    pub(crate) access_log: Option<Arc<crate::proxy::access_log::AccessLog>>,
    /// The TLS listener's handshake side (`None` without `[listen.tls]`); a reload swaps
    /// its certificates.
    pub(crate) tls: Option<crate::tls::TlsAcceptor>,
    /// Upgraded connections (WebSocket tunnels): count, cap, shutdown signal.
    pub(crate) tunnels: crate::proxy::upgrade::Tunnels,
    /// Set once shutdown begins (new requests get 503, readiness fails).
    pub(crate) shutting_down: AtomicBool,
    /// Set by `POST /admin/ready {"ready": false}`: `/readyz` fails with this reason.
    pub(crate) unready: arc_swap::ArcSwapOption<String>,
    /// Wakes the resolver task (`control::resolve`) to look host names up now: a reload
    /// may have added one.
    pub(crate) resolve_now: tokio::sync::Notify,
    /// Fleet mode's link to etcd (`[discovery.etcd]`), if configured.
    pub(crate) etcd: Option<Arc<crate::control::etcd::EtcdLink>>,
    /// Serialises host-set changes (reloads, etcd membership): each reads the other's half
    /// (`[[hosts]]`, the registered hosts) and builds the ring from both.
    pub(crate) hosts_lock: Mutex<()>,
    /// Serialises snapshot publication between reloads and the health task.
    publish: Mutex<()>,
}

impl Shared {
    /// Assembles the shared state.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: Config,
        fleet: Arc<Fleet>,
        global: Arc<GlobalLoad>,
        clients: UpstreamClients,
        metrics: Metrics,
        keys: HostKeys,
        events: mpsc::Sender<HealthEvent>,
        control: mpsc::UnboundedSender<Control>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let budget = RetryBudget::new(config.retry.budget_ratio, config.retry.budget_min);
        let tunnels = crate::proxy::upgrade::Tunnels::new(config.limits.max_tunnels);
        let access_log = crate::proxy::access_log::AccessLog::start(&config.access_log)
            .inspect_err(|e| tracing::error!(error = %e, "the access log cannot start"))
            .ok()
            .map(Arc::new);
        let tls = config
            .listen
            .tls
            .as_ref()
            .map(|t| crate::tls::TlsAcceptor::new(t.certs().clone()));
        Shared {
            tls,
            published: ArcSwap::from_pointee(Published::open(fleet, 0)),
            config: ArcSwap::from_pointee(config),
            view: ArcSwap::from_pointee(HealthView::empty()),
            vals: ArcSwap::from_pointee(ValSet::default()),
            generation: watch::Sender::new(0),
            global,
            budget: ArcSwap::from_pointee(budget),
            clients: ArcSwap::from_pointee(clients),
            metrics,
            events,
            control,
            keys,
            history: crate::control::history::History::new(clock.now()),
            clock,
            worker_runtimes: std::sync::OnceLock::new(),
            access_log,
            tunnels,
            shutting_down: AtomicBool::new(false),
            unready: arc_swap::ArcSwapOption::empty(),
            resolve_now: tokio::sync::Notify::new(),
            publish: Mutex::new(()),
            etcd: None,
            hosts_lock: Mutex::new(()),
        }
    }

    /// The hosts registered in etcd (none outside fleet mode).
    pub(crate) fn discovered(&self) -> Arc<Vec<HostConfig>> {
        self.etcd
            .as_ref()
            .map_or_else(Arc::default, |l| l.discovered.load_full())
    }

    /// The current instant.
    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Sends a health event without waiting: through this thread's outbox on a proxy worker
    /// (`control::outbox`), at once elsewhere; a full queue drops it (and counts the drop).
    pub(crate) fn send_event(&self, event: HealthEvent) {
        crate::control::outbox::post(event, &|e, n| self.send_now(e, n));
    }

    /// Sends `event`, which holds `n` events, to the health task now, or counts the `n` as
    /// dropped when its queue is full.
    pub(crate) fn send_now(&self, event: HealthEvent, n: usize) {
        if self.events.try_send(event).is_err() {
            self.metrics
                .counters
                .health_events_dropped
                .fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// True once shutdown began.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The ring generation requests are routed by now.
    pub(crate) fn fleet(&self) -> Arc<Fleet> {
        Arc::clone(&self.published.load().fleet)
    }

    /// The one way a routing snapshot is published (by a reload, and by the health task).
    /// Under a lock (never held across an await), `next` sees what is published now and
    /// returns the fleet and admissions to publish, or `None` for no change; the new snapshot
    /// gets the next generation, and the generation watch wakes the requests in flight (to be
    /// rescued, or answered, if their host is now out). Returns whether it published.
    pub(crate) fn publish_routing(
        &self,
        next: impl FnOnce(&Published) -> Option<(Arc<Fleet>, Vec<Admission>)>,
    ) -> bool {
        let _lock: MutexGuard<'_, ()> = self.publish.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.published.load();
        let Some((fleet, admission)) = next(&current) else {
            return false;
        };
        let generation = current.snapshot.generation() + 1;
        self.published.store(Arc::new(Published {
            snapshot: Snapshot::new(Arc::clone(&fleet.ring), admission, generation),
            fleet,
        }));
        self.generation.send_replace(generation);
        true
    }
}

#[cfg(test)]
impl Shared {
    /// Shared state for unit tests over `hosts` named with addresses (no sockets: the
    /// client connects lazily; no health task), with the receiving ends of its channels.
    pub(crate) fn for_tests(
        hosts: &[(String, std::net::SocketAddr)],
    ) -> (
        Arc<Shared>,
        mpsc::Receiver<HealthEvent>,
        mpsc::UnboundedReceiver<Control>,
    ) {
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let config = Config::for_hosts(any, any, hosts);
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::TokioClock);
        let metrics = Metrics::default();
        let keys = HostKeys::default();
        let fleet = Fleet::build(&config.hosts, 16, &keys, &metrics, clock.now(), |h| {
            crate::control::fleet::Location::pending(&h.addr)
        })
        .expect("fleet");
        let (events, events_rx) = mpsc::channel(64);
        let (control, control_rx) = mpsc::unbounded_channel();
        let clients = UpstreamClients::build(&config.upstream, 1);
        let shared = Arc::new(Shared::new(
            config,
            Arc::new(fleet),
            Arc::new(GlobalLoad::new(100)),
            clients,
            metrics,
            keys,
            events,
            control,
            clock,
        ));
        (shared, events_rx, control_rx)
    }
}
