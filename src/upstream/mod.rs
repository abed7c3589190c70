//! Upstream providers as the request path needs them: parsed base URL, resolved
//! addresses, prebuilt auth header values and the managed key pool.

mod dns;
pub mod exchange;
pub mod h1;
pub mod health;
pub mod pool;
pub mod probe;
pub mod request;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::{HeaderName, HeaderValue};
use pingora_core::upstreams::peer::HttpPeer;

use crate::catalog::{AuthStyle, Provider};
use crate::config::{Env, NamedKey, ProviderOverride, UpstreamSettings};
use crate::secret::Secret;

pub use dns::Dns;

/// One provider, ready for requests.
#[derive(Debug)]
pub struct Upstream {
    /// Why the provider cannot be used (e.g. a base-URL placeholder with no value).
    pub unusable: Option<String>,
    /// The provider's base URLs (one, or a pool of replicas / regions).
    pub endpoints: Vec<Endpoint>,
    next_endpoint: AtomicUsize,
    pub auth: AuthStyle,
    /// Default headers (e.g. `anthropic-version`), sent when the client sent none.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub keys: KeyPool,
    /// Attempt counters of the attempts that used no managed key, by billing
    /// (`auth::Billing as usize`).
    pub unmanaged_series: [crate::metrics::KeySeries; 4],
}

/// Where a provider's base URL points.
#[derive(Debug)]
pub struct Endpoint {
    pub tls: bool,
    pub host: Box<str>,
    /// `host[:port]` as the Host header carries it.
    pub authority: HeaderValue,
    /// Base path without a trailing slash (`/v1`, `/v1beta/openai`, or empty).
    pub base_path: Box<str>,
    pub dns: Dns,
    /// Set by the health checker; a dead endpoint is skipped while others live.
    pub healthy: AtomicBool,
}

/// A managed provider key with its prebuilt auth header value.
#[derive(Debug)]
pub struct ProviderKey {
    /// Configured name, or a short fingerprint for keys from `{P}_API_KEY`.
    pub name: std::sync::Arc<str>,
    pub header: HeaderValue,
    /// Shared with the next state when a reload keeps the key.
    pub health: std::sync::Arc<health::KeyHealth>,
    /// Its attempt counters and health gauge.
    pub series: crate::metrics::KeySeries,
}

/// The managed keys of a provider, handed out round robin.
#[derive(Debug, Default)]
pub struct KeyPool {
    pub keys: Vec<ProviderKey>,
    next: AtomicUsize,
}

impl KeyPool {
    /// The index of the key to try first for a new request.
    pub fn start(&self) -> usize {
        match self.keys.len() {
            0 | 1 => 0,
            n => self.next.fetch_add(1, Ordering::Relaxed) % n,
        }
    }
}

/// Builds the auth header value for `secret` in the provider's style.
pub fn auth_value(auth: AuthStyle, secret: &str) -> Option<HeaderValue> {
    let mut value = match auth {
        AuthStyle::XApiKey => HeaderValue::from_str(secret).ok()?,
        AuthStyle::Bearer | AuthStyle::OptionalBearer => {
            HeaderValue::from_str(&format!("Bearer {secret}")).ok()?
        }
    };
    value.set_sensitive(true);
    Some(value)
}

/// The header that carries the credential in the provider's style.
pub fn auth_header(auth: AuthStyle) -> HeaderName {
    match auth {
        AuthStyle::XApiKey => HeaderName::from_static("x-api-key"),
        AuthStyle::Bearer | AuthStyle::OptionalBearer => http::header::AUTHORIZATION,
    }
}

impl Upstream {
    /// Compiles a provider with its environment (`{P}_API_URL`, `{P}_API_KEY`, placeholders)
    /// and config overrides. Fails only on a malformed URL or key.
    pub fn build(
        provider: &Provider,
        overrides: Option<&ProviderOverride>,
        env: Env<'_>,
    ) -> Result<Upstream, String> {
        let p = &provider.env;
        // `{P}_API_URL` (comma-separated for a pool) wins over config, config over catalog.
        let bases: Vec<String> = match env(&format!("{p}_API_URL")) {
            Some(list) => list
                .split(',')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect(),
            None => match overrides {
                Some(o) if !o.endpoints.is_empty() => o.endpoints.clone(),
                Some(ProviderOverride {
                    base_url: Some(b), ..
                }) => vec![b.clone()],
                _ => vec![provider.base_url.to_string()],
            },
        };
        let mut endpoints = Vec::with_capacity(bases.len());
        let mut unusable = None;
        for base in &bases {
            match fill_placeholders(base, p, env) {
                (_, Some(var)) => unusable = Some(format!("set {var} (its base URL needs it)")),
                (url, None) => endpoints.push(Endpoint::parse(&url)?),
            }
        }

        let mut keys = Vec::new();
        if let Some(list) = env(&format!("{p}_API_KEY")) {
            for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                let secret = Secret::new(key);
                keys.push(pool_key(
                    provider,
                    &format!("{p}_API_KEY"),
                    &secret.fingerprint(),
                    &secret,
                )?);
            }
        }
        for NamedKey { name, key } in overrides.map(|o| o.keys.as_slice()).unwrap_or_default() {
            keys.push(pool_key(provider, "config", name, key)?);
        }

