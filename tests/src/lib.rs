//! Support code for Ringward's integration tests.
//!
//! - [`Fleet`]: K simulated hosts ([`simhost::SimHost`]) on `127.0.0.1:0`, with their
//!   addresses, names and control handles (fault injection, counters).
//! - [`eventually`] and friends: poll a condition until a deadline instead of sleeping.
//! - [`client`]: a tiny HTTP/1.1 client with a bound on every call (`ringward-testkit`'s).
//!
//! ```
//! use std::time::Duration;
//! use ringward_tests::{Fleet, client, eventually};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let fleet = Fleet::start(3).await.unwrap();
//! let reply = client::get(fleet[0].addr(), "/v/alice/run").await.unwrap();
//! assert_eq!(reply.status, 200);
//! fleet[1].faults().deadlock(fleet[1].config().pool_size);
//! eventually(Duration::from_secs(2), "host-1 exhausted", || fleet[1].stats().in_use == 10).await;
//! fleet.shutdown().await;
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod fleet;

pub use fleet::Fleet;
pub use ringward_testkit::client;
pub use ringward_testkit::{POLL_INTERVAL, eventually, eventually_async, stays_pending, wait_for};
pub use simhost;
