//! The server's own logs: human-readable on stderr, and to Loki with
//! `kind="server"` when Loki is configured.
//!
//! The server's own logs go through `tracing-loki`, whose channel drops
//! lines when full and whose queue gives up after 30 s of Loki being down.
//! That is acceptable for diagnostics; client data never takes this path
//! (see `observer::delivery`). stdout stays reserved for data records.
//!
//! The shipper sends the same credentials and `X-Scope-OrgID` as record
//! delivery (`observer::delivery::loki_headers`), to the configured URL,
//! which never holds credentials (the configuration moves them out).

use observer::config::Config;
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt, util::SubscriberInitExt};

/// Keeps the Loki log shipper alive until `shutdown` flushes it.
pub struct ServerLogs {
    loki: Option<tracing_loki::BackgroundTaskController>,
}

impl ServerLogs {
    pub async fn shutdown(self) {
        if let Some(controller) = self.loki {
            // Bounded: tracing-loki retries forever when Loki is gone.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), controller.shutdown()).await;
        }
    }
}

pub fn init(config: &Config) -> Result<ServerLogs, Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| format!("invalid OBSERVER_LOG filter: {e}"))?;
    // Colours only for a person at a terminal, never in files or collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .with_filter(filter);
    let Some(loki) = &config.loki else {
        tracing_subscriber::registry().with(stderr).try_init()?;
        return Ok(ServerLogs { loki: None });
    };
    let mut builder = tracing_loki::builder().label("service_name", &config.service_name)?.label("kind", "server")?;
    if let Some(environment) = &config.environment {
        builder = builder.label("environment", environment)?;
    }
    for (name, value) in &observer::delivery::loki_headers(loki)? {
        builder = builder.http_header(name.as_str(), value.to_str()?)?;
    }
    // tracing-loki `join`s its push path to the URL, which drops the last
    // path segment unless the URL ends in '/' (Loki behind `/prefix`).
    let mut url = loki.url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    let (layer, controller, task) = builder.build_controller_url(url)?;
    // The shipper's own HTTP client must not feed its logs back into itself.
    let loki_filter = EnvFilter::try_new(format!("{},hyper=off,reqwest=off,h2=off", config.log_filter))?;
    tracing_subscriber::registry().with(stderr).with(layer.with_filter(loki_filter)).try_init()?;
    tokio::spawn(task);
    Ok(ServerLogs { loki: Some(controller) })
}
