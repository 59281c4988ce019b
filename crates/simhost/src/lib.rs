//! A simulated Val host: a real HTTP/1.1 server on loopback with a modelled DB connection
//! pool and runtime fault injection. Ringward's tests, `ringward demo` and the benchmarks
//! run against it.
//!
//! A *Val* is a user function (the name comes from Val Town, whose post-mortem Ringward
//! answers): every request names one by its key, and Ringward sends all requests for one Val
//! to the same worker host, so they find a warm worker.
//!
//! Every Val request (any path but `/healthz` and `/_sim/*`) takes a connection from a pool
//! of `pool_size` for a service time, then answers 200 naming the host and the Val key.
//! `/healthz` reports the pool per docs/contracts.md (the host health report), and every Val response carries the same
//! figures in the ORCA `endpoint-load-metrics` header. The figures come from the pool
//! itself, so a fault like `deadlock` shows up the way the incident did: `in_use` at
//! `max`, `waiting` rising, `oldest_checkout_ms` growing. Faults are set through
//! [`SimHost::faults`] or `POST /_sim/fault`; see `docs/simhost.md`.
//!
//! A Val request with `Upgrade: websocket` opens a WebSocket that echoes every message
//! (the text `close` makes the host close it); it takes no pool connection, and
//! [`SimStats::websockets_open`] counts it.
//!
//! ```
//! use ringward_simhost::{HealthStatus, SimConfig, SimHost};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let host = SimHost::start("127.0.0.1:0".parse().unwrap(), SimConfig::named("host-a"))
//!     .await
//!     .unwrap();
//! host.faults().deadlock(10); // the incident: every connection stuck
//! let stats = host.stats();
//! assert_eq!((stats.in_use, stats.max), (10, 10));
//! assert_eq!(host.faults().release(), 10);
//! assert_eq!(host.health_status(), HealthStatus::Pass);
//! host.shutdown().await;
//! # });
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod body;
mod config;
mod conn;
mod error;
mod fault;
mod handler;
mod host;
mod poison;
mod pool;
mod registration;
mod report;
mod reset;
mod shared;
mod stats;
mod websocket;

pub use config::{ServiceTime, SimConfig};
pub use error::SimError;
pub use fault::{FaultControl, FaultPatch, Faults};
pub use handler::val_key;
pub use host::{SimHost, StatsHandle};
pub use poison::PoisonFault;
pub use pool::PoolFigures;
pub use registration::{EtcdRegistration, Registered};
pub use report::{HealthStatus, ORCA_HEADER, health_body, orca_text};
pub use stats::SimStats;
