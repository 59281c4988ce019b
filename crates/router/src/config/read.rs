//! Reading a config file: parse the TOML, walk every section collecting every problem with
//! its key path, apply the defaults, check the rules that span keys.

use std::net::SocketAddr;
use std::path::Path;

use http::HeaderName;

use super::defaults;
use super::error::ConfigErrors;
use super::guard;
use super::reader::{Errors, Section};
use super::types::*;
use crate::proxy::key::KeySource;

impl Config {
    /// Parses and validates a config file's text.
    ///
    /// # Errors
    /// Every problem found, each with its key path.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigErrors> {
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let e: toml::de::Error = e;
                let line = e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
                let path = match line {
                    Some(l) => format!("config (line {l})"),
                    None => "config".to_owned(),
                };
                return Err(ConfigErrors::single(
                    path,
                    format!("not valid TOML: {}", e.message().trim()),
                ));
            }
        };
        let mut errors = Errors::default();
        let config = read(&table, &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors.into_errors())
        }
    }

    /// Reads and validates the config file at `path`.
    ///
    /// # Errors
    /// The file cannot be read, or every problem found in it.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single("config", format!("cannot read {}: {e}", path.display()))
        })?;
        Config::from_toml_str(&text)
    }
}

fn addr_or_default(
    section: &mut Section<'_>,
    key: &'static str,
    default: &str,
    errors: &mut Errors,
) -> SocketAddr {
    section.socket_addr(key, errors).unwrap_or_else(|| {
        default
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    })
}

fn read(table: &toml::Table, errors: &mut Errors) -> Config {
    let mut root = Section::new(Some(table), "");

    let mut listen_s = root.table("listen", errors);
    let listen = ListenConfig {
        addr: addr_or_default(&mut listen_s, "addr", defaults::LISTEN_ADDR, errors),
        header_read_timeout: listen_s.duration(
            "header_read_timeout",
            defaults::HEADER_READ_TIMEOUT,
            errors,
        ),
        http2_keep_alive_interval: listen_s.duration(
            "http2_keep_alive_interval",
            defaults::HTTP2_KEEP_ALIVE_INTERVAL,
            errors,
        ),
        shutdown_grace: listen_s.duration("shutdown_grace", defaults::SHUTDOWN_GRACE, errors),
        max_header_bytes: read_max_header_bytes(&mut listen_s, errors),
        workers: read_workers(&mut listen_s, errors),
        tls: super::tls::read(&mut listen_s, errors),
    };
    listen_s.finish(errors);

    let admin = read_admin(&mut root, errors);
    if admin.addr == listen.addr && admin.addr.port() != 0 {
        errors.push(
            "admin.addr",
            format!("is the same address as listen.addr ({})", listen.addr),
        );
    }
    if let Some(tls) = &listen.tls
        && tls.addr.port() != 0
    {
        for (other, key) in [(listen.addr, "listen.addr"), (admin.addr, "admin.addr")] {
            if tls.addr == other {
                errors.push(
                    "listen.tls.addr",
                    format!("is the same address as {key} ({other})"),
                );
            }
        }
    }

    let route = read_route(&mut root, errors);

    let mut up = root.table("upstream", errors);
    let upstream = UpstreamConfig {
        connect_timeout: up.duration("connect_timeout", defaults::CONNECT_TIMEOUT, errors),
        response_header_timeout: up.duration(
            "response_header_timeout",
            defaults::RESPONSE_HEADER_TIMEOUT,
            errors,
        ),
        request_timeout: up.duration("request_timeout", defaults::REQUEST_TIMEOUT, errors),
        body_idle_timeout: up.duration("body_idle_timeout", defaults::BODY_IDLE_TIMEOUT, errors),
        pool_idle_timeout: up.duration("pool_idle_timeout", defaults::POOL_IDLE_TIMEOUT, errors),
        pool_max_idle_per_host: up.u32_or(
            "pool_max_idle_per_host",
            defaults::POOL_MAX_IDLE_PER_HOST,
            errors,
        ),
        tunnel_idle_timeout: up.duration(
            "tunnel_idle_timeout",
            defaults::TUNNEL_IDLE_TIMEOUT,
            errors,
        ),
        resolve_interval: up.duration("resolve_interval", defaults::RESOLVE_INTERVAL, errors),
    };
    // Cross-key rules compare only values that were read (or left to their default): a
    // value that failed to parse was replaced by its default, and comparing against that
    // would report an error the user never wrote.
    if both_valid(&up, ["response_header_timeout", "request_timeout"], errors)
        && upstream.response_header_timeout > upstream.request_timeout
    {
        errors.push(
            up.path_of("response_header_timeout"),
            "must not be longer than upstream.request_timeout",
        );
    }
    up.finish(errors);

    let mut lim = root.table("limits", errors);
    let limits = LimitsConfig {
        per_host_in_flight: lim.positive_u32(
            "per_host_in_flight",
            defaults::PER_HOST_IN_FLIGHT,
            errors,
        ),
        global_in_flight: lim.positive_u32("global_in_flight", defaults::GLOBAL_IN_FLIGHT, errors),
        retry_after: lim.duration("retry_after", defaults::RETRY_AFTER, errors),
        max_connections: lim.positive_u32("max_connections", defaults::MAX_CONNECTIONS, errors),
        max_request_body: lim.byte_size("max_request_body", defaults::MAX_REQUEST_BODY, errors),
        max_tunnels: lim.positive_u32("max_tunnels", defaults::MAX_TUNNELS, errors),
    };
    lim.finish(errors);

    let mut rt = root.table("retry", errors);
    let retry = RetryConfig {
        budget_ratio: rt.share("budget_ratio", defaults::RETRY_BUDGET_RATIO, errors),
        budget_min: rt.u32_or("budget_min", defaults::RETRY_BUDGET_MIN, errors),
        rescue_on_eject: rt.boolean("rescue_on_eject", true, errors),
    };
    rt.finish(errors);

    let discovery = super::discovery::read(&mut root, errors);
    let hosts = read_hosts(&mut root, discovery.etcd.is_some(), errors);
    let health = read_health(&mut root, errors);
    let guard = guard::read(&mut root, errors);

    let mut rl = root.table("reload", errors);
    let reload = ReloadConfig {
        watch: rl.boolean("watch", true, errors),
        poll_interval: rl.duration("poll_interval", defaults::RELOAD_POLL_INTERVAL, errors),
    };
    rl.finish(errors);

    let access_log = read_access_log(&mut root, errors);

    root.finish(errors);
    Config {
        listen,
        admin,
        route,
        upstream,
        limits,
        retry,
        hosts,
        health,
        guard,
        reload,
        access_log,
        discovery,
    }
}

