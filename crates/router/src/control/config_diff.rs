//! What a reload changes: hosts added, removed and changed, the sections whose keys changed,
//! and the keys that take effect only at the next restart. A reload is logged as one line of
//! it, so an operator sees at a glance what a SIGHUP did.

use std::fmt;

use crate::config::Config;

/// The difference between the running config and the one a reload applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConfigDiff {
    /// Hosts in the new config only.
    pub(crate) hosts_added: Vec<String>,
    /// Hosts in the old config only.
    pub(crate) hosts_removed: Vec<String>,
    /// Hosts in both whose address or weight changed.
    pub(crate) hosts_changed: Vec<String>,
    /// Sections (other than `hosts`) with a changed key, in config order.
    pub(crate) sections: Vec<&'static str>,
    /// Changed keys that apply only after a restart (`health` stands for its keys outside
    /// `[health.active]`, `guard` for all of its).
    pub(crate) restart_needed: Vec<&'static str>,
}

impl ConfigDiff {
    /// What changes from `old` to `new`.
    pub(crate) fn between(old: &Config, new: &Config) -> ConfigDiff {
        let mut diff = ConfigDiff::default();
        for h in &new.hosts {
            match old.hosts.iter().find(|o| o.name == h.name) {
                None => diff.hosts_added.push(h.name.clone()),
                Some(o) if o != h => diff.hosts_changed.push(h.name.clone()),
                Some(_) => {}
            }
        }
        for o in &old.hosts {
            if !new.hosts.iter().any(|h| h.name == o.name) {
                diff.hosts_removed.push(o.name.clone());
            }
        }
        // The config's section types implement Debug but not PartialEq; their Debug output
        // names every field, so it tells a change in any of them, new ones included. The
        // admin token's Debug is redacted: it is compared by itself.
        let differ = |a: &dyn fmt::Debug, b: &dyn fmt::Debug| format!("{a:?}") != format!("{b:?}");
        // `[listen.tls]` is its own entry: a renewed certificate (same files, new contents)
        // is the change an operator most wants to see confirmed.
        let without_tls = |l: &crate::config::ListenConfig| crate::config::ListenConfig {
            tls: None,
            ..l.clone()
        };
        let tls_changed = match (&old.listen.tls, &new.listen.tls) {
            (None, None) => false,
            (Some(a), Some(b)) => differ(a, b) || !a.certs().same_certificates(b.certs()),
            _ => true,
        };
        for (section, changed) in [
            (
                "listen",
                differ(&without_tls(&old.listen), &without_tls(&new.listen)),
            ),
            ("listen.tls", tls_changed),
            (
                "admin",
                differ(&old.admin, &new.admin) || old.admin.token != new.admin.token,
            ),
            ("route", differ(&old.route, &new.route)),
            ("upstream", differ(&old.upstream, &new.upstream)),
            ("limits", differ(&old.limits, &new.limits)),
            ("retry", differ(&old.retry, &new.retry)),
            ("health", differ(&old.health, &new.health)),
            ("guard", differ(&old.guard, &new.guard)),
            ("reload", differ(&old.reload, &new.reload)),
            ("access_log", differ(&old.access_log, &new.access_log)),
        ] {
            if changed {
                diff.sections.push(section);
            }
        }
        let hosts_differ = old.hosts != new.hosts;
        if diff.sections.is_empty() && !hosts_differ && differ(old, new) {
            // A section this list does not know yet.
            diff.sections.push("other");
        }
        let (l, n) = (&old.listen, &new.listen);
        for (key, changed) in [
            ("listen.addr", l.addr != n.addr),
            (
                "listen.header_read_timeout",
                l.header_read_timeout != n.header_read_timeout,
            ),
            (
                "listen.http2_keep_alive_interval",
                l.http2_keep_alive_interval != n.http2_keep_alive_interval,
            ),
            (
                "listen.shutdown_grace",
                l.shutdown_grace != n.shutdown_grace,
            ),
            (
                "listen.max_header_bytes",
                l.max_header_bytes != n.max_header_bytes,
            ),
            ("listen.workers", l.workers != n.workers),
            // The TLS sockets are bound at start; the certificates reload.
            ("listen.tls", l.tls.is_some() != n.tls.is_some()),
            (
                "listen.tls.addr",
                l.tls
                    .as_ref()
                    .zip(n.tls.as_ref())
                    .is_some_and(|(a, b)| a.addr != b.addr),
            ),
            (
                "listen.tls.handshake_timeout",
                l.tls
                    .as_ref()
                    .zip(n.tls.as_ref())
                    .is_some_and(|(a, b)| a.handshake_timeout != b.handshake_timeout),
            ),
            ("admin.addr", old.admin.addr != new.admin.addr),
            (
                "limits.max_connections",
                old.limits.max_connections != new.limits.max_connections,
            ),
            // The health task keeps the state machine and the guard it started with.
            ("health", old.health.passive != new.health.passive),
            ("guard", old.guard != new.guard),
        ] {
            if changed {
                diff.restart_needed.push(key);
            }
        }
        diff
    }
}

