//! What ships next to the binary (docs/operations.md, "Deploying with systemd"): the sample
//! config `ringward.example.toml` must pass the real `ringward check` and show every key with
//! its real default; `contrib/ringward.service` must use the real command line, carry the
//! settings the docs ask for, and pass `systemd-analyze verify` where systemd is installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ringward");

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ringward-ship-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
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

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

// ---- ringward.example.toml ----

#[test]
fn the_example_config_passes_ringward_check() {
    let example = repo_file("ringward.example.toml");
    let (code, stdout, stderr) = ringward(&["check", "--config", path_arg(&example)]);
    assert_eq!(code, 0, "ringward check refuses the example:\n{stderr}");
    assert!(stdout.starts_with("OK: "), "{stdout}");
    assert!(stdout.contains("(3 hosts,"), "{stdout}");
}

/// Every (section, key) of a printed config: `listen.addr` is ("listen", "addr"),
/// `health.active.path` is ("health.active", "path"), a `[[hosts]]` key is ("hosts", key).
fn keys_of(table: &toml::Table, section: &str, out: &mut Vec<(String, String)>) {
    for (key, value) in table {
        let sub = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        match value {
            toml::Value::Table(t) => keys_of(t, &sub, out),
            toml::Value::Array(items) if items.iter().all(toml::Value::is_table) => {
                for t in items.iter().filter_map(toml::Value::as_table) {
                    keys_of(t, &sub, out);
                }
            }
            _ => out.push((section.to_owned(), key.clone())),
        }
    }
}

/// The example's lines by section: for each `[section]` (or `[[section]]`), its lines.
fn example_sections(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            current = line.trim_matches(['[', ']']).to_owned();
        } else {
            sections
                .entry(current.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    sections
}

/// A line showing a default: `# key = value` (one space after `#`, as the example's header
/// explains; other comments are prose).
fn default_line_key(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("# ")?;
    let (key, _) = rest.split_once(" = ")?;
    key.chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        .then_some(key)
}

#[test]
fn the_example_config_shows_every_key() {
    let example = repo_file("ringward.example.toml");
    let text = read(&example);
    let (code, printed, stderr) = ringward(&["check", "--print", "--config", path_arg(&example)]);
    assert_eq!(code, 0, "{stderr}");
    let table: toml::Table = printed.parse().expect("printed config is TOML");
    let mut keys = Vec::new();
    keys_of(&table, "", &mut keys);
    assert!(keys.len() > 70, "only {} keys printed", keys.len());
    let sections = example_sections(&text);
    let mut missing = Vec::new();
    for (section, key) in &keys {
        let lines = sections.get(section).map(Vec::as_slice).unwrap_or(&[]);
        let shown = lines.iter().any(|l| {
            default_line_key(l) == Some(key.as_str()) || l.starts_with(&format!("{key} = "))
        });
        // The token has no default: the example explains how to set it instead.
        let explained = section == "admin"
            && lines.iter().any(|l| l.contains("token_env = "))
            && lines.iter().any(|l| l.contains("token = "));
        if !shown && !explained {
            missing.push(format!("{section}.{key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in ringward.example.toml: {missing:?}"
    );
    let admin = sections.get("admin").map(Vec::as_slice).unwrap_or(&[]);
    assert!(
        admin.iter().any(|l| l.contains("token_env = ")),
        "the example does not show admin.token_env"
    );
}

#[test]
fn the_example_config_shows_the_real_defaults() {
    // Uncommenting every `# key = value` line must give a valid config with exactly the
    // same effective values: the commented values are the defaults.
    let example = repo_file("ringward.example.toml");
    let text = read(&example);
    let mut uncommented = 0;
    let all_set: String = text
        .lines()
        .map(|l| match default_line_key(l) {
            Some(_) => {
                uncommented += 1;
                format!("{}\n", &l[2..])
            }
            None => format!("{l}\n"),
        })
        .collect();
    assert!(uncommented > 70, "only {uncommented} default lines");
    let dir = temp_dir("defaults");
    let all_set_path = dir.join("ringward.toml");
    std::fs::write(&all_set_path, &all_set).expect("write");

    let (code, as_shipped, stderr) =
        ringward(&["check", "--print", "--config", path_arg(&example)]);
    assert_eq!(code, 0, "{stderr}");
    let (code, with_every_default, stderr) =
        ringward(&["check", "--print", "--config", path_arg(&all_set_path)]);
    assert_eq!(
        code, 0,
        "the example's defaults, uncommented, are refused:\n{stderr}"
    );
    assert_eq!(
        with_every_default, as_shipped,
        "a value shown as a default in ringward.example.toml is not the default"
    );
}

// ---- contrib/ringward.service ----

/// A unit file: section -> [(key, value)] in order (keys may repeat), comments dropped.
fn parse_unit(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_owned());
            sections.entry(name.to_owned()).or_default();
            continue;
        }
        let section = current
            .as_ref()
            .unwrap_or_else(|| panic!("line {}: a setting before any section", n + 1));
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("line {}: not key=value: {raw}", n + 1));
        assert!(
            !raw.ends_with('\\'),
            "line {}: no continuation lines",
            n + 1
        );
        sections
            .get_mut(section)
            .expect("section")
            .push((key.trim().to_owned(), value.trim().to_owned()));
    }
    sections
}

