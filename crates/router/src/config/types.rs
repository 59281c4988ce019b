//! The validated configuration: one type per section, each handed to the component it
//! configures.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http::HeaderName;

use super::defaults;
use super::host_addr::HostAddr;
use crate::proxy::key::KeySource;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[listen]`: the client-facing listener.
    pub listen: ListenConfig,
    /// `[admin]`: the admin listener.
    pub admin: AdminConfig,
    /// `[route]`: key extraction and the ring walk.
    pub route: RouteConfig,
    /// `[upstream]`: the pooled client and its timeouts.
    pub upstream: UpstreamConfig,
    /// `[limits]`: in-flight caps.
    pub limits: LimitsConfig,
    /// `[retry]`: safe retries and their budget.
    pub retry: RetryConfig,
    /// `[[hosts]]`: the fleet.
    pub hosts: Vec<HostConfig>,
    /// `[health]`: the health state machine and the active prober.
    pub health: HealthSettings,
    /// `[guard]`: the cascade guard (attribution and quarantine of a poison Val).
    pub guard: health::guard::GuardConfig,
    /// `[reload]`: watching the config file.
    pub reload: ReloadConfig,
    /// `[access_log]`: one line per request.
    pub access_log: AccessLogConfig,
    /// `[discovery]`: hosts and fleet state from elsewhere than this file.
    pub discovery: DiscoveryConfig,
}

/// `[discovery]`
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// `[discovery.etcd]`: fleet mode through etcd v3, if configured.
    pub etcd: Option<EtcdConfig>,
}

/// `[discovery.etcd]`: hosts registered under `{prefix}hosts/`, and operator commands and
/// health ejections shared with the other routers watching the same prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// etcd's client endpoints (`host:port` or `http://host:port`), tried in turn.
    pub endpoints: Vec<String>,
    /// The key prefix shared by the fleet (starts and ends with `/`).
    pub prefix: String,
    /// This router's name among its peers (in the keys it writes); `None`: the machine's
    /// host name and the process ID.
    pub name: Option<String>,
    /// Time allowed to connect to an endpoint.
    pub connect_timeout: std::time::Duration,
    /// Time allowed for one etcd request.
    pub request_timeout: std::time::Duration,
    /// How long a host whose key was deleted stays in the ring (damps flaps: a key deleted
    /// and re-created within it changes nothing).
    pub remove_delay: std::time::Duration,
}

/// `[access_log]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// Whether a line is written per request.
    pub enabled: bool,
    /// Where the lines go.
    pub path: AccessLogPath,
    /// JSON or logfmt.
    pub format: AccessLogFormat,
}

/// Where the access log goes: `"-"` (standard error, with the diagnostic log), `"stdout"`,
/// or a file (appended to, reopened on reload so log rotation works).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogPath {
    /// Standard output, apart from the diagnostic log.
    Stdout,
    /// Standard error, with the diagnostic log (`"-"`).
    Stderr,
    /// A file.
    File(std::path::PathBuf),
}

impl std::fmt::Display for AccessLogPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccessLogPath::Stdout => f.write_str("stdout"),
            AccessLogPath::Stderr => f.write_str("-"),
            AccessLogPath::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The access log's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    Json,
    /// logfmt: `key=value` pairs, values quoted when they need it.
    Text,
}

impl std::fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AccessLogFormat::Json => "json",
            AccessLogFormat::Text => "text",
        })
    }
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: defaults::ACCESS_LOG_ENABLED,
            path: AccessLogPath::Stderr,
            format: AccessLogFormat::Json,
        }
    }
}

/// `[listen]`
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Address to serve clients on.
    pub addr: SocketAddr,
    /// Time allowed for a client's request head; also bounds how long an idle HTTP/1.1
    /// keep-alive connection waits for its next request (hyper starts the timer then).
    pub header_read_timeout: Duration,
    /// HTTP/2 keep-alive ping interval (a dead peer is dropped after one unanswered ping).
    pub http2_keep_alive_interval: Duration,
    /// On shutdown, how long in-flight requests get to finish.
    pub shutdown_grace: Duration,
    /// Largest HTTP/1.1 request head (request line and headers) read from a client; a
    /// larger one is answered 431 and the connection closed. Also hyper's buffer bound.
    pub max_header_bytes: usize,
    /// Proxy worker threads, each with its own single-threaded runtime, listening socket
    /// (`SO_REUSEPORT`) and upstream pool; 0 = one per core.
    pub workers: u32,
    /// `[listen.tls]`: a TLS listener beside the plaintext one, if configured.
    pub tls: Option<TlsConfig>,
}

