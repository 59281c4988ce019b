//! The link task: reads the fleet's prefix, watches it from the revision it read, applies
//! what changes, writes this router's operator commands and health ejections, and starts
//! over from a fresh read whenever etcd stops answering or compacts the watch away.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use health::{OperatorCommand, Reason};
use ringward_etcd::{Client, EventKind, KeyValue, LeaseId, Options};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::membership::Membership;
use super::records::{self, Record};
use super::status::LinkStatus;
use crate::config::{ConfigErrors, EtcdConfig, HostConfig};
use crate::control::history::Event;
use crate::control::messages::{Control, Origin, ValShare};
use crate::control::shared::Shared;

/// How long a restore stays in etcd for routers that were away when it was taken.
const RESTORE_TTL: Duration = Duration::from_secs(60);
/// Host changes seen by the watch are applied together at most this often: a burst (a
/// zone's hosts leaving, a deployment's restarts) costs one ring rebuild, not one per host.
const SETTLE: Duration = Duration::from_millis(100);
/// The longest wait between tries while etcd is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What this router tells the fleet.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// An operator's command taken here.
    Command {
        /// The host.
        host: String,
        /// Drain, eject or restore.
        command: OperatorCommand,
        /// How long an eject lasts (`health.ejection_max`).
        eject_for: Duration,
    },
    /// A Val quarantined (by this router's guard or operator) or released (by its operator).
    Val {
        /// The Val's key hash.
        val: u64,
        /// Its key, if known.
        name: Option<String>,
        /// What happened.
        share: ValShare,
    },
    /// This router's detectors ejected a host.
    Ejection {
        /// The host.
        host: String,
        /// Which detector.
        reason: Reason,
        /// How long the ejection has left.
        remaining: Duration,
    },
}

/// The link's shared half: where the rest of the router reads what it learned and sends
/// what the fleet should hear.
#[derive(Debug)]
pub(crate) struct EtcdLink {
    pub(crate) config: EtcdConfig,
    /// This router's name in the keys it writes.
    pub(crate) name: String,
    client: Client,
    outbound: mpsc::UnboundedSender<Outbound>,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<Outbound>>>,
    /// The read made at start for the first ring: the task starts from it (and watches
    /// from its revision) instead of reading the prefix a second time.
    first_read: Mutex<Option<ringward_etcd::Range>>,
    /// etcd as last seen.
    pub(crate) status: ArcSwap<LinkStatus>,
    /// The hosts registered in etcd (and held after deletion), as routed to.
    pub(crate) discovered: ArcSwap<Vec<HostConfig>>,
    /// Registrations and records ignored as malformed, or clashing with `[[hosts]]`.
    pub(crate) invalid: AtomicU64,
    /// Watch events applied.
    pub(crate) events: AtomicU64,
}

impl EtcdLink {
    /// A link for `config` (no connection yet).
    ///
    /// # Errors
    /// An endpoint cannot be used (validation should have caught it).
    pub(crate) fn new(config: &EtcdConfig) -> Result<EtcdLink, ConfigErrors> {
        let options = Options {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
        };
        let client = Client::new(&config.endpoints, options)
            .map_err(|e| ConfigErrors::single("discovery.etcd.endpoints", e.to_string()))?;
        let (outbound, inbox) = mpsc::unbounded_channel();
        Ok(EtcdLink {
            name: config.name.clone().unwrap_or_else(default_name),
            config: config.clone(),
            client,
            outbound,
            inbox: Mutex::new(Some(inbox)),
            first_read: Mutex::new(None),
            status: ArcSwap::default(),
            discovered: ArcSwap::default(),
            invalid: AtomicU64::new(0),
            events: AtomicU64::new(0),
        })
    }

    /// Queues `msg` for etcd (never waits; written as soon as etcd answers).
    pub(crate) fn send(&self, msg: Outbound) {
        let _ = self.outbound.send(msg);
    }

    fn set_status(
        &self,
        connected: bool,
        revision: Option<i64>,
        error: Option<String>,
        now: Instant,
    ) {
        let old = self.status.load();
        let since = if old.connected == connected && old.since.is_some() {
            old.since
        } else {
            Some(now)
        };
        self.status.store(Arc::new(LinkStatus {
            connected,
            revision: revision.unwrap_or(old.revision),
            hosts: old.hosts,
            last_error: error.or_else(|| old.last_error.clone()),
            since,
        }));
    }

    fn down(&self, error: &ringward_etcd::Error, now: Instant) {
        let was = self.status.load().connected;
        if was || self.status.load().since.is_none() {
            warn!(error = %error, "etcd unreachable: keeping the last known membership and state");
        }
        self.set_status(false, None, Some(error.to_string()), now);
    }
}

