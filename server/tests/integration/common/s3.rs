//! A real S3-compatible server process (moto, from PyPI `moto[server]`),
//! one per test, spoken to over HTTP with the AWS SDK. Its absence fails
//! the test.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

const ACCESS_KEY: &str = "test-access-key";
const SECRET_KEY: &str = "test-secret-key";

pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub bucket: String,
    client: aws_sdk_s3::Client,
}

impl S3Server {
    /// Starts moto and creates `bucket`. moto binds port 0 and the port is read
    /// from its start line: a probed free port passed on to it could be taken
    /// by another process during moto's start-up (seconds under load), and
    /// the test would then talk to that process.
    pub async fn start(bucket: &str) -> S3Server {
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}); install it with `pip install 'moto[server]'` (scripts/setup does)"
                )
            });
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        // Drains stderr for moto's whole life: a full pipe would block its request log.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let _ = port_tx.send(port.trim().to_owned());
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(port) = port_rx.try_recv() {
                break port;
            }
            if Instant::now() > deadline || child.try_wait().is_ok_and(|status| status.is_some()) {
                let _ = child.kill();
                panic!("moto_server did not start within 30 s: {:?}", child.wait());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tests"))
            .force_path_style(true)
            .build();
        let server =
            S3Server { child, endpoint, bucket: bucket.to_owned(), client: aws_sdk_s3::Client::from_conf(config) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = server.client.create_bucket().bucket(bucket).send().await {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}: {e:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Environment for an observer using this server.
    pub fn env(&self, key_prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("OBSERVER_S3_ENDPOINT", self.endpoint.clone()),
            ("OBSERVER_S3_BUCKET", self.bucket.clone()),
            ("OBSERVER_S3_KEY_PREFIX", key_prefix.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ]
    }

    /// The SDK client the harness uses (bucket-level calls in tests).
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// Object keys under `prefix`, sorted.
    pub async fn list(&self, prefix: &str) -> Vec<String> {
        let out = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).send().await.unwrap();
        let mut keys: Vec<String> = out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        keys.sort();
        keys
    }

    /// An object's body, user metadata and Content-Encoding.
    pub async fn get(&self, key: &str) -> (Vec<u8>, HashMap<String, String>, Option<String>) {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
        let metadata = out.metadata().cloned().unwrap_or_default();
        let encoding = out.content_encoding().map(str::to_owned);
        let body = out.body.collect().await.unwrap().into_bytes().to_vec();
        (body, metadata, encoding)
    }
}

/// A TCP relay in front of the S3 server that can be switched off: S3
/// unreachable (connections refused, open ones cut) while the real server
/// keeps what it stored, then back on the same port.
pub struct S3Outage {
    pub endpoint: String,
    port: u16,
    upstream: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl S3Outage {
    pub async fn start(s3: &S3Server) -> S3Outage {
        let upstream = s3.endpoint.trim_start_matches("http://").parse().unwrap();
        let port = super::free_port();
        let outage =
            S3Outage { endpoint: format!("http://127.0.0.1:{port}"), port, upstream, tasks: Default::default() };
        outage.up().await;
        outage
    }

    /// The environment of an observer using S3 through this relay.
    pub fn env(&self, s3: &S3Server, key_prefix: &str) -> Vec<(&'static str, String)> {
        let mut env = s3.env(key_prefix);
        env[0].1 = self.endpoint.clone();
        env
    }

    pub async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let (upstream, tasks) = (self.upstream, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(relay);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the port and cuts every open connection.
    pub async fn down(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
