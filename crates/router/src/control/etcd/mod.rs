//! Fleet mode through etcd v3 (`[discovery.etcd]`, docs/fleet.md): the hosts registered
//! under `{prefix}hosts/` join the ring beside `[[hosts]]`; operator commands and health
//! ejections taken by one router are written under the prefix and applied by every router
//! that watches it.
//!
//! The request path never waits on etcd: the link task (`link`) reads the prefix, watches it,
//! and hands what it learns to the same places a reload and the admin API use (a new ring
//! generation, control messages to the health task). When etcd is unreachable, the router
//! keeps the last membership and state it knew, says so (`/readyz` detail, `/admin/hosts`,
//! `ringward_discovery_connected`), and reads the prefix afresh when etcd answers again.
//! `records` is the key layout and values, `membership` the damping of deleted hosts.

mod link;
mod membership;
mod records;
mod status;

pub(crate) use link::{EtcdLink, Outbound, run, start_hosts};