/// The machine's host name and the process ID: unique among routers on one machine.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| crate::config::valid_host_name(h) && !h.contains(':'))
        .unwrap_or_else(|| "router".to_owned());
    format!("{host}-{}", std::process::id())
}

/// The hosts registered in etcd now, for the first ring (so the router routes to them from
/// its first request); none when etcd does not answer within its request timeout (the link
/// task then keeps trying). The whole prefix is read, and the task starts from this read.
pub(crate) async fn start_hosts(link: &EtcdLink, now: Instant) -> Vec<HostConfig> {
    let prefix = &link.config.prefix;
    match link.client.range_prefix(prefix).await {
        Ok(range) => {
            let hosts: Vec<HostConfig> = range
                .kvs
                .iter()
                .filter_map(|kv| match Record::of(prefix, &kv.key) {
                    Some(Record::Host(name)) => records::host(&name, &kv.value).ok(),
                    _ => None,
                })
                .collect();
            info!(
                hosts = hosts.len(),
                revision = range.revision,
                "read the fleet's hosts from etcd"
            );
            link.discovered.store(Arc::new(hosts.clone()));
            *link.first_read.lock().unwrap_or_else(|e| e.into_inner()) = Some(range);
            hosts
        }
        Err(e) => {
            link.down(&e, now);
            Vec::new()
        }
    }
}

/// What the task keeps between messages.
struct State {
    shared: Arc<Shared>,
    link: Arc<EtcdLink>,
    membership: Membership,
    /// Command and ejection records already applied, by key, at their revision: a fresh
    /// read after a reconnect does not apply them twice.
    applied: HashMap<String, i64>,
    /// Host names already warned about (malformed, or clashing with `[[hosts]]`).
    warned: HashSet<String>,
    /// When the host changes seen since the last publish are published (`SETTLE`).
    publish_at: Option<Instant>,
}

