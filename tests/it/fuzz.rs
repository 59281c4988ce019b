//! Property-based fuzzing of the parsers that read untrusted input: the config file, key
//! extraction from requests, the ORCA load-report header and the health JSON body. Each must
//! return (a value or an error) for any input: no panic, no hang. Case counts are bounded so
//! the whole module runs in a few seconds on the stable toolchain.

use std::time::{Duration, Instant};

use http::Request;
use proptest::prelude::*;
use ringward::{Config, KeySource};

/// Generous bound on one parse: a hang guard, not a performance claim.
const ONE_PARSE: Duration = Duration::from_secs(1);

fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    assert!(
        started.elapsed() < ONE_PARSE,
        "{what} took {:?}",
        started.elapsed()
    );
    out
}

const SECTIONS: [&str; 9] = [
    "listen",
    "admin",
    "route",
    "upstream",
    "limits",
    "retry",
    "health",
    "health.active",
    "reload",
];
const KEYS: [&str; 24] = [
    "addr",
    "token",
    "token_env",
    "key",
    "upstream_header",
    "bounded_load_factor",
    "bounded_load_floor",
    "connect_timeout",
    "response_header_timeout",
    "request_timeout",
    "body_idle_timeout",
    "per_host_in_flight",
    "global_in_flight",
    "retry_after",
    "budget_ratio",
    "budget_min",
    "interval",
    "timeout",
    "path",
    "stuck_after",
    "max_ejected_share",
    "panic_policy",
    "watch",
    "poll_interval",
];
const VALUES: [&str; 28] = [
    "0",
    "-1",
    "1",
    "4294967296",
    "18446744073709551616",
    "1e400",
    "nan",
    "inf",
    "0.5",
    "1.5",
    "\"\"",
    "\"0s\"",
    "\"500\"",
    "\"500ms\"",
    "\"18446744073709551615s\"",
    "\"1 s\"",
    "\"-1s\"",
    "\"99999999999999999999h\"",
    "\"127.0.0.1:0\"",
    "\"[::1]:80\"",
    "\"0.0.0.0:9901\"",
    "[\"header:x-val\", \"path_segment:99999999999\"]",
    "[\"query:\"]",
    "[]",
    "true",
    "{ a = 1 }",
    "\"fail_closed\"",
    "\"\\u00e9\\u0000\"",
];

