//! The command line (docs/operations.md): `run`, `check`, and with the `lab` feature `demo`
//! and `replay`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
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

/// ringward: a consistent-hash HTTP router that ejects sick hosts within a second.
#[derive(Debug, Parser)]
#[command(name = "ringward", version, about)]
pub(crate) struct Cli {
    /// Log format (level from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormatArg::Human)]
    pub(crate) log_format: LogFormatArg,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve with a config file (reloads on SIGHUP and on file change).
    Run {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file: print every error with its key path; exit 1 if any.
    Check {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The router on 127.0.0.1:8080 (admin :9901) in front of 3 simulated hosts.
    #[cfg(feature = "lab")]
    Demo(ringward_lab::demo::DemoArgs),
    /// The incident replay benchmark; writes a report.
    #[cfg(feature = "lab")]
    Replay(ringward_lab::replay::ReplayArgs),
}

/// `ringward check`: writes `OK` or every error (one per line, key path first) to `out`;
/// returns the exit code (0 valid, 1 invalid).
pub(crate) fn check(path: &Path, out: &mut impl Write) -> i32 {
    match Config::load(path) {
        Ok(config) => {
            let _ = writeln!(
                out,
                "OK: {} ({} hosts, listen {}, admin {})",
                path.display(),
                config.hosts.len(),
                config.listen.addr,
                config.admin.addr
            );
            0
        }
        Err(errors) => {
            for e in errors.iter() {
                let _ = writeln!(out, "{e}");
            }
            1
        }
    }
}
