//! Rate limits of access keys (`access_keys[].limits`) and how they are kept
//! (`rate_limits`): the file layer and its validation.

use serde::Deserialize;

/// `access_keys[].limits` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsFile {
    pub requests_per_minute: Option<u64>,
    /// Input plus output tokens.
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once, per gateway node.
    pub concurrent_requests: Option<u32>,
    /// Model name (alias, `provider:model` or route) → its own limits.
    pub models: Vec<ScopedFile>,
    /// Provider → its own limits.
    pub providers: Vec<ScopedFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopedFile {
    /// The model (in `models`) or provider (in `providers`) the limits apply to.
    pub name: String,
    pub requests_per_minute: Option<u64>,
    pub tokens_per_minute: Option<u64>,
}

/// `rate_limits` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsFile {
    /// With `ledger.redis_url`: keep windows in Redis, shared by every node (default true).
    pub shared: Option<bool>,
    /// While Redis is unreachable: `local` (default) or `refuse`.
    pub redis_fallback: Option<String>,
    /// Longest wait for Redis before it counts as unreachable (default 200ms).
    pub redis_timeout: Option<String>,
}

/// Per-minute rates; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rates {
    pub requests: Option<u64>,
    pub tokens: Option<u64>,
}

impl Rates {
    pub fn is_empty(&self) -> bool {
        self.requests.is_none() && self.tokens.is_none()
    }
}

/// An access key's validated limits (names of scopes still unresolved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct KeyLimits {
    pub rates: Rates,
    pub concurrent: Option<u32>,
    pub models: Vec<(String, Rates)>,
    pub providers: Vec<(String, Rates)>,
}

impl KeyLimits {
    /// True when the key counts tokens anywhere (needs the model and the usage).
    pub fn counts_tokens(&self) -> bool {
        self.rates.tokens.is_some()
            || self.models.iter().any(|(_, r)| r.tokens.is_some())
            || self.providers.iter().any(|(_, r)| r.tokens.is_some())
    }

    /// True when some limit depends on the model or provider asked for.
    pub fn is_scoped(&self) -> bool {
        !self.models.is_empty() || !self.providers.is_empty()
    }
}

/// What happens to shared windows while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitFallback {
    /// Each node enforces every limit on its own (a budget may multiply by the
    /// node count for the outage, but never becomes unlimited).
    Local,
    /// Requests of limited keys are refused with 503 until Redis answers.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub shared: bool,
    pub fallback: LimitFallback,
    pub redis_timeout: std::time::Duration,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            shared: true,
            fallback: LimitFallback::Local,
            redis_timeout: std::time::Duration::from_millis(200),
        }
    }
}

/// Validates one key's limits; `Err((field path below the key, reason))`.
pub fn validate(raw: LimitsFile) -> Result<Option<KeyLimits>, (String, String)> {
    let rates = |at: &str, rpm: Option<u64>, tpm: Option<u64>| {
        for (field, v) in [("requests_per_minute", rpm), ("tokens_per_minute", tpm)] {
            if v == Some(0) {
                return Err((
                    format!("{at}{field}"),
                    "is 0; must be at least 1 (omit it for no limit)".into(),
                ));
            }
        }
        Ok(Rates {
            requests: rpm,
            tokens: tpm,
        })
    };
    let scoped = |kind: &str, list: Vec<ScopedFile>| {
        let mut out: Vec<(String, Rates)> = Vec::with_capacity(list.len());
        for (i, s) in list.into_iter().enumerate() {
            let at = format!("limits.{kind}[{i}]");
            if s.name.is_empty() {
                return Err((format!("{at}.name"), "is required".into()));
            }
            if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&s.name)) {
                return Err((
                    format!("{at}.name"),
                    format!("`{}` is listed twice", s.name),
                ));
            }
            let r = rates(
                &format!("{at}."),
                s.requests_per_minute,
                s.tokens_per_minute,
            )?;
            if r.is_empty() {
                return Err((at, format!("`{}` sets no limit", s.name)));
            }
            out.push((s.name, r));
        }
        Ok(out)
    };
    if raw.concurrent_requests == Some(0) {
        return Err((
            "limits.concurrent_requests".into(),
            "is 0; must be at least 1 (omit it for no limit)".into(),
        ));
    }
    let limits = KeyLimits {
        rates: rates("limits.", raw.requests_per_minute, raw.tokens_per_minute)?,
        concurrent: raw.concurrent_requests,
        models: scoped("models", raw.models)?,
        providers: scoped("providers", raw.providers)?,
    };
    Ok((limits != KeyLimits::default()).then_some(limits))
}
