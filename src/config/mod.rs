//! Gateway configuration: the file layer (`file`) validated into typed settings.
//! Every setting has a default; `tollgate` runs with no file at all.

pub mod access_log;
pub mod downstream;
pub mod file;
pub mod limits;

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
        validate(raw, file, env)
    }
}

fn validate(raw: ConfigFile, file: &str, env: Env<'_>) -> Result<Config, ConfigError> {
    let invalid = |path: &str, reason: String| ConfigError::Invalid {
        file: file.to_string(),
        path: path.to_string(),
        reason,
    };
    let addr = |path: &str, value: Option<String>, default: &str| -> Result<SocketAddr, _> {
        let value = value.unwrap_or_else(|| default.to_string());
        value.parse().map_err(|_| {
            invalid(
                path,
                format!("`{value}` is not an address like 127.0.0.1:8080"),
            )
        })
    };
    let listen = addr("listen", raw.listen, DEFAULT_LISTEN)?;
    let metrics_listen = addr("metrics_listen", raw.metrics_listen, DEFAULT_METRICS_LISTEN)?;
    let max_body = match raw.max_body_bytes {
        None => DEFAULT_MAX_BODY,
        Some(0) => return Err(invalid("max_body_bytes", "must be above 0".into())),
        Some(n) => usize::try_from(n).map_err(|_| invalid("max_body_bytes", "too large".into()))?,
    };

    let secret = |path: &str, key: Option<String>, key_env: Option<String>| match (key, key_env) {
        (Some(k), None) if !k.is_empty() => Ok(Secret::new(k)),
        (None, Some(var)) => env(&var)
            .map(Secret::new)
            .ok_or_else(|| invalid(path, format!("environment variable `{var}` is not set"))),
        _ => Err(invalid(
            path,
            "set exactly one of `key` and `key_env`".into(),
        )),
    };

    let mut access_keys = Vec::new();
    for (i, a) in raw.access_keys.into_iter().enumerate() {
        let at = format!("access_keys[{i}]");
        if a.name.is_empty() {
            return Err(invalid(&format!("{at}.name"), "is required".into()));
        }
        let key = secret(&format!("{at}.key"), a.key, a.key_env)?;
        let mut provider_keys = Vec::new();
        for (provider, value) in a.provider_keys {
            let value = match value.strip_prefix("env:") {
                Some(var) => env(var).ok_or_else(|| {
                    invalid(
                        &format!("{at}.provider_keys.{provider}"),
                        format!("environment variable `{var}` is not set"),
                    )
                })?,
                None => value,
            };
            provider_keys.push((provider, Secret::new(value)));
        }
        let limits = limits::validate(a.limits)
            .map_err(|(path, reason)| invalid(&format!("{at}.{path}"), reason))?;
        access_keys.push(AccessKey {
            name: a.name,
            key,
            provider_keys,
            credits: a.credits,
            models: a.models,
            providers: a.providers,
            limits,
        });
    }
    if let Some(list) = env("TOLLGATE_ACCESS_KEYS") {
        for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            let key = Secret::new(key);
            access_keys.push(AccessKey {
                name: format!("key-{}", key.fingerprint()),
                key,
                provider_keys: Vec::new(),
                credits: None,
                models: Vec::new(),
                providers: Vec::new(),
                limits: None,
            });
        }
    }
    for (i, a) in access_keys.iter().enumerate() {
        if !a.key.expose().starts_with(ACCESS_KEY_PREFIX) {
            return Err(invalid(
                &format!("access_keys[{i}] ({})", a.name),
                format!("access keys must start with `{ACCESS_KEY_PREFIX}`"),
            ));
        }
        if access_keys[..i]
            .iter()
            .any(|b| b.key == a.key || b.name == a.name)
        {
            return Err(invalid(
                &format!("access_keys[{i}] ({})", a.name),
                "duplicate access key or name".into(),
            ));
        }
    }

    let mut providers = BTreeMap::new();
    for (id, p) in raw.providers {
        let mut keys = Vec::new();
        for (i, k) in p.keys.into_iter().enumerate() {
            let at = format!("providers.{id}.keys[{i}]");
            if k.name.is_empty() {
                return Err(invalid(&format!("{at}.name"), "is required".into()));
            }
            keys.push(NamedKey {
                name: k.name,
                key: secret(&format!("{at}.key"), k.key, k.key_env)?,
            });
        }
        providers.insert(
            id,
            ProviderOverride {
                base_url: p.base_url,
                endpoints: p.endpoints,
                keys,
            },
        );
    }

    let mut routes = Vec::new();
    for (name, models) in raw.routes {
        if models.is_empty() {
            return Err(invalid(&format!("routes.{name}"), "lists no model".into()));
        }
        routes.push((name, models));
    }

    let u = raw.upstream;
    let d = UpstreamSettings::default();
    let dur = |path: &str, v: Option<String>, default: Duration| match v {
        None => Ok(default),
        Some(s) => parse_duration(&s)
            .ok_or_else(|| invalid(path, format!("`{s}` is not a duration like 500ms, 10s, 5m"))),
    };
    let upstream = UpstreamSettings {
        connect_timeout: dur(
            "upstream.connect_timeout",
            u.connect_timeout,
            d.connect_timeout,
        )?,
        response_header_timeout: dur(
            "upstream.response_header_timeout",
            u.response_header_timeout,
            d.response_header_timeout,
        )?,
        idle_timeout: dur("upstream.idle_timeout", u.idle_timeout, d.idle_timeout)?,
        pool_idle_timeout: dur(
            "upstream.pool_idle_timeout",
            u.pool_idle_timeout,
            d.pool_idle_timeout,
        )?,
        health: HealthPolicy {
            cooldown: dur(
                "upstream.rate_limit_cooldown",
                u.rate_limit_cooldown,
                d.health.cooldown,
            )?,
            max_cooldown: d.health.max_cooldown,
            failure_threshold: match u.failure_threshold {
                Some(0) => {
                    return Err(invalid(
                        "upstream.failure_threshold",
                        "must be at least 1".into(),
                    ))
                }
                Some(n) => n,
                None => d.health.failure_threshold,
            },
            circuit_backoff: dur(
                "upstream.circuit_backoff",
                u.circuit_backoff,
                d.health.circuit_backoff,
            )?,
        },
        endpoint_check: EndpointCheck {
            http_path: match u.health_check.as_deref() {
                None | Some("tcp") => None,
                Some("http") => Some(u.health_check_path.clone().unwrap_or_else(|| "/".into())),
                Some(other) => {
                    return Err(invalid(
                        "upstream.health_check",
                        format!("`{other}` is not tcp or http"),
                    ))
                }
            },
            interval: dur(
                "upstream.health_check_interval",
                u.health_check_interval,
                d.endpoint_check.interval,
            )?,
        },
        max_attempts: match u.max_attempts {
            Some(0) => {
                return Err(invalid(
                    "upstream.max_attempts",
                    "must be at least 1".into(),
                ))
            }
            Some(n) => n,
            None => d.max_attempts,
        },
    };

    let fee = Fee {
        basis_points: match raw.gateway_fee.percent {
            None => 0,
            Some(p) if p.is_finite() && (0.0..=1000.0).contains(&p) => (p * 100.0).round() as u64,
            Some(p) => {
                return Err(invalid(
                    "gateway_fee.percent",
                    format!("{p} is not between 0 and 1000"),
                ))
            }
        },
        per_request: raw.gateway_fee.per_request_microusd.unwrap_or(0),
    };

    let l = raw.ledger;
    let ledger = LedgerSettings {
        path: l
            .path
            .unwrap_or_else(|| PathBuf::from("tollgate-ledger.log")),
        flush_interval: dur(
            "ledger.flush_interval",
            l.flush_interval,
            Duration::from_millis(10),
        )?,
        redis_url: l.redis_url,
        redis_prefix: l.redis_prefix.unwrap_or_else(|| "tollgate:".into()),
        local_allowance: match l.redis_fallback.as_deref() {
            None | Some("refuse") => None,
            Some("allow_local") => Some(l.local_allowance.unwrap_or(0)),
            Some(other) => {
                return Err(invalid(
                    "ledger.redis_fallback",
                    format!("`{other}` is not refuse or allow_local"),
                ))
            }
        },
    };

    let r = raw.rate_limits;
    let rate_limits = limits::RateLimitSettings {
        shared: r.shared.unwrap_or(true),
        fallback: match r.redis_fallback.as_deref() {
            None | Some("local") => limits::LimitFallback::Local,
            Some("refuse") => limits::LimitFallback::Refuse,
            Some(other) => {
                return Err(invalid(
                    "rate_limits.redis_fallback",
                    format!("`{other}` is not local or refuse"),
                ))
            }
        },
        redis_timeout: dur(
            "rate_limits.redis_timeout",
            r.redis_timeout,
            limits::RateLimitSettings::default().redis_timeout,
        )?,
    };

    let access_log =
        access_log::validate(raw.access_log).map_err(|(path, reason)| invalid(path, reason))?;
    let (downstream, tls) = downstream::validate(raw.downstream, raw.tls)
        .map_err(|(path, reason)| invalid(path, reason))?;

    let vision = match raw.vision.or_else(|| env("ENABLE_VISION")) {
        None => Vision::On,
        Some(v) => Vision::parse(&v)
            .ok_or_else(|| invalid("vision", format!("`{v}` is not on, off or per-model")))?,
    };

    Ok(Config {
        vision,
        accounting: raw.accounting.unwrap_or(true),
        ledger,
        rate_limits,
        access_log,
        downstream,
        tls,
        fee,
        file: None,
        listen,
        metrics_listen,
        catalog: raw.catalog,
        max_body,
        passthrough: raw.passthrough.unwrap_or(true),
        access_keys,
        providers,
        routes,
        upstream,
    })
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
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("fast"), None);
    }
}
