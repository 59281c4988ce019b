//! The config file: read the TOML (every problem collected with its key path), then
//! validate into [`Config`], the only config type the rest of the router sees.
//!
//! Each component receives only its slice ([`ListenConfig`], [`UpstreamConfig`], ...).
//! Every key and its default is documented in `docs/configuration.md`.
//!
//! `error.rs` (what a bad file gets), `defaults.rs`, `types.rs` (the sections), `read.rs`
//! (the walk over the TOML table and the cross-key rules), `reader.rs` (the typed accessors
//! that collect errors with key paths), `host_addr.rs` (`[[hosts]].addr`: `ip:port` or
//! `name:port`), `passive.rs` (`[health]`), `guard.rs` (`[guard]`), `discovery.rs`
//! (`[discovery.etcd]`), `tls.rs` (`[listen.tls]`,
//! whose PEM files are read while validating).

pub mod defaults;
mod discovery;
mod dump;
mod error;
mod guard;
mod host_addr;
mod passive;
mod read;
mod reader;
mod tls;
mod types;

pub use dump::REDACTED_TOKEN;
pub use error::{ConfigError, ConfigErrors};
pub use host_addr::HostAddr;
pub(crate) use read::valid_host_name;
pub use types::{
    AccessLogConfig, AccessLogFormat, AccessLogPath, ActiveProbeConfig, AdminConfig, AdminToken,
    Config, DiscoveryConfig, EtcdConfig, HealthSettings, HostConfig, LimitsConfig, ListenConfig,
    ReloadConfig, RetryConfig, RouteConfig, TlsCertFiles, TlsConfig, UpstreamConfig,
};

#[cfg(test)]
mod tests;
