//! The `ringward` binary's command line (docs/operations.md, "Command line"): `check`
//! prints every error with its key path on stderr and exits 1, or a one-line OK on stdout
//! and exits 0 (with a warning on stderr for a host name that does not resolve); `check
//! --print` prints the effective config; `--log-format` belongs to the commands that log;
//! `completions` prints a shell's completion script.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ringward");

/// A file in a directory of this test's own (tests run in parallel).
fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ringward-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ringward.toml");
    std::fs::write(&path, text).expect("write temp config");
    path
}

/// Runs the binary: (exit code, stdout, stderr).
fn ringward(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run ringward");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(path: &Path) -> (i32, String, String) {
    ringward(&["check", "--config", path.to_str().expect("utf-8 path")])
}

fn check_print(path: &Path) -> (i32, String, String) {
    ringward(&[
        "check",
        "--print",
        "--config",
        path.to_str().expect("utf-8 path"),
    ])
}

const ONE_HOST: &str = "[[hosts]]\nname = \"host-a\"\naddr = \"127.0.0.1:9001\"\n";

#[test]
fn check_prints_every_error_with_its_path_on_stderr_and_exits_1() {
    let path = write_temp(
        "bad",
        r#"
[listen]
addr = "127.0.0.1:8080"
[admin]
addr = "0.0.0.0:9901"
[route]
key = ["header:x-val", "cookie:x"]
[limits]
per_host_in_flight = 0
[[hosts]]
name = "a"
addr = "127.0.0.1:9001"
[[hosts]]
name = "b"
addr = "nowhere"
weight = 0
[health.active]
interval = "100ms"
timeout = "1s"
[mystery]
"#,
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "", "errors go to stderr, nothing to stdout");
    let expected = [
        "admin.token: ",
        "route.key[1]: ",
        "limits.per_host_in_flight: must be greater than 0",
        "hosts[1].addr: ",
        "hosts[1].weight: must be greater than 0",
        "health.active.timeout: ",
        "mystery: unknown key",
    ];
    let lines: Vec<&str> = stderr.lines().collect();
    for prefix in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "no line starts with `{prefix}`:\n{stderr}"
        );
    }
    assert_eq!(lines.len(), expected.len(), "one line per error:\n{stderr}");
}

#[test]
fn check_accepts_a_good_config_with_one_line_and_the_right_plural() {
    let one = write_temp("one-host", &format!("{ONE_HOST}[admin]\ntoken = \"t\"\n"));
    let (code, stdout, stderr) = check(&one);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stderr, "");
    assert_eq!(
        stdout,
        format!(
            "OK: {} (1 host, listen 127.0.0.1:8080, admin 127.0.0.1:9901)\n",
            one.display()
        )
    );

    let two = write_temp(
        "two-hosts",
        &format!(
            "{ONE_HOST}[[hosts]]\nname = \"host-b\"\naddr = \"127.0.0.1:9002\"\n[listen]\naddr = \"0.0.0.0:8080\"\n"
        ),
    );
    let (code, stdout, _) = check(&two);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(
        stdout,
        format!(
            "OK: {} (2 hosts, listen 0.0.0.0:8080, admin 127.0.0.1:9901)\n",
            two.display()
        )
    );
}

#[test]
fn check_accepts_host_names_and_warns_for_one_that_does_not_resolve() {
    // `localhost` resolves everywhere; `.invalid` never does (RFC 6761).
    let path = write_temp(
        "names",
        "[[hosts]]\nname = \"a\"\naddr = \"localhost:9001\"\n\n\
         [[hosts]]\nname = \"b\"\naddr = \"worker-9.invalid:9002\"\n\n\
         [[hosts]]\nname = \"c\"\naddr = \"[::1]:9003\"\n",
    );
    let (code, stdout, stderr) = check(&path);
    assert_eq!(
        code, 0,
        "a name that does not resolve is no error: {stderr}"
    );
    assert_eq!(
        stdout,
        format!(
            "OK: {} (3 hosts, listen 127.0.0.1:8080, admin 127.0.0.1:9901)\n",
            path.display()
        )
    );
    let warnings: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, for hosts[1] only: {stderr}"
    );
    assert!(
        warnings[0].starts_with("warning: hosts[1].addr: worker-9.invalid:9002 did not resolve: "),
        "{stderr}"
    );
    assert!(
        warnings[0].ends_with(
            "(the router starts, and this host takes no requests until the name resolves)"
        ),
        "{stderr}"
    );

    // Every name resolves: nothing on stderr; the effective config keeps the names.
    let good = write_temp(
        "names-resolve",
        "[[hosts]]\nname = \"a\"\naddr = \"localhost:9001\"\n",
    );
    let (code, stdout, stderr) = check(&good);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let (code, printed, _) = check_print(&good);
    assert_eq!(code, 0);
    assert!(
        printed.lines().any(|l| l == "addr = \"localhost:9001\""),
        "{printed}"
    );
}

