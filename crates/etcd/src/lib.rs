//! A small etcd v3 client: what Ringward's fleet mode needs (a prefix's keys and their
//! revision, a watch on the prefix from a revision, puts and deletes, leases with keep-alive)
//! and no more.
//!
//! It speaks to etcd's JSON gateway (`POST /v3/kv/range` and friends, served by every etcd
//! since 3.3 on its client port) over HTTP/1.1 with hyper, not gRPC: the gRPC clients build
//! their protobuf code at compile time and need `protoc` on the build machine, which a fresh
//! machine with only Rust does not have. Keys and values travel base64-encoded and 64-bit
//! integers as strings, as the gateway's JSON mapping of the protobufs wants.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ringward_etcd::Error> {
//! use std::time::Duration;
//! use ringward_etcd::{Client, Options};
//!
//! let etcd = Client::new(&["127.0.0.1:2379".to_owned()], Options::default())?;
//! let lease = etcd.grant(Duration::from_secs(10)).await?;
//! etcd.put("/ringward/hosts/host-a", br#"{"addr":"10.0.0.7:9001"}"#, Some(lease)).await?;
//! let hosts = etcd.range_prefix("/ringward/hosts/").await?;
//! let mut watch = etcd.watch_prefix("/ringward/", hosts.revision + 1).await?;
//! while let Some(batch) = watch.next().await? {
//!     for event in batch.events {
//!         println!("{:?} {}", event.kind, event.key);
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod error;
mod types;
mod watch;

pub use client::{Client, Options, parse_endpoint};
pub use error::Error;
pub use types::{Event, EventKind, KeyValue, LeaseId, Range, prefix_end};
pub use watch::{Watch, WatchBatch};
