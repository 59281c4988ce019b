//! Hot reload: SIGHUP, and a poll of the config file's modification time. A config that does
//! not validate is refused with every error logged; the running one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::sync::watch;
use tracing::{error, info};

use crate::config::Config;
use crate::shared::Shared;

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Loads `path` and applies it; logs every error of a bad file.
fn reload_from(shared: &Arc<Shared>, path: &Path, why: &str) {
    match Config::load(path).and_then(|c| crate::router::apply(shared, c)) {
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
pub async fn watch(shared: Arc<Shared>, path: PathBuf, mut shutdown: watch::Receiver<bool>) {
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