/// `[access_log]`.
fn read_access_log(root: &mut Section<'_>, errors: &mut Errors) -> AccessLogConfig {
    let mut s = root.table("access_log", errors);
    let defaults = AccessLogConfig::default();
    // Off without an [access_log] section; writing the section turns it on (as configuring
    // nginx's access_log does), unless it says `enabled = false`.
    let enabled = s.boolean("enabled", s.is_present() || defaults.enabled, errors);
    let path = match s.string("path", errors) {
        None => defaults.path,
        Some("-" | "stderr") => AccessLogPath::Stderr,
        Some("stdout") => AccessLogPath::Stdout,
        Some("") => {
            errors.push(
                s.path_of("path"),
                "must be \"-\" (standard error), \"stdout\" or a file path",
            );
            defaults.path
        }
        Some(p) => AccessLogPath::File(p.into()),
    };
    let format = match s.string("format", errors) {
        None => defaults.format,
        Some("json") => AccessLogFormat::Json,
        Some("text") => AccessLogFormat::Text,
        Some(other) => {
            errors.push(
                s.path_of("format"),
                format!("must be \"json\" or \"text\", not \"{other}\""),
            );
            defaults.format
        }
    };
    s.finish(errors);
    AccessLogConfig {
        enabled,
        path,
        format,
    }
}

/// `listen.workers`: 0 (one per core) up to `MAX_WORKERS`.
fn read_workers(s: &mut Section<'_>, errors: &mut Errors) -> u32 {
    let workers = s.u32_or("workers", defaults::WORKERS, errors);
    if workers > defaults::MAX_WORKERS {
        errors.push(
            s.path_of("workers"),
            format!(
                "must be at most {} (0: one per core)",
                defaults::MAX_WORKERS
            ),
        );
        return defaults::WORKERS;
    }
    workers
}

/// `listen.max_header_bytes`: at least hyper's minimum buffer (8 KiB; hyper panics below
/// it), at most 16 MiB (one such buffer per connection).
fn read_max_header_bytes(s: &mut Section<'_>, errors: &mut Errors) -> usize {
    let default = defaults::MAX_HEADER_BYTES;
    let bytes = s.byte_size("max_header_bytes", default as u64, errors);
    if !(MIN_HEADER_BYTES as u64..=16 << 20).contains(&bytes) {
        errors.push(
            s.path_of("max_header_bytes"),
            format!("must be between 8KiB and 16MiB (found {bytes} bytes)"),
        );
        return default;
    }
    usize::try_from(bytes).unwrap_or(default)
}

