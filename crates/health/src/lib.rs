//! Ringward's health state machine: for each host, may the router send it traffic, and why;
//! and the cascade guard ([`guard`]): which Val made a host fail.
//!
//! A *Val* is a user function (the name comes from Val Town, whose post-mortem Ringward
//! answers): every request names one by its key, and Ringward sends all requests for one Val
//! to the same worker host, so they find a warm worker.
//!
//! Pure and sans-IO: no tokio, no clock reads, no sleeping. Every input carries `now`, and
//! the owner asks [`Health::next_deadline`] when to call [`Health::handle_timeout`]. The
//! inputs are request outcomes ([`Health::record_outcome`], the allocation-free hot path),
//! in-flight ages ([`Health::record_in_flight`]), pool reports from the ORCA header or a
//! probe body ([`Health::record_report`], parsed by [`parse_orca_header`] and
//! [`parse_health_body`]), active probe results ([`Health::record_probe`]) and operator
//! commands ([`Health::handle_operator`]). The output is a [`Transition`] per change and a
//! [`HealthSnapshot`] of every host with its [`Routing`].
//!
//! The defaults end the post-mortem incident (a pool full of stuck connections) within a
//! second, and leave a merely busy host alone; `docs/health.md` has the state diagram and
//! the reasoning for every default.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ringward_health::{Health, HealthConfig, Reason, StateKind, parse_orca_header};
//!
//! # #[allow(clippy::disallowed_methods)] // a doc example needs an origin
//! let t0 = Instant::now();
//! let mut health = Health::new(HealthConfig::default());
//! health.set_hosts(["a", "b", "c"], t0);
//!
//! // Host "a" reports a full pool with waiters and a connection held for 5 s, twice.
//! let header = b"TEXT named_metrics.db_pool_max=10, named_metrics.db_pool_in_use=10, \
//!     named_metrics.db_pool_waiting=7, named_metrics.db_pool_oldest_checkout_ms=5000";
//! let pool = parse_orca_header(header).unwrap();
//! let report = ringward_health::HealthReport { status: None, pool };
//! assert_eq!(health.record_report("a", &report, t0), None, "one report is not proof");
//! let ejected = health.record_report("a", &report, t0 + Duration::from_millis(500)).unwrap();
//! assert_eq!((ejected.to, ejected.reason), (StateKind::Ejected, Reason::PoolExhausted));
//! assert!(!health.snapshot(t0).hosts[0].is_eligible());
//! ```
#![forbid(unsafe_code)]

mod active;
mod config;
mod error;
pub mod guard;
mod health;
mod outcome;
mod passive;
mod pool;
mod report;
mod snapshot;
mod state;

pub use config::{HealthConfig, PanicPolicy};
pub use error::{ConfigError, HealthError, ReportError};
pub use health::Health;
pub use outcome::{GatewayFailure, OperatorCommand, Outcome, ProbeResult};
pub use pool::PoolVerdict;
pub use report::{
    HealthReport, ORCA_HEADER, PoolReport, ReportStatus, malformed_values_total, parse_health_body,
    parse_health_body_counted, parse_orca_header, parse_orca_header_counted,
};
pub use snapshot::{HealthSnapshot, HostHealth};
pub use state::{HostState, Reason, Routing, StateKind, Transition};

/// The origin of unit-test timelines; time then advances by hand.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_origin() -> std::time::Instant {
    std::time::Instant::now()
}
