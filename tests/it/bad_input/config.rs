//! Invalid configs: every invalid value is refused with its key path (all errors at once), and
//! a bad config file on reload is refused while the old config keeps serving.

use std::time::Duration;

use ringward::Config;
use ringward_tests::{Fleet, client, eventually_async};

use crate::support::metric;
use crate::support::start;

const HOSTS: &str = "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\n\n[[hosts]]\nname = \"b\"\naddr = \"127.0.0.1:9002\"\n";

/// `(what, config text, key path the error must name)`.
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let with = |section: &str| format!("{section}\n\n{HOSTS}");
    vec![
        ("no hosts", String::new(), "hosts"),
        ("empty hosts array", "hosts = []\n".into(), "hosts"),
        (
            "duplicate host name",
            format!("{HOSTS}\n[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9003\"\n"),
            "hosts[2].name",
        ),
        (
            "duplicate host address",
            format!("{HOSTS}\n[[hosts]]\nname = \"c\"\naddr = \"127.0.0.1:9001\"\n"),
            "hosts[2].addr",
        ),
        (
            "empty host name",
            "[[hosts]]\nname = \"\"\naddr = \"127.0.0.1:9001\"\n".into(),
            "hosts[0].name",
        ),
        (
            "host address without a port",
            "[[hosts]]\nname = \"a\"\naddr = \"localhost\"\n".into(),
            "hosts[0].addr",
        ),
        (
            "host port 0",
            "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:0\"\n".into(),
            "hosts[0].addr",
        ),
        (
            "host without addr",
            "[[hosts]]\nname = \"a\"\n".into(),
            "hosts[0].addr",
        ),
        (
            "weight 0",
            "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\nweight = 0\n".into(),
            "hosts[0].weight",
        ),
        (
            "negative weight",
            "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\nweight = -1\n".into(),
            "hosts[0].weight",
        ),
        (
            "unknown host key",
            "[[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9001\"\nwieght = 2\n".into(),
            "hosts[0].wieght",
        ),
        (
            "listen addr",
            with("[listen]\naddr = \"nope\""),
            "listen.addr",
        ),
        (
            "zero duration",
            with("[upstream]\nconnect_timeout = \"0s\""),
            "upstream.connect_timeout",
        ),
        (
            "duration without unit",
            with("[upstream]\nconnect_timeout = \"500\""),
            "upstream.connect_timeout",
        ),
        (
            "duration as a number",
            with("[upstream]\nrequest_timeout = 30"),
            "upstream.request_timeout",
        ),
        (
            "negative duration",
            with("[listen]\nheader_read_timeout = \"-1s\""),
            "listen.header_read_timeout",
        ),
        (
            "header timeout over request timeout",
            with("[upstream]\nresponse_header_timeout = \"40s\"\nrequest_timeout = \"30s\""),
            "upstream.response_header_timeout",
        ),
        (
            "probe timeout equal to the interval",
            with("[health.active]\ninterval = \"500ms\"\ntimeout = \"500ms\""),
            "health.active.timeout",
        ),
        (
            "probe timeout over the interval",
            with("[health.active]\ninterval = \"100ms\"\ntimeout = \"1s\""),
            "health.active.timeout",
        ),
        (
            "per-host cap 0",
            with("[limits]\nper_host_in_flight = 0"),
            "limits.per_host_in_flight",
        ),
        (
            "global cap 0",
            with("[limits]\nglobal_in_flight = 0"),
            "limits.global_in_flight",
        ),
        (
            "retry share over 100%",
            with("[retry]\nbudget_ratio = 1.5"),
            "retry.budget_ratio",
        ),
        (
            "ejected share over 100%",
            with("[health]\nmax_ejected_share = 1.5"),
            "health.max_ejected_share",
        ),
        (
            "failure rate over 100%",
            with("[health]\nfailure_rate = 2.0"),
            "health.failure_rate",
        ),
        (
            "negative share",
            with("[retry]\nbudget_ratio = -0.1"),
            "retry.budget_ratio",
        ),
        ("unknown top-level key", with("bogus = 1"), "bogus"),
        (
            "unknown section key",
            with("[listen]\nadress = \"127.0.0.1:8080\""),
            "listen.adress",
        ),
        (
            "unknown section",
            with("[listne]\naddr = \"127.0.0.1:8080\""),
            "listne",
        ),
        ("empty key list", with("[route]\nkey = []"), "route.key"),
        (
            "unknown key source",
            with("[route]\nkey = [\"cookie:val\"]"),
            "route.key[0]",
        ),
        (
            "header source without a name",
            with("[route]\nkey = [\"header:\"]"),
            "route.key[0]",
        ),
        (
            "path segment not a number",
            with("[route]\nkey = [\"path_segment:x\"]"),
            "route.key[0]",
        ),
        (
            "bad upstream header name",
            with("[route]\nupstream_header = \"bad header\""),
            "route.upstream_header",
        ),
        (
            "panic policy",
            with("[health]\npanic_policy = \"sometimes\""),
            "health.panic_policy",
        ),
        (
            "public admin without token",
            with("[admin]\naddr = \"0.0.0.0:9901\""),
            "admin.token",
        ),
        (
            "empty admin token",
            with("[admin]\ntoken = \"\""),
            "admin.token",
        ),
        (
            "admin on the listen address",
            with("[listen]\naddr = \"127.0.0.1:8080\"\n[admin]\naddr = \"127.0.0.1:8080\""),
            "admin.addr",
        ),
        (
            "wrong type for a section",
            format!("listen = 5\n{HOSTS}"),
            "listen",
        ),
    ]
}