/// hyper's smallest allowed `max_buf_size`.
const MIN_HEADER_BYTES: usize = 8192;

/// True when neither key of `s` has an error yet, so a cross-key rule compares the user's
/// values (or untouched defaults), never a default substituted for a bad value.
fn both_valid(s: &Section<'_>, keys: [&str; 2], errors: &Errors) -> bool {
    keys.iter().all(|k| !errors.has_path(&s.path_of(k)))
}

fn read_admin(root: &mut Section<'_>, errors: &mut Errors) -> AdminConfig {
    let mut s = root.table("admin", errors);
    let addr = addr_or_default(&mut s, "addr", defaults::ADMIN_ADDR, errors);
    let literal = s.string("token", errors);
    let env_name = s.string("token_env", errors);
    let token = match (literal, env_name) {
        (Some(_), Some(_)) => {
            errors.push(
                s.path_of("token_env"),
                "set either admin.token or admin.token_env, not both",
            );
            None
        }
        (Some(""), None) => {
            errors.push(s.path_of("token"), "must not be empty");
            None
        }
        (Some(t), None) => Some(AdminToken::new(t)),
        (None, Some(var)) => match std::env::var(var) {
            Ok(t) if !t.is_empty() => Some(AdminToken::new(t)),
            Ok(_) => {
                errors.push(
                    s.path_of("token_env"),
                    format!("environment variable {var} is empty"),
                );
                None
            }
            Err(_) => {
                errors.push(
                    s.path_of("token_env"),
                    format!("environment variable {var} is not set"),
                );
                None
            }
        },
        (None, None) => None,
    };
    let token_errored = literal.is_some() || env_name.is_some();
    if token.is_none() && !token_errored && !addr.ip().is_loopback() {
        errors.push(
            s.path_of("token"),
            format!("required when admin.addr ({addr}) is not a loopback address (set admin.token or admin.token_env)"),
        );
    }
    s.finish(errors);
    AdminConfig { addr, token }
}

/// Headers the router or HTTP framing owns: writing the host name into one of them would
/// break the response (`content-length`) or lie about it (`date`, `retry-after`, the ORCA
/// report, the forwarding headers). Other hop-by-hop names are refused separately.
const RESERVED_RESPONSE_HEADERS: [&str; 10] = [
    "content-length",
    "transfer-encoding",
    "content-type",
    "content-encoding",
    "date",
    "host",
    health::ORCA_HEADER,
    "retry-after",
    "x-forwarded-for",
    "forwarded",
];

fn read_route(root: &mut Section<'_>, errors: &mut Errors) -> RouteConfig {
    let mut s = root.table("route", errors);
    let key = match s.strings("key", errors) {
        None => vec![
            KeySource::Header(HeaderName::from_static("x-val")),
            KeySource::PathSegment(1),
        ],
        Some(items) => {
            if items.is_empty() {
                errors.push(s.path_of("key"), "must name at least one key source");
            }
            items
                .into_iter()
                .filter_map(|(path, text)| match KeySource::parse(text) {
                    Ok(k) => Some(k),
                    Err(message) => {
                        errors.push(path, message);
                        None
                    }
                })
                .collect()
        }
    };
    let upstream_header = match s.string("upstream_header", errors) {
        None => HeaderName::from_static(defaults::UPSTREAM_HEADER),
        Some(text) => match HeaderName::try_from(text) {
            Ok(h) if RESERVED_RESPONSE_HEADERS.contains(&h.as_str()) => {
                errors.push(
                    s.path_of("upstream_header"),
                    "must not be a framing or reserved header",
                );
                HeaderName::from_static(defaults::UPSTREAM_HEADER)
            }
            Ok(h) if crate::proxy::headers::is_hop_by_hop(&h) => {
                errors.push(
                    s.path_of("upstream_header"),
                    "must not be a hop-by-hop header",
                );
                HeaderName::from_static(defaults::UPSTREAM_HEADER)
            }
            Ok(h) => h,
            Err(_) => {
                errors.push(
                    s.path_of("upstream_header"),
                    format!("`{text}` is not a valid header name"),
                );
                HeaderName::from_static(defaults::UPSTREAM_HEADER)
            }
        },
    };
    let bounded_load_factor = s.float("bounded_load_factor", defaults::BOUNDED_LOAD_FACTOR, errors);
    if bounded_load_factor != 0.0 && bounded_load_factor < 1.0 {
        errors.push(
            s.path_of("bounded_load_factor"),
            "must be 0 (off) or at least 1.0 (1.25 = a host may carry 25% more than the average)",
        );
    }
    let bounded_load_floor = s.u32_or("bounded_load_floor", defaults::BOUNDED_LOAD_FLOOR, errors);
    s.finish(errors);
    RouteConfig {
        key,
        upstream_header,
        bounded_load_factor,
        bounded_load_floor,
    }
}

