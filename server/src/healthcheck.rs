//! `observer healthcheck`: asks a running Observer's `/readyz` and exits 0
//! when it answers 2xx, 1 otherwise. For container `HEALTHCHECK`s: the
//! runtime image has no shell, curl or wget (distroless), and this is the
//! same binary, so the probe needs nothing else in the image.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

/// Bounded below any sensible `HEALTHCHECK --timeout`, so a hung server
/// reads as unhealthy rather than as a killed probe.
const TIMEOUT: Duration = Duration::from_secs(3);

/// `url`, or `/readyz` on the loopback address of the configured listen port.
pub fn readyz_url(listen: SocketAddr, url: Option<&str>) -> String {
    match url {
        Some(url) => url.to_owned(),
        None => {
            let host = if listen.is_ipv6() { "[::1]" } else { "127.0.0.1" };
            format!("http://{host}:{}/readyz", listen.port())
        }
    }
}

pub async fn run(url: &str) -> ExitCode {
    // No proxy: the probe targets this container, whatever HTTP(S)_PROXY says.
    let client = match reqwest::Client::builder().timeout(TIMEOUT).no_proxy().build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("observer healthcheck: cannot build an HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(url).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            eprintln!("observer healthcheck: {url} answered {status}: {}", body.trim());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("observer healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::readyz_url;

    #[test]
    fn default_url_is_the_loopback_of_the_listen_port() {
        assert_eq!(readyz_url("0.0.0.0:8006".parse().unwrap(), None), "http://127.0.0.1:8006/readyz");
        assert_eq!(readyz_url("[::]:9000".parse().unwrap(), None), "http://[::1]:9000/readyz");
        assert_eq!(readyz_url("0.0.0.0:8006".parse().unwrap(), Some("http://x:1/readyz")), "http://x:1/readyz");
    }
}
