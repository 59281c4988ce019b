//! What the workspace's tests share: a tiny HTTP/1.1 client with a bound on every call
//! ([`client`]), and waiting without sleeping blind: poll a condition until a deadline
//! ([`eventually`] and friends); a real etcd started on free ports ([`etcd::Etcd`]). Used by the integration tests (`tests/`) and simhost's own
//! tests; not published.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod etcd;
mod eventually;

pub use eventually::{POLL_INTERVAL, eventually, eventually_async, stays_pending, wait_for};
