//! Ringward: a consistent-hash HTTP router with health-aware ejection.
//!
//! A *Val* is a user function (the name comes from Val Town, whose post-mortem Ringward
//! answers): every request names one by its key, and Ringward sends all requests for one Val
//! to the same worker host, so they find a warm worker.
//!
//! Every request carries a Val key; all requests for one Val go to the same host, and a Val
//! moves away from a host as soon as its health says it is sick (above all, a database pool
//! that is exhausted or holds stuck connections), and comes back when it recovers.
//!
//! This crate is the IO shell around the pure crates `router_core` (the ring, the preference
//! walk, bounded loads) and `health` (the health state machine): the hyper server and pooled
//! client, key extraction, in-flight caps, timeouts, safe retries, the active prober, the
//! admin API, metrics, config loading and hot reload. See `docs/architecture.md`.
//!
//! ```
//! use ringward::Config;
//!
//! let config = Config::from_toml_str(r#"
//!     [[hosts]]
//!     name = "host-a"
//!     addr = "127.0.0.1:9001"
//! "#).expect("a valid config");
//! assert_eq!(config.hosts[0].name, "host-a");
//!
//! let errors = Config::from_toml_str("[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\nweight = 0\n")
//!     .unwrap_err();
//! assert_eq!(errors.to_string(), "hosts[0].weight: must be greater than 0");
//! ```
//!
//! Running one (in an async context): `Router::start(config).await?` binds both listeners;
//! `router.reload(new_config)` applies a new config; `router.shutdown().await` drains.
#![forbid(unsafe_code)]

// The modules follow the path of a request (docs/architecture.md): the connection, the
// request through the proxy, the control loop that decides where requests may go, and the
// admin listener that shows it.
pub mod admin;
pub mod clock;
pub mod config;
pub mod conn;
pub mod control;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod router;

pub use clock::{Clock, TokioClock};
pub use config::{Config, ConfigError, ConfigErrors};
pub use error::{ProxyError, StartError};
pub use proxy::key::KeySource;
pub use router::Router;
