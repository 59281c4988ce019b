//! Registering a host in etcd, as a real worker does for Ringward's fleet mode: its key
//! `{prefix}hosts/{name}` = `{"addr": "...", "weight": N}` on a lease of its own, kept alive
//! while the host runs and revoked when it stops, so a host that dies leaves the fleet when
//! its lease runs out. A lease that ran out anyway (etcd was away longer than the TTL) is
//! replaced and the key written again.

use std::net::SocketAddr;
use std::time::Duration;

use ringward_etcd::{Client, LeaseId, Options};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Where and how to register.
#[derive(Debug, Clone)]
pub struct EtcdRegistration {
    /// etcd's client endpoints.
    pub endpoints: Vec<String>,
    /// The fleet's key prefix (Ringward's `discovery.etcd.prefix`).
    pub prefix: String,
    /// The lease's time to live: how long after the host dies its key goes.
    pub ttl: Duration,
    /// The host's ring weight.
    pub weight: u32,
}

/// A running registration; [`Registered::stop`] removes it.
#[derive(Debug)]
pub struct Registered {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EtcdRegistration {
    /// Registers host `name` at `addr` and keeps the registration alive in the background.
    ///
    /// # Errors
    /// An endpoint cannot be used, or etcd does not take the first registration.
    pub async fn start(
        &self,
        name: &str,
        addr: SocketAddr,
    ) -> Result<Registered, ringward_etcd::Error> {
        let client = Client::new(&self.endpoints, Options::default())?;
        let key = format!("{}hosts/{name}", self.prefix);
        let value = format!("{{\"addr\":\"{addr}\",\"weight\":{}}}", self.weight).into_bytes();
        let lease = register(&client, &key, &value, self.ttl).await?;
        info!(key, %addr, ttl = ?self.ttl, "registered in etcd");
        let (stop, mut stopped) = oneshot::channel();
        let ttl = self.ttl;
        let task = tokio::spawn(async move {
            let mut lease = lease;
            let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(100)));
            tick.reset();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                match client.keep_alive(lease).await {
                    Ok(Some(_)) => {}
                    // The lease is gone (etcd was away longer than the TTL): register afresh.
                    Ok(None) => match register(&client, &key, &value, ttl).await {
                        Ok(fresh) => {
                            info!(key, "registered in etcd again (the old lease had expired)");
                            lease = fresh;
                        }
                        Err(e) => warn!(key, error = %e, "etcd registration failed; retrying"),
                    },
                    Err(e) => warn!(key, error = %e, "etcd keep-alive failed; retrying"),
                }
            }
            // Leaving on purpose: the key goes now, not when the lease runs out.
            let _ = client.revoke(lease).await;
        });
        Ok(Registered {
            stop: Some(stop),
            task,
        })
    }
}

async fn register(
    client: &Client,
    key: &str,
    value: &[u8],
    ttl: Duration,
) -> Result<LeaseId, ringward_etcd::Error> {
    let lease = client.grant(ttl).await?;
    client.put(key, value, Some(lease)).await?;
    Ok(lease)
}

impl Registered {
    /// Revokes the lease (the key goes at once) and ends the keep-alive.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}
