//! Test harness: starts the real tollgate binary on ephemeral loopback ports,
//! against mock providers of ours, and talks to it over real HTTP.
#![allow(dead_code)]

pub mod redis;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use mock_provider::{Fault, MockHandle, MockProvider, Recorded};

/// An access key every test gateway knows (name `team-a`).
pub const ACCESS_KEY: &str = "tg-test-access-key-0001";

/// A running tollgate process; killed on drop.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
    pub dir: PathBuf,
}

pub struct GatewayBuilder {
    env: Vec<(String, String)>,
    config: Option<String>,
    args: Vec<String>,
}

/// A loopback address where nothing listens, and nothing in the tests ever will
/// (mocks and gateways bind 127.0.0.1): connecting to it is refused at once.
pub fn dead_addr() -> String {
    "127.0.0.2:9".to_string()
}

/// A free loopback port for a gateway listener. pingora binds with SO_REUSEPORT,
/// so two gateways given the same port would both start and split the traffic:
/// ports come from a per-process counter in 20000-29999 (below the kernel's
/// ephemeral range, where mocks bind), checked free before use.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % 97) as u16 * 100;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (offset + n % 10_000) % 10_000;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A fresh directory for one test's files.
pub fn temp_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tollgate-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayBuilder {
    pub fn new() -> Self {
        GatewayBuilder {
            env: vec![("TOLLGATE_ACCESS_KEYS".into(), ACCESS_KEY.into())],
            config: None,
            args: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    /// Points provider `P` (env prefix, e.g. `OPENAI`) at `url` with managed `keys`.
    pub fn provider(self, prefix: &str, url: &str, keys: &str) -> Self {
        let s = self.env(&format!("{prefix}_API_URL"), url);
        if keys.is_empty() {
            s
        } else {
            s.env(&format!("{prefix}_API_KEY"), keys)
        }
    }

    /// A gateway config file with this YAML.
    pub fn config(mut self, yaml: &str) -> Self {
        self.config = Some(yaml.into());
        self
    }

    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn start(self) -> Gateway {
        for _ in 0..5 {
            if let Some(g) = self.try_start() {
                return g;
            }
        }
        panic!("tollgate did not start");
    }

    fn try_start(&self) -> Option<Gateway> {
        let dir = temp_dir();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().ok()?;
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().ok()?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "debug")
            .args([
                "--listen",
                &addr.to_string(),
                "--metrics-listen",
                &metrics.to_string(),
            ])
            .args(&self.args)
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("stdout.log")).ok()?,
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("stderr.log")).ok()?,
            ));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(yaml) = &self.config {
            let path = dir.join("tollgate.yaml");
            std::fs::write(&path, yaml).ok()?;
            cmd.arg("--config").arg(path);
        }
        let mut child = cmd.spawn().expect("spawn tollgate");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                let _ = child.wait();
                return None; // exited: port taken or bad config
            }
            // Ready once both listeners are: pingora starts its services on
            // threads of their own, so the metrics one may come up later.
            let metrics_up =
                || TcpStream::connect_timeout(&metrics, Duration::from_millis(200)).is_ok();
            if raw_get(addr, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
                && metrics_up()
            {
                return Some(Gateway {
                    child,
                    addr,
                    metrics,
                    dir,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

/// A minimal blocking GET (for readiness checks).
pub fn raw_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl Gateway {
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::new()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the gateway wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        read("stdout.log") + &read("stderr.log")
    }

    /// Sends `signal` (`HUP`, `TERM`, `QUIT`, …) to the gateway process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -s {signal}");
    }

    /// The config file the gateway was started with (rewrite it, then `HUP`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("tollgate.yaml")
    }

    /// Waits up to `limit` for the process to exit; how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// The metrics listener's current text.
    pub async fn scrape(&self) -> String {
        client()
            .get(format!("http://{}/metrics", self.metrics))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("metrics text")
    }

    /// A POST with the test access key and a JSON body.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        client()
            .post(self.url(path))
            .bearer_auth(ACCESS_KEY)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A chat body with `model` last, as the OpenAI Python SDK writes it.
pub fn chat(model: &str) -> String {
    format!(r#"{{"messages":[{{"role":"user","content":"hi"}}],"model":"{model}"}}"#)
}

/// Reads an OpenAI-shaped error body and returns (status, code).
pub async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v: serde_json::Value = resp.json().await.expect("error body is JSON");
    let code = v["error"]["code"].as_str().unwrap_or_default().to_string();
    assert!(
        v["error"]["message"].is_string(),
        "OpenAI-shaped error: {v}"
    );
    assert!(v["error"]["type"].is_string(), "OpenAI-shaped error: {v}");
    (status, code)
}

/// The sum of the series of metric `name` whose labels include every `label="value"`.
pub fn metric_sum(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
