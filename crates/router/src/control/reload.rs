//! Hot reload: applying a new config to a running router (`apply`), on SIGHUP and on a
//! change of the config file's modification time. A config that does not validate is refused
//! with every error logged; the running one keeps serving. Either way a reload is one log
//! line: what changed (`config_diff`), or why it was refused.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigErrors, HostConfig};
use crate::control::config_diff::ConfigDiff;
use crate::control::fleet::{Fleet, Location};
use crate::control::messages::Control;
use crate::control::shared::Shared;
use crate::control::task::admissions;
use crate::proxy::client::UpstreamClients;
use crate::proxy::retry::RetryBudget;

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The modification times of what a reload reads: the config file, then the TLS
/// certificate and key files the running config names (a renewed certificate reloads
/// without touching the config file).
fn stamp(shared: &Shared, path: &Path) -> Vec<Option<SystemTime>> {
    let config = shared.config.load();
    let tls_files = config.listen.tls.iter().flat_map(|t| t.files());
    std::iter::once(mtime(path))
        .chain(tls_files.flat_map(|f| [mtime(&f.cert), mtime(&f.key)]))
        .collect()
}

/// Loads `path` and applies it; logs the outcome as one line.
fn reload_from(shared: &Arc<Shared>, path: &Path, why: &str) {
    let source = path.display().to_string();
    match Config::load(path).and_then(|c| apply(shared, c)) {
        Ok(diff) => log_applied(&diff, &source, why),
        Err(errors) => {
            shared
                .metrics
                .counters
                .reloads_failed
                .fetch_add(1, Ordering::Relaxed);
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            error!(
                path = %source,
                why,
                errors = %all.join("; "),
                "config refused ({} errors); the previous config keeps serving",
                all.len()
            );
        }
    }
}

/// The one line of an applied reload: the summary as its message and as fields; WARN when
/// some change waits for a restart.
pub(crate) fn log_applied(diff: &ConfigDiff, source: &str, why: &str) {
    let list = |names: &[String]| names.join(",");
    let (added, removed, changed) = (
        list(&diff.hosts_added),
        list(&diff.hosts_removed),
        list(&diff.hosts_changed),
    );
    let sections = diff.sections.join(",");
    if diff.restart_needed.is_empty() {
        info!(
            path = source,
            why,
            hosts_added = %added,
            hosts_removed = %removed,
            hosts_changed = %changed,
            sections = %sections,
            "config reloaded: {diff}"
        );
    } else {
        warn!(
            path = source,
            why,
            hosts_added = %added,
            hosts_removed = %removed,
            hosts_changed = %changed,
            sections = %sections,
            restart_needed = %diff.restart_needed.join(","),
            "config reloaded: {diff} (those keys apply only after a restart)"
        );
    }
}

/// Reloads on SIGHUP and on a change of the config file or a TLS file it names, until
/// `shutdown` flips.
pub(crate) async fn watch(shared: Arc<Shared>, path: PathBuf, mut shutdown: watch::Receiver<bool>) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = stamp(&shared, &path);
    loop {
        let poll = shared.config.load().reload.poll_interval;
        let watching = shared.config.load().reload.watch;
        #[cfg(unix)]
        let signal = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let signal = std::future::pending::<()>();
        tokio::select! {
            _ = shutdown.changed() => return,
            () = signal => {
                reload_from(&shared, &path, "SIGHUP");
                last = stamp(&shared, &path);
            }
            () = tokio::time::sleep(poll) => {
                if watching {
                    let now = stamp(&shared, &path);
                    // A config file that is gone (mid-rename) is not a change to act on.
                    if now[0].is_some() && now != last {
                        reload_from(&shared, &path, "file changed");
                        // Taken after the reload: it may name other TLS files. A refused
                        // reload is not retried until some file changes again.
                        last = stamp(&shared, &path);
                    }
                }
            }
        }
    }
}