/// Whether `name` can name a host: not empty, no whitespace, control character or `/` (it
/// is a path segment of the admin API and of the fleet's keys in etcd).
pub(crate) fn valid_host_name(name: &str) -> bool {
    !name.trim().is_empty()
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '/')
}

/// `[[hosts]]`; none is an error unless hosts come from `[discovery.etcd]`.
fn read_hosts(root: &mut Section<'_>, discovered: bool, errors: &mut Errors) -> Vec<HostConfig> {
    let sections = root.tables("hosts", errors);
    if sections.is_empty() && !discovered {
        errors.push(
            "hosts",
            "at least one [[hosts]] entry is required (or hosts from [discovery.etcd])",
        );
    }
    if sections.len() > router_core::MAX_HOSTS {
        errors.push(
            "hosts",
            format!(
                "{} hosts is more than the ring supports ({})",
                sections.len(),
                router_core::MAX_HOSTS
            ),
        );
    }
    let mut hosts: Vec<HostConfig> = Vec::with_capacity(sections.len());
    for (i, mut s) in sections.into_iter().enumerate() {
        let name = match s.string("name", errors) {
            None => {
                errors.push(s.path_of("name"), "is required");
                None
            }
            Some(n) if n.trim().is_empty() => {
                errors.push(s.path_of("name"), "must not be empty");
                None
            }
            Some(n) if !valid_host_name(n) => {
                errors.push(
                    s.path_of("name"),
                    "must not contain whitespace, control characters or '/'",
                );
                None
            }
            Some(n) => Some(n.to_owned()),
        };
        let addr = s.host_addr("addr", errors);
        if !s.has("addr") {
            errors.push(s.path_of("addr"), "is required");
        }
        let weight = s.positive_u32("weight", 1, errors);
        if let Some(name) = &name {
            if let Some(j) = hosts.iter().position(|h| &h.name == name) {
                errors.push(
                    s.path_of("name"),
                    format!("duplicate host name `{name}` (also hosts[{j}])"),
                );
            }
        }
        if let Some(addr) = &addr {
            // Literal addresses compare as addresses, names as written (two names that
            // resolve to one address are not caught here: that is DNS's say).
            if let Some(j) = hosts.iter().position(|h| &h.addr == addr) {
                errors.push(
                    s.path_of("addr"),
                    format!("duplicate address {addr} (also hosts[{j}])"),
                );
            }
            if addr.port() == 0 {
                errors.push(s.path_of("addr"), "port must not be 0");
            }
        }
        s.finish(errors);
        // Keep indexes aligned for later duplicate messages even when this entry is broken.
        hosts.push(HostConfig {
            name: name.unwrap_or_else(|| format!("\u{0}invalid-{i}")),
            addr: addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)).into()),
            weight,
        });
    }
    hosts
}

fn read_health(root: &mut Section<'_>, errors: &mut Errors) -> HealthSettings {
    let mut s = root.table("health", errors);
    let mut a = s.table("active", errors);
    let path = match a.string("path", errors) {
        None => defaults::PROBE_PATH.to_owned(),
        Some(p) if !p.starts_with('/') => {
            errors.push(a.path_of("path"), "must start with '/'");
            defaults::PROBE_PATH.to_owned()
        }
        Some(p) if p.parse::<http::uri::PathAndQuery>().is_err() => {
            errors.push(
                a.path_of("path"),
                format!("`{p}` is not a valid request path"),
            );
            defaults::PROBE_PATH.to_owned()
        }
        Some(p) => p.to_owned(),
    };
    let interval = a.duration("interval", defaults::PROBE_INTERVAL, errors);
    let timeout = a.duration("timeout", defaults::PROBE_TIMEOUT, errors);
    if both_valid(&a, ["timeout", "interval"], errors) && timeout >= interval {
        errors.push(
            a.path_of("timeout"),
            format!(
                "must be less than health.active.interval ({} >= {})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        );
    }
    a.finish(errors);
    let passive = crate::config::passive::read(&mut s, errors);
    s.finish(errors);
    HealthSettings {
        active: ActiveProbeConfig {
            path,
            interval,
            timeout,
        },
        passive,
    }
}
