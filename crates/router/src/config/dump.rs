//! The effective config as TOML: every section and key, defaults filled in, the admin token
//! redacted (`ringward check --print`, `GET /admin/config`).
//!
//! The text parses back with [`Config::from_toml_str`] into the same config, except that the
//! admin token becomes [`REDACTED_TOKEN`]. Its sections and keys are those of
//! `docs/configuration.md`, in its order. It cannot fall behind: a field added to a config
//! struct does not compile until it is written here (each struct is destructured without
//! `..`), and the tests fail when a key documented there is missing from the dump, or the
//! other way round.

use std::fmt::Write as _;
use std::time::Duration;

use health::guard::GuardConfig;
use health::{HealthConfig, PanicPolicy};

use super::types::{
    AccessLogConfig, ActiveProbeConfig, AdminConfig, Config, DiscoveryConfig, EtcdConfig,
    HealthSettings, HostConfig, LimitsConfig, ListenConfig, ReloadConfig, RetryConfig, RouteConfig,
    TlsCertFiles, TlsConfig, UpstreamConfig,
};

/// What the dump writes in place of the admin token (`admin.token = "<redacted>"`).
pub const REDACTED_TOKEN: &str = "<redacted>";

impl Config {
    /// The effective config as TOML: every section and key with its value (defaults filled
    /// in), in the order of `docs/configuration.md`. The admin token is written as
    /// [`REDACTED_TOKEN`]; where it came from (`token` or `token_env`) is not kept in a
    /// [`Config`], so it is always shown as `token`. Parsing the text back with
    /// [`Config::from_toml_str`] gives the same config with that token.
    pub fn to_toml_redacted(&self) -> String {
        // Every struct is taken apart without `..`: a field added to the config does not
        // compile until it is written here too (and a test fails until it is documented).
        let Config {
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
        } = self;
        let mut out = Toml::default();
        out.comment("Ringward's effective configuration: every key, defaults filled in.");
        out.comment("The admin token is redacted.");

        let ListenConfig {
            addr,
            header_read_timeout,
            http2_keep_alive_interval,
            shutdown_grace,
            max_header_bytes,
            workers,
            tls,
        } = listen;
        out.table("listen");
        out.string("addr", &addr.to_string());
        out.duration("header_read_timeout", *header_read_timeout);
        out.duration("http2_keep_alive_interval", *http2_keep_alive_interval);
        out.duration("shutdown_grace", *shutdown_grace);
        out.bytes("max_header_bytes", *max_header_bytes as u64);
        out.int("workers", u64::from(*workers));
        match tls {
            Some(TlsConfig {
                addr,
                handshake_timeout,
                files,
                certs: _,
            }) => {
                out.table("listen.tls");
                out.string("addr", &addr.to_string());
                out.string("cert", &files[0].cert.display().to_string());
                out.string("key", &files[0].key.display().to_string());
                out.duration("handshake_timeout", *handshake_timeout);
                for TlsCertFiles { cert, key } in &files[1..] {
                    out.array_table("listen.tls.certificates");
                    out.string("cert", &cert.display().to_string());
                    out.string("key", &key.display().to_string());
                }
            }
            None => out.comment("[listen.tls]: not set (no TLS listener)"),
        }

        let AdminConfig { addr, token } = admin;
        out.table("admin");
        out.string("addr", &addr.to_string());
        if token.is_some() {
            out.string("token", REDACTED_TOKEN);
            out.comment("token_env: not kept (a token read from token_env is shown as token)");
        } else {
            out.comment("token: not set (every POST is answered 401)");
            out.comment("token_env: not set");
        }

        let RouteConfig {
            key,
            upstream_header,
            bounded_load_factor,
            bounded_load_floor,
        } = route;
        out.table("route");
        let key = key.iter().map(|k| toml::Value::String(k.to_string()));
        out.value("key", toml::Value::Array(key.collect()));
        out.string("upstream_header", upstream_header.as_str());
        out.float("bounded_load_factor", *bounded_load_factor);
        out.int("bounded_load_floor", u64::from(*bounded_load_floor));

        let UpstreamConfig {
            connect_timeout,
            response_header_timeout,
            request_timeout,
            body_idle_timeout,
            pool_idle_timeout,
            pool_max_idle_per_host,
            tunnel_idle_timeout,
            resolve_interval,
        } = upstream;
        out.table("upstream");
        out.duration("connect_timeout", *connect_timeout);
        out.duration("response_header_timeout", *response_header_timeout);
        out.duration("request_timeout", *request_timeout);
        out.duration("body_idle_timeout", *body_idle_timeout);
        out.duration("pool_idle_timeout", *pool_idle_timeout);
        out.int("pool_max_idle_per_host", u64::from(*pool_max_idle_per_host));
        out.duration("tunnel_idle_timeout", *tunnel_idle_timeout);
        out.duration("resolve_interval", *resolve_interval);

        let LimitsConfig {
            per_host_in_flight,
            global_in_flight,
            retry_after,
            max_connections,
            max_request_body,
            max_tunnels,
        } = limits;
        out.table("limits");
        out.int("per_host_in_flight", u64::from(*per_host_in_flight));
        out.int("global_in_flight", u64::from(*global_in_flight));
        out.duration("retry_after", *retry_after);
        out.int("max_connections", u64::from(*max_connections));
        out.bytes("max_request_body", *max_request_body);
        out.int("max_tunnels", u64::from(*max_tunnels));

        let RetryConfig {
            budget_ratio,
            budget_min,
            rescue_on_eject,
        } = retry;
        out.table("retry");
        out.float("budget_ratio", *budget_ratio);
        out.int("budget_min", u64::from(*budget_min));
        out.boolean("rescue_on_eject", *rescue_on_eject);

        for HostConfig { name, addr, weight } in hosts {
            out.array_table("hosts");
            out.string("name", name);
            out.string("addr", &addr.to_string());
            out.int("weight", u64::from(*weight));
        }

        let HealthSettings { active, passive } = health;
        let HealthConfig {
            stuck_after,
            exhausted_for,
            consecutive_gateway_failures,
            failure_rate,
            failure_rate_min_requests,
            failure_rate_window,
            hung_after,
            hung_latency_multiple,
            hung_min_in_flight,
            probe_failures,
            ejection_base,
            ejection_max,
            strike_decay,
            max_ejected_share,
            panic_threshold,
            panic_policy,
            probation_steps,
            probation_step,
            probation_successes,
            probation_quiet_step,
            probation_failures,
        } = passive;
        // `[health]`'s own keys come before `[health.active]`: after that header they would
        // belong to it.
        out.table("health");
        out.duration("stuck_after", *stuck_after);
        out.duration("exhausted_for", *exhausted_for);
        out.int(
            "consecutive_gateway_failures",
            u64::from(*consecutive_gateway_failures),
        );
        out.float("failure_rate", *failure_rate);
        out.int(
            "failure_rate_min_requests",
            u64::from(*failure_rate_min_requests),
        );
        out.duration("failure_rate_window", *failure_rate_window);
        out.duration("hung_after", *hung_after);
        out.int("hung_latency_multiple", u64::from(*hung_latency_multiple));
        out.int("hung_min_in_flight", u64::from(*hung_min_in_flight));
        out.int("probe_failures", u64::from(*probe_failures));
        out.duration("ejection_base", *ejection_base);
        out.duration("ejection_max", *ejection_max);
        out.duration("strike_decay", *strike_decay);
        out.float("max_ejected_share", *max_ejected_share);
        out.float("panic_threshold", *panic_threshold);
        out.string(
            "panic_policy",
            match panic_policy {
                PanicPolicy::FailOpen => "fail_open",
                PanicPolicy::FailClosed => "fail_closed",
            },
        );
        out.int("probation_steps", u64::from(*probation_steps));
        out.duration("probation_step", *probation_step);
        out.int("probation_successes", u64::from(*probation_successes));
        out.duration("probation_quiet_step", *probation_quiet_step);
        out.int("probation_failures", u64::from(*probation_failures));

        let ActiveProbeConfig {
            path,
            interval,
            timeout,
        } = active;
        out.table("health.active");
        out.string("path", path);
        out.duration("interval", *interval);
        out.duration("timeout", *timeout);

        let GuardConfig {
            enabled,
            dominant_share,
            implicated_share,
            overrepresentation,
            min_in_flight,
            stuck_after,
            stuck_latency_multiple,
            window,
            quarantine,
            quarantine_max,
            forget_after,
            max_quarantined,
            baseline_half_life,
            top_k,
        } = guard;
        out.table("guard");
        out.boolean("enabled", *enabled);
        out.float("dominant_share", *dominant_share);
        out.float("implicated_share", *implicated_share);
        out.float("overrepresentation", *overrepresentation);
        out.int("min_in_flight", u64::from(*min_in_flight));
        out.duration("stuck_after", *stuck_after);
        out.int("stuck_latency_multiple", u64::from(*stuck_latency_multiple));
        out.duration("window", *window);
        out.duration("quarantine", *quarantine);
        out.duration("quarantine_max", *quarantine_max);
        out.duration("forget_after", *forget_after);
        out.int("max_quarantined", *max_quarantined as u64);
        out.duration("baseline_half_life", *baseline_half_life);
        out.int("top_k", *top_k as u64);

        let ReloadConfig {
            watch,
            poll_interval,
        } = reload;
        out.table("reload");
        out.boolean("watch", *watch);
        out.duration("poll_interval", *poll_interval);

        let AccessLogConfig {
            enabled,
            path,
            format,
        } = access_log;
        out.table("access_log");
        out.boolean("enabled", *enabled);
        out.string("path", &path.to_string());
        out.string("format", &format.to_string());

        let DiscoveryConfig { etcd } = discovery;
        match etcd {
            Some(EtcdConfig {
                endpoints,
                prefix,
                name,
                connect_timeout,
                request_timeout,
                remove_delay,
            }) => {
                out.table("discovery.etcd");
                let list = endpoints.iter().map(|e| toml::Value::String(e.clone()));
                out.value("endpoints", toml::Value::Array(list.collect()));
                out.string("prefix", prefix);
                match name {
                    Some(n) => out.string("name", n),
                    None => {
                        out.comment("name: not set (the machine's host name and the process ID)")
                    }
                }
                out.duration("connect_timeout", *connect_timeout);
                out.duration("request_timeout", *request_timeout);
                out.duration("remove_delay", *remove_delay);
            }
            None => out.comment("[discovery.etcd]: not set (hosts only from [[hosts]])"),
        }

        out.0
    }
}

