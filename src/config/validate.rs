//! Validation of the config file into [`Config`]: every problem is named with
//! its file, field path and value, and all of them are reported at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::file::ConfigFile;
use super::*;
use crate::billing::Fee;
use crate::policy::Vision;
use crate::secret::Secret;
use crate::upstream::health::HealthPolicy;

pub(super) fn validate(raw: ConfigFile, file: &str, env: Env<'_>) -> Result<Config, ConfigError> {
    let invalid = |path: &str, reason: String| ConfigError::Invalid {
        file: file.to_string(),
        path: path.to_string(),
        reason,
    };
    // Every problem is reported, not only the first: a setting that fails is
    // recorded and replaced by its default so validation goes on.
    let mut problems: Vec<ConfigError> = Vec::new();
    macro_rules! keep {
        ($result:expr, $default:expr) => {
            match $result {
                Ok(v) => v,
                Err(e) => {
                    problems.push(e);
                    $default
                }
            }
        };
    }
    let addr = |path: &str, value: Option<String>, default: &str| -> Result<SocketAddr, _> {
        let value = value.unwrap_or_else(|| default.to_string());
        value.parse().map_err(|_| {
            invalid(
                path,
                format!("`{value}` is not an address like 127.0.0.1:8080"),
            )
        })
    };
    let fallback_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let listen = keep!(addr("listen", raw.listen, DEFAULT_LISTEN), fallback_addr);
    let metrics_listen = keep!(
        addr("metrics_listen", raw.metrics_listen, DEFAULT_METRICS_LISTEN),
        fallback_addr
    );
    let max_body = keep!(
        match raw.max_body_bytes {
            None => Ok(DEFAULT_MAX_BODY),
            Some(0) => Err(invalid("max_body_bytes", "is 0; must be above 0".into())),
            Some(n) =>
                usize::try_from(n).map_err(|_| invalid("max_body_bytes", "too large".into())),
        },
        DEFAULT_MAX_BODY
    );

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
        let one = || -> Result<AccessKey, ConfigError> {
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
            Ok(AccessKey {
                name: a.name,
                key,
                provider_keys,
                credits: a.credits,
                models: a.models,
                providers: a.providers,
                limits,
            })
        };
        match one() {
            Ok(k) => access_keys.push(k),
            Err(e) => problems.push(e),
        }
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
            problems.push(invalid(
                &format!("access_keys[{i}] ({})", a.name),
                format!("access keys must start with `{ACCESS_KEY_PREFIX}`"),
            ));
        }
        if access_keys[..i]
            .iter()
            .any(|b| b.key == a.key || b.name == a.name)
        {
            problems.push(invalid(
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
                problems.push(invalid(&format!("{at}.name"), "is required".into()));
                continue;
            }
            match secret(&format!("{at}.key"), k.key, k.key_env) {
                Ok(key) => keys.push(NamedKey { name: k.name, key }),
                Err(e) => problems.push(e),
            }
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
            problems.push(invalid(&format!("routes.{name}"), "lists no model".into()));
            continue;
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
    let upstream = (|| -> Result<UpstreamSettings, ConfigError> {
        Ok(UpstreamSettings {
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
                            "is 0; must be at least 1".into(),
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
                        "is 0; must be at least 1".into(),
                    ))
                }
                Some(n) => n,
                None => d.max_attempts,
            },
        })
    })();
    let upstream = keep!(upstream, UpstreamSettings::default());

    let fee = (|| -> Result<Fee, ConfigError> {
        Ok(Fee {
            basis_points: match raw.gateway_fee.percent {
                None => 0,
                Some(p) if p.is_finite() && (0.0..=1000.0).contains(&p) => {
                    (p * 100.0).round() as u64
                }
                Some(p) => {
                    return Err(invalid(
                        "gateway_fee.percent",
                        format!("{p} is not between 0 and 1000"),
                    ))
                }
            },
            per_request: raw.gateway_fee.per_request_microusd.unwrap_or(0),
        })
    })();
    let fee = keep!(fee, Fee::default());

    let l = raw.ledger;
    let ledger = (|| -> Result<LedgerSettings, ConfigError> {
        Ok(LedgerSettings {
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
        })
    })();
    let ledger = keep!(ledger, LedgerSettings::default());

    let r = raw.rate_limits;
    let rate_limits = (|| -> Result<limits::RateLimitSettings, ConfigError> {
        Ok(limits::RateLimitSettings {
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
        })
    })();
    let rate_limits = keep!(rate_limits, limits::RateLimitSettings::default());

    let access_log = keep!(
        access_log::validate(raw.access_log).map_err(|(path, reason)| invalid(path, reason)),
        AccessLogSettings::default()
    );
    let (downstream, tls) = keep!(
        downstream::validate(raw.downstream, raw.tls)
            .map_err(|(path, reason)| invalid(path, reason)),
        (DownstreamSettings::default(), None)
    );

    let vision = match raw.vision.or_else(|| env("ENABLE_VISION")) {
        None => Vision::On,
        Some(v) => keep!(
            Vision::parse(&v)
                .ok_or_else(|| invalid("vision", format!("`{v}` is not on, off or per-model"))),
            Vision::On
        ),
    };

    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0)),
        _ => return Err(ConfigError::Many(problems)),
    }
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
