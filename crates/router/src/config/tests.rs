use std::time::Duration;

use super::*;

const DOCUMENTED_EXAMPLE: &str = r#"
[listen]
addr = "127.0.0.1:8080"

[admin]
addr = "127.0.0.1:9901"
token = "change-me"

[route]
key = ["header:x-val", "host_label:web.example.com", "path_segment:1"]
upstream_header = "x-ringward-host"

[[hosts]]
name = "host-a"
addr = "127.0.0.1:9001"
weight = 1

[health.active]
path = "/healthz"
interval = "500ms"
timeout = "250ms"
"#;

fn errors_of(text: &str) -> Vec<String> {
    match Config::from_toml_str(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn has(errors: &[String], prefix: &str) -> bool {
    errors.iter().any(|e| e.starts_with(prefix))
}

#[test]
fn the_design_example_is_valid_and_defaults_fill_the_rest() {
    let c = Config::from_toml_str(DOCUMENTED_EXAMPLE).expect("valid");
    assert_eq!(c.listen.addr, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.admin.token, Some(AdminToken::new("change-me")));
    assert_eq!(c.route.key.len(), 3);
    assert_eq!(c.route.upstream_header, "x-ringward-host");
    assert_eq!(
        c.hosts,
        vec![HostConfig {
            name: "host-a".into(),
            addr: "127.0.0.1:9001".parse().unwrap(),
            weight: 1
        }]
    );
    assert_eq!(c.health.active.interval, Duration::from_millis(500));
    assert_eq!(c.health.active.timeout, Duration::from_millis(250));
    assert_eq!(c.upstream.connect_timeout, defaults::CONNECT_TIMEOUT);
    assert_eq!(c.upstream.resolve_interval, Duration::from_secs(10));
    assert_eq!(c.listen.header_read_timeout, defaults::HEADER_READ_TIMEOUT);
    assert_eq!(c.limits.per_host_in_flight, defaults::PER_HOST_IN_FLIGHT);
    assert_eq!(c.limits.max_connections, 10_000);
    assert_eq!(c.limits.max_request_body, 10 << 20);
    assert!(c.reload.watch);
    assert_eq!(c.health.passive, health::HealthConfig::default());
}

#[test]
fn every_error_is_collected_with_its_key_path() {
    let errors = errors_of(
        r#"
[listen]
addr = "not-an-addr"
header_read_timeout = "500"
bogus = 1

[admin]
addr = "0.0.0.0:9901"

[route]
key = ["header:x-val", "cookie:v"]

[limits]
per_host_in_flight = 0
global_in_flight = 0
max_connections = 0
max_request_body = "10 megs"

[[hosts]]
name = "a"
addr = "127.0.0.1:9001"

[[hosts]]
name = "b"
addr = "127.0.0.1:9002"
weight = 0

[[hosts]]
name = "a"
addr = "127.0.0.1:9001"

[[hosts]]
name = ""
addr = "localhost"

[health]
max_ejected_share = "150%"
stuck_after = "0s"

[health.active]
interval = "200ms"
timeout = "250ms"

[surprise]
x = 1
"#,
    );
    for path in [
        "listen.addr: ",
        "listen.header_read_timeout: ",
        "listen.bogus: unknown key",
        "admin.token: required when admin.addr",
        "route.key[1]: unknown key source",
        "limits.per_host_in_flight: must be greater than 0",
        "limits.global_in_flight: must be greater than 0",
        "limits.max_connections: must be greater than 0",
        "limits.max_request_body: `10 megs` is not a size",
        "hosts[1].weight: must be greater than 0",
        "hosts[2].name: duplicate host name `a`",
        "hosts[2].addr: duplicate address",
        "hosts[3].name: must not be empty",
        "hosts[3].addr: `localhost` has no port (write ip:port or name:port",
        "health.max_ejected_share: must be between 0 and 1",
        "health.stuck_after: must be greater than 0",
        "health.active.timeout: must be less than health.active.interval",
        "surprise: unknown key",
    ] {
        assert!(
            has(&errors, path),
            "missing `{path}` in:\n{}",
            errors.join("\n")
        );
    }
}

#[test]
fn wrong_types_name_the_expected_type() {
    let errors = errors_of(
        r#"
listen = 5
[[hosts]]
name = 7
addr = "127.0.0.1:9001"
weight = "heavy"
[health.active]
interval = 500
"#,
    );
    assert!(
        has(&errors, "listen: expected a table, found integer"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "hosts[0].name: expected a string"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "hosts[0].weight: expected an integer"),
        "{errors:?}"
    );
    assert!(
        has(
            &errors,
            "health.active.interval: expected a duration string"
        ),
        "{errors:?}"
    );
}

#[test]
fn host_addresses_may_be_names_with_a_port() {
    let c = Config::from_toml_str(
        r#"
[upstream]
resolve_interval = "30s"

[[hosts]]
name = "a"
addr = "worker-1.internal:9001"

[[hosts]]
name = "b"
addr = "localhost:9002"

[[hosts]]
name = "c"
addr = "[::1]:9003"

[[hosts]]
name = "d"
addr = "10.0.0.4:9004"
"#,
    )
    .expect("names are accepted");
    let name = |n: &str, port| HostAddr::Name {
        name: n.to_owned(),
        port,
    };
    let addrs: Vec<&HostAddr> = c.hosts.iter().map(|h| &h.addr).collect();
    assert_eq!(
        addrs,
        [
            &name("worker-1.internal", 9001),
            &name("localhost", 9002),
            &HostAddr::Socket("[::1]:9003".parse().unwrap()),
            &HostAddr::Socket("10.0.0.4:9004".parse().unwrap()),
        ]
    );
    assert_eq!(c.upstream.resolve_interval, Duration::from_secs(30));
}

#[test]
fn duplicate_addresses_are_refused_for_literals_and_for_the_same_name() {
    let errors = errors_of(
        r#"
[[hosts]]
name = "a"
addr = "10.0.0.1:9001"

[[hosts]]
name = "b"
addr = "10.0.0.1:9001"

[[hosts]]
name = "c"
addr = "worker-1.internal:9001"

[[hosts]]
name = "d"
addr = "Worker-1.Internal:9001"

[[hosts]]
name = "e"
addr = "worker-1.internal:9002"

[[hosts]]
name = "f"
addr = "worker-2.internal:0"
"#,
    );
    assert_eq!(
        errors,
        [
            "hosts[1].addr: duplicate address 10.0.0.1:9001 (also hosts[0])",
            "hosts[3].addr: duplicate address worker-1.internal:9001 (also hosts[2])",
            "hosts[5].addr: port must not be 0",
        ]
    );
}

#[test]
fn hosts_are_required() {
    let errors = errors_of("[listen]\naddr = \"127.0.0.1:8080\"\n");
    assert!(has(&errors, "hosts: at least one"), "{errors:?}");
    let errors = errors_of("[[hosts]]\nname = \"a\"\n");
    assert!(has(&errors, "hosts[0].addr: is required"), "{errors:?}");
}

#[test]
fn invalid_toml_is_one_error_with_a_line() {
    let errors = errors_of("[listen\naddr = 1");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("config (line 1): not valid TOML"),
        "{errors:?}"
    );
}

#[test]
fn admin_token_rules() {
    let base = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    // Non-loopback with a token is fine.
    let ok = format!("{base}[admin]\naddr = \"0.0.0.0:9901\"\ntoken = \"s3cret\"\n");
    assert!(Config::from_toml_str(&ok).is_ok());
    // Both forms at once, an empty token, a missing variable.
    let both = format!("{base}[admin]\ntoken = \"x\"\ntoken_env = \"X\"\n");
    assert!(has(&errors_of(&both), "admin.token_env: set either"));
    let empty = format!("{base}[admin]\ntoken = \"\"\n");
    assert!(has(&errors_of(&empty), "admin.token: must not be empty"));
    let missing = format!("{base}[admin]\ntoken_env = \"RINGWARD_TEST_SURELY_UNSET_VAR\"\n");
    assert!(has(
        &errors_of(&missing),
        "admin.token_env: environment variable"
    ));
    // Loopback without a token is allowed (mutations are then refused).
    let c = Config::from_toml_str(base).expect("valid");
    assert!(c.admin.token.is_none());
    assert!(!format!("{:?}", Config::from_toml_str(&ok).unwrap().admin).contains("s3cret"));
}

#[test]
fn shares_accept_numbers_and_percentages() {
    let base = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    let c = Config::from_toml_str(&format!("{base}[retry]\nbudget_ratio = \"10%\"\n")).unwrap();
    assert!((c.retry.budget_ratio - 0.1).abs() < 1e-9);
    let c = Config::from_toml_str(&format!(
        "{base}[health]\nmax_ejected_share = 0.5\npanic_policy = \"fail_closed\"\n"
    ))
    .unwrap();
    assert!((c.health.passive.max_ejected_share - 0.5).abs() < 1e-9);
    assert_eq!(
        c.health.passive.panic_policy,
        health::PanicPolicy::FailClosed
    );
    let errors = errors_of(&format!("{base}[retry]\nbudget_ratio = 1.5\n"));
    assert!(has(&errors, "retry.budget_ratio: must be between 0 and 1"));
    let errors = errors_of(&format!("{base}[health]\npanic_policy = \"maybe\"\n"));
    assert!(has(&errors, "health.panic_policy:"));
}

#[test]
fn health_crate_rules_are_reported_under_health() {
    let base = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    let errors = errors_of(&format!(
        "{base}[health]\nejection_base = \"10s\"\nejection_max = \"1s\"\n"
    ));
    assert!(
        has(
            &errors,
            "health.ejection_max: must be at least ejection_base"
        ),
        "{errors:?}"
    );
}

#[test]
fn guard_keys_are_read_and_their_rules_reported_under_guard() {
    let base = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    let config = Config::from_toml_str(&format!(
        "{base}[guard]\nenabled = false\nquarantine = \"1m\"\ndominant_share = \"60%\"\nstuck_after = \"250ms\"\n"
    ))
    .expect("valid");
    assert!(!config.guard.enabled);
    assert_eq!(config.guard.quarantine, Duration::from_secs(60));
    assert_eq!(config.guard.dominant_share, 0.6);
    assert_eq!(config.guard.stuck_after, Duration::from_millis(250));
    assert_eq!(config.guard.window, Duration::from_secs(60), "a default");
    let defaults = Config::from_toml_str(base).expect("valid");
    assert_eq!(defaults.guard, health::guard::GuardConfig::default());
    assert!(defaults.guard.enabled, "on by default");

    let errors = errors_of(&format!(
        "{base}[guard]\nimplicated_share = 0.9\nquarantine_max = \"1s\"\novrrepresentation = 2\ntop_k = 2\nmin_in_flight = 0\n"
    ));
    for want in [
        "guard.implicated_share: must be greater than 0 and at most dominant_share",
        "guard.quarantine_max: must be at least quarantine",
        "guard.ovrrepresentation",
        "guard.top_k: must be between 4 and 1024",
        "guard.min_in_flight",
    ] {
        assert!(has(&errors, want), "{want} in {errors:?}");
    }
    // A cross-key rule does not judge a value that failed to read.
    let errors = errors_of(&format!(
        "{base}[guard]\nquarantine = \"soon\"\nquarantine_max = \"10s\"\n"
    ));
    assert!(has(&errors, "guard.quarantine:"), "{errors:?}");
    assert!(!has(&errors, "guard.quarantine_max"), "{errors:?}");
}

#[test]
fn for_hosts_is_ready_to_run() {
    let c = Config::for_hosts(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
        &[("h".into(), "127.0.0.1:9".parse().unwrap())],
    );
    assert_eq!(c.hosts.len(), 1);
    assert!(c.admin.token.is_none());
    assert!(!c.reload.watch);
}

#[test]
fn cross_key_rules_do_not_judge_substituted_defaults() {
    let base = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    // A bad response_header_timeout is replaced by its 10 s default; comparing that with
    // the user's 1 s request_timeout would report an error the user never wrote.
    let errors = errors_of(&format!(
        "{base}[upstream]\nrequest_timeout = \"1s\"\nresponse_header_timeout = \"0s\"\n"
    ));
    assert_eq!(
        errors,
        ["upstream.response_header_timeout: must be greater than 0"],
        "{errors:?}"
    );
    // `500` has no unit: the default interval (500ms) stands in, and must not be compared.
    let errors = errors_of(&format!(
        "{base}[health.active]\ninterval = \"500\"\ntimeout = \"1s\"\n"
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(has(&errors, "health.active.interval: "), "{errors:?}");
    // The same for the health crate's rules: a bad ejection_base is not compared.
    let errors = errors_of(&format!(
        "{base}[health]\nejection_base = \"10\"\nejection_max = \"1s\"\n"
    ));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(has(&errors, "health.ejection_base: "), "{errors:?}");
    // With both values valid, the rules still apply.
    let errors = errors_of(&format!(
        "{base}[upstream]\nrequest_timeout = \"1s\"\nresponse_header_timeout = \"2s\"\n"
    ));
    assert_eq!(
        errors,
        ["upstream.response_header_timeout: must not be longer than upstream.request_timeout"]
    );
    let errors = errors_of(&format!(
        "{base}[health.active]\ninterval = \"500ms\"\ntimeout = \"1s\"\n"
    ));
    assert!(
        has(&errors, "health.active.timeout: must be less than"),
        "{errors:?}"
    );
}

#[test]
fn upstream_header_refuses_framing_and_reserved_headers() {
    let base = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    for name in [
        "content-length",
        "Transfer-Encoding",
        "content-type",
        "content-encoding",
        "date",
        "host",
        "endpoint-load-metrics",
        "retry-after",
        "x-forwarded-for",
        "forwarded",
    ] {
        let errors = errors_of(&format!("{base}[route]\nupstream_header = \"{name}\"\n"));
        assert_eq!(
            errors,
            ["route.upstream_header: must not be a framing or reserved header"],
            "{name}"
        );
    }
    let errors = errors_of(&format!(
        "{base}[route]\nupstream_header = \"connection\"\n"
    ));
    assert_eq!(
        errors,
        ["route.upstream_header: must not be a hop-by-hop header"]
    );
    let c = Config::from_toml_str(&format!(
        "{base}[route]\nupstream_header = \"x-served-by\"\n"
    ))
    .expect("a plain header is fine");
    assert_eq!(c.route.upstream_header, "x-served-by");
}

#[test]
fn max_header_bytes_defaults_to_64_kib_and_is_bounded() {
    let base = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    let c = Config::from_toml_str(base).expect("valid");
    assert_eq!(c.listen.max_header_bytes, 64 * 1024);
    let c = Config::from_toml_str(&format!("[listen]\nmax_header_bytes = \"16KiB\"\n{base}"))
        .expect("valid");
    assert_eq!(c.listen.max_header_bytes, 16 * 1024);
    for bad in ["\"4KiB\"", "\"32MiB\"", "0", "\"lots\""] {
        let errors = errors_of(&format!("[listen]\nmax_header_bytes = {bad}\n{base}"));
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            has(&errors, "listen.max_header_bytes: "),
            "{bad}: {errors:?}"
        );
    }
}

#[test]
fn the_access_log_is_on_once_its_section_is_written() {
    let hosts = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n";
    let of = |extra: &str| {
        Config::from_toml_str(&format!("{extra}\n{hosts}"))
            .expect("valid")
            .access_log
    };
    let none = of("");
    assert!(!none.enabled, "off without the section");
    assert_eq!(none.path, AccessLogPath::Stderr);
    let written = of("[access_log]\npath = \"/var/log/ringward/access.log\"");
    assert!(written.enabled, "the section turns it on");
    assert_eq!(
        written.path,
        AccessLogPath::File("/var/log/ringward/access.log".into())
    );
    assert!(!of("[access_log]\nenabled = false").enabled);
    assert_eq!(of("[access_log]\npath = \"-\"").path, AccessLogPath::Stderr);
    assert_eq!(
        of("[access_log]\npath = \"stdout\"").path,
        AccessLogPath::Stdout
    );
    let errors = errors_of(&format!("[access_log]\nformat = \"xml\"\n{hosts}"));
    assert!(has(&errors, "access_log.format: "), "{errors:?}");
}