/// The TOML being written: headers, `key = value` lines (values written by the `toml`
/// crate, so strings are quoted and escaped as TOML wants), comments.
#[derive(Default)]
struct Toml(String);

impl Toml {
    fn header(&mut self, header: String) {
        if !self.0.is_empty() {
            self.0.push('\n');
        }
        self.0.push_str(&header);
        self.0.push('\n');
    }

    fn table(&mut self, name: &str) {
        self.header(format!("[{name}]"));
    }

    fn array_table(&mut self, name: &str) {
        self.header(format!("[[{name}]]"));
    }

    fn comment(&mut self, text: &str) {
        let _ = writeln!(self.0, "# {text}");
    }

    fn value(&mut self, key: &str, value: toml::Value) {
        let _ = writeln!(self.0, "{key} = {value}");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.value(key, toml::Value::String(value.to_owned()));
    }

    fn boolean(&mut self, key: &str, value: bool) {
        self.value(key, toml::Value::Boolean(value));
    }

    fn int(&mut self, key: &str, value: u64) {
        match i64::try_from(value) {
            Ok(n) => self.value(key, toml::Value::Integer(n)),
            // Only a byte size could be this large, and those are written as strings.
            Err(_) => self.string(key, &format!("{value}B")),
        }
    }

    fn float(&mut self, key: &str, value: f64) {
        self.value(key, toml::Value::Float(value));
    }

