//! `ringward check`'s look at the hosts given by DNS name: each name is looked up once, from
//! where `check` runs, the way the router does (its resolver, each lookup bounded by 5 s). A
//! name that does not resolve is a warning, not an error: it may resolve only on the
//! router's own network, and the router starts with such a host anyway (closed until it
//! resolves).

use std::time::Duration;

use ringward::config::HostAddr;
use ringward::{Config, Resolve, SystemResolver};

/// The router's bound on one lookup at start.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// One line per host whose name does not resolve now: `hosts[2].addr: worker-9.internal:9001
/// did not resolve: ...`, in config order; none when every name resolves (or there is none).
pub(crate) fn unresolved(config: &Config) -> Vec<String> {
    let named: Vec<(usize, String, u16)> = config
        .hosts
        .iter()
        .enumerate()
        .filter_map(|(i, h)| match &h.addr {
            HostAddr::Name { name, port } => Some((i, name.clone(), *port)),
            HostAddr::Socket(_) => None,
        })
        .collect();
    if named.is_empty() {
        return Vec::new();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return vec![format!("hosts: host names not looked up: {e}")],
    };
    let lines = runtime.block_on(async {
        // All at once: a config with many unresolvable names still takes one timeout at most.
        let lookups = named.into_iter().map(|(i, name, port)| {
            let lookup = SystemResolver.resolve(&name, port);
            tokio::spawn(async move {
                let why = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                    Ok(Ok(addrs)) if !addrs.is_empty() => return None,
                    Ok(Ok(_)) => "the name has no addresses".to_owned(),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {} s", LOOKUP_TIMEOUT.as_secs()),
                };
                Some(format!(
                    "hosts[{i}].addr: {name}:{port} did not resolve: {why}"
                ))
            })
        });
        let mut lines = Vec::new();
        for lookup in lookups.collect::<Vec<_>>() {
            if let Ok(Some(line)) = lookup.await {
                lines.push(line);
            }
        }
        lines
    });
    // A lookup past its timeout still holds a blocking thread: do not wait for it.
    runtime.shutdown_background();
    lines
}
