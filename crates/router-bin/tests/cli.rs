//! The `ringward` binary's command line: `check` prints every error with its key path and
//! exits 1, or a short OK and exits 0.

use std::path::PathBuf;
use std::process::Command;

fn write_temp(name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("ringward-cli-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write temp config");
    path
}

fn check(path: &PathBuf) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringward"))
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("run ringward check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_prints_every_error_with_its_path_and_exits_1() {
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
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    let expected = [
        "admin.token: ",
        "route.key[1]: ",
        "limits.per_host_in_flight: must be greater than 0",
        "hosts[1].addr: ",
        "hosts[1].weight: must be greater than 0",
        "health.active.timeout: ",
        "mystery: unknown key",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    for prefix in expected {
        assert!(
            lines.iter().any(|l| l.starts_with(prefix)),
            "no line starts with `{prefix}`:\n{stdout}"
        );
    }
    assert_eq!(lines.len(), expected.len(), "one line per error:\n{stdout}");
}

#[test]
fn check_accepts_a_good_config() {
    let path = write_temp(
        "good",
        "[[hosts]]\nname = \"host-a\"\naddr = \"127.0.0.1:9001\"\n[admin]\ntoken = \"t\"\n",
    );
    let (code, stdout, _) = check(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("OK"), "{stdout}");
}

#[test]
fn check_names_a_missing_file() {
    let (code, stdout, _) = check(&PathBuf::from("/nonexistent/ringward.toml"));
    assert_eq!(code, 1);
    assert!(stdout.starts_with("config: cannot read"), "{stdout}");
}
