//! The gateway config file as written (`conf/tollgate.yaml`): serde structs with
//! defaults, validated into [`super::Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
    pub catalog: Option<PathBuf>,
    pub max_body_bytes: Option<u64>,
    pub passthrough: Option<bool>,
    pub access_keys: Vec<AccessKeyFile>,
    pub providers: BTreeMap<String, ProviderFile>,
    pub routes: BTreeMap<String, Vec<String>>,
    pub upstream: UpstreamFile,
    pub gateway_fee: FeeFile,
    /// Image content: on (default), off, or per-model. `ENABLE_VISION` sets it too.
    pub vision: Option<String>,
    /// Read usage from responses and charge credits (default true).
    pub accounting: Option<bool>,
    pub ledger: LedgerFile,
    pub rate_limits: super::limits::RateLimitsFile,
    pub access_log: super::access_log::AccessLogFile,
    pub downstream: super::downstream::DownstreamFile,
    pub tls: super::downstream::TlsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerFile {
    /// The local append-only ledger file (default `tollgate-ledger.log` in the
    /// working directory, opened when some access key has a balance).
    pub path: Option<PathBuf>,
    /// How often the ledger is fsynced (default 10ms).
    pub flush_interval: Option<String>,
    /// Share balances across gateway nodes through Redis (`redis://host:6379/0`).
    pub redis_url: Option<String>,
    /// Key prefix in Redis (default `tollgate:`).
    pub redis_prefix: Option<String>,
    /// While Redis is unreachable: `refuse` (default) or `allow_local`.
    pub redis_fallback: Option<String>,
    /// With `allow_local`: micro-USD each key may spend per node during an outage.
    pub local_allowance: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeeFile {
    /// Percent of the model cost (e.g. 5.5).
    pub percent: Option<f64>,
    /// Flat fee per request, micro-USD.
    pub per_request_microusd: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessKeyFile {
    pub name: String,
    /// The key itself; prefer `key_env` so the file holds no secret.
    pub key: Option<String>,
    /// Name of an environment variable holding the key.
    pub key_env: Option<String>,
    /// Provider ID → the access key's own provider key (BYOK), or `env:VAR`.
    pub provider_keys: BTreeMap<String, String>,
    /// Credit balance, micro-USD; once spent, requests get 402. Unset: unlimited.
    pub credits: Option<u64>,
    /// Allow-list: the only models (names, provider:model, or routes) this key may use.
    pub models: Vec<String>,
    /// Allow-list: providers whose every model this key may use.
    pub providers: Vec<String>,
    /// Requests, tokens and concurrency per minute (unset: unlimited).
    pub limits: super::limits::LimitsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderFile {
    /// Overrides the catalog's base URL (as `{P}_API_URL` does, which wins over this).
    pub base_url: Option<String>,
    /// Several base URLs (replicas, regions): a health-checked endpoint pool.
    pub endpoints: Vec<String>,
    /// Named managed keys (added to any from `{P}_API_KEY`).
    pub keys: Vec<ProviderKeyFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderKeyFile {
    pub name: String,
    pub key: Option<String>,
    pub key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamFile {
    pub connect_timeout: Option<String>,
    pub response_header_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub pool_idle_timeout: Option<String>,
    pub max_attempts: Option<u32>,
    pub rate_limit_cooldown: Option<String>,
    /// Endpoint health checks: `tcp` (default) or `http` (GET `health_check_path`).
    pub health_check: Option<String>,
    pub health_check_path: Option<String>,
    pub health_check_interval: Option<String>,
    pub failure_threshold: Option<u32>,
    pub circuit_backoff: Option<String>,
}
