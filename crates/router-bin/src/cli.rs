//! The command line (docs/operations.md): `run`, `check`, `completions`, and with the `lab`
//! feature `demo` and `replay`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use ringward::Config;
use ringward::logging::LogFormat;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Human => LogFormat::Human,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// Ringward: an edge HTTP router that sends every request for a Val to one worker host by
/// consistent hashing of its key, and moves a sick host's Vals elsewhere within about a
/// second.
///
/// Serve a fleet: `ringward check --config ringward.toml`, then `ringward run --config
/// ringward.toml`. Every key is in docs/configuration.md; operations in docs/operations.md.
#[derive(Debug, Parser)]
#[command(name = "ringward", version)]
pub(crate) struct Cli {
    /// `--log-format` before the command (`ringward --log-format json run ...`), as it was
    /// once a global flag; each command that logs has its own, shown in its help.
    #[arg(long = "log-format", value_enum, hide = true)]
    pub(crate) log_format: Option<LogFormatArg>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The log flags of the commands that log.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct LogArgs {
    /// Log format, on stderr (default human; the level comes from RUST_LOG, default info).
    #[arg(long, value_enum)]
    pub(crate) log_format: Option<LogFormatArg>,
}

impl Cli {
    /// The log format: the command's `--log-format`, else the one before the command, else
    /// human.
    pub(crate) fn log_format(&self) -> LogFormat {
        let own = match &self.command {
            Command::Run { log, .. } => log.log_format,
            #[cfg(feature = "lab")]
            Command::Demo { log, .. } | Command::Replay { log, .. } => log.log_format,
            Command::Check { .. } | Command::Completions { .. } => None,
        };
        own.or(self.log_format).unwrap_or_default().into()
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve with a config file (reloads on SIGHUP and on file change).
    Run {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Validate a config file: each error on stderr with its key path (exit 1), or an OK
    /// line on stdout (exit 0).
    Check {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the effective config to stdout as TOML (every key, defaults filled in, the
        /// admin token redacted); the summary then goes to stderr.
        #[arg(long)]
        print: bool,
    },
    /// The router on 127.0.0.1:8080 (admin :9901) in front of 3 simulated hosts.
    #[cfg(feature = "lab")]
    Demo {
        #[command(flatten)]
        args: ringward_lab::demo::DemoArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// The incident replay benchmark; writes a report.
    #[cfg(feature = "lab")]
    Replay {
        #[command(flatten)]
        args: ringward_lab::replay::ReplayArgs,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Print the shell completion script for SHELL to stdout (see docs/operations.md).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `ringward check`: every error (one per line, key path first) to `err` and 1; or 0 and
/// a one-line summary, to `out`, or with `print` the effective config to `out` and the
/// summary to `err` (so `out` is a config file). A host name that does not resolve from
/// here is a warning on `err` (still 0).
pub(crate) fn check(path: &Path, print: bool, out: &mut impl Write, err: &mut impl Write) -> i32 {
    match Config::load(path) {
        Ok(config) => {
            let summary = summary(path, &config);
            if print {
                let _ = out.write_all(config.to_toml_redacted().as_bytes());
                let _ = writeln!(err, "{summary}");
            } else {
                let _ = writeln!(out, "{summary}");
            }
            for line in crate::names::unresolved(&config) {
                let _ = writeln!(
                    err,
                    "warning: {line} (the router starts, and this host takes no requests until the name resolves)"
                );
            }
            0
        }
        Err(errors) => {
            for e in errors.iter() {
                let _ = writeln!(err, "{e}");
            }
            1
        }
    }
}

/// `OK: ringward.toml (3 hosts, listen 0.0.0.0:8080, admin 127.0.0.1:9901)`; with a TLS
/// listener `, tls 0.0.0.0:443`; in fleet mode `, more hosts from etcd under /ringward/`.
fn summary(path: &Path, config: &Config) -> String {
    let hosts = config.hosts.len();
    let tls = config
        .listen
        .tls
        .as_ref()
        .map(|t| format!(", tls {}", t.addr))
        .unwrap_or_default();
    let etcd = config
        .discovery
        .etcd
        .as_ref()
        .map(|e| format!(", more hosts from etcd under {}", e.prefix))
        .unwrap_or_default();
    format!(
        "OK: {} ({hosts} {}, listen {}{tls}, admin {}{etcd})",
        path.display(),
        if hosts == 1 { "host" } else { "hosts" },
        config.listen.addr,
        config.admin.addr
    )
}

/// `ringward completions SHELL`: the script, to `out` (written whole, so a closed pipe,
/// as in `ringward completions bash | head`, is not a panic).
pub(crate) fn completions(shell: clap_complete::Shell, out: &mut impl Write) {
    use clap::CommandFactory as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ringward", &mut script);
    let _ = out.write_all(&script);
}