#[test]
fn every_invalid_value_is_refused_with_its_key_path() {
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for (what, text, path) in cases() {
        match Config::from_toml_str(&text) {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(errors) => {
                table.push(format!(
                    "{what:<38} {}",
                    errors.to_string().replace('\n', " | ")
                ));
                if !errors.has_path(path) {
                    failures.push(format!("{what}: no error at `{path}`: {errors}"));
                }
            }
        }
    }
    println!("FIGURE bad input (config):\n  {}", table.join("\n  "));
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let text = format!(
        "[upstream]\nconnect_timeout = \"0s\"\n[limits]\nper_host_in_flight = 0\n\n{HOSTS}\n[[hosts]]\nname = \"c\"\naddr = \"127.0.0.1:9003\"\nweight = 0\n"
    );
    let errors = Config::from_toml_str(&text).expect_err("refused");
    for path in [
        "upstream.connect_timeout",
        "limits.per_host_in_flight",
        "hosts[2].weight",
    ] {
        assert!(errors.has_path(path), "{path} missing from {errors}");
    }
}

#[tokio::test]
async fn a_bad_config_file_on_reload_is_refused_and_the_old_one_keeps_serving() {
    let fleet = Fleet::start(2).await.expect("fleet");
    let dir = std::env::temp_dir().join(format!("ringward-bad-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("ringward.toml");
    let good = format!(
        "[listen]\naddr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n[reload]\nwatch = true\npoll_interval = \"50ms\"\n\n{}",
        fleet.hosts_toml()
    );
    std::fs::write(&path, &good).expect("write");
    let router = start(Config::load(&path).expect("good config")).await;
    router.watch_config(path.clone());
    let served = || async {
        client::get(router.listen_addr(), "/v/alice/run")
            .await
            .map(|r| r.status == 200)
            .unwrap_or(false)
    };
    assert!(served().await);
    let failed_before = metric(&router, "ringward_reloads_failed_total").await;
    let bad = format!("{good}\n[[hosts]]\nname = \"host-0\"\naddr = \"127.0.0.1:9\"\nweight = 0\n");
    std::fs::write(&path, bad).expect("write");
    eventually_async(
        Duration::from_secs(3),
        "the bad file is refused",
        || async { metric(&router, "ringward_reloads_failed_total").await > failed_before },
    )
    .await;
    assert!(served().await, "the old config stopped serving");
    let hosts = client::get(router.admin_addr(), "/admin/hosts")
        .await
        .expect("hosts")
        .json();
    assert_eq!(
        hosts["hosts"].as_array().map(Vec::len),
        Some(2),
        "the refused config was applied"
    );
    router.shutdown().await;
    fleet.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
