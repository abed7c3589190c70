//! An access key's limits compiled against the catalog: its scopes (the key
//! itself, a model, a provider), their windows, and the metric series they feed.

use std::sync::atomic::AtomicU32;

use http::HeaderValue;

use pingora_prometheus::prometheus::IntCounter;

use super::window::{Rate, Window};
use super::{Exceeded, Verdict};
use crate::catalog::Catalog;
use crate::config::limits::{KeyLimits, Rates};
use crate::error::ApiError;
use crate::resolve::{resolve, Routes, Target};
use crate::upstream::exchange::ExtraHeader;

/// At most this many scopes per key (they are tracked in a 64-bit mask).
pub const MAX_SCOPES: usize = 64;

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Tokens,
    Concurrent,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Tokens => "tokens",
            Kind::Concurrent => "concurrent",
        }
    }
}

/// Which requests a scope counts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Applies {
    All,
    Provider(usize),
    /// Requests whose first target is one of these (provider, upstream model).
    Targets(Vec<(usize, Box<str>)>),
}

#[derive(Debug)]
struct Scope {
    /// "" for the key itself, else `model NAME` or `provider ID`.
    label: Box<str>,
    applies: Applies,
    requests: Option<Window>,
    tokens: Option<Window>,
    /// `x-ratelimit-limit-*` values, made once.
    limit_headers: [Option<HeaderValue>; 2],
    /// Redis keys of the requests and tokens windows, made once:
    /// `<prefix>rl:{<key name>}:<scope>:<kind>` (one hash slot per access key).
    redis_keys: [Box<str>; 2],
}

/// One access key's limits, shared by every request of the key (and carried
/// over a reload when its rules did not change).
#[derive(Debug)]
pub struct KeyLimiter {
    pub name: Box<str>,
    pub spec: KeyLimits,
    scopes: Vec<Scope>,
    pub concurrent: Option<u32>,
    pub(super) in_flight: AtomicU32,
    /// `tollgate_rate_limited_total` series per kind, made once.
    refused: [Option<IntCounter>; 3],
}

impl KeyLimiter {
    /// Compiles `spec` of key `name`; names a scope that resolves to nothing.
    pub fn compile(
        name: &str,
        spec: &KeyLimits,
        catalog: &Catalog,
        routes: &Routes,
        redis_prefix: &str,
    ) -> Result<KeyLimiter, String> {
        let mut scopes = Vec::new();
        let redis_key = |label: &str, kind: Kind| -> Box<str> {
            let scope = match label {
                "" => "key".to_string(),
                l => l.replacen(' ', ":", 1),
            };
            format!("{redis_prefix}rl:{{{name}}}:{scope}:{}", kind.label()).into()
        };
        let window = |limit: Option<u64>| limit.map(|l| Window::new(Rate::per_minute(l)));
        let mut push = |label: String, applies: Applies, r: &Rates| {
            scopes.push(Scope {
                redis_keys: [
                    redis_key(&label, Kind::Requests),
                    redis_key(&label, Kind::Tokens),
                ],
                label: label.into(),
                applies,
                requests: window(r.requests),
                tokens: window(r.tokens),
                limit_headers: [
                    r.requests.map(HeaderValue::from),
                    r.tokens.map(HeaderValue::from),
                ],
            })
        };
        if !spec.rates.is_empty() {
            push(String::new(), Applies::All, &spec.rates);
        }
        for (model, r) in &spec.models {
            let targets = resolve(catalog, routes, model).ok_or_else(|| {
                format!("limits.models names model `{model}`, which no provider lists")
            })?;
            let ids = targets
                .into_iter()
                .map(|t| (t.provider, Box::from(&*t.upstream_model)))
                .collect();
            push(format!("model {model}"), Applies::Targets(ids), r);
        }
        for (provider, r) in &spec.providers {
            let p = catalog.provider_index(provider).ok_or_else(|| {
                format!("limits.providers names provider `{provider}`, which the catalog does not define")
            })?;
            push(format!("provider {provider}"), Applies::Provider(p), r);
        }
        if scopes.len() > MAX_SCOPES {
            return Err(format!("limits: at most {MAX_SCOPES} scopes per key"));
        }
        let refused = [Kind::Requests, Kind::Tokens, Kind::Concurrent].map(|kind| {
            crate::metrics::metrics()
                .map(|m| m.rate_limited.with_label_values(&[name, kind.label()]))
        });
        Ok(KeyLimiter {
            name: name.into(),
            spec: spec.clone(),
            scopes,
            concurrent: spec.concurrent,
            in_flight: AtomicU32::new(0),
            refused,
        })
    }

    /// Same rules (so the windows may carry over a reload).
    pub fn same_rules(&self, other: &KeyLimiter) -> bool {
        self.name == other.name
            && self.spec == other.spec
            && self
                .scopes
                .iter()
                .zip(&other.scopes)
                .all(|(a, b)| a.applies == b.applies)
    }

