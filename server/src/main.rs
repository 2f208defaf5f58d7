//! The `observer` binary: command line, configuration, logging, serve.

mod healthcheck;
mod telemetry;

/// jemalloc instead of glibc's malloc: glibc keeps what a burst of large
/// bodies freed in its per-thread arenas (measured: RSS stayed at 150+ MiB
/// after 64 concurrent 5 MiB uploads), jemalloc hands it back to the system
/// within seconds. See docs/benchmarks.md for the figures.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options (`_RJEM_MALLOC_CONF` in the environment
/// overrides them), a trade between the two memory targets and small
/// requests' CPU (docs/performance.md):
/// - `oversize_threshold:65536`: buffers of 64 KiB and more (request
///   bodies, inflated chunks) get jemalloc's dedicated arena, which gives
///   freed pages back at once, so a burst of large uploads does not stay;
/// - `dirty_decay_ms:100` for everything smaller: with 0, every slab that
///   emptied was `madvise`d at once, and the TLB shootdowns cost W1 about a
///   third of its CPU; a tenth of a second keeps the churn of small
///   requests in reused pages;
/// - `percpu_arena:percpu` (one arena per CPU instead of 4 per CPU): fewer arenas
///   holding dirty pages, so 64 concurrent uploads stay under 100 MiB;
/// - a background thread purges even when no request comes (by default
///   jemalloc purges only while it is allocating, so an idle server kept a
///   burst's memory).
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] =
    b"background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0,oversize_threshold:65536,percpu_arena:percpu\0";

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use observer::{
    auth::{self, ShareSigner, share},
    config::{Config, Settings},
    payload::SessionId,
};

/// Observer: session replay, error tracking and product analytics ingestion
/// for Loki, Prometheus and MinIO/S3.
///
/// With no configuration it stores replays in ./observer-data and writes
/// records as JSON lines on stdout. Every setting below can be given as a
/// flag, as its environment variable, or in a TOML file (--config) under the
/// flag's name with '_' for '-' (e.g. `max_replay_body = "5MiB"`).
/// Precedence: flag, then environment, then file, then default. Flags go
/// before a command (`observer --data-dir DIR share SESSION`).
#[derive(Debug, Parser)]
#[command(name = "observer", version, about, long_about, max_term_width = 100)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "OBSERVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (what `observer` without a command does).
    Serve,
    /// Print a link that opens one session's replay without a viewer token,
    /// signed with OBSERVER_SHARE_SECRET (or the data directory's
    /// share-secret file, created if missing) under OBSERVER_PUBLIC_URL.
    Share {
        /// The session id, as in /replay/<session_id>.
        session_id: String,
        /// How long the link works: 60s to 30d, e.g. 90m, 24h, 7d.
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        ttl: String,
    },
    /// Exit 0 when a running Observer's /readyz answers 2xx, 1 otherwise
    /// (for container health checks: the image has no curl).
    Healthcheck {
        /// The URL to ask; default: /readyz on 127.0.0.1 at OBSERVER_LISTEN's port.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// Retention of the replay store (see docs/retention.md).
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// With S3: add (or replace) lifecycle rules that expire every prefix
    /// Observer writes after N days, keeping the bucket's other rules.
    Lifecycle {
        /// Days after which stored objects expire (1 to 3650).
        #[arg(long, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=i64::from(observer::config::MAX_RETENTION_DAYS)))]
        days: u32,
        /// Create the bucket first if it does not exist.
        #[arg(long)]
        create_bucket: bool,
    },
    /// Print the bucket's lifecycle rules and whether they expire every
    /// prefix Observer writes. Exit code 0: they do; 3: some prefix never
    /// expires; 1: the bucket could not be read.
    Check,
}

fn load(cli: &Cli) -> Result<Config, observer::config::ConfigError> {
    let file = match &cli.config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    Config::from_settings(&cli.settings.clone().over(file))
}

/// Returns every arena's unused pages to the system now (jemalloc's
/// `arena.<MALLCTL_ARENAS_ALL>.purge`); called through `observer::memory`
/// after large replay uploads. `tikv-jemalloc-ctl` has no call for a
/// control that takes no value, hence the raw `mallctl`.
#[cfg(not(target_env = "msvc"))]
fn purge_arenas() {
    // MALLCTL_ARENAS_ALL is 4096 in jemalloc 5.
    const NAME: &[u8] = b"arena.4096.purge\0";
    let null = std::ptr::null_mut();
    // SAFETY: a NUL-terminated control name, and no old or new value, as
    // this control requires.
    let _ = unsafe { tikv_jemalloc_sys::mallctl(NAME.as_ptr().cast(), null, null.cast(), null, 0) };
}