/// Applies `config` to a running router; returns what changed (the caller logs it).
pub(crate) fn apply(shared: &Arc<Shared>, config: Config) -> Result<ConfigDiff, ConfigErrors> {
    // Until the new config is stored: the etcd link builds rings from `[[hosts]]` too.
    let _hosts = shared.hosts_lock.lock().unwrap_or_else(|e| e.into_inner());
    let old = shared.config.load_full();
    let diff = ConfigDiff::between(&old, &config);
    // Every reload reopens the access log: its path may have changed, or logrotate moved the
    // file away before sending SIGHUP.
    if let Some(log) = &shared.access_log {
        log.reopen(&config.access_log.path);
    }
    shared.tunnels.set_cap(config.limits.max_tunnels);
    // New handshakes get the certificates as read now; open connections keep theirs. (A TLS
    // listener added or removed waits for a restart: its sockets are bound at start.)
    if let (Some(acceptor), Some(tls)) = (&shared.tls, &config.listen.tls) {
        acceptor.replace_certs(tls.certs().clone());
    }
    let discovered = shared.discovered();
    let hosts = effective_hosts(&config.hosts, &discovered);
    let hosts_changed = hosts != effective_hosts(&old.hosts, &discovered)
        || config.limits.per_host_in_flight != old.limits.per_host_in_flight;
    if hosts_changed {
        rebuild_fleet(shared, &hosts, config.limits.per_host_in_flight)?;
    }
    if config.upstream.connect_timeout != old.upstream.connect_timeout
        || config.upstream.pool_idle_timeout != old.upstream.pool_idle_timeout
        || config.upstream.pool_max_idle_per_host != old.upstream.pool_max_idle_per_host
    {
        let workers = shared.clients.load().len();
        shared
            .clients
            .store(Arc::new(UpstreamClients::build(&config.upstream, workers)));
    }
    if config.retry.budget_ratio != old.retry.budget_ratio
        || config.retry.budget_min != old.retry.budget_min
    {
        shared.budget.store(Arc::new(RetryBudget::new(
            config.retry.budget_ratio,
            config.retry.budget_min,
        )));
    }
    shared.global.set_cap(config.limits.global_in_flight);
    let _ = shared.control.send(Control::Reloaded);
    shared.config.store(Arc::new(config));
    // Every reload looks host names up again at once: new names get an address, and a
    // SIGHUP is how an operator makes a DNS change count before the next interval.
    shared.resolve_now.notify_one();
    shared
        .metrics
        .counters
        .reloads
        .fetch_add(1, Ordering::Relaxed);
    Ok(diff)
}

/// The hosts to route to: `[[hosts]]`, then those registered in etcd (by name), except a
/// registered one whose name `[[hosts]]` already has (the file wins; the link warns).
pub(crate) fn effective_hosts(
    configured: &[HostConfig],
    discovered: &[HostConfig],
) -> Vec<HostConfig> {
    let mut hosts = configured.to_vec();
    hosts.extend(
        discovered
            .iter()
            .filter(|d| !configured.iter().any(|c| c.name == d.name))
            .cloned(),
    );
    hosts
}

/// Rebuilds the ring if the hosts to route to (`[[hosts]]` and the registered ones) differ
/// from the ones routed by; returns what changed (`+a -b ~c`), or `None` when nothing did.
///
/// # Errors
/// The ring refuses the hosts (more than it can hold, say).
pub(crate) fn rebuild_if_hosts_changed(
    shared: &Arc<Shared>,
) -> Result<Option<String>, ConfigErrors> {
    let _hosts = shared.hosts_lock.lock().unwrap_or_else(|e| e.into_inner());
    let config = shared.config.load();
    let hosts = effective_hosts(&config.hosts, &shared.discovered());
    let fleet = shared.fleet();
    let mut changes = Vec::new();
    for h in &hosts {
        match fleet.id_of(&h.name).map(|id| fleet.host(id)) {
            None => changes.push(format!("+{}", h.name)),
            Some(f) if f.configured != h.addr || f.weight != h.weight => {
                changes.push(format!("~{}", h.name));
            }
            Some(_) => {}
        }
    }
    let names: HashSet<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    for f in &fleet.hosts {
        if !names.contains(f.name.as_str()) {
            changes.push(format!("-{}", f.name));
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    rebuild_fleet(shared, &hosts, config.limits.per_host_in_flight)?;
    Ok(Some(changes.join(" ")))
}

/// Publishes a new ring generation for `hosts`: surviving hosts keep their in-flight
/// counters, admission and (for a name) where it was resolved; the health task adopts it.
pub(crate) fn rebuild_fleet(
    shared: &Arc<Shared>,
    hosts: &[HostConfig],
    per_host_cap: u32,
) -> Result<(), ConfigErrors> {
    let previous = shared.fleet();
    // A host given by a name keeps where it was resolved if its name did not change; a
    // new name waits (closed) for the resolver task, woken below.
    let located = |h: &HostConfig| {
        previous
            .id_of(&h.name)
            .map(|id| previous.host(id))
            .filter(|p| p.configured == h.addr)
            .map_or_else(|| Location::pending(&h.addr), |p| p.location.clone())
    };
    let fleet = Arc::new(Fleet::rebuild(
        &previous,
        hosts,
        per_host_cap,
        &shared.keys,
        &shared.metrics,
        located,
    )?);
    // Publish the new ring at once, carrying over the admission of surviving hosts; the
    // health task then adopts the fleet and refines it.
    shared.publish_routing(|_| {
        let view = shared.view.load();
        Some((Arc::clone(&fleet), admissions(&fleet, &view.snapshot)))
    });
    let _ = shared.control.send(Control::FleetChanged);
    shared.resolve_now.notify_one();
    Ok(())
}
