//! A ring generation: the ring, the per-host facts the proxy needs (name, address, metrics
//! handle, stable health key) indexed by `HostId`, and the in-flight counters. Rebuilt only
//! when membership or weights change; admission changes only publish a new [`Published`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::HeaderValue;
use http::uri::Authority;
use ringward_embed::HostLoads;
use router_core::{Admission, HostId, HostSpec, Ring, Snapshot};

use crate::config::{ConfigErrors, HostConfig};
use crate::metrics::{HostMetrics, Metrics};

/// A host's key in the health state machine: stable for a name across reloads (HostIds are not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct HostKey(pub u32);

/// Hands out a stable [`HostKey`] per host name, never reusing one.
#[derive(Debug, Default)]
pub(crate) struct HostKeys(Mutex<HashMap<String, HostKey>>);

impl HostKeys {
    /// The key of `name`, created on first use.
    pub(crate) fn key(&self, name: &str) -> HostKey {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let next = HostKey(u32::try_from(map.len()).unwrap_or(u32::MAX));
        *map.entry(name.to_owned()).or_insert(next)
    }
}

/// What the proxy knows about one host of a ring generation.
#[derive(Debug)]
pub(crate) struct FleetHost {
    /// The configured name.
    pub(crate) name: String,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its ring weight.
    pub(crate) weight: u32,
    /// `ip:port`, for upstream URIs.
    pub(crate) authority: Authority,
    /// Its key in the health state machine.
    pub(crate) key: HostKey,
    /// Its metrics handle.
    pub(crate) metrics: Arc<HostMetrics>,
    /// Its name as a header value (for the upstream header; built once).
    pub(crate) header_value: HeaderValue,
}

/// One ring generation.
#[derive(Debug)]
pub(crate) struct Fleet {
    /// The ring.
    pub(crate) ring: Arc<Ring>,
    /// Hosts by `HostId::index()`.
    pub(crate) hosts: Vec<FleetHost>,
    /// In-flight counters of these hosts.
    pub(crate) loads: Arc<HostLoads>,
}

impl Fleet {
    /// Builds the ring and host table for `hosts`.
    ///
    /// # Errors
    /// The ring refuses the hosts (validation should have caught it).
    pub(crate) fn build(
        hosts: &[HostConfig],
        per_host_cap: u32,
        keys: &HostKeys,
        metrics: &Metrics,
        base: Instant,
    ) -> Result<Fleet, ConfigErrors> {
        let ring = Ring::try_new(hosts.iter().map(|h| HostSpec {
            name: h.name.clone(),
            weight: h.weight,
        }))
        .map_err(|e| ConfigErrors::single("hosts", e.to_string()))?;
        let mut table = Vec::with_capacity(ring.len());
        for i in 0..ring.len() {
            let spec = ring.host(HostId(u32::try_from(i).unwrap_or(u32::MAX)));
            let Some(host) = hosts.iter().find(|h| h.name == spec.name) else {
                return Err(ConfigErrors::single(
                    "hosts",
                    format!("ring lost host {}", spec.name),
                ));
            };
            let authority = Authority::try_from(host.addr.to_string())
                .map_err(|e| ConfigErrors::single("hosts", e.to_string()))?;
            let header_value = HeaderValue::from_str(&host.name).map_err(|_| {
                ConfigErrors::single(
                    "hosts",
                    format!("host name {} is not a valid header value", host.name),
                )
            })?;
            table.push(FleetHost {
                header_value,
                name: host.name.clone(),
                addr: host.addr,
                weight: host.weight,
                authority,
                key: keys.key(&host.name),
                metrics: metrics.host(&host.name),
            });
        }
        let loads = Arc::new(HostLoads::new(table.len(), Some(per_host_cap), base));
        Ok(Fleet {
            ring: Arc::new(ring),
            hosts: table,
            loads,
        })
    }

    /// This generation with the in-flight counters of `previous` for every
    /// host that stays (by name), so a reload neither forgets requests in
    /// flight nor lets a host take a second cap's worth beside them.
    pub(crate) fn inherit_loads(mut self, previous: &Fleet, per_host_cap: u32) -> Fleet {
        let from: Vec<Option<usize>> = self
            .hosts
            .iter()
            .map(|h| previous.hosts.iter().position(|p| p.name == h.name))
            .collect();
        self.loads = Arc::new(HostLoads::carry_over(
            &previous.loads,
            Some(per_host_cap),
            &from,
        ));
        self
    }

    /// The host with this id.
    pub(crate) fn host(&self, id: HostId) -> &FleetHost {
        &self.hosts[id.index()]
    }

    /// The id of the host named `name`.
    pub(crate) fn id_of(&self, name: &str) -> Option<HostId> {
        self.ring.host_id(name)
    }

    /// The id of the host with health key `key`.
    pub(crate) fn id_of_key(&self, key: HostKey) -> Option<HostId> {
        self.hosts
            .iter()
            .position(|h| h.key == key)
            .and_then(|i| u32::try_from(i).ok())
            .map(HostId)
    }
}

/// What the request path reads, published atomically: the routing snapshot (admission,
/// probation ramps included) and the fleet it refers to.
#[derive(Debug)]
pub(crate) struct Published {
    /// The router-core snapshot (ring + admission + generation).
    pub(crate) snapshot: Snapshot,
    /// The ring generation the snapshot's HostIds index into.
    pub(crate) fleet: Arc<Fleet>,
}

impl Published {
    /// How many hosts may take new requests (their admission is not closed).
    pub(crate) fn eligible(&self) -> usize {
        (0..self.fleet.hosts.len())
            .filter(|&i| self.snapshot.admission(HostId(i as u32)).is_eligible())
            .count()
    }

    /// Everything open, for a fleet nobody has judged yet.
    pub(crate) fn open(fleet: Arc<Fleet>, generation: u64) -> Published {
        let n = fleet.hosts.len();
        Published {
            snapshot: Snapshot::new(
                Arc::clone(&fleet.ring),
                vec![Admission::Open; n],
                generation,
            ),
            fleet,
        }
    }
}