/// `[listen.tls]`: a TLS listener, its certificates read and checked.
///
/// Built by the config reader, or in code with [`TlsConfig::load`].
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Address to serve TLS clients on.
    pub addr: SocketAddr,
    /// Time allowed for a client's whole TLS handshake, from its connect.
    pub handshake_timeout: Duration,
    /// The PEM files: the default pair first, then the SNI ones in order.
    pub(super) files: Vec<TlsCertFiles>,
    /// What was read from them.
    pub(super) certs: crate::tls::CertSet,
}

impl TlsConfig {
    /// The PEM files: the default certificate first, then `[[listen.tls.certificates]]`.
    pub fn files(&self) -> &[TlsCertFiles] {
        &self.files
    }

    /// The certificates read from [`TlsConfig::files`].
    pub(crate) fn certs(&self) -> &crate::tls::CertSet {
        &self.certs
    }
}

/// A certificate chain's PEM file and its private key's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCertFiles {
    /// The chain, leaf first.
    pub cert: std::path::PathBuf,
    /// The leaf's private key.
    pub key: std::path::PathBuf,
}

/// `[admin]`
#[derive(Clone)]
pub struct AdminConfig {
    /// Address of the admin listener.
    pub addr: SocketAddr,
    /// Bearer token for POST endpoints; None means mutations are refused (loopback only).
    pub token: Option<AdminToken>,
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The admin bearer token (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        AdminToken(token.into())
    }

    /// The token bytes (for the constant-time comparison).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// `[route]`
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Key sources, tried in order.
    pub key: Vec<KeySource>,
    /// Response header naming the chosen host.
    pub upstream_header: HeaderName,
    /// Bounded-load factor (0 turns bounded loads off).
    pub bounded_load_factor: f64,
    /// Bounded-load floor: a host is never "over balance" below this many in flight.
    pub bounded_load_floor: u32,
}

/// `[upstream]`
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// TCP connect timeout to a host.
    pub connect_timeout: Duration,
    /// From sending the request until the response head arrives.
    pub response_header_timeout: Duration,
    /// The whole exchange, request head to the last response byte.
    pub request_timeout: Duration,
    /// Longest silence between two body chunks, in either direction.
    pub body_idle_timeout: Duration,
    /// Idle pooled keep-alive connections to hosts are closed after this.
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per host.
    pub pool_max_idle_per_host: u32,
    /// An upgraded connection (a WebSocket tunnel) with no byte either way for this long is
    /// closed.
    pub tunnel_idle_timeout: Duration,
    /// How often the names of hosts given as `name:port` are looked up again.
    pub resolve_interval: Duration,
}

/// `[limits]`
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Requests in flight to one host at most.
    pub per_host_in_flight: u32,
    /// Requests in flight through the router at most.
    pub global_in_flight: u32,
    /// Retry-After sent with 503s.
    pub retry_after: Duration,
    /// Open client connections at most (the listener; read at start).
    pub max_connections: u32,
    /// Largest request body forwarded, in bytes (beyond it: 413).
    pub max_request_body: u64,
    /// Upgraded connections (WebSocket tunnels) open at once at most; beyond it an upgrade
    /// request is answered 503.
    pub max_tunnels: u32,
}

/// `[retry]`
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Retries allowed as a share of requests (0.2 = one retry per five requests).
    pub budget_ratio: f64,
    /// Retries always allowed on top of the ratio (a reserve, refilled by traffic).
    pub budget_min: u32,
    /// Re-send in-flight idempotent requests of a host that gets ejected.
    pub rescue_on_eject: bool,
}

/// One `[[hosts]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// Unique name (named in the upstream header and the admin API).
    pub name: String,
    /// Where the host listens: an IP address, or a name the router resolves (and re-resolves
    /// every `upstream.resolve_interval`).
    pub addr: HostAddr,
    /// Ring weight (> 0).
    pub weight: u32,
}

/// `[health]`
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// `[health.active]`: the prober.
    pub active: ActiveProbeConfig,
    /// The passive state machine's settings (`[health]` keys other than `active`).
    pub passive: health::HealthConfig,
}