fn main() -> ExitCode {
    #[cfg(not(target_env = "msvc"))]
    observer::memory::set_release_hook(purge_arenas);
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
    match cli.command {
        None | Some(Command::Serve) => runtime.block_on(run(config)),
        Some(Command::Share { session_id, ttl }) => print_share_link(&config, &session_id, &ttl),
        Some(Command::Storage { command }) => runtime.block_on(run_storage(&config, command)),
        Some(Command::Healthcheck { url }) => {
            runtime.block_on(healthcheck::run(&healthcheck::readyz_url(config.listen, url.as_deref())))
        }
    }
}

/// `observer storage …`: results on stdout, problems on stderr.
async fn run_storage(config: &Config, command: StorageCommand) -> ExitCode {
    use observer::store::retention::command::{self, CommandError};
    let mut out = std::io::stdout().lock();
    let (name, result) = match command {
        StorageCommand::Lifecycle { days, create_bucket } => {
            ("lifecycle", command::lifecycle(config, days, create_bucket, &mut out).await.map(|()| true))
        }
        StorageCommand::Check => ("check", command::check(config, &mut out).await),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("observer storage {name}: {e}");
            ExitCode::from(match e {
                CommandError::Usage(_) => 2,
                CommandError::Failed(_) => 1,
            })
        }
    }
}

/// `observer share`: the link goes to stdout, problems to stderr.
fn print_share_link(config: &Config, session_id: &str, ttl: &str) -> ExitCode {
    let Some(session_id) = SessionId::parse(session_id) else {
        eprintln!("observer share: invalid session id {session_id:?}: {}", observer::payload::ID_RULE);
        return ExitCode::from(2);
    };
    let ttl_secs = match humantime::parse_duration(ttl.trim()) {
        Ok(d) if (share::MIN_TTL_SECS..=share::MAX_TTL_SECS).contains(&d.as_secs()) => d.as_secs(),
        _ => {
            eprintln!("observer share: --ttl {ttl:?} must be a duration from 60s to 30d, e.g. 24h");
            return ExitCode::from(2);
        }
    };
    let secret = match auth::secret_file::existing_share_secret(config) {
        Ok(secret) => secret,
        Err(e) => {
            eprintln!("observer share: cannot read the share secret: {e}");
            return ExitCode::FAILURE;
        }
    };
    let link = ShareSigner::new(&secret).link(session_id.as_str(), ttl_secs, auth::viewer::unix_now());
    println!("{}{}", config.public_url, link.path);
    ExitCode::SUCCESS
}

async fn run(mut config: Config) -> ExitCode {
    let logs = match telemetry::init(&config) {
        Ok(logs) => logs,
        Err(e) => {
            eprintln!("observer: cannot set up logging: {e}");
            return ExitCode::FAILURE;
        }
    };
    let generated = match auth::resolve_secrets(&mut config) {
        Ok(generated) => generated,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up the viewer token or share secret (OBSERVER_DATA_DIR)");
            logs.shutdown().await;
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
    print_viewer_link(&config, &generated);
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

/// Tells where the generated viewer token is. Its ready-to-open URL goes to
/// stderr once, when the token is created; straight to stderr, never through
/// tracing, since the log pipeline may ship to Loki. Later starts only name
/// the file, so restarts do not keep writing the token into terminals,
/// journald and container logs.
fn print_viewer_link(config: &Config, generated: &auth::GeneratedSecrets) {
    let Some(token) = &generated.viewer_token else { return };
    let file = config.data_dir.join(auth::secret_file::VIEWER_TOKEN_FILE);
    if generated.viewer_token_created {
        tracing::info!(file = %file.display(), "generated a viewer token");
        eprintln!(
            "\n    To watch replays, open this URL (it holds the viewer token, shown only now;\n    \
             it is kept in {}):\n\n        {}/replay/?token={}\n",
            file.display(),
            config.public_url,
            token.expose()
        );
    } else {
        tracing::info!(
            file = %file.display(),
            "viewer token: open {}/replay/ and paste the token from this file (or add ?token=<it> to the URL)",
            config.public_url
        );
    }
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
