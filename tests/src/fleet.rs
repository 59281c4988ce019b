//! A fleet of simulated hosts on ephemeral loopback ports, for the router's tests.

use std::io;
use std::net::SocketAddr;
use std::ops::Index;
use std::time::Duration;

use simhost::{ServiceTime, SimConfig, SimHost};

/// K running simhosts, named `host-0` .. `host-{K-1}` unless configured otherwise.
#[derive(Debug)]
pub struct Fleet {
    hosts: Vec<SimHost>,
}

impl Fleet {
    /// Starts `k` hosts with test defaults: pool 10, 1 ms service time, seeded draws.
    ///
    /// # Errors
    /// A bind error.
    pub async fn start(k: usize) -> io::Result<Fleet> {
        Fleet::start_with((0..k).map(Fleet::test_config)).await
    }

    /// The config [`Fleet::start`] gives host `i`; change fields and pass to [`Fleet::start_with`].
    pub fn test_config(i: usize) -> SimConfig {
        SimConfig {
            service_time: ServiceTime::Fixed(Duration::from_millis(1)),
            seed: Some(i as u64),
            ..SimConfig::named(format!("host-{i}"))
        }
    }

    /// Starts one host per config, each on `127.0.0.1:0`.
    ///
    /// # Errors
    /// A bind error (hosts already started are shut down first).
    pub async fn start_with(configs: impl IntoIterator<Item = SimConfig>) -> io::Result<Fleet> {
        let mut hosts = Vec::new();
        for config in configs {
            match SimHost::start(SocketAddr::from(([127, 0, 0, 1], 0)), config).await {
                Ok(host) => hosts.push(host),
                Err(e) => {
                    Fleet { hosts }.shutdown().await;
                    return Err(e);
                }
            }
        }
        Ok(Fleet { hosts })
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The hosts, in start order.
    pub fn hosts(&self) -> &[SimHost] {
        &self.hosts
    }

    /// The host with this name.
    pub fn by_name(&self, name: &str) -> Option<&SimHost> {
        self.hosts.iter().find(|h| h.name() == name)
    }

    /// Their addresses, in start order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.hosts.iter().map(SimHost::addr).collect()
    }

    /// `(name, addr)` pairs, in start order.
    pub fn named_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.hosts
            .iter()
            .map(|h| (h.name().to_owned(), h.addr()))
            .collect()
    }

    /// The `[[hosts]]` tables of a ringward config (docs/contracts.md: the command line and config), weight 1 each.
    pub fn hosts_toml(&self) -> String {
        self.hosts
            .iter()
            .map(|h| {
                format!(
                    "[[hosts]]\nname = \"{}\"\naddr = \"{}\"\nweight = 1\n\n",
                    h.name(),
                    h.addr()
                )
            })
            .collect()
    }

    /// Val requests received by each host, in start order.
    pub fn val_requests(&self) -> Vec<u64> {
        self.hosts.iter().map(|h| h.stats().val_requests).collect()
    }

    /// Health requests (probes) received by each host, in start order.
    pub fn health_requests(&self) -> Vec<u64> {
        self.hosts
            .iter()
            .map(|h| h.stats().health_requests)
            .collect()
    }

    /// Clears every fault on every host (deadlocks released).
    pub fn clear_faults(&self) {
        for h in &self.hosts {
            h.faults().clear();
        }
    }

    /// Shuts every host down.
    ///
    /// # Panics
    /// Re-raises a host's server task panic (after the hosts started before it are down).
    pub async fn shutdown(self) {
        for host in self.hosts {
            host.shutdown().await;
        }
    }
}

impl Index<usize> for Fleet {
    type Output = SimHost;

    fn index(&self, i: usize) -> &SimHost {
        &self.hosts[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client;

    #[tokio::test]
    async fn starts_k_distinct_hosts_and_controls_each() {
        let fleet = Fleet::start(3).await.unwrap();
        assert_eq!(fleet.len(), 3);
        let addrs = fleet.addrs();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() != 0));
        assert_ne!(addrs[0], addrs[1]);
        for (i, addr) in addrs.iter().enumerate() {
            let reply = client::get(*addr, "/v/k/run").await.unwrap();
            assert_eq!(
                reply.header("x-simhost"),
                Some(format!("host-{i}").as_str())
            );
        }
        assert_eq!(fleet.val_requests(), vec![1, 1, 1]);
        client::get(addrs[2], "/healthz").await.unwrap();
        assert_eq!(fleet.health_requests(), vec![0, 0, 1]);

        fleet[1].faults().error_rate(1.0);
        assert_eq!(client::get(addrs[1], "/v/k").await.unwrap().status, 500);
        assert_eq!(
            fleet.by_name("host-1").unwrap().stats().responses_with(500),
            1
        );
        fleet.clear_faults();
        assert_eq!(client::get(addrs[1], "/v/k").await.unwrap().status, 200);

        let toml = fleet.hosts_toml();
        assert!(
            toml.contains(&format!("name = \"host-2\"\naddr = \"{}\"", addrs[2])),
            "{toml}"
        );
        fleet.shutdown().await;
    }
}
