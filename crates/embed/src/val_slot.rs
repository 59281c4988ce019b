//! The Val of the request in one in-flight slot, kept in atomic words so the request path
//! writes it without a lock or an allocation and the health task reads it without stopping
//! anyone (the cascade guard's view of which Vals a failing host was serving).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const NAME_WORDS: usize = 6;

/// Bytes of a Val's key kept per slot (longer keys are kept as a prefix).
pub const VAL_NAME_BYTES: usize = NAME_WORDS * 8;

/// A Val's key hash (0 = none) and the key's first bytes. Written by the permit's owner after
/// it claims the slot; the reader checks the bytes against the hash, so a slot being
/// rewritten reads as unknown, never as the wrong Val.
#[derive(Debug, Default)]
pub(crate) struct ValSlot {
    pub(crate) hash: AtomicU64,
    len: AtomicU32,
    name: [AtomicU64; NAME_WORDS],
}

impl ValSlot {
    pub(crate) fn store(&self, hash: u64, key: &str) {
        let bytes = key.as_bytes();
        let mut words = [0u8; VAL_NAME_BYTES];
        let n = bytes.len().min(VAL_NAME_BYTES);
        words[..n].copy_from_slice(&bytes[..n]);
        for (word, chunk) in self.name.iter().zip(words.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            word.store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        self.len.store(
            u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            Ordering::Relaxed,
        );
        self.hash.store(hash, Ordering::Release);
    }

    /// The key, if the slot holds `hash` and its bytes still match it. A key longer than
    /// the slot keeps only its prefix, which cannot be checked: it ends in `…`.
    pub(crate) fn name(&self, hash: u64) -> Option<String> {
        if self.hash.load(Ordering::Acquire) != hash {
            return None;
        }
        let len = self.len.load(Ordering::Relaxed) as usize;
        let mut bytes = Vec::with_capacity(VAL_NAME_BYTES);
        for word in &self.name {
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        if len > VAL_NAME_BYTES {
            let mut prefix = String::from_utf8_lossy(&bytes).into_owned();
            prefix.push('…');
            return Some(prefix);
        }
        bytes.truncate(len);
        (router_core::KeyHash::of(&bytes).0 == hash)
            .then(|| String::from_utf8(bytes).ok())
            .flatten()
    }
}