/// `hosts +host-d -host-c ~host-a; sections upstream, health; after a restart listen.addr`,
/// or `no change`.
impl fmt::Display for ConfigDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let hosts: Vec<String> = [
            ('+', &self.hosts_added),
            ('-', &self.hosts_removed),
            ('~', &self.hosts_changed),
        ]
        .into_iter()
        .flat_map(|(sign, names)| names.iter().map(move |n| format!("{sign}{n}")))
        .collect();
        if !hosts.is_empty() {
            parts.push(format!("hosts {}", hosts.join(" ")));
        }
        if !self.sections.is_empty() {
            parts.push(format!("sections {}", self.sections.join(", ")));
        }
        if !self.restart_needed.is_empty() {
            parts.push(format!(
                "after a restart {}",
                self.restart_needed.join(", ")
            ));
        }
        if parts.is_empty() {
            f.write_str("no change")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::config::{AdminToken, HostConfig};

    fn config(hosts: &[(&str, u16)]) -> Config {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let hosts: Vec<(String, SocketAddr)> = hosts
            .iter()
            .map(|(n, p)| ((*n).to_owned(), SocketAddr::from(([127, 0, 0, 1], *p))))
            .collect();
        Config::for_hosts(any, any, &hosts)
    }

    #[test]
    fn nothing_changed() {
        let c = config(&[("a", 1)]);
        let diff = ConfigDiff::between(&c, &c.clone());
        assert_eq!(diff, ConfigDiff::default());
        assert_eq!(diff.to_string(), "no change");
    }

    #[test]
    fn hosts_added_removed_and_changed() {
        let old = config(&[("a", 1), ("b", 2), ("c", 3)]);
        let mut new = config(&[("a", 1), ("b", 20), ("d", 4)]);
        new.hosts.push(HostConfig {
            name: "e".to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 5)).into(),
            weight: 2,
        });
        let diff = ConfigDiff::between(&old, &new);
        assert_eq!(diff.hosts_added, ["d", "e"]);
        assert_eq!(diff.hosts_removed, ["c"]);
        assert_eq!(diff.hosts_changed, ["b"]);
        assert!(diff.sections.is_empty(), "{diff:?}");
        assert_eq!(diff.to_string(), "hosts +d +e -c ~b");
    }

    #[test]
    fn a_host_given_by_name_and_the_resolve_interval_apply_at_once() {
        let old = config(&[("a", 1)]);
        let mut new = old.clone();
        new.hosts[0].addr = "worker-1.internal:9001".parse().expect("a name");
        new.upstream.resolve_interval = Duration::from_secs(3);
        let diff = ConfigDiff::between(&old, &new);
        assert_eq!(diff.hosts_changed, ["a"]);
        assert_eq!(diff.sections, ["upstream"]);
        assert!(diff.restart_needed.is_empty(), "{diff:?}");
        assert_eq!(diff.to_string(), "hosts ~a; sections upstream");
    }

    #[test]
    fn sections_and_keys_that_wait_for_a_restart() {
        let old = config(&[("a", 1)]);
        let mut new = old.clone();
        new.upstream.connect_timeout = Duration::from_millis(1234);
        new.health.passive.ejection_base = Duration::from_secs(9);
        new.limits.max_connections += 1;
        new.admin.token = Some(AdminToken::new("s3cr3t"));
        let diff = ConfigDiff::between(&old, &new);
        assert_eq!(diff.sections, ["admin", "upstream", "limits", "health"]);
        assert_eq!(diff.restart_needed, ["limits.max_connections", "health"]);
        assert_eq!(
            diff.to_string(),
            "sections admin, upstream, limits, health; after a restart limits.max_connections, health"
        );
        let mut probed = old.clone();
        probed.health.active.interval = Duration::from_millis(777);
        let diff = ConfigDiff::between(&old, &probed);
        assert_eq!(diff.sections, ["health"]);
        assert!(diff.restart_needed.is_empty(), "the prober follows at once");
        assert!(
            !format!("{diff} {diff:?}").contains("s3cr3t"),
            "no token in the summary"
        );
    }
}