    /// A duration as the config writes it: `"500ms"`, `"10s"`, `"1m 30s"`.
    fn duration(&mut self, key: &str, value: Duration) {
        self.string(key, &humantime::format_duration(value).to_string());
    }

    /// A byte size in the largest unit that divides it exactly (`"10MiB"`, `"1MB"`), else
    /// in bytes (`"1000B"`).
    fn bytes(&mut self, key: &str, value: u64) {
        const UNITS: [(u64, &str); 6] = [
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
            (1_000_000_000, "GB"),
            (1_000_000, "MB"),
            (1_000, "KB"),
        ];
        let text = UNITS
            .iter()
            .find(|(size, _)| value != 0 && value % size == 0)
            .map_or_else(
                || format!("{value}B"),
                |(size, unit)| format!("{}{unit}", value / size),
            );
        self.string(key, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/configuration.md: the tables the dump must cover.
    const CONFIGURATION_MD: &str = include_str!("../../../../docs/configuration.md");

    /// Every documented key set, each to a value other than its default (a test checks
    /// that), so a dump that wrote a default instead of the value would not round-trip.
    /// `admin.token_env` is the one key left out: it excludes `admin.token` (a test of
    /// its own covers it).
    const EVERY_KEY_TEMPLATE: &str = r#"
[listen]
addr = "0.0.0.0:18080"
header_read_timeout = "7s"
http2_keep_alive_interval = "1m 30s"
shutdown_grace = "2500ms"
max_header_bytes = "100KB"
workers = 3

[listen.tls]
addr = "0.0.0.0:18443"
cert = "@DIR@/default.crt"
key = "@DIR@/default.key"
handshake_timeout = "4s"

[[listen.tls.certificates]]
cert = "@DIR@/api.crt"
key = "@DIR@/api.key"

[admin]
addr = "[::1]:19901"
token = "s3cret \"quoted\" token"

[route]
key = ["header:x-val", "host_label:web.example.com", "path_segment:2", "query:val"]
upstream_header = "x-served-by"
bounded_load_factor = 1.5
bounded_load_floor = 8

[upstream]
connect_timeout = "750ms"
response_header_timeout = "5s"
request_timeout = "45s"
body_idle_timeout = "3s"
pool_idle_timeout = "2m"
pool_max_idle_per_host = 7
tunnel_idle_timeout = "15m"
resolve_interval = "30s"

[limits]
per_host_in_flight = 100
global_in_flight = 1000
retry_after = "3s"
max_connections = 5000
max_request_body = 1048577
max_tunnels = 500

[retry]
budget_ratio = "15%"
budget_min = 4
rescue_on_eject = false

[[hosts]]
name = "host-a"
addr = "10.0.0.11:9001"
weight = 3

[[hosts]]
name = "host-b"
addr = "[fd00::12]:9001"

[[hosts]]
name = "host-c"
addr = "worker-3.internal:9001"

[health]
stuck_after = "12s"
exhausted_for = "750ms"
consecutive_gateway_failures = 6
failure_rate = 0.6
failure_rate_min_requests = 25
failure_rate_window = "10s"
hung_after = "600ms"
hung_latency_multiple = 9
hung_min_in_flight = 3
probe_failures = 4
ejection_base = "6s"
ejection_max = "1h 30m"
strike_decay = "90s"
max_ejected_share = "40%"
panic_threshold = 0.45
panic_policy = "fail_closed"
probation_steps = 4
probation_step = "2s"
probation_successes = 6
probation_quiet_step = "4s 500ms"
probation_failures = 3

[health.active]
path = "/ready?deep=1"
interval = "1s"
timeout = "300ms"

[guard]
enabled = false
dominant_share = 0.6
implicated_share = 0.3
overrepresentation = 2.5
min_in_flight = 3
stuck_after = "200ms"
stuck_latency_multiple = 5
window = "2m"
quarantine = "45s"
quarantine_max = "20m"
forget_after = "2h"
max_quarantined = 10
baseline_half_life = "1m"
top_k = 16

[reload]
watch = false
poll_interval = "5s"

[access_log]
enabled = true
path = "/var/log/ringward/access.log"
format = "text"

[discovery.etcd]
endpoints = ["10.0.0.5:2379", "http://etcd-2.internal:2379"]
prefix = "/fleet-a/"
name = "edge-1"
connect_timeout = "2s"
request_timeout = "4s"
remove_delay = "8s"
"#;

    /// `EVERY_KEY_TEMPLATE` with its certificate files written (a TLS section is read with
    /// its files).
    fn every_key() -> &'static str {
        static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let dir = crate::tls::testing::tempdir("dump");
            crate::tls::testing::write_pair(&dir, "default", &["example.com"]);
            crate::tls::testing::write_pair(&dir, "api", &["api.example.com"]);
            EVERY_KEY_TEMPLATE.replace("@DIR@", &dir.display().to_string())
        });
        &TEXT
    }

    const MINIMAL: &str = "[[hosts]]\nname = \"host-a\"\naddr = \"127.0.0.1:9001\"\n";

    /// Sections that are absent by default: the dump names them in a comment
    /// (`# [listen.tls]: not set ...`) instead of writing their keys.
    const OPTIONAL_SECTIONS: [&str; 3] =
        ["listen.tls", "listen.tls.certificates", "discovery.etcd"];

    /// Whether `dump` says `section` (one of `OPTIONAL_SECTIONS`) is not set.
    fn says_unset(dump: &str, section: &str) -> bool {
        OPTIONAL_SECTIONS.contains(&section) && {
            let parent = section.trim_end_matches(".certificates");
            dump.lines()
                .any(|l| l.starts_with(&format!("# [{parent}]: not set")))
        }
    }

    /// Documented keys with no value to show when unset: the dump names them in a comment
    /// (`# token: not set ...`) instead.
    const COMMENTED_WHEN_UNSET: [(&str, &str); 2] = [("admin", "token"), ("admin", "token_env")];

    fn parse(text: &str) -> Config {
        Config::from_toml_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn table(dump: &str) -> toml::Table {
        dump.parse()
            .unwrap_or_else(|e| panic!("the dump is not TOML: {e}\n{dump}"))
    }

    /// One documented key: its section (`listen`, `health.active`, `hosts`), its name and
    /// the default column as written.
    #[derive(Debug)]
    struct DocKey {
        section: String,
        key: String,
        default: String,
    }

    /// The `| `key` | default | meaning |` rows of docs/configuration.md, each under the
    /// section of its `## `[section]`` heading, or of a subsection named in the prose just
    /// above its table (`` `[health.active]`, the prober``).
    fn documented_keys() -> Vec<DocKey> {
        let mut keys = Vec::new();
        let mut heading: Option<String> = None;
        let mut prose_section: Option<String> = None;
        let mut table_section: Option<String> = None;
        for line in CONFIGURATION_MD.lines() {
            let line = line.trim();
            if let Some(title) = line.strip_prefix("## ") {
                heading = title
                    .strip_prefix("`[")
                    .and_then(|t| t.split_once("]`"))
                    .map(|(name, _)| name.trim_matches(['[', ']']).to_owned());
                prose_section = None;
                table_section = None;
                continue;
            }
            let Some(section) = &heading else { continue };
            if !line.starts_with('|') {
                table_section = None;
                for (i, part) in line.split('`').enumerate() {
                    let named = part
                        .strip_prefix('[')
                        .and_then(|p| p.strip_suffix(']'))
                        .map(|p| p.trim_matches(['[', ']']));
                    if let Some(named) = named.filter(|_| i % 2 == 1) {
                        if named == section || named.starts_with(&format!("{section}.")) {
                            prose_section = Some(named.to_owned());
                        }
                    }
                }
                continue;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if cells.len() >= 3 && cells[0] == "key" && cells[1] == "default" {
                table_section = Some(prose_section.take().unwrap_or_else(|| section.clone()));
                continue;
            }
            let Some(table) = &table_section else {
                continue;
            };
            if let Some(key) = cells[0].strip_prefix('`').and_then(|k| k.strip_suffix('`')) {
                keys.push(DocKey {
                    section: table.clone(),
                    key: key.to_owned(),
                    default: cells.get(1).copied().unwrap_or("").to_owned(),
                });
            }
        }
        keys
    }

    /// The table of `section` (`health.active`; `hosts` is the first `[[hosts]]` entry).
    fn section<'t>(root: &'t toml::Table, section: &str) -> Option<&'t toml::Table> {
        let mut table = root;
        for part in section.split('.') {
            table = match table.get(part)? {
                toml::Value::Table(t) => t,
                toml::Value::Array(items) => items.first()?.as_table()?,
                _ => return None,
            };
        }
        Some(table)
    }

    /// The lines of the dump between `[section]` (or `[[section]]`) and the next header.
    fn section_text(dump: &str, name: &str) -> String {
        let headers = [format!("[{name}]"), format!("[[{name}]]")];
        let mut inside = false;
        let mut out = String::new();
        for line in dump.lines() {
            if line.starts_with('[') {
                inside = headers.iter().any(|h| h == line);
            } else if inside {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn assert_same(a: &Config, b: &Config) {
        // `Config` has no `PartialEq` (its sections hold header names, key sources, floats);
        // its derived `Debug` prints every field, so equal text is an equal config. The
        // admin token's `Debug` is redacted: callers compare it themselves.
        assert_eq!(format!("{a:#?}"), format!("{b:#?}"));
    }

    #[test]
    fn the_docs_parse_into_every_section() {
        let keys = documented_keys();
        let sections: std::collections::BTreeSet<&str> =
            keys.iter().map(|k| k.section.as_str()).collect();
        let expected = [
            "access_log",
            "admin",
            "guard",
            "health",
            "health.active",
            "hosts",
            "limits",
            "listen",
            "listen.tls",
            "listen.tls.certificates",
            "discovery.etcd",
            "reload",
            "retry",
            "route",
            "upstream",
        ];
        for s in expected {
            assert!(
                sections.contains(s),
                "no keys found for [{s}]: {sections:?}"
            );
        }
        assert!(
            keys.iter()
                .any(|k| k.section == "health.active" && k.key == "interval"),
            "{keys:?}"
        );
        assert!(
            keys.iter()
                .any(|k| k.section == "health" && k.key == "ejection_max"),
            "{keys:?}"
        );
    }

    #[test]
    fn every_key_in_configuration_md_is_in_the_dump() {
        for (name, text) in [("defaults", MINIMAL), ("every key set", every_key())] {
            let dump = parse(text).to_toml_redacted();
            let root = table(&dump);
            let mut missing = Vec::new();
            for k in documented_keys() {
                let present = section(&root, &k.section).is_some_and(|t| t.contains_key(&k.key));
                let commented = COMMENTED_WHEN_UNSET
                    .contains(&(k.section.as_str(), k.key.as_str()))
                    && section_text(&dump, &k.section)
                        .lines()
                        .any(|l| l.starts_with(&format!("# {}:", k.key)));
                if !present && !commented && !says_unset(&dump, &k.section) {
                    missing.push(format!("{}.{}", k.section, k.key));
                }
            }
            assert!(
                missing.is_empty(),
                "{name}: documented in docs/configuration.md but missing from the dump: {missing:?}\n{dump}"
            );
        }
    }

    #[test]
    fn every_key_in_the_dump_is_in_configuration_md() {
        let documented: Vec<String> = documented_keys()
            .iter()
            .map(|k| format!("{}.{}", k.section, k.key))
            .collect();
        let root = table(&parse(every_key()).to_toml_redacted());
        let mut undocumented = Vec::new();
        let mut walk = vec![(String::new(), &root)];
        while let Some((prefix, t)) = walk.pop() {
            for (key, value) in t {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match value {
                    toml::Value::Table(sub) => walk.push((path, sub)),
                    toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
                        for item in items.iter().filter_map(toml::Value::as_table) {
                            walk.push((path.clone(), item));
                        }
                    }
                    _ if !documented.contains(&path) => undocumented.push(path),
                    _ => {}
                }
            }
        }
        assert!(
            undocumented.is_empty(),
            "not in docs/configuration.md: {undocumented:?}"
        );
    }

    #[test]
    fn the_fixture_sets_every_documented_key_to_a_non_default_value() {
        let fixture = table(every_key());
        let set = table(&parse(every_key()).to_toml_redacted());
        let defaults = table(&parse(MINIMAL).to_toml_redacted());
        for k in documented_keys() {
            if (k.section.as_str(), k.key.as_str()) == ("admin", "token_env") {
                continue;
            }
            let path = format!("{}.{}", k.section, k.key);
            assert!(
                section(&fixture, &k.section).is_some_and(|t| t.contains_key(&k.key)),
                "EVERY_KEY does not set {path}"
            );
            if (k.section == "hosts" && k.key != "weight") || k.default == "required" {
                continue; // required: no default to differ from
            }
            let value = section(&set, &k.section).and_then(|t| t.get(&k.key));
            let default = section(&defaults, &k.section).and_then(|t| t.get(&k.key));
            assert_ne!(value, default, "EVERY_KEY sets {path} to its default");
        }
    }

    #[test]
    fn the_dump_parses_back_into_the_same_config_with_the_token_redacted() {
        for text in [MINIMAL, every_key()] {
            let config = parse(text);
            let dump = config.to_toml_redacted();
            let back = Config::from_toml_str(&dump)
                .unwrap_or_else(|e| panic!("the dump does not parse back: {e}\n{dump}"));
            assert_same(&config, &back);
            match (&config.admin.token, &back.admin.token) {
                (None, None) => {}
                (Some(_), Some(t)) => assert_eq!(t.as_bytes(), REDACTED_TOKEN.as_bytes()),
                (a, b) => panic!("token {a:?} came back as {b:?}"),
            }
            // A fixed point: the dump of the parsed dump is the same text.
            assert_eq!(back.to_toml_redacted(), dump);
        }
    }

    #[test]
    fn the_documented_defaults_are_the_dumped_defaults() {
        // Each default of docs/configuration.md that is a TOML value, written into a config
        // file, must give the config the dump shows when nothing is set.
        let mut file = toml::Table::new();
        let mut checked = 0;
        for k in documented_keys() {
            let cell = k.default.trim_matches('`');
            let Ok(parsed) = format!("v = {cell}").parse::<toml::Table>() else {
                continue; // `none`, `required`
            };
            if OPTIONAL_SECTIONS.contains(&k.section.as_str()) {
                // Such a section needs its required keys too (checked in the TLS tests).
                continue;
            }
            let Some(value) = parsed.get("v").cloned() else {
                continue;
            };
            let mut t = &mut file;
            for part in k.section.split('.') {
                if k.section == "hosts" {
                    break;
                }
                t = t
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .expect("a table");
            }
            if k.section != "hosts" {
                t.insert(k.key.clone(), value);
                checked += 1;
            }
        }
        assert!(checked > 60, "only {checked} documented defaults read");
        let text = format!("{MINIMAL}{}", toml::to_string(&file).expect("TOML"));
        let documented = parse(&text);
        let actual = parse(MINIMAL);
        assert_eq!(
            documented.to_toml_redacted(),
            actual.to_toml_redacted(),
            "a default in docs/configuration.md is not the real one"
        );
    }

    #[test]
    fn the_token_is_never_in_the_dump() {
        let literal = parse(&format!("{MINIMAL}[admin]\ntoken = \"s3cret-literal\"\n"));
        let dump = literal.to_toml_redacted();
        assert!(!dump.contains("s3cret-literal"), "{dump}");
        assert!(
            dump.contains(&format!("token = \"{REDACTED_TOKEN}\"")),
            "{dump}"
        );

        // From the environment: cargo sets CARGO_MANIFEST_DIR for the test process, a value
        // that appears nowhere else in a dump.
        let secret = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let from_env = parse(&format!(
            "{MINIMAL}[admin]\ntoken_env = \"CARGO_MANIFEST_DIR\"\n"
        ));
        assert_eq!(
            from_env.admin.token.as_ref().map(|t| t.as_bytes()),
            Some(secret.as_bytes())
        );
        let dump = from_env.to_toml_redacted();
        assert!(!dump.contains(&secret), "{dump}");
        let back = parse(&dump);
        assert_eq!(
            back.admin.token.as_ref().map(|t| t.as_bytes()),
            Some(REDACTED_TOKEN.as_bytes())
        );
    }

    #[test]
    fn values_are_written_as_a_person_would() {
        let dump = parse(MINIMAL).to_toml_redacted();
        for line in [
            "addr = \"127.0.0.1:8080\"",
            "max_header_bytes = \"64KiB\"",
            "max_request_body = \"10MiB\"",
            "key = [\"header:x-val\", \"path_segment:1\"]",
            "interval = \"500ms\"",
            "quarantine_max = \"10m\"",
            "forget_after = \"1h\"",
            "bounded_load_factor = 1.25",
            "overrepresentation = 3.0",
            "panic_policy = \"fail_open\"",
            "path = \"-\"",
            "# token: not set (every POST is answered 401)",
        ] {
            assert!(dump.lines().any(|l| l == line), "no line `{line}`:\n{dump}");
        }
        let every = parse(every_key()).to_toml_redacted();
        for line in [
            "max_header_bytes = \"100KB\"",
            "max_request_body = \"1048577B\"",
            "http2_keep_alive_interval = \"1m 30s\"",
            "ejection_max = \"1h 30m\"",
            "addr = \"[fd00::12]:9001\"",
            "addr = \"worker-3.internal:9001\"",
        ] {
            assert!(
                every.lines().any(|l| l == line),
                "no line `{line}`:\n{every}"
            );
        }
    }
}
