//! A ring generation: the ring, the per-host facts the proxy needs (name, address, metrics
//! handle, stable health key) indexed by `HostId`, and the in-flight counters. Rebuilt when
//! membership or weights change, and (same ring, same counters) when a host name resolves to
//! a new address; admission changes only publish a new [`Published`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::HeaderValue;
use http::uri::Authority;
use ringward_embed::HostLoads;
use router_core::{Admission, HostId, HostSpec, Ring, SkipReason, Snapshot};

use crate::config::{ConfigErrors, HostAddr, HostConfig};
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

/// Where a host is: its address when known, and the latest failure to resolve its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Location {
    /// Where it listens; `None` for a name that has not resolved yet (the host takes no
    /// requests and is not probed).
    pub(crate) addr: Option<SocketAddr>,
    /// Why the latest lookup of its name failed (with `addr` set, the last good address is
    /// kept meanwhile); `None` for an IP address and for a name whose last lookup succeeded.
    pub(crate) error: Option<Arc<str>>,
}

impl Location {
    /// Where a host given by IP address is.
    pub(crate) fn at(addr: SocketAddr) -> Location {
        Location {
            addr: Some(addr),
            error: None,
        }
    }

    /// A name not looked up yet (a reload added it; the resolver task looks it up at once).
    pub(crate) fn pending(configured: &HostAddr) -> Location {
        Location {
            addr: None,
            error: Some(format!("{configured} is not resolved yet").into()),
        }
    }
}

/// What the proxy knows about one host of a ring generation.
#[derive(Debug, Clone)]
pub(crate) struct FleetHost {
    /// The configured name.
    pub(crate) name: String,
    /// Its address as configured: an IP address, or a name resolved into `location`.
    pub(crate) configured: HostAddr,
    /// Where it listens now (for the prober and the admin API; the proxy uses `authority`).
    pub(crate) location: Location,
    /// Its ring weight.
    pub(crate) weight: u32,
    /// `ip:port`, for upstream URIs (so the request path never resolves a name). For a host
    /// with no address, its configured `name:port`: never used, as the snapshot closes it.
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
    /// Builds the ring and host table for `hosts`; `locate` says where a host given by name
    /// is (a host given by IP address is at that address).
    ///
    /// # Errors
    /// The ring refuses the hosts (validation should have caught it).
    pub(crate) fn build(
        hosts: &[HostConfig],
        per_host_cap: u32,
        keys: &HostKeys,
        metrics: &Metrics,
        base: Instant,
        locate: impl Fn(&HostConfig) -> Location,
    ) -> Result<Fleet, ConfigErrors> {
        let table = Fleet::table(hosts, keys, metrics, locate)?;
        let loads = Arc::new(HostLoads::new(table.1.len(), Some(per_host_cap), base));
        Ok(Fleet {
            ring: Arc::new(table.0),
            hosts: table.1,
            loads,
        })
    }

    /// [`Fleet::build`] for a host set that follows `previous`: every host that stays (by
    /// name) keeps its in-flight counters, so a change neither forgets requests in flight
    /// nor lets a host take a second cap's worth beside them. Only new hosts get new ones.
    ///
    /// # Errors
    /// As [`Fleet::build`].
    pub(crate) fn rebuild(
        previous: &Fleet,
        hosts: &[HostConfig],
        per_host_cap: u32,
        keys: &HostKeys,
        metrics: &Metrics,
        locate: impl Fn(&HostConfig) -> Location,
    ) -> Result<Fleet, ConfigErrors> {
        let (ring, table) = Fleet::table(hosts, keys, metrics, locate)?;
        let before: HashMap<&str, usize> = previous
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        let from: Vec<Option<usize>> = table
            .iter()
            .map(|h| before.get(h.name.as_str()).copied())
            .collect();
        let loads = Arc::new(HostLoads::carry_over(
            &previous.loads,
            Some(per_host_cap),
            &from,
        ));
        Ok(Fleet {
            ring: Arc::new(ring),
            hosts: table,
            loads,
        })
    }

    /// The ring for `hosts` and its host table, by `HostId`.
    fn table(
        hosts: &[HostConfig],
        keys: &HostKeys,
        metrics: &Metrics,
        locate: impl Fn(&HostConfig) -> Location,
    ) -> Result<(Ring, Vec<FleetHost>), ConfigErrors> {
        // No host at all: a fleet-mode router before any host registered routes nothing.
        let ring = if hosts.is_empty() {
            Ring::empty()
        } else {
            Ring::try_new(hosts.iter().map(|h| HostSpec {
                name: h.name.clone(),
                weight: h.weight,
            }))
            .map_err(|e| ConfigErrors::single("hosts", e.to_string()))?
        };
        // By name: the ring orders hosts by name, not as listed (thousands in fleet mode).
        let by_name: HashMap<&str, &HostConfig> =
            hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        let mut table = Vec::with_capacity(ring.len());
        for (_, spec) in ring.hosts() {
            let Some(host) = by_name.get(spec.name.as_str()) else {
                return Err(ConfigErrors::single(
                    "hosts",
                    format!("ring lost host {}", spec.name),
                ));
            };
            let location = match host.addr.socket_addr() {
                Some(addr) => Location::at(addr),
                None => locate(host),
            };
            let authority = authority_of(&host.addr, location.addr)
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
                configured: host.addr.clone(),
                location,
                weight: host.weight,
                authority,
                key: keys.key(&host.name),
                metrics: metrics.host(&host.name),
            });
        }
        Ok((ring, table))
    }

    /// This generation's ring, counters and hosts with the hosts of `moved` at their new
    /// locations (by name, where the configured address is still the one that was looked
    /// up), or `None` when no host's location differs. No key moves (the ring hashes names)
    /// and the in-flight counters are the same ones.
    pub(crate) fn relocated(&self, moved: &HashMap<String, (HostAddr, Location)>) -> Option<Fleet> {
        let mut hosts = self.hosts.clone();
        let mut changed = false;
        for host in &mut hosts {
            let Some((configured, location)) = moved.get(&host.name) else {
                continue;
            };
            if *configured != host.configured || *location == host.location {
                continue;
            }
            // A valid name and port, or an IP address and port, always make an authority.
            let Ok(authority) = authority_of(&host.configured, location.addr) else {
                continue;
            };
            host.location = location.clone();
            host.authority = authority;
            changed = true;
        }
        changed.then(|| Fleet {
            ring: Arc::clone(&self.ring),
            hosts,
            loads: Arc::clone(&self.loads),
        })
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

    /// Everything with an address open, for a fleet nobody has judged yet.
    pub(crate) fn open(fleet: Arc<Fleet>, generation: u64) -> Published {
        let admission = fleet
            .hosts
            .iter()
            .map(|h| match h.location.addr {
                Some(_) => Admission::Open,
                None => Admission::Closed(SkipReason::Unresolved),
            })
            .collect();
        Published {
            snapshot: Snapshot::new(Arc::clone(&fleet.ring), admission, generation),
            fleet,
        }
    }
}

/// The upstream authority of a host: its address, or for a host with none its configured
/// `name:port` (never dialled: such a host is closed in every snapshot).
fn authority_of(
    configured: &HostAddr,
    addr: Option<SocketAddr>,
) -> Result<Authority, http::uri::InvalidUri> {
    match addr {
        Some(addr) => Authority::try_from(addr.to_string()),
        None => Authority::try_from(configured.to_string()),
    }
}
