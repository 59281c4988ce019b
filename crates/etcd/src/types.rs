//! The gateway's JSON messages, as far as this client reads them, and the types it returns.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

/// A lease's ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(pub i64);

/// A key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (keys are UTF-8 in Ringward's layout; others are converted lossily).
    pub key: String,
    /// The value's bytes.
    pub value: Vec<u8>,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// The lease it is attached to (0: none).
    pub lease: i64,
}

/// The keys under a prefix, at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The store's revision when read: watch from `revision + 1` to miss nothing.
    pub revision: i64,
    /// The keys, in key order.
    pub kvs: Vec<KeyValue>,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or changed.
    Put,
    /// Deleted (or its lease expired).
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key.
    pub key: String,
    /// The new value (empty for a delete).
    pub value: Vec<u8>,
    /// The revision of the change.
    pub mod_revision: i64,
}

/// The end of the range of keys that start with `prefix` (etcd's `range_end`): the prefix
/// with its last byte incremented (dropping trailing 0xff bytes); `\0` for an empty prefix.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// An int64 as the gateway writes it: a string (or, leniently, a number); absent is 0.
pub(crate) fn int(v: &Option<serde_json::Value>) -> i64 {
    match v {
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Header {
    pub(crate) revision: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawKv {
    pub(crate) key: Option<String>,
    pub(crate) value: Option<String>,
    pub(crate) mod_revision: Option<serde_json::Value>,
    pub(crate) lease: Option<serde_json::Value>,
}

impl RawKv {
    pub(crate) fn decode(self) -> Result<KeyValue, String> {
        let bytes = |s: Option<String>| -> Result<Vec<u8>, String> {
            s.map_or(Ok(Vec::new()), |s| {
                BASE64.decode(s).map_err(|e| format!("bad base64: {e}"))
            })
        };
        Ok(KeyValue {
            key: String::from_utf8_lossy(&bytes(self.key)?).into_owned(),
            value: bytes(self.value)?,
            mod_revision: int(&self.mod_revision),
            lease: int(&self.lease),
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RangeResponse {
    pub(crate) header: Option<Header>,
    #[serde(default)]
    pub(crate) kvs: Vec<RawKv>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WriteResponse {
    pub(crate) header: Option<Header>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LeaseGrantResponse {
    #[serde(rename = "ID")]
    pub(crate) id: Option<serde_json::Value>,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeepAliveMessage {
    pub(crate) result: Option<KeepAliveResult>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeepAliveResult {
    #[serde(rename = "TTL")]
    pub(crate) ttl: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WatchMessage {
    pub(crate) result: Option<WatchResult>,
    pub(crate) error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WatchResult {
    pub(crate) header: Option<Header>,
    #[serde(default)]
    pub(crate) events: Vec<RawEvent>,
    #[serde(default)]
    pub(crate) canceled: bool,
    pub(crate) compact_revision: Option<serde_json::Value>,
    pub(crate) cancel_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawEvent {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) kv: Option<RawKv>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end("/ringward/"), b"/ringward0".to_vec());
        assert_eq!(prefix_end("a"), b"b".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn gateway_integers_are_strings_or_numbers() {
        assert_eq!(int(&Some(serde_json::json!("42"))), 42);
        assert_eq!(int(&Some(serde_json::json!(7))), 7);
        assert_eq!(int(&None), 0);
    }

    #[test]
    fn a_key_value_decodes_from_base64() {
        let raw: RawKv = serde_json::from_value(serde_json::json!({
            "key": "L3Jpbmd3YXJkL2hvc3RzL2E=",
            "value": "eyJhZGRyIjoiMTI3LjAuMC4xOjkwMDEifQ==",
            "mod_revision": "2",
        }))
        .expect("json");
        let kv = raw.decode().expect("decode");
        assert_eq!(kv.key, "/ringward/hosts/a");
        assert_eq!(kv.value, br#"{"addr":"127.0.0.1:9001"}"#.to_vec());
        assert_eq!(kv.mod_revision, 2);
        assert_eq!(kv.lease, 0);
    }
}