#[test]
fn check_names_a_missing_file_on_stderr() {
    let (code, stdout, stderr) = check(Path::new("/nonexistent/ringward.toml"));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(stderr.starts_with("config: cannot read"), "{stderr}");
}

#[test]
fn check_print_writes_the_effective_config_which_checks_again() {
    let path = write_temp(
        "print",
        &format!(
            "{ONE_HOST}[admin]\ntoken = \"hunter2-secret\"\n[upstream]\nconnect_timeout = \"750ms\"\n"
        ),
    );
    let (code, stdout, stderr) = check_print(&path);
    assert_eq!(code, 0, "{stderr}");
    // stdout is the config alone (a file), the summary is on stderr.
    assert_eq!(
        stderr,
        format!(
            "OK: {} (1 host, listen 127.0.0.1:8080, admin 127.0.0.1:9901)\n",
            path.display()
        )
    );
    let table: toml::Table = stdout.parse().expect("the printed config is TOML");
    let upstream = table["upstream"].as_table().expect("[upstream]");
    assert_eq!(upstream["connect_timeout"].as_str(), Some("750ms"));
    assert_eq!(
        upstream["request_timeout"].as_str(),
        Some("30s"),
        "defaults filled in"
    );
    assert_eq!(table["admin"]["token"].as_str(), Some("<redacted>"));
    assert!(!stdout.contains("hunter2-secret"), "{stdout}");
    for section in [
        "listen",
        "admin",
        "route",
        "upstream",
        "limits",
        "retry",
        "hosts",
        "health",
        "guard",
        "reload",
        "access_log",
    ] {
        assert!(table.contains_key(section), "no [{section}]:\n{stdout}");
    }

    // The printed config is a valid config, and printing it again gives the same text.
    let printed = write_temp("printed", &stdout);
    let (code, again, stderr) = check_print(&printed);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(again, stdout);
}

#[test]
fn check_print_prints_no_config_for_a_bad_file() {
    let path = write_temp("print-bad", "[[hosts]]\nname = \"a\"\n");
    let (code, stdout, stderr) = check_print(&path);
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert!(stderr.starts_with("hosts[0].addr: is required"), "{stderr}");
}

#[test]
fn top_level_help_says_what_ringward_is() {
    for flag in ["--help", "-h"] {
        let (code, stdout, _) = ringward(&[flag]);
        assert_eq!(code, 0);
        let first = stdout.lines().next().unwrap_or("");
        assert!(
            first.starts_with("Ringward: an edge HTTP router"),
            "{flag}: {stdout}"
        );
        // Not the package description from Cargo.toml.
        assert!(!stdout.contains("The `ringward` command:"), "{stdout}");
        for command in ["run", "check", "completions"] {
            assert!(
                stdout.lines().any(|l| l.trim_start().starts_with(command)),
                "{flag} lists no `{command}`:\n{stdout}"
            );
        }
    }
}

#[test]
fn log_format_is_offered_by_the_commands_that_log_and_not_by_check() {
    let (code, help, _) = ringward(&["check", "--help"]);
    assert_eq!(code, 0);
    assert!(!help.contains("--log-format"), "{help}");
    assert!(help.contains("--print"), "{help}");
    let mut logging = vec!["run"];
    if cfg!(feature = "lab") {
        logging.extend(["demo", "replay"]);
    }
    for command in logging {
        let (code, help, _) = ringward(&[command, "--help"]);
        assert_eq!(code, 0);
        assert!(help.contains("--log-format"), "{command}:\n{help}");
    }
    let (code, _, stderr) = ringward(&["check", "--log-format", "json", "--config", "x"]);
    assert_eq!(code, 2, "check has no --log-format: {stderr}");
}

/// Starts `ringward ARGS` and returns the first line it writes on stderr, then stops it.
fn first_log_line(args: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringward");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stderr).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    line.expect("ringward run logged nothing within 30s")
}