    /// The scopes a request for `target` counts in, as a mask.
    pub(super) fn applicable(&self, target: Option<&Target>) -> u64 {
        let mut mask = 0;
        for (i, s) in self.scopes.iter().enumerate() {
            let hit = match (&s.applies, target) {
                (Applies::All, _) => true,
                (Applies::Provider(p), Some(t)) => *p == t.provider,
                (Applies::Targets(ids), Some(t)) => ids
                    .iter()
                    .any(|(p, m)| *p == t.provider && **m == *t.upstream_model),
                (_, None) => false,
            };
            if hit {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// The windows of the scopes in `mask`: (scope index, kind, window).
    pub(super) fn windows(&self, mask: u64) -> impl Iterator<Item = (usize, Kind, &Window)> {
        self.scopes
            .iter()
            .enumerate()
            .filter(move |(i, _)| mask & (1 << i) != 0)
            .flat_map(|(i, s)| {
                let r = s.requests.as_ref().map(|w| (i, Kind::Requests, w));
                let t = s.tokens.as_ref().map(|w| (i, Kind::Tokens, w));
                r.into_iter().chain(t)
            })
    }

    /// The `x-ratelimit-limit-*` value of a window.
    pub(super) fn limit_header(&self, scope: usize, kind: Kind) -> Option<HeaderValue> {
        let s = self.scopes.get(scope)?;
        match kind {
            Kind::Requests => s.limit_headers[0].clone(),
            Kind::Tokens => s.limit_headers[1].clone(),
            Kind::Concurrent => None,
        }
    }

    pub(super) fn rate(&self, scope: usize, kind: Kind) -> Option<Rate> {
        let s = self.scopes.get(scope)?;
        match kind {
            Kind::Requests => s.requests.as_ref().map(|w| w.rate),
            Kind::Tokens => s.tokens.as_ref().map(|w| w.rate),
            Kind::Concurrent => None,
        }
    }

    /// The Redis key of a window.
    pub(super) fn redis_key(&self, scope: usize, kind: Kind) -> &str {
        let i = usize::from(kind == Kind::Tokens);
        self.scopes.get(scope).map_or("", |s| &s.redis_keys[i])
    }

    /// Takes from this process's windows, all or none.
    pub(super) fn take_local(
        &self,
        mask: u64,
        tokens: u64,
        now: u64,
    ) -> Vec<(usize, Kind, Verdict)> {
        let mut out: Vec<(usize, Kind, Verdict)> = Vec::with_capacity(4);
        let mut refused = false;
        for (i, kind, w) in self.windows(mask) {
            let cost = if kind == Kind::Tokens { tokens } else { 1 };
            let v = match w.take(now, cost) {
                Ok(s) => Verdict::Fits(s),
                Err(retry_ns) => {
                    refused = true;
                    Verdict::Wait {
                        retry_ns,
                        standing: w.standing(now),
                    }
                }
            };
            out.push((i, kind, v));
        }
        if refused {
            // Give back what the admitted windows took.
            for ((_, kind, w), (_, _, v)) in self.windows(mask).zip(&out) {
                if let Verdict::Fits(_) = v {
                    let cost = if kind == Kind::Tokens { tokens } else { 1 };
                    w.adjust(now, -(i64::try_from(cost).unwrap_or(i64::MAX)));
                }
            }
        }
        out
    }

    /// Corrects the token windows of `mask` by `delta` tokens.
    pub(super) fn adjust_local(&self, mask: u64, delta: i64, now: u64) {
        for (_, kind, w) in self.windows(mask) {
            if kind == Kind::Tokens {
                w.adjust(now, delta);
            }
        }
    }

    /// Counts the refusal and makes its error.
    pub(super) fn refuse(
        &self,
        kind: Kind,
        scope: usize,
        limit: u64,
        retry_after_ms: u64,
        headers: Vec<ExtraHeader>,
    ) -> ApiError {
        if let Some(c) = &self.refused[kind as usize] {
            c.inc();
        }
        let scope = match kind {
            Kind::Concurrent => "".into(),
            _ => self
                .scopes
                .get(scope)
                .map_or_else(Default::default, |s| s.label.clone()),
        };
        ApiError::LimitExceeded(Box::new(Exceeded {
            key: self.name.clone(),
            kind,
            scope,
            limit,
            retry_after_ms: retry_after_ms.max(1),
            headers,
        }))
    }

    /// Where each window stands now: (limit label, remaining), for the gauge.
    pub fn remaining(&self, now: u64) -> Vec<(String, u64)> {
        self.windows(u64::MAX)
            .map(|(i, kind, w)| {
                let label = match self.scopes.get(i).map(|s| &*s.label) {
                    None | Some("") => kind.label().to_string(),
                    Some(scope) => format!("{}/{}", scope.replacen(' ', ":", 1), kind.label()),
                };
                (label, w.standing(now).remaining)
            })
            .collect()
    }
}
