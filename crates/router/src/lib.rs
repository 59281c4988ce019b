//! Ringward: a consistent-hash HTTP router with health-aware ejection.
//!
//! A *Val* is a user function (the name comes from Val Town, whose post-mortem Ringward
//! answers): every request names one by its key, and Ringward sends all requests for one Val
//! to the same worker host, so they find a warm worker.
//!
//! A Val moves away from its host as soon as the host's health says it is sick (above all, a
//! database pool that is exhausted or holds stuck connections), and comes back when it
//! recovers; a Val that makes host after host sick is quarantined (the cascade guard).
//!
//! This crate is the whole router as a library, around the pure crates `ringward-core` (the
//! ring, the preference walk, bounded loads) and `ringward-health` (the health state machine
//! and the cascade guard): the hyper server and pooled client, key extraction, in-flight caps,
//! timeouts, safe retries, the active prober, the admin API, metrics, config loading and hot
//! reload. See `docs/architecture.md`.
//!
//! The public API is small: [`Router`] (start, reload, watch a config file, shutdown),
//! [`Config`] and its sections ([`config`]), the errors ([`ConfigErrors`], [`StartError`],
//! [`ProxyError`] and its status mapping), [`KeySource`] and [`extract_key`] (how a request
//! names its Val), [`Clock`] (for tests with simulated time), [`Resolve`] (how host names
//! are looked up; [`SystemResolver`] by default) and [`logging`]. To put the ring
//! and the health ejection into a proxy of your own instead, use `ringward-embed`.
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
mod admin;
mod clock;
pub mod config;
mod conn;
mod control;
mod error;
pub mod logging;
mod metrics;
mod proxy;
mod router;
mod tls;

pub use clock::{Clock, TokioClock};
pub use config::{Config, ConfigError, ConfigErrors};
pub use control::resolver::{Resolve, ResolveFuture, SystemResolver};
pub use error::{ProxyError, StartError};
pub use proxy::key::{KeySource, extract_key};
pub use router::Router;