prop_compose! {
    fn config_text()(
        entries in proptest::collection::vec((0..SECTIONS.len(), 0..KEYS.len(), 0..VALUES.len()), 0..12),
        hosts in proptest::collection::vec((0..4u8, 0..VALUES.len(), 0..3u8), 0..4),
    ) -> String {
        let mut text = String::new();
        let mut by_section: Vec<Vec<String>> = vec![Vec::new(); SECTIONS.len()];
        for (s, k, v) in entries {
            by_section[s].push(format!("{} = {}", KEYS[k], VALUES[v]));
        }
        for (s, lines) in by_section.iter().enumerate() {
            if !lines.is_empty() {
                text.push_str(&format!("[{}]\n{}\n", SECTIONS[s], lines.join("\n")));
            }
        }
        for (name, weight, port) in hosts {
            text.push_str(&format!(
                "[[hosts]]\nname = \"h{name}\"\naddr = \"127.0.0.1:{}\"\nweight = {}\n",
                9000 + u16::from(port),
                VALUES[weight]
            ));
        }
        text
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn config_parsing_never_panics_on_any_text(text in "\\PC{0,300}") {
        let _ = bounded("config", || Config::from_toml_str(&text));
    }

    #[test]
    fn config_parsing_of_plausible_files_errs_with_key_paths(text in config_text()) {
        let parsed = bounded("config", || Config::from_toml_str(&text));
        if let Ok(config) = &parsed {
            prop_assert!(!config.hosts.is_empty() && config.hosts.iter().all(|h| h.weight > 0));
            prop_assert!(config.health.active.timeout < config.health.active.interval);
        }
        if let Err(errors) = parsed {
            prop_assert!(errors.iter().next().is_some(), "an error list is never empty");
            for e in errors.iter() {
                prop_assert!(!e.path.is_empty() && !e.message.is_empty(), "{e}");
            }
        }
    }

    #[test]
    fn key_sources_parse_or_refuse_any_text(text in "\\PC{0,40}") {
        let _ = bounded("key source", || KeySource::parse(&text));
    }

    #[test]
    fn key_extraction_never_panics_and_never_gives_an_empty_key(
        path in "(/[a-zA-Z0-9%._~-]{0,12}){0,6}",
        query in proptest::option::of("[a-z0-9=&%;+]{0,30}"),
        host in "[a-zA-Z0-9.-]{0,40}",
        header in proptest::option::of(proptest::collection::vec(32u8..127, 0..20)),
        sources in proptest::collection::vec(
            prop_oneof![
                Just("header:x-val".to_owned()),
                "path_segment:[0-9]{1,3}",
                "query:[a-z]{1,3}",
                "host_label:[a-z.]{1,20}",
            ],
            1..5,
        ),
    ) {
        let sources: Vec<KeySource> = sources.iter().filter_map(|s| KeySource::parse(s).ok()).collect();
        let uri = match &query {
            Some(q) => format!("{}?{q}", if path.is_empty() { "/" } else { &path }),
            None => if path.is_empty() { "/".to_owned() } else { path.clone() },
        };
        let mut b = Request::builder().uri(uri.as_str());
        if !host.is_empty() {
            b = b.header("host", host.as_str());
        }
        if let Some(h) = &header {
            b = b.header("x-val", h.as_slice());
        }
        if let Ok(req) = b.body(()) {
            let key = bounded("key", || ringward::extract_key(&sources, &req).map(|k| k.into_owned()));
            if let Some(k) = key {
                prop_assert!(!k.is_empty());
            }
        }
    }

    #[test]
    fn orca_header_parsing_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = bounded("orca", || health::parse_orca_header(&bytes));
    }

    #[test]
    fn orca_header_parsing_of_plausible_values(
        entries in proptest::collection::vec(
            (
                prop_oneof![
                    Just("named_metrics.db_pool_max"), Just("named_metrics.db_pool_in_use"),
                    Just("named_metrics.db_pool_waiting"), Just("named_metrics.db_pool_oldest_checkout_ms"),
                    Just("cpu_utilization"), Just("named_metrics."), Just(""),
                ],
                prop_oneof![
                    Just("0".to_owned()), Just("-1".to_owned()), Just("1e99".to_owned()), Just("NaN".to_owned()),
                    Just("18446744073709551616".to_owned()), Just("".to_owned()), "[0-9]{1,25}", "[0-9.eE+-]{1,10}",
                ],
            ),
            0..8,
        ),
        prefix in prop_oneof![Just("TEXT "), Just("TEXT"), Just("JSON "), Just(""), Just("text ")],
        sep in prop_oneof![Just(", "), Just(","), Just(" ,  "), Just(";")],
    ) {
        let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let text = format!("{prefix}{}", body.join(sep));
        if let Ok(Some(pool)) = bounded("orca", || health::parse_orca_header(text.as_bytes())) {
            // A pool report needs both the capacity and the in-use figure (docs/health.md).
            prop_assert!(
                text.contains("db_pool_max=") && text.contains("db_pool_in_use="),
                "{text} gave {pool:?}"
            );
        }
    }

    #[test]
    fn health_body_parsing_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = bounded("health", || health::parse_health_body(&bytes));
    }

    #[test]
    fn health_body_parsing_of_plausible_json(
        status in prop_oneof![Just("\"pass\""), Just("\"warn\""), Just("\"fail\""), Just("\"PASS\""), Just("1"), Just("null")],
        fields in proptest::collection::vec(
            (
                prop_oneof![Just("max"), Just("in_use"), Just("waiting"), Just("oldest_checkout_ms"), Just("x")],
                prop_oneof![
                    Just("0"), Just("-1"), Just("1e400"), Just("4294967296"), Just("18446744073709551616"),
                    Just("1.5"), Just("\"7\""), Just("null"), Just("[]"), Just("{}"),
                ],
            ),
            0..6,
        ),
        nest in 0usize..40,
    ) {
        let pool: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
        let deep = format!("{}1{}", "[".repeat(nest), "]".repeat(nest));
        let body = format!("{{\"status\": {status}, \"db_pool\": {{{}}}, \"extra\": {deep}}}", pool.join(", "));
        let _ = bounded("health", || health::parse_health_body(body.as_bytes()));
    }
}

#[test]
fn deeply_nested_toml_is_refused_not_a_stack_overflow() {
    let text = format!("x = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    assert!(bounded("config", || Config::from_toml_str(&text)).is_err());
    let text = format!("x = {}1{}\n", "{a = ".repeat(10_000), "}".repeat(10_000));
    assert!(bounded("config", || Config::from_toml_str(&text)).is_err());
}

#[test]
fn deeply_nested_health_json_is_refused_not_a_stack_overflow() {
    let body = format!(
        "{{\"status\": \"pass\", \"x\": {}1{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let _ = bounded("health", || health::parse_health_body(body.as_bytes()));
}
