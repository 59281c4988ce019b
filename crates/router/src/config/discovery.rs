//! `[discovery.etcd]`: fleet mode, with host membership, operator commands and health
//! ejections shared through etcd v3 (docs/fleet.md).

use super::defaults;
use super::reader::{Errors, Section};
use super::types::{DiscoveryConfig, EtcdConfig};

/// `[discovery]` and its `[discovery.etcd]`.
pub(super) fn read(root: &mut Section<'_>, errors: &mut Errors) -> DiscoveryConfig {
    let mut discovery = root.table("discovery", errors);
    let mut s = discovery.table("etcd", errors);
    let etcd = s.is_present().then(|| read_etcd(&mut s, errors));
    s.finish(errors);
    discovery.finish(errors);
    DiscoveryConfig { etcd }
}

fn read_etcd(s: &mut Section<'_>, errors: &mut Errors) -> EtcdConfig {
    let endpoints: Vec<String> = match s.strings("endpoints", errors) {
        Some(list) if list.is_empty() => {
            errors.push(s.path_of("endpoints"), "must list at least one endpoint");
            Vec::new()
        }
        Some(list) => list
            .into_iter()
            .filter_map(|(path, text)| match ringward_etcd::parse_endpoint(text) {
                Ok(_) => Some(text.to_owned()),
                Err(e) => {
                    errors.push(path, e.to_string());
                    None
                }
            })
            .collect(),
        None => {
            if !s.has("endpoints") {
                errors.push(
                    s.path_of("endpoints"),
                    "is required (etcd's client URLs, e.g. [\"127.0.0.1:2379\"])",
                );
            }
            Vec::new()
        }
    };
    let prefix = match s.string("prefix", errors) {
        None => defaults::ETCD_PREFIX.to_owned(),
        Some(p) if p.starts_with('/') && p.ends_with('/') && p.len() > 1 => p.to_owned(),
        Some(p) => {
            errors.push(
                s.path_of("prefix"),
                format!("`{p}` must start and end with `/` (like \"/ringward/\")"),
            );
            defaults::ETCD_PREFIX.to_owned()
        }
    };
    let name = match s.string("name", errors) {
        None => None,
        Some(n) if valid_name(n) => Some(n.to_owned()),
        Some(n) => {
            errors.push(
                s.path_of("name"),
                format!("`{n}` must be 1 to 128 letters, digits, `-`, `_` or `.`"),
            );
            None
        }
    };
    EtcdConfig {
        endpoints,
        prefix,
        name,
        connect_timeout: s.duration("connect_timeout", defaults::ETCD_CONNECT_TIMEOUT, errors),
        request_timeout: s.duration("request_timeout", defaults::ETCD_REQUEST_TIMEOUT, errors),
        remove_delay: s.duration("remove_delay", defaults::ETCD_REMOVE_DELAY, errors),
    }
}

/// A router's or a host's name as it appears in an etcd key (one path segment).
pub(crate) fn valid_name(n: &str) -> bool {
    (1..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
