//! The fleet's keys in etcd and their JSON values (docs/fleet.md):
//!
//! - `{prefix}hosts/{name}`: `{"addr": "ip-or-name:port", "weight": 1}`, written by the host
//!   (or its deployment), usually on its own lease;
//! - `{prefix}commands/{host}`: `{"command": "drain"|"eject"|"restore", "by": ROUTER}`, an
//!   operator's last command on a host, written by the router that took it (eject and
//!   restore on a lease; a drain stays until a restore replaces it);
//! - `{prefix}ejections/{host}/{router}`: `{"reason": REASON, "by": ROUTER, "until_ms":
//!   UNIX_MS}`, a router's health ejection, on a lease that ends with it;
//! - `{prefix}vals/{hash}` (the Val's key hash, 16 hex digits): `{"command": "quarantine" |
//!   "release", "name": KEY, "by": ROUTER, "until_ms": UNIX_MS | null}`, a Val's last
//!   quarantine or release (a cascade-guard quarantine on a lease that ends with it; an
//!   operator's quarantine until released stays; a release on a short lease).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use health::{OperatorCommand, Reason};
use serde::{Deserialize, Serialize};

use crate::config::HostConfig;
use crate::control::messages::ValShare;

/// What a key under the prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    /// A host's registration.
    Host(String),
    /// The last operator command on a host.
    Command(String),
    /// One router's ejection of a host: (host, router).
    Ejection(String, String),
    /// A Val's last quarantine or release, by key hash.
    Val(u64),
}

impl Record {
    /// What `key` is, if it is one of the fleet's keys under `prefix`.
    pub(crate) fn of(prefix: &str, key: &str) -> Option<Record> {
        let rest = key.strip_prefix(prefix)?;
        let (kind, name) = rest.split_once('/')?;
        match kind {
            "hosts" if !name.is_empty() && !name.contains('/') => Some(Record::Host(name.into())),
            "commands" if !name.is_empty() && !name.contains('/') => {
                Some(Record::Command(name.into()))
            }
            "vals" => u64::from_str_radix(name, 16)
                .ok()
                .filter(|_| name.len() == 16)
                .map(Record::Val),
            "ejections" => {
                let (host, router) = name.split_once('/')?;
                (!host.is_empty() && !router.is_empty() && !router.contains('/'))
                    .then(|| Record::Ejection(host.into(), router.into()))
            }
            _ => None,
        }
    }
}

/// `{prefix}commands/{host}`
pub(crate) fn command_key(prefix: &str, host: &str) -> String {
    format!("{prefix}commands/{host}")
}

/// `{prefix}vals/{hash}`
pub(crate) fn val_key(prefix: &str, val: u64) -> String {
    format!("{prefix}vals/{val:016x}")
}

#[derive(Debug, Serialize, Deserialize)]
struct ValValue {
    command: String,
    name: Option<String>,
    by: String,
    until_ms: Option<u64>,
}

