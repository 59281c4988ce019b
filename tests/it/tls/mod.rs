//! TLS termination through the real router, checked with the clients users have: curl,
//! `openssl s_client` and h2load (Debian's curl, openssl and nghttp2-client packages, which
//! `.ci/run` installs), and a rustls client where a test must hold a connection open.

mod certs;
mod clients;
mod rotation;

use std::path::Path;
use std::time::Duration;

use ringward::Router;
use ringward::config::TlsConfig;
use ringward_tests::Fleet;

use crate::support::{any_port, config_for, start};
use certs::Pki;

/// A router in front of `fleet` with a TLS listener serving `cert`/`key`; `tweak` edits the
/// config first.
async fn tls_router(
    fleet: &Fleet,
    cert: &Path,
    key: &Path,
    tweak: impl FnOnce(&mut ringward::Config),
) -> Router {
    let mut config = config_for(fleet);
    config.listen.tls = Some(TlsConfig::load(any_port(), cert, key).expect("the pair loads"));
    tweak(&mut config);
    start(config).await
}

/// The router's TLS port.
fn tls_port(router: &Router) -> u16 {
    router.tls_addr().expect("a TLS listener").port()
}

/// What a client run printed, and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `program` with `args` (stdin empty), bounded to 60 s.
async fn run(program: &str, args: &[&str]) -> Run {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish within 60 s"))
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install it (apt-get install curl openssl nghttp2-client; .ci/run does)")
        });
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `curl` over TLS to `https://localhost:{port}{path}`, trusting only `pki`'s CA, with the
/// response head and body on stdout and the HTTP version after `version=`.
async fn curl(pki: &Pki, port: u16, path: &str, extra: &[&str]) -> Run {
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}{path}");
    let ca = pki.ca_file();
    let mut args = vec![
        "-sS",
        "-i",
        "--max-time",
        "20",
        "--cacert",
        ca.to_str().expect("utf-8 path"),
        "--resolve",
        &resolve,
        "-w",
        "\nversion=%{http_version}\n",
    ];
    args.extend_from_slice(extra);
    args.push(&url);
    run("curl", &args).await
}
