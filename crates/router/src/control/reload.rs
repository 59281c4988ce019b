//! Hot reload: applying a new config to a running router (`apply`), on SIGHUP and on a
//! change of the config file's modification time. A config that does not validate is refused
//! with every error logged; the running one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::{error, info};

use tracing::warn;

use crate::config::{Config, ConfigErrors};
use crate::control::fleet::Fleet;
use crate::control::messages::Control;
use crate::control::shared::Shared;
use crate::control::task::admissions;
use crate::proxy::client::UpstreamClients;
use crate::proxy::retry::RetryBudget;

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads `path` and applies it; logs every error of a bad file.
fn reload_from(shared: &Arc<Shared>, path: &Path, why: &str) {
    match Config::load(path).and_then(|c| apply(shared, c)) {
        Ok(()) => info!(path = %path.display(), why, "reloaded"),
        Err(errors) => {
            shared
                .metrics
                .counters
                .reloads_failed
                .fetch_add(1, Ordering::Relaxed);
            for e in errors.iter() {
                error!(path = %path.display(), why, "config refused: {e}");
            }
            error!(why, "the previous config keeps serving");
        }
    }
}

/// Reloads on SIGHUP and on file change until `shutdown` flips.
pub(crate) async fn watch(shared: Arc<Shared>, path: PathBuf, mut shutdown: watch::Receiver<bool>) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut last = mtime(&path);
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
                last = mtime(&path);
                reload_from(&shared, &path, "SIGHUP");
            }
            () = tokio::time::sleep(poll) => {
                if watching {
                    let now = mtime(&path);
                    if now.is_some() && now != last {
                        last = now;
                        reload_from(&shared, &path, "file changed");
                    }
                }
            }
        }
    }
}

/// Applies `config` to a running router.
pub(crate) fn apply(shared: &Arc<Shared>, config: Config) -> Result<(), ConfigErrors> {
    let old = shared.config.load_full();
    if config.listen.addr != old.listen.addr || config.admin.addr != old.admin.addr {
        warn!("listen.addr / admin.addr changes apply only after a restart");
    }
    if config.listen.header_read_timeout != old.listen.header_read_timeout
        || config.listen.http2_keep_alive_interval != old.listen.http2_keep_alive_interval
        || config.listen.shutdown_grace != old.listen.shutdown_grace
        || config.listen.max_header_bytes != old.listen.max_header_bytes
        || config.listen.workers != old.listen.workers
    {
        warn!("[listen] timeout, header-size and workers changes apply only after a restart");
    }
    if config.limits.max_connections != old.limits.max_connections {
        warn!("limits.max_connections changes apply only after a restart");
    }
    // Every reload reopens the access log: its path may have changed, or logrotate moved the
    // file away before sending SIGHUP.
    if let Some(log) = &shared.access_log {
        log.reopen(&config.access_log.path);
    }
    let hosts_changed = config.hosts != old.hosts
        || config.limits.per_host_in_flight != old.limits.per_host_in_flight;
    if hosts_changed {
        let fleet = Arc::new(
            Fleet::build(
                &config.hosts,
                config.limits.per_host_in_flight,
                &shared.keys,
                &shared.metrics,
                shared.now(),
            )?
            .inherit_loads(&shared.fleet(), config.limits.per_host_in_flight),
        );
        // Publish the new ring at once, carrying over the admission of surviving hosts; the
        // health task then adopts the fleet and refines it.
        shared.publish_routing(|_| {
            let view = shared.view.load();
            Some((Arc::clone(&fleet), admissions(&fleet, &view.snapshot)))
        });
        let _ = shared.control.send(Control::FleetChanged);
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
    let _ = shared
        .control
        .send(Control::Config(config.health.passive.clone()));
    let _ = shared
        .control
        .send(Control::GuardConfig(config.guard.clone()));
    shared.config.store(Arc::new(config));
    shared
        .metrics
        .counters
        .reloads
        .fetch_add(1, Ordering::Relaxed);
    info!(hosts_changed, "config reloaded");
    Ok(())
}