/// The value of a Val record; `share`'s remaining time counted from `now_wall`.
pub(crate) fn val_value(
    share: ValShare,
    name: Option<&str>,
    by: &str,
    now_wall: SystemTime,
) -> Vec<u8> {
    let (command, until_ms) = match share {
        ValShare::Quarantine(left) => ("quarantine", left.map(|l| unix_ms(now_wall + l))),
        ValShare::Release => ("release", None),
    };
    let value = ValValue {
        command: command.into(),
        name: name.map(str::to_owned),
        by: by.into(),
        until_ms,
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// A Val record: (what, the Val's key if known, by whom), as of `now_wall`; a quarantine
/// whose time is over reads as one with no time left.
pub(crate) fn val(
    value: &[u8],
    now_wall: SystemTime,
) -> Result<(ValShare, Option<String>, String), String> {
    let v: ValValue = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let share = match (v.command.as_str(), v.until_ms) {
        ("quarantine", None) => ValShare::Quarantine(None),
        ("quarantine", Some(ms)) => ValShare::Quarantine(Some(
            (UNIX_EPOCH + Duration::from_millis(ms))
                .duration_since(now_wall)
                .unwrap_or(Duration::ZERO),
        )),
        ("release", _) => ValShare::Release,
        (other, _) => return Err(format!("unknown command `{other}`")),
    };
    Ok((share, v.name, v.by))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `{prefix}ejections/{host}/{router}`
pub(crate) fn ejection_key(prefix: &str, host: &str, router: &str) -> String {
    format!("{prefix}ejections/{host}/{router}")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostValue {
    addr: String,
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

/// A host's registration read as a `[[hosts]]` entry, or what is wrong with it.
pub(crate) fn host(name: &str, value: &[u8]) -> Result<HostConfig, String> {
    if !crate::config::valid_host_name(name) {
        return Err(format!("`{name}` is not a usable host name"));
    }
    let v: HostValue = serde_json::from_slice(value)
        .map_err(|e| format!("want {{\"addr\": \"ip-or-name:port\", \"weight\": 1}}: {e}"))?;
    if v.weight == 0 {
        return Err("weight must be greater than 0".into());
    }
    let addr = v.addr.parse().map_err(|e| format!("addr: {e}"))?;
    Ok(HostConfig {
        name: name.to_owned(),
        addr,
        weight: v.weight,
    })
}

#[derive(Debug, Serialize, Deserialize)]
struct CommandValue {
    command: String,
    by: String,
}

/// The value of a command record.
pub(crate) fn command_value(command: OperatorCommand, by: &str) -> Vec<u8> {
    let value = CommandValue {
        command: command_name(command).into(),
        by: by.into(),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// A command record: (command, the router that took it).
pub(crate) fn command(value: &[u8]) -> Result<(OperatorCommand, String), String> {
    let v: CommandValue = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let command = match v.command.as_str() {
        "drain" => OperatorCommand::Drain,
        "eject" => OperatorCommand::Eject,
        "restore" => OperatorCommand::Restore,
        other => return Err(format!("unknown command `{other}`")),
    };
    Ok((command, v.by))
}

fn command_name(command: OperatorCommand) -> &'static str {
    match command {
        OperatorCommand::Drain => "drain",
        OperatorCommand::Eject => "eject",
        OperatorCommand::Restore => "restore",
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct EjectionValue {
    reason: String,
    by: String,
    until_ms: u64,
}

/// The value of an ejection record that ends `remaining` from `now_wall`.
pub(crate) fn ejection_value(
    reason: Reason,
    by: &str,
    now_wall: SystemTime,
    remaining: Duration,
) -> Vec<u8> {
    let until_ms = unix_ms(now_wall + remaining);
    let value = EjectionValue {
        reason: reason.as_str().into(),
        by: by.into(),
        until_ms,
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// An ejection record: (why, by whom, how long it has left as of `now_wall`; zero when
/// over). Routers' clocks are assumed NTP-close: the lease ends the record anyway.
pub(crate) fn ejection(
    value: &[u8],
    now_wall: SystemTime,
) -> Result<(Reason, String, Duration), String> {
    let v: EjectionValue = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let reason =
        Reason::from_name(&v.reason).ok_or_else(|| format!("unknown reason `{}`", v.reason))?;
    let until = UNIX_EPOCH + Duration::from_millis(v.until_ms);
    let left = until.duration_since(now_wall).unwrap_or(Duration::ZERO);
    Ok((reason, v.by, left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_told_apart_by_their_place_under_the_prefix() {
        let p = "/ringward/";
        assert_eq!(
            Record::of(p, "/ringward/hosts/a"),
            Some(Record::Host("a".into()))
        );
        assert_eq!(
            Record::of(p, "/ringward/commands/a"),
            Some(Record::Command("a".into()))
        );
        assert_eq!(
            Record::of(p, "/ringward/ejections/a/edge-1"),
            Some(Record::Ejection("a".into(), "edge-1".into()))
        );
        for other in [
            "/ringward/hosts/",
            "/ringward/hosts/a/b",
            "/other/hosts/a",
            "/ringward/x/a",
        ] {
            assert_eq!(Record::of(p, other), None, "{other}");
        }
    }

    #[test]
    fn a_host_registration_reads_as_a_hosts_entry() {
        let h = host("w-1", br#"{"addr": "10.0.0.7:9001", "weight": 2}"#).expect("valid");
        assert_eq!(
            (h.name.as_str(), h.addr.to_string(), h.weight),
            ("w-1", "10.0.0.7:9001".into(), 2)
        );
        let h = host("w-2", br#"{"addr": "worker-2.internal:9001"}"#).expect("a name, weight 1");
        assert_eq!(
            (h.addr.to_string(), h.weight),
            ("worker-2.internal:9001".into(), 1)
        );
        for bad in [
            &br#"{"weight": 1}"#[..],
            br#"{"addr": "10.0.0.7"}"#,
            br#"{"addr": "10.0.0.7:1", "weight": 0}"#,
            b"not json",
            br#"{"addr": "a:1", "extra": 1}"#,
        ] {
            assert!(host("w", bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn commands_and_ejections_round_trip() {
        let v = command_value(OperatorCommand::Drain, "edge-1");
        assert_eq!(command(&v), Ok((OperatorCommand::Drain, "edge-1".into())));
        assert!(command(br#"{"command": "reboot", "by": "x"}"#).is_err());

        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let v = ejection_value(Reason::PoolExhausted, "edge-2", now, Duration::from_secs(5));
        let (reason, by, left) = ejection(&v, now + Duration::from_secs(1)).expect("valid");
        assert_eq!(
            (reason, by.as_str(), left),
            (Reason::PoolExhausted, "edge-2", Duration::from_secs(4))
        );
        let (_, _, left) = ejection(&v, now + Duration::from_secs(9)).expect("valid");
        assert_eq!(left, Duration::ZERO, "over");

        let v = val_value(
            ValShare::Quarantine(Some(Duration::from_secs(30))),
            Some("alice"),
            "edge-1",
            now,
        );
        let (share, name, by) = val(&v, now + Duration::from_secs(10)).expect("valid");
        assert_eq!(share, ValShare::Quarantine(Some(Duration::from_secs(20))));
        assert_eq!((name.as_deref(), by.as_str()), (Some("alice"), "edge-1"));
        let v = val_value(ValShare::Quarantine(None), None, "edge-1", now);
        assert_eq!(val(&v, now).expect("valid").0, ValShare::Quarantine(None));
        let v = val_value(ValShare::Release, Some("alice"), "edge-1", now);
        assert_eq!(val(&v, now).expect("valid").0, ValShare::Release);
        assert_eq!(
            Record::of("/p/", &val_key("/p/", 0xabc)),
            Some(Record::Val(0xabc))
        );
        assert_eq!(Record::of("/p/", "/p/vals/xyz"), None);
    }
}
