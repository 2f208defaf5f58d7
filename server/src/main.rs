//! The `observer` binary: command line, configuration, logging, serve.

mod telemetry;

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use observer::config::{Config, Settings};

/// Observer: session replay, error tracking and product analytics ingestion
/// for Loki, Prometheus and MinIO/S3.
///
/// With no configuration it stores replays in ./observer-data and writes
/// records as JSON lines on stdout. Every setting below can be given as a
/// flag, as its environment variable, or in a TOML file (--config) under the
/// flag's name with '_' for '-' (e.g. `max_replay_body = "5MiB"`).
/// Precedence: flag, then environment, then file, then default.
#[derive(Debug, Parser)]
#[command(name = "observer", version, about, long_about, max_term_width = 100)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "OBSERVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    settings: Settings,
}

fn load(cli: &Cli) -> Result<Config, observer::config::ConfigError> {
    let file = match &cli.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    Config::from_settings(&cli.settings.clone().over(file))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("observer: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("observer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: Config) -> ExitCode {
    let logs = match telemetry::init(&config) {
        Ok(logs) => logs,
        Err(e) => {
            eprintln!("observer: cannot set up logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(listen = %config.listen, error = %e, "cannot listen (OBSERVER_LISTEN)");
            logs.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    let result = observer::serve(config, listener, shutdown_signal()).await;
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "observer stopped with an error");
            ExitCode::FAILURE
        }
    };
    logs.shutdown().await;
    code
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
