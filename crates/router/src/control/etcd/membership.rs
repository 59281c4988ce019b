//! The hosts registered in etcd, as this router routes to them: a registration's key
//! deleted (or its lease expired) keeps the host in the ring for `remove_delay`, so a key
//! deleted and re-created within it (a restart, a keep-alive that lapsed for a moment)
//! changes nothing, and a flapping host cannot churn the ring. Health still takes a host
//! that is really gone out of routing within a second: the ring only says where keys go.
//! Pure: time is an argument.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::HostConfig;

/// Registered hosts, and deleted ones still held.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    present: BTreeMap<String, HostConfig>,
    leaving: BTreeMap<String, (HostConfig, Instant)>,
}

impl Membership {
    /// A registration put (created or changed).
    pub(crate) fn put(&mut self, host: HostConfig) {
        self.leaving.remove(&host.name);
        self.present.insert(host.name.clone(), host);
    }

    /// A registration deleted at `now`: held until `now + delay`.
    pub(crate) fn delete(&mut self, name: &str, now: Instant, delay: Duration) {
        if let Some(host) = self.present.remove(name) {
            self.leaving.insert(name.to_owned(), (host, now + delay));
        }
    }

    /// Every registration as read afresh (after a reconnect): the ones no longer there are
    /// deleted as of `now`.
    pub(crate) fn replace_all(&mut self, hosts: Vec<HostConfig>, now: Instant, delay: Duration) {
        let gone: Vec<String> = self
            .present
            .keys()
            .filter(|name| !hosts.iter().any(|h| &&h.name == name))
            .cloned()
            .collect();
        for name in gone {
            self.delete(&name, now, delay);
        }
        for host in hosts {
            self.put(host);
        }
    }

    /// Lets go of held hosts whose time is up; whether any was.
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        let before = self.leaving.len();
        self.leaving.retain(|_, (_, until)| *until > now);
        self.leaving.len() != before
    }

    /// When the next held host is let go.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.leaving.values().map(|(_, until)| *until).min()
    }

    /// The hosts to route to: registered and held, by name.
    pub(crate) fn hosts(&self) -> Vec<HostConfig> {
        let mut all: Vec<HostConfig> = self
            .present
            .values()
            .chain(self.leaving.values().map(|(h, _)| h))
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// How many are registered now (not counting held ones).
    pub(crate) fn registered(&self) -> usize {
        self.present.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, port: u16) -> HostConfig {
        HostConfig {
            name: name.into(),
            addr: format!("10.0.0.1:{port}").parse().expect("addr"),
            weight: 1,
        }
    }

    fn names(m: &Membership) -> Vec<String> {
        m.hosts().into_iter().map(|h| h.name).collect()
    }

    #[test]
    fn a_deleted_host_is_held_for_the_delay_and_a_quick_return_changes_nothing() {
        let t0 = Instant::now();
        let delay = Duration::from_secs(5);
        let mut m = Membership::default();
        m.put(host("a", 1));
        m.put(host("b", 2));
        m.delete("b", t0, delay);
        assert_eq!(names(&m), ["a", "b"], "held");
        assert_eq!(m.registered(), 1);
        assert_eq!(m.next_expiry(), Some(t0 + delay));
        // Back within the delay (a restart): never left the ring.
        m.put(host("b", 2));
        assert!(!m.expire(t0 + delay));
        assert_eq!(names(&m), ["a", "b"]);
        // Gone for good: let go once the delay is up, not before.
        m.delete("b", t0 + Duration::from_secs(10), delay);
        assert!(!m.expire(t0 + Duration::from_secs(14)));
        assert!(m.expire(t0 + Duration::from_secs(15)));
        assert_eq!(names(&m), ["a"]);
        assert_eq!(m.next_expiry(), None);
    }

    #[test]
    fn a_fresh_read_deletes_what_is_gone_and_keeps_changes() {
        let t0 = Instant::now();
        let delay = Duration::from_secs(5);
        let mut m = Membership::default();
        m.put(host("a", 1));
        m.put(host("b", 2));
        m.replace_all(vec![host("b", 3), host("c", 4)], t0, delay);
        assert_eq!(names(&m), ["a", "b", "c"], "a is held");
        let b = m.hosts().into_iter().find(|h| h.name == "b").expect("b");
        assert_eq!(b.addr.to_string(), "10.0.0.1:3", "its new address");
        m.expire(t0 + delay);
        assert_eq!(names(&m), ["b", "c"]);
    }
}
