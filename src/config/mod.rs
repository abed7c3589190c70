//! Gateway configuration: the file layer (`file`) validated into typed settings.
//! Every setting has a default; `tollgate` runs with no file at all.

pub mod access_log;
pub mod downstream;
pub mod file;
pub mod limits;
mod lines;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use access_log::{AccessLogFormat, AccessLogSettings, LogTarget};
pub use downstream::{DownstreamSettings, TlsListener};
use file::ConfigFile;

use crate::billing::Fee;
use crate::policy::Vision;
use crate::secret::Secret;
use crate::upstream::health::HealthPolicy;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9091";
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;
/// The prefix every access key carries, so a mistyped one is never passed through.
pub const ACCESS_KEY_PREFIX: &str = "tg-";

/// Why a config could not be loaded.
pub type ConfigError = crate::load_error::LoadError;

/// Validated gateway settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, if any (for messages and reload).
    pub file: Option<PathBuf>,
    pub listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub catalog: Option<PathBuf>,
    pub max_body: usize,
    pub passthrough: bool,
    pub access_keys: Vec<AccessKey>,
    pub providers: BTreeMap<String, ProviderOverride>,
    pub routes: Vec<(String, Vec<String>)>,
    pub upstream: UpstreamSettings,
    /// The gateway fee (default none).
    pub fee: Fee,
    /// Usage metering and credits (default on; off leaves routing and request metrics).
    pub accounting: bool,
    /// The vision gate.
    pub vision: Vision,
    pub ledger: LedgerSettings,
    pub rate_limits: limits::RateLimitSettings,
    pub access_log: AccessLogSettings,
    pub downstream: DownstreamSettings,
    pub tls: Option<TlsListener>,
}

/// Where spent credits are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    pub path: PathBuf,
    pub flush_interval: Duration,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    /// `None`: refuse while Redis is down; `Some(n)`: allow n micro-USD per key locally.
    pub local_allowance: Option<u64>,
}

impl Default for LedgerSettings {
    fn default() -> Self {
        LedgerSettings {
            path: PathBuf::from("tollgate-ledger.log"),
            flush_interval: Duration::from_millis(10),
            redis_url: None,
            redis_prefix: "tollgate:".into(),
            local_allowance: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccessKey {
    pub name: String,
    pub key: Secret,
    /// Provider name (as written) → the key's own provider credential (BYOK).
    pub provider_keys: Vec<(String, Secret)>,
    /// Credit balance in micro-USD (`None`: unlimited).
    pub credits: Option<u64>,
    /// Allow-list of models and providers (both empty: everything).
    pub models: Vec<String>,
    pub providers: Vec<String>,
    /// Rate limits (`None`: unlimited).
    pub limits: Option<limits::KeyLimits>,
}

#[derive(Debug, Clone, Default)]
pub struct ProviderOverride {
    pub base_url: Option<String>,
    pub endpoints: Vec<String>,
    pub keys: Vec<NamedKey>,
}

#[derive(Debug, Clone)]
pub struct NamedKey {
    pub name: String,
    pub key: Secret,
}

/// Upstream timeouts and attempt bounds. Defaults suit LLM traffic, where a reasoning
/// model can think for minutes before its first token.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// TCP (and TLS) connect: 10 s.
    pub connect_timeout: Duration,
    /// From request sent to response header: 300 s.
    pub response_header_timeout: Duration,
    /// Longest silence between two reads of a response body: 300 s.
    pub idle_timeout: Duration,
    /// How long an idle pooled upstream connection is kept: 60 s.
    pub pool_idle_timeout: Duration,
    /// Attempts per request across keys, endpoints and route models: 3.
    pub max_attempts: u32,
    /// Cool-downs and circuit breaking of provider keys.
    pub health: HealthPolicy,
    /// How endpoints of multi-endpoint providers are checked.
    pub endpoint_check: EndpointCheck,
}

/// Active health checks of endpoint pools (pingora-load-balancing's checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointCheck {
    /// `None`: TCP connect; `Some(path)`: HTTP GET of that path, 2xx healthy.
    pub http_path: Option<String>,
    /// Between two rounds of checks: 5 s.
    pub interval: Duration,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            connect_timeout: Duration::from_secs(10),
            response_header_timeout: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(300),
            pool_idle_timeout: Duration::from_secs(60),
            max_attempts: 3,
            health: HealthPolicy::default(),
            endpoint_check: EndpointCheck {
                http_path: None,
                interval: Duration::from_secs(5),
            },
        }
    }
}

/// Reads environment variables; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    /// Loads `path` (or the defaults when `None`) and the access keys of `TOLLGATE_ACCESS_KEYS`.
    pub fn load(path: Option<&Path>, env: Env<'_>) -> Result<Config, ConfigError> {
        let (raw, file) = match path {
            None => (String::new(), "(defaults)".to_string()),
            Some(p) => {
                let file = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    file: file.clone(),
                    what: "config",
                    reason: e.to_string(),
                })?;
                (text, file)
            }
        };
        let mut config = Config::parse(&raw, &file, env)?;
        config.file = path.map(Path::to_path_buf);
        Ok(config)
    }

    /// Validates config `text` (YAML; empty for the defaults) read from `file`.
    pub fn parse(text: &str, file: &str, env: Env<'_>) -> Result<Config, ConfigError> {
        let raw = if text.trim().is_empty() {
            ConfigFile::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| ConfigError::yaml(file, &e))?
        };
        validate::validate(raw, file, env)
    }
}

/// Puts the line of each invalid field of `config` (whose text is `text`)
/// after the file's name (`conf.yaml:12: …`).
pub fn with_lines(e: ConfigError, config: &str, text: &str) -> ConfigError {
    match e {
        ConfigError::Invalid { file, path, reason } if file == config => {
            let file = match lines::line_of(text, &path) {
                Some(line) => format!("{file}:{line}"),
                None => file,
            };
            ConfigError::Invalid { file, path, reason }
        }
        ConfigError::Many(all) => ConfigError::Many(
            all.into_iter()
                .map(|e| with_lines(e, config, text))
                .collect(),
        ),
        other => other,
    }
}

/// `250ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::load(None, &no_env).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.metrics_listen.to_string(), DEFAULT_METRICS_LISTEN);
        assert_eq!(c.max_body, DEFAULT_MAX_BODY);
        assert!(c.passthrough);
    }

    #[test]
    fn access_keys_from_env_need_the_prefix() {
        let env = |k: &str| (k == "TOLLGATE_ACCESS_KEYS").then(|| "tg-one, tg-two".to_string());
        let c = Config::load(None, &env).unwrap();
        assert_eq!(c.access_keys.len(), 2);
        assert!(c.access_keys[0].name.starts_with("key-"));
        let bad = |k: &str| (k == "TOLLGATE_ACCESS_KEYS").then(|| "sk-nope".to_string());
        let err = Config::load(None, &bad).unwrap_err().to_string();
        assert!(err.contains("tg-") && !err.contains("sk-nope"), "{err}");
    }

    #[test]
    fn client_read_buffers_are_none_by_default_or_sized_sensibly() {
        let c = Config::load(None, &no_env).unwrap();
        assert_eq!(c.downstream.read_buffer_bytes, 0);
        for (n, ok) in [(0, true), (512, false), (8192, true), (2 << 20, false)] {
            let text = format!("downstream:\n  read_buffer_bytes: {n}\n");
            let got = Config::parse(&text, "t.yaml", &no_env);
            assert_eq!(got.is_ok(), ok, "{n}");
            if ok {
                assert_eq!(got.unwrap().downstream.read_buffer_bytes, n);
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("fast"), None);
    }
}