/// Runs the link until `shutdown` flips.
pub(crate) async fn run(
    shared: Arc<Shared>,
    link: Arc<EtcdLink>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut inbox) = link.inbox.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let mut state = State {
        membership: Membership::default(),
        applied: HashMap::new(),
        warned: HashSet::new(),
        publish_at: None,
        shared,
        link,
    };
    let now = state.shared.now();
    let delay = state.link.config.remove_delay;
    state
        .membership
        .replace_all(state.link.discovered.load().to_vec(), now, delay);
    let prefix = state.link.config.prefix.clone();
    let client = state.link.client.clone();
    // Writes that etcd did not take, tried again after the next successful read.
    let mut pending: Vec<Outbound> = Vec::new();
    let mut backoff = Duration::from_millis(100);
    let mut first = state
        .link
        .first_read
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    loop {
        let read = match first.take() {
            Some(range) => Ok(range),
            None => tokio::select! {
                _ = shutdown.changed() => return,
                read = client.range_prefix(&prefix) => read,
            },
        };
        let range = match read {
            Ok(range) => range,
            Err(e) => {
                state.link.down(&e, state.shared.now());
                let wait = tokio::time::sleep(backoff);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        () = &mut wait => break,
                        msg = inbox.recv() => match msg {
                            Some(msg) => pending.push(msg),
                            None => return,
                        },
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        state.apply_snapshot(&range.kvs);
        state
            .link
            .set_status(true, Some(range.revision), None, state.shared.now());
        if let Err(e) = flush(&state.link, &mut pending).await {
            state.link.down(&e, state.shared.now());
            continue;
        }
        let mut watch = match client.watch_prefix(&prefix, range.revision + 1).await {
            Ok(w) => w,
            Err(e) => {
                state.link.down(&e, state.shared.now());
                continue;
            }
        };
        // A quiet watch over a dead network path would wait forever: ask etcd something
        // small now and then, and start over when it does not answer.
        let mut check = tokio::time::interval(state.link.config.request_timeout);
        check.reset();
        let alive = format!("{prefix}.alive");
        loop {
            let expiry = state.membership.next_expiry();
            let settle = state.publish_at;
            tokio::select! {
                _ = shutdown.changed() => return,
                batch = watch.next() => match batch {
                    Ok(Some(batch)) => {
                        if batch.compacted.is_some() {
                            break; // read afresh
                        }
                        state.apply_events(batch.events);
                        let now = state.shared.now();
                        state.link.set_status(true, Some(batch.revision), None, now);
                    }
                    Ok(None) => {
                        let e = ringward_etcd::Error::Unreachable {
                            endpoints: prefix.clone(),
                            last: "the watch was closed".into(),
                        };
                        state.link.down(&e, state.shared.now());
                        break;
                    }
                    Err(e) => {
                        state.link.down(&e, state.shared.now());
                        break;
                    }
                },
                msg = inbox.recv() => {
                    let Some(msg) = msg else { return };
                    pending.push(msg);
                    if let Err(e) = flush(&state.link, &mut pending).await {
                        state.link.down(&e, state.shared.now());
                        break;
                    }
                }
                () = sleep_until(expiry) => {
                    if state.membership.expire(state.shared.now()) {
                        state.publish_membership();
                    }
                }
                () = sleep_until(settle) => state.publish_membership(),
                _ = check.tick() => {
                    if let Err(e) = client.range_prefix(&alive).await {
                        state.link.down(&e, state.shared.now());
                        break;
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Writes every pending message, in order. When etcd is unreachable the rest stay pending
/// (and the error says to reconnect); a message etcd refuses is dropped with a WARN, or it
/// would be refused again at every reconnect.
async fn flush(link: &EtcdLink, pending: &mut Vec<Outbound>) -> Result<(), ringward_etcd::Error> {
    while let Some(msg) = pending.first() {
        match write(link, msg).await {
            Ok(()) => {}
            Err(e @ ringward_etcd::Error::Unreachable { .. }) => return Err(e),
            Err(e) => warn!(error = %e, message = ?msg, "etcd refused a write; not retried"),
        }
        pending.remove(0);
    }
    Ok(())
}

/// One message as etcd keys: each on a lease as long as what it says lasts.
async fn write(link: &EtcdLink, msg: &Outbound) -> Result<(), ringward_etcd::Error> {
    let prefix = &link.config.prefix;
    let client = &link.client;
    let lease = |ttl: Duration| async move {
        // Whole seconds, rounded up: a record never ends before what it says.
        let secs = ttl.as_millis().div_ceil(1000).max(1);
        client
            .grant(Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX)))
            .await
    };
    match msg {
        Outbound::Command {
            host,
            command,
            eject_for,
        } => {
            let lease: Option<LeaseId> = match command {
                OperatorCommand::Drain => None,
                OperatorCommand::Eject => Some(lease(*eject_for).await?),
                OperatorCommand::Restore => Some(lease(RESTORE_TTL).await?),
            };
            let value = records::command_value(*command, &link.name);
            client
                .put(&records::command_key(prefix, host), &value, lease)
                .await?;
        }
        Outbound::Val { val, name, share } => {
            let lease = match share {
                ValShare::Quarantine(Some(left)) => Some(lease(*left).await?),
                ValShare::Quarantine(None) => None,
                ValShare::Release => Some(lease(RESTORE_TTL).await?),
            };
            let value = records::val_value(*share, name.as_deref(), &link.name, SystemTime::now());
            client
                .put(&records::val_key(prefix, *val), &value, lease)
                .await?;
        }
        Outbound::Ejection {
            host,
            reason,
            remaining,
        } => {
            let lease = lease(*remaining).await?;
            let value = records::ejection_value(*reason, &link.name, SystemTime::now(), *remaining);
            let key = records::ejection_key(prefix, host, &link.name);
            client.put(&key, &value, Some(lease)).await?;
        }
    }
    Ok(())
}

impl State {
    /// A fresh read of the whole prefix.
    fn apply_snapshot(&mut self, kvs: &[KeyValue]) {
        let now = self.shared.now();
        let prefix = self.link.config.prefix.clone();
        let mut hosts = Vec::new();
        let mut present = HashSet::new();
        for kv in kvs {
            match Record::of(&prefix, &kv.key) {
                Some(Record::Host(name)) => {
                    if let Some(host) = self.read_host(&name, &kv.value) {
                        hosts.push(host);
                    }
                }
                Some(record) => {
                    present.insert(kv.key.clone());
                    self.apply_record(&record, kv);
                }
                None => {}
            }
        }
        // Forget records that are gone, so one written again at any revision applies.
        self.applied.retain(|key, _| present.contains(key));
        self.membership
            .replace_all(hosts, now, self.link.config.remove_delay);
        self.publish_membership();
    }

    /// Changes seen by the watch, in order.
    fn apply_events(&mut self, events: Vec<ringward_etcd::Event>) {
        let now = self.shared.now();
        let prefix = self.link.config.prefix.clone();
        let mut hosts_changed = false;
        self.link
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        for event in events {
            let Some(record) = Record::of(&prefix, &event.key) else {
                continue;
            };
            match (record, event.kind) {
                (Record::Host(name), EventKind::Put) => {
                    if let Some(host) = self.read_host(&name, &event.value) {
                        self.membership.put(host);
                        hosts_changed = true;
                    }
                }
                (Record::Host(name), EventKind::Delete) => {
                    self.membership
                        .delete(&name, now, self.link.config.remove_delay);
                    hosts_changed = true;
                }
                (record, EventKind::Put) => {
                    let kv = KeyValue {
                        key: event.key,
                        value: event.value,
                        mod_revision: event.mod_revision,
                        lease: 0,
                    };
                    self.apply_record(&record, &kv);
                }
                // A command or an ejection whose lease ended: it has run its course here too.
                (_, EventKind::Delete) => {
                    self.applied.remove(&event.key);
                }
            }
        }
        if hosts_changed && self.publish_at.is_none() {
            self.publish_at = Some(now + SETTLE);
        }
    }

    /// A registration as a host, or `None` (warned once, counted) when it cannot be one.
    fn read_host(&mut self, name: &str, value: &[u8]) -> Option<HostConfig> {
        let clash = self
            .shared
            .config
            .load()
            .hosts
            .iter()
            .any(|h| h.name == name);
        let host = if clash {
            Err("a host of that name is in [[hosts]] (the file's entry is used)".to_owned())
        } else {
            records::host(name, value)
        };
        match host {
            Ok(host) => {
                self.warned.remove(name);
                Some(host)
            }
            Err(e) => {
                self.link.invalid.fetch_add(1, Ordering::Relaxed);
                if self.warned.insert(name.to_owned()) {
                    warn!(host = name, error = %e, "etcd host registration ignored");
                }
                None
            }
        }
    }

    /// A peer's operator command or health ejection, once per revision of its key.
    fn apply_record(&mut self, record: &Record, kv: &KeyValue) {
        if self.applied.get(&kv.key) == Some(&kv.mod_revision) {
            return;
        }
        self.applied.insert(kv.key.clone(), kv.mod_revision);
        match record {
            Record::Command(host) => match records::command(&kv.value) {
                Ok((_, by)) if by == self.link.name => {}
                Ok((command, by)) => {
                    info!(host = %host, ?command, by = %by, "operator command from a peer router");
                    let (reply, _) = tokio::sync::oneshot::channel();
                    let _ = self.shared.control.send(Control::Operator {
                        host: host.clone(),
                        command,
                        reply,
                        origin: Origin::Peer(by),
                    });
                }
                Err(e) => self.malformed(&kv.key, &e),
            },
            Record::Ejection(host, router) if *router != self.link.name => {
                match records::ejection(&kv.value, SystemTime::now()) {
                    Ok((_, _, left)) if left.is_zero() => {}
                    Ok((reason, by, left)) => {
                        let _ = self.shared.control.send(Control::PeerEjection {
                            host: host.clone(),
                            reason,
                            by,
                            remaining: left,
                        });
                    }
                    Err(e) => self.malformed(&kv.key, &e),
                }
            }
            Record::Val(val) => match records::val(&kv.value, SystemTime::now()) {
                Ok((_, _, by)) if by == self.link.name => {}
                Ok((ValShare::Quarantine(Some(left)), _, _)) if left.is_zero() => {}
                Ok((share, name, by)) => {
                    let _ = self.shared.control.send(Control::PeerVal {
                        val: *val,
                        name,
                        share,
                        by,
                    });
                }
                Err(e) => self.malformed(&kv.key, &e),
            },
            Record::Ejection(..) | Record::Host(_) => {}
        }
    }

    fn malformed(&mut self, key: &str, error: &str) {
        self.link.invalid.fetch_add(1, Ordering::Relaxed);
        if self.warned.insert(key.to_owned()) {
            warn!(key, error, "etcd record ignored");
        }
    }

    /// Publishes the membership: the hosts to route to, and a new ring generation when the
    /// set of hosts (names, addresses, weights) differs from the one routed by.
    fn publish_membership(&mut self) {
        self.publish_at = None;
        let hosts = self.membership.hosts();
        let status = self.link.status.load();
        self.link.status.store(Arc::new(LinkStatus {
            hosts: self.membership.registered(),
            ..LinkStatus::clone(&status)
        }));
        self.link.discovered.store(Arc::new(hosts));
        match crate::control::reload::rebuild_if_hosts_changed(&self.shared) {
            Ok(Some(summary)) => {
                info!(change = %summary, "fleet membership changed (etcd)");
                let event = Event::router(self.shared.now(), format!("etcd: {summary}"));
                self.shared.history.lock().event(event);
            }
            Ok(None) => {}
            Err(e) => warn!(error = %e, "etcd membership not applied"),
        }
    }
}
