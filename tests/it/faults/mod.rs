//! The fault matrix of issue 7: one test per row, each against the real router and real hosts
//! (simhosts, or a raw TCP host for faults a well-behaved HTTP server cannot produce) on
//! loopback, asserting the row's figure. Each test prints `FIGURE row N: ...` (run with
//! `--nocapture`); docs/reliability.md quotes them.

mod admin;
mod clients;
mod connect;
mod health;
mod load;
mod operator;
pub(crate) mod rawhost;
mod upstream;

use std::collections::BTreeMap;
use std::time::Duration;

use ringward::Config;

use crate::support::TOKEN;

/// Builds a config through the real parser (`Config::from_toml_str`): fast test defaults,
/// `hosts` as `[[hosts]]` tables, and `extra` lines appended to their sections
/// (`("upstream", "response_header_timeout = \"300ms\"")`).
pub(crate) fn config(hosts: &str, extra: &[(&str, &str)]) -> Config {
    let mut sections: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let base: [(&str, &str); 10] = [
        ("access_log", "enabled = false"),
        ("listen", "addr = \"127.0.0.1:0\""),
        ("listen", "shutdown_grace = \"1s\""),
        ("admin", "addr = \"127.0.0.1:0\""),
        ("reload", "watch = false"),
        ("health.active", "interval = \"100ms\""),
        ("health.active", "timeout = \"80ms\""),
        ("health", "ejection_base = \"300ms\""),
        ("health", "probation_step = \"100ms\""),
        ("health", "probation_successes = 2"),
    ];
    for (section, line) in base.iter().chain(extra.iter()) {
        sections
            .entry(section)
            .or_default()
            .push((*line).to_owned());
    }
    // A later line for the same key replaces the default one. `[admin]` opens the file (it
    // carries the token line), then every other section in order.
    let mut text = format!("[admin]\ntoken = \"{TOKEN}\"\n");
    let admin = sections.remove("admin").unwrap_or_default();
    for (section, lines) in std::iter::once(("admin", admin)).chain(sections) {
        let mut kept: BTreeMap<String, String> = BTreeMap::new();
        for line in lines {
            let key = line.split('=').next().unwrap_or("").trim().to_owned();
            kept.insert(key, line.clone());
        }
        if section != "admin" {
            text.push_str(&format!("\n[{section}]\n"));
        }
        text.push_str(&kept.values().cloned().collect::<Vec<_>>().join("\n"));
        text.push('\n');
    }
    text.push('\n');
    text.push_str(hosts);
    Config::from_toml_str(&text)
        .unwrap_or_else(|e| panic!("test config refused:\n{e}\n---\n{text}"))
}

/// `[[hosts]]` tables for `(name, addr)` pairs.
pub(crate) fn hosts_toml(hosts: &[(String, std::net::SocketAddr)]) -> String {
    hosts
        .iter()
        .map(|(n, a)| format!("[[hosts]]\nname = \"{n}\"\naddr = \"{a}\"\n\n"))
        .collect()
}

pub(crate) use crate::support::metric;

/// The `q` quantile (0..=1) of `samples` (sorted in place).
pub(crate) fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[i.min(samples.len() - 1)]
}

/// Milliseconds, for printing.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
