//! `x-request-id`: the one name a request goes by in the client's logs, the router's access
//! log and debug lines, and the host's logs. A sane ID the client sent is kept; otherwise the
//! router makes one: 32 hex digits (the size of a W3C trace ID), a random per-process prefix
//! and a counter, so two routers of a fleet do not hand out the same ID.

use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The header.
pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent ID kept (longer ones are replaced).
const MAX_LEN: usize = 128;

/// This process's random half of every ID it makes.
static PREFIX: LazyLock<u64> = LazyLock::new(|| {
    // RandomState is seeded from the OS's randomness once per process.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
});

static NEXT: AtomicU64 = AtomicU64::new(1);

/// The request's ID: the client's `x-request-id` when it is sane (1 to 128 characters of
/// letters, digits and `-_.:+/=`: what UUIDs, trace IDs and base64 IDs use, nothing that
/// could break a log line), a new one otherwise.
pub(crate) fn of(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&X_REQUEST_ID) {
        Some(v) if is_sane(v.as_bytes()) => v.clone(),
        _ => generate(),
    }
}

fn is_sane(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(b))
}

/// A new ID: the process prefix and the next count, as 32 lowercase hex digits.
pub(crate) fn generate() -> HeaderValue {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut hex = [0u8; 32];
    for (i, word) in [*PREFIX, n].into_iter().enumerate() {
        for j in 0..16 {
            let nibble = (word >> (60 - 4 * j)) & 0xf;
            hex[i * 16 + j] = b"0123456789abcdef"[nibble as usize];
        }
    }
    HeaderValue::from_bytes(&hex).expect("hex digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_id_is_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            &X_REQUEST_ID,
            HeaderValue::from_static("4bf92f3577b34da6a3ce929d0e0e4736"),
        );
        assert_eq!(of(&h), "4bf92f3577b34da6a3ce929d0e0e4736");
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("req-1.2:3+4/5="));
        assert_eq!(of(&h), "req-1.2:3+4/5=");
    }

    #[test]
    fn an_insane_or_missing_id_is_replaced_by_a_new_one() {
        let mut h = HeaderMap::new();
        for bad in ["", "has space", "quote\"d", &"x".repeat(129), "tab\there"] {
            h.insert(
                &X_REQUEST_ID,
                HeaderValue::from_bytes(bad.as_bytes()).expect("value"),
            );
            let id = of(&h);
            assert_ne!(id.as_bytes(), bad.as_bytes());
            assert_eq!(id.len(), 32, "{bad:?} replaced by {id:?}");
        }
        assert_eq!(of(&HeaderMap::new()).len(), 32);
    }

    #[test]
    fn generated_ids_are_hex_and_distinct() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert!(id.as_bytes().iter().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(a.as_bytes()[..16], b.as_bytes()[..16], "one process prefix");
    }
}
