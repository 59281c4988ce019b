//! Every default, in one place (docs/configuration.md repeats them).

use std::time::Duration;

/// `listen.addr`
pub const LISTEN_ADDR: &str = "127.0.0.1:8080";
/// `admin.addr`
pub const ADMIN_ADDR: &str = "127.0.0.1:9901";
/// `listen.header_read_timeout`: a request head (and an idle keep-alive wait) must finish in this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// `listen.http2_keep_alive_interval`
pub const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// `listen.shutdown_grace`
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// `listen.max_header_bytes`: 64 KiB (Envoy allows 60 KiB, nginx 4 x 8 KiB).
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// `listen.workers` (0: one per core)
pub const WORKERS: u32 = 0;
/// `listen.workers` at most (more threads than this are a typo, not a tuning)
pub const MAX_WORKERS: u32 = 1024;
/// `listen.tls.handshake_timeout`: a client must finish its TLS handshake in this (as
/// nginx's `ssl_handshake_timeout`, 60 s there; a handshake takes milliseconds).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// `upstream.connect_timeout`
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// `upstream.response_header_timeout`
pub const RESPONSE_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// `upstream.request_timeout`
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `upstream.body_idle_timeout`
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// `upstream.pool_idle_timeout`
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// `upstream.pool_max_idle_per_host`
pub const POOL_MAX_IDLE_PER_HOST: u32 = 64;
/// `upstream.resolve_interval`: how often host names are looked up again (a DNS change is
/// followed within this, without a reload).
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(10);
/// `limits.per_host_in_flight`
pub const PER_HOST_IN_FLIGHT: u32 = 256;
/// `limits.global_in_flight`
pub const GLOBAL_IN_FLIGHT: u32 = 4096;
/// `limits.retry_after`
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// `limits.max_connections`: open client connections at most.
pub const MAX_CONNECTIONS: u32 = 10_000;
/// `limits.max_request_body`: 10 MiB.
pub const MAX_REQUEST_BODY: u64 = 10 << 20;
/// `retry.budget_ratio`
pub const RETRY_BUDGET_RATIO: f64 = 0.2;
/// `retry.budget_min`
pub const RETRY_BUDGET_MIN: u32 = 10;
/// `route.upstream_header`
pub const UPSTREAM_HEADER: &str = "x-ringward-host";
/// `route.bounded_load_factor`
pub const BOUNDED_LOAD_FACTOR: f64 = 1.25;
/// `route.bounded_load_floor`
pub const BOUNDED_LOAD_FLOOR: u32 = 16;
/// `health.active.path`
pub const PROBE_PATH: &str = "/healthz";
/// `health.active.interval`
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// `health.active.timeout`
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(250);
/// `reload.poll_interval`
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// `access_log.enabled`: off. Measured in the peer benchmark, a line per request costs 5-9%
/// of throughput on a 2-core machine, over the 3% Ringward allows a default to cost
/// (docs/benchmarks.md, "The access log's cost"); one line of config turns it on.
pub const ACCESS_LOG_ENABLED: bool = false;
/// `upstream.tunnel_idle_timeout` (HAProxy's `timeout tunnel` is commonly an hour, nginx's
/// `proxy_read_timeout` 60 s: ten minutes keeps a quiet WebSocket without a keep-alive ping
/// open, and still frees the abandoned ones)
pub const TUNNEL_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// `limits.max_tunnels`
pub const MAX_TUNNELS: u32 = 10_000;
/// `discovery.etcd.prefix`
pub const ETCD_PREFIX: &str = "/ringward/";
/// `discovery.etcd.connect_timeout`
pub const ETCD_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// `discovery.etcd.request_timeout`
pub const ETCD_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// `discovery.etcd.remove_delay`: a host whose key is deleted stays in the ring this long
/// (a restart re-registers within it: no churn).
pub const ETCD_REMOVE_DELAY: Duration = Duration::from_secs(5);