        let mut headers = Vec::new();
        for (name, value) in &provider.headers {
            let name = HeaderName::try_from(name.as_ref())
                .map_err(|_| format!("header name `{name}` is invalid"))?;
            let value = HeaderValue::try_from(value.as_ref())
                .map_err(|_| format!("header `{name}` has an invalid value"))?;
            headers.push((name, value));
        }
        Ok(Upstream {
            unusable,
            endpoints,
            next_endpoint: AtomicUsize::new(0),
            auth: provider.auth,
            headers,
            keys: KeyPool {
                keys,
                next: AtomicUsize::new(0),
            },
            unmanaged_series: Default::default(),
        })
    }

    /// The endpoint for the next attempt: round robin over the healthy ones, or over
    /// all of them when the health checker marked every one dead (it may be wrong;
    /// refusing outright would turn a checker fault into an outage).
    pub fn pick_endpoint(&self) -> Option<&Endpoint> {
        let n = self.endpoints.len();
        if n <= 1 {
            return self.endpoints.first();
        }
        let start = self.next_endpoint.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.endpoints[(start + i) % n])
            .find(|e| e.healthy.load(Ordering::Relaxed))
            .or_else(|| self.endpoints.get(start % n))
    }

    /// A pingora peer for one attempt at `addr`.
    pub fn peer(&self, endpoint: &Endpoint, addr: SocketAddr, s: &UpstreamSettings) -> HttpPeer {
        let mut peer = HttpPeer::new(addr, endpoint.tls, endpoint.host.to_string());
        peer.options.connection_timeout = Some(s.connect_timeout);
        peer.options.total_connection_timeout = Some(s.connect_timeout);
        peer.options.idle_timeout = Some(s.pool_idle_timeout);
        peer
    }
}

fn pool_key(
    provider: &Provider,
    origin: &str,
    name: &str,
    secret: &Secret,
) -> Result<ProviderKey, String> {
    let header = auth_value(provider.auth, secret.expose())
        .ok_or_else(|| format!("a key from {origin} has characters a header cannot carry"))?;
    Ok(ProviderKey {
        name: name.into(),
        header,
        health: Default::default(),
        series: Default::default(),
    })
}

/// Fills `{VAR}` in a base URL from `{P}_VAR`; returns the first variable that is unset.
fn fill_placeholders(url: &str, prefix: &str, env: Env<'_>) -> (String, Option<String>) {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let var = &rest[open + 1..open + close];
        let full = format!("{prefix}_{var}");
        match env(&full) {
            Some(value) => {
                out.push_str(&rest[..open]);
                out.push_str(&value);
            }
            None => return (url.to_string(), Some(full)),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    (out, None)
}

/// A base URL fit for a message: any `user:password@` replaced.
fn shown(base: &str) -> String {
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
                None => base.to_string(),
            }
        }
        None => base.to_string(),
    }
}

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let base = &shown(raw);
        let url = url::Url::parse(raw).map_err(|e| format!("base URL `{base}`: {e}"))?;
        let tls = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(format!(
                    "base URL `{base}`: scheme `{other}` is not http(s)"
                ))
            }
        };
        let host = url
            .host_str()
            .ok_or_else(|| format!("base URL `{base}` has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let authority = HeaderValue::from_str(&authority)
            .map_err(|_| format!("base URL `{base}`: invalid host"))?;
        Ok(Endpoint {
            tls,
            dns: Dns::new(&host, port),
            host: host.into(),
            authority,
            base_path: url.path().trim_end_matches('/').into(),
            healthy: AtomicBool::new(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_kept() {
        let e =
            Endpoint::parse("https://generativelanguage.googleapis.com/v1beta/openai/").unwrap();
        assert_eq!(&*e.base_path, "/v1beta/openai");
        assert!(e.tls);
        let e = Endpoint::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(&*e.base_path, "");
        assert_eq!(e.authority, "127.0.0.1:9000");
        assert!(Endpoint::parse("ftp://x").is_err());
    }

    #[test]
    fn placeholders_come_from_the_provider_env() {
        let env = |k: &str| (k == "CLOUDFLARE_ACCOUNT_ID").then(|| "abc".to_string());
        let (url, missing) = fill_placeholders(
            "https://api.cloudflare.com/client/v4/accounts/{ACCOUNT_ID}/ai",
            "CLOUDFLARE",
            &env,
        );
        assert_eq!(url, "https://api.cloudflare.com/client/v4/accounts/abc/ai");
        assert_eq!(missing, None);
        let none = |_: &str| None;
        let (_, missing) = fill_placeholders("https://x/{ACCOUNT_ID}", "CLOUDFLARE", &none);
        assert_eq!(missing.as_deref(), Some("CLOUDFLARE_ACCOUNT_ID"));
    }

    #[test]
    fn auth_values_are_sensitive() {
        let v = auth_value(AuthStyle::Bearer, "sk-1").unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v, "Bearer sk-1");
        assert_eq!(auth_value(AuthStyle::XApiKey, "k").unwrap(), "k");
        assert!(auth_value(AuthStyle::Bearer, "bad\nkey").is_none());
    }
}