/// `[health.active]`
#[derive(Debug, Clone)]
pub struct ActiveProbeConfig {
    /// Path probed on every host.
    pub path: String,
    /// Time between probe rounds.
    pub interval: Duration,
    /// Time allowed for one probe (must be less than the interval).
    pub timeout: Duration,
}

/// `[reload]`
#[derive(Debug, Clone)]
pub struct ReloadConfig {
    /// Watch the config file's modification time and reload on change.
    pub watch: bool,
    /// How often the file is checked.
    pub poll_interval: Duration,
}

impl Config {
    /// A ready config for hosts on loopback (demo, replay, tests): listen and admin on the given
    /// addresses (port 0 is fine), key = `["header:x-val", "path_segment:1"]`, upstream header
    /// `x-ringward-host`, everything else default, no file watching.
    pub fn for_hosts(
        listen: SocketAddr,
        admin: SocketAddr,
        hosts: &[(String, SocketAddr)],
    ) -> Config {
        Config {
            listen: ListenConfig {
                addr: listen,
                header_read_timeout: defaults::HEADER_READ_TIMEOUT,
                http2_keep_alive_interval: defaults::HTTP2_KEEP_ALIVE_INTERVAL,
                shutdown_grace: defaults::SHUTDOWN_GRACE,
                max_header_bytes: defaults::MAX_HEADER_BYTES,
                workers: defaults::WORKERS,
                tls: None,
            },
            admin: AdminConfig {
                addr: admin,
                token: None,
            },
            route: RouteConfig {
                key: vec![
                    KeySource::Header(HeaderName::from_static("x-val")),
                    KeySource::PathSegment(1),
                ],
                upstream_header: HeaderName::from_static(defaults::UPSTREAM_HEADER),
                bounded_load_factor: defaults::BOUNDED_LOAD_FACTOR,
                bounded_load_floor: defaults::BOUNDED_LOAD_FLOOR,
            },
            upstream: UpstreamConfig {
                connect_timeout: defaults::CONNECT_TIMEOUT,
                response_header_timeout: defaults::RESPONSE_HEADER_TIMEOUT,
                request_timeout: defaults::REQUEST_TIMEOUT,
                body_idle_timeout: defaults::BODY_IDLE_TIMEOUT,
                pool_idle_timeout: defaults::POOL_IDLE_TIMEOUT,
                pool_max_idle_per_host: defaults::POOL_MAX_IDLE_PER_HOST,
                tunnel_idle_timeout: defaults::TUNNEL_IDLE_TIMEOUT,
                resolve_interval: defaults::RESOLVE_INTERVAL,
            },
            limits: LimitsConfig {
                per_host_in_flight: defaults::PER_HOST_IN_FLIGHT,
                global_in_flight: defaults::GLOBAL_IN_FLIGHT,
                retry_after: defaults::RETRY_AFTER,
                max_connections: defaults::MAX_CONNECTIONS,
                max_request_body: defaults::MAX_REQUEST_BODY,
                max_tunnels: defaults::MAX_TUNNELS,
            },
            retry: RetryConfig {
                budget_ratio: defaults::RETRY_BUDGET_RATIO,
                budget_min: defaults::RETRY_BUDGET_MIN,
                rescue_on_eject: true,
            },
            hosts: hosts
                .iter()
                .map(|(name, addr)| HostConfig {
                    name: name.clone(),
                    addr: HostAddr::Socket(*addr),
                    weight: 1,
                })
                .collect(),
            health: HealthSettings {
                active: ActiveProbeConfig {
                    path: defaults::PROBE_PATH.to_owned(),
                    interval: defaults::PROBE_INTERVAL,
                    timeout: defaults::PROBE_TIMEOUT,
                },
                passive: health::HealthConfig::default(),
            },
            guard: health::guard::GuardConfig::default(),
            reload: ReloadConfig {
                watch: false,
                poll_interval: defaults::RELOAD_POLL_INTERVAL,
            },
            access_log: AccessLogConfig::default(),
            discovery: DiscoveryConfig::default(),
        }
    }

    /// The whole-request timeout (`upstream.request_timeout`).
    pub fn request_timeout(&self) -> Duration {
        self.upstream.request_timeout
    }

    /// The bounded-load settings for `router_core`.
    pub fn bounded_loads(&self) -> router_core::BoundedLoads {
        router_core::BoundedLoads {
            factor: self.route.bounded_load_factor,
            floor: self.route.bounded_load_floor,
        }
    }
}
