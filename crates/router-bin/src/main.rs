//! The `ringward` binary: parses the command line and runs the chosen subcommand. The
//! router itself is the `ringward` library; `demo` and `replay` are `ringward-lab`'s.
#![forbid(unsafe_code)]

mod cli;
mod names;

use anyhow::Context as _;
use clap::Parser as _;
use cli::{Cli, Command};
use ringward::{Config, Router};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Check { config, print } => {
            let code = cli::check(
                config,
                *print,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            std::process::exit(code);
        }
        Command::Completions { shell } => {
            cli::completions(*shell, &mut std::io::stdout().lock());
            return Ok(());
        }
        _ => {}
    }
    ringward::logging::init(cli.log_format());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run { config, .. } => run(config).await,
            #[cfg(feature = "lab")]
            Command::Demo { args, .. } => ringward_lab::demo::run(args).await,
            #[cfg(feature = "lab")]
            Command::Replay { args, .. } => ringward_lab::replay::run(args).await,
            Command::Check { .. } | Command::Completions { .. } => Ok(()),
        }
    })
}

async fn run(path: std::path::PathBuf) -> anyhow::Result<()> {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors.iter() {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "{}: invalid config ({} errors)",
                path.display(),
                errors.0.len()
            );
        }
    };
    // The start line names the file; the router reloads it on SIGHUP and on change.
    let router = Router::start_from_file(config, path).await?;
    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    router.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