fn unit() -> (String, BTreeMap<String, Vec<(String, String)>>) {
    let text = read(&repo_file("contrib/ringward.service"));
    let parsed = parse_unit(&text);
    (text, parsed)
}

/// The last value of `key` in `section` (systemd: a later assignment wins).
fn value<'u>(
    unit: &'u BTreeMap<String, Vec<(String, String)>>,
    section: &str,
    key: &str,
) -> Option<&'u str> {
    unit.get(section)?
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_unit_has_its_sections_and_settings() {
    let (text, unit) = unit();
    for section in ["Unit", "Service", "Install"] {
        assert!(unit.contains_key(section), "no [{section}]");
    }
    let service = |key: &str| value(&unit, "Service", key);
    assert!(matches!(service("Type"), Some("simple" | "exec")), "Type");
    assert_eq!(service("ExecReload"), Some("/bin/kill -HUP $MAINPID"));
    assert_eq!(service("Restart"), Some("on-failure"));
    let nofile: u64 = service("LimitNOFILE")
        .and_then(|v| v.parse().ok())
        .expect("LimitNOFILE is a number");
    assert!(
        nofile >= 16384,
        "docs/operations.md asks for at least 16384"
    );
    let user = service("User").expect("a dedicated User=");
    assert!(!user.is_empty() && user != "root", "User={user}");
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(service(key), Some(want), "{key}");
    }
    assert_eq!(service("AmbientCapabilities"), None, "only commented out");
    assert!(
        text.lines()
            .any(|l| l.trim() == "#AmbientCapabilities=CAP_NET_BIND_SERVICE"),
        "the low-port option is shown, commented"
    );
    // SIGTERM drains for listen.shutdown_grace (10s by default): systemd must wait longer.
    let stop = service("TimeoutStopSec").expect("TimeoutStopSec");
    let stop: u64 = stop
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(stop > 10, "TimeoutStopSec={stop}s");
    assert_eq!(
        value(&unit, "Install", "WantedBy"),
        Some("multi-user.target")
    );
}

/// An `Exec*=` line's words, without systemd's prefixes (`-`, `@`, `+`, ...).
fn exec_words(line: &str) -> Vec<&str> {
    line.trim_start_matches(['-', '@', ':', '+', '!'])
        .split_whitespace()
        .collect()
}

#[test]
fn the_unit_runs_the_real_command_line() {
    let (_, unit) = unit();
    for key in ["ExecStartPre", "ExecStart"] {
        let line = value(&unit, "Service", key).unwrap_or_else(|| panic!("no {key}"));
        let words = exec_words(line);
        assert!(words[0].ends_with("/ringward"), "{key}: {line}");
        assert!(words[0].starts_with('/'), "{key}: an absolute path: {line}");
        let command = words[1];
        let flags = &words[2..];
        assert_eq!(
            flags,
            ["--config", "/etc/ringward/ringward.toml"],
            "{key}: {line}"
        );
        // Every flag the unit passes is one the command has.
        let (code, help, _) = ringward(&[command, "--help"]);
        assert_eq!(code, 0, "{key}: `ringward {command}` does not exist");
        for flag in flags.iter().filter(|f| f.starts_with("--")) {
            assert!(
                help.contains(&format!("{flag} ")),
                "{key}: `ringward {command} --help` has no {flag}:\n{help}"
            );
        }
        // And the command line parses: with a config path that does not exist the command
        // runs and says so (exit 1), where a usage error would exit 2.
        let mut args: Vec<&str> = words[1..].to_vec();
        let missing = temp_dir("unit").join("missing.toml");
        let last = args.len() - 1;
        args[last] = path_arg(&missing);
        let (code, stdout, stderr) = ringward(&args);
        assert_eq!(code, 1, "{key}: {args:?}\n{stdout}{stderr}");
        assert!(stderr.contains("cannot read"), "{key}: {stderr}");
    }
    assert_eq!(
        value(&unit, "Service", "ExecStart")
            .map(exec_words)
            .map(|w| w[1]),
        Some("run")
    );
    assert_eq!(
        value(&unit, "Service", "ExecStartPre")
            .map(exec_words)
            .map(|w| w[1]),
        Some("check")
    );
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let version = Command::new("systemd-analyze").arg("--version").output();
    if !version.is_ok_and(|o| o.status.success()) {
        println!("systemd-analyze is not available: `systemd-analyze verify` was not run");
        return;
    }
    // verify checks that the binary exists: point the unit at the one just built.
    let (text, _) = unit();
    let dir = temp_dir("verify");
    let path = dir.join("ringward.service");
    std::fs::write(&path, text.replace("/usr/local/bin/ringward", BIN)).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    // verify exits 0 even for an unknown key or a bad value (it only warns): any line
    // about this unit is a failure.
    let complaints: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("ringward.service"))
        .collect();
    assert!(complaints.is_empty(), "{complaints:#?}");
}