#[test]
fn run_takes_log_format_after_the_command_and_before_it_as_it_always_did() {
    let path = write_temp(
        "run",
        "[listen]\naddr = \"127.0.0.1:0\"\n[admin]\naddr = \"127.0.0.1:0\"\n[reload]\nwatch = false\n\
         [[hosts]]\nname = \"a\"\naddr = \"127.0.0.1:9\"\n",
    );
    let config = path.to_str().expect("utf-8 path");
    for args in [
        ["run", "--config", config, "--log-format", "json"].as_slice(),
        ["--log-format", "json", "run", "--config", config].as_slice(),
    ] {
        let line = first_log_line(args);
        assert!(
            line.starts_with('{') && line.contains("\"level\":\"INFO\""),
            "{args:?}: {line}"
        );
    }
    let line = first_log_line(&["run", "--config", config]);
    assert!(
        !line.starts_with('{') && line.contains("INFO"),
        "human by default: {line}"
    );
}

#[test]
fn completions_are_printed_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, stderr) = ringward(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        // fish names long flags `-l config`, the others `--config`.
        let long = |flag: &str| match shell {
            "fish" => format!("-l {flag}"),
            _ => format!("--{flag}"),
        };
        for word in [
            "ringward".to_owned(),
            "check".to_owned(),
            "run".to_owned(),
            "completions".to_owned(),
            long("config"),
            long("print"),
        ] {
            assert!(script.contains(&word), "{shell}: no `{word}` in the script");
        }
    }
    let (code, _, stderr) = ringward(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {stderr}");
}

#[test]
fn bash_completion_completes_commands_and_flags() {
    let (code, script, _) = ringward(&["completions", "bash"]);
    assert_eq!(code, 0);
    let path = write_temp("completion", &script);
    let probe = format!(
        r#"source '{}'
COMP_WORDS=(ringward ch); COMP_CWORD=1; _ringward ringward ch ringward; echo "${{COMPREPLY[*]}}"
COMP_WORDS=(ringward check --); COMP_CWORD=2; _ringward ringward -- check; echo "${{COMPREPLY[*]}}""#,
        path.display()
    );
    let out = match Command::new("bash").args(["-c", &probe]).output() {
        Ok(out) => out,
        Err(e) => {
            println!("bash is not available ({e}): the completion script was not run");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first().copied(), Some("check"), "{stdout}{stderr}");
    let flags: Vec<&str> = lines.get(1).unwrap_or(&"").split(' ').collect();
    assert!(
        flags.contains(&"--config") && flags.contains(&"--print"),
        "{stdout}"
    );
    assert!(!flags.contains(&"--log-format"), "{stdout}");
}

/// A self-signed ECDSA pair made as an operator would, with openssl: (cert, key).
fn openssl_pair(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (apt-get install openssl; .ci/run does)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn check_reads_the_tls_files_and_names_each_wrong_one_at_its_key() {
    let path = write_temp("tls-good", "");
    let dir = path.parent().expect("dir");
    let (cert, key) = openssl_pair(dir, "a");
    let (_, other_key) = openssl_pair(dir, "b");
    let good = format!(
        "[listen.tls]\naddr = \"127.0.0.1:8443\"\ncert = \"{}\"\nkey = \"{}\"\n{ONE_HOST}",
        cert.display(),
        key.display()
    );
    std::fs::write(&path, &good).expect("write");
    let (code, out, err) = check(&path);
    assert_eq!(code, 0, "{out}{err}");

    let missing = dir.join("missing.pem");
    let bad = format!(
        "[listen.tls]\ncert = \"{}\"\nkey = \"{}\"\n\n[[listen.tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n{ONE_HOST}",
        cert.display(),
        other_key.display(),
        missing.display(),
        key.display()
    );
    std::fs::write(&path, &bad).expect("write");
    let (code, out, err) = check(&path);
    assert_eq!(code, 1, "{out}{err}");
    for expected in [
        "listen.tls.addr: is required".to_owned(),
        format!(
            "listen.tls.key: {} is not the private key of the certificate in {}",
            other_key.display(),
            cert.display()
        ),
        format!(
            "listen.tls.certificates[0].cert: cannot read {}",
            missing.display()
        ),
    ] {
        assert!(
            err.lines().any(|l| l.starts_with(&expected)),
            "no `{expected}` in:\n{err}"
        );
    }
}

#[test]
fn check_accepts_no_hosts_in_fleet_mode_and_says_where_they_come_from() {
    let path = write_temp(
        "fleet",
        "[discovery.etcd]\nendpoints = [\"127.0.0.1:2379\"]\n",
    );
    let (code, out, err) = check(&path);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("0 hosts") && out.contains("more hosts from etcd under /ringward/"),
        "{out}"
    );
    // Without discovery, no host at all is still an error.
    std::fs::write(&path, "[listen]\naddr = \"127.0.0.1:8080\"\n").expect("write");
    let (code, _, err) = check(&path);
    assert_eq!(code, 1);
    assert!(
        err.contains("at least one [[hosts]] entry is required"),
        "{err}"
    );
}
