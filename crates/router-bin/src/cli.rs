//! The command line (DESIGN contract 2): `run`, `check`, `demo`, `replay`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::logging::LogFormat;

/// ringward: a consistent-hash HTTP router that ejects sick hosts within a second.
#[derive(Debug, Parser)]
#[command(name = "ringward", version, about)]
pub struct Cli {
    /// Log format (level from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
    Demo(crate::demo::DemoArgs),
    /// The incident replay benchmark; writes a report.
    Replay(crate::replay::ReplayArgs),
}

/// `ringward check`: writes `OK` or every error (one per line, key path first) to `out`;
/// returns the exit code (0 valid, 1 invalid).
pub fn check(path: &Path, out: &mut impl Write) -> i32 {
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
