//! Per-access-key rate limits: requests and tokens per minute (for the key, or
//! for one of its models or providers) and requests in flight.
//!
//! Admission takes one request and an estimate of its tokens (prompt bytes / 4
//! plus its output cap) from every window that applies, all or none; when the
//! request ends, its real usage corrects the token windows, so a client of long
//! answers is limited by what it really used. Windows are GCRA cells (see
//! `window`): in the process by default, in Redis when shared (see `shared`).
//! Every answer carries OpenAI's `x-ratelimit-*` headers for the tightest window.

mod compile;
pub mod gauge;
mod shared;
pub mod window;

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use bytes::BytesMut;

use http::{HeaderName, HeaderValue};

use crate::config::limits::LimitFallback;
use crate::error::ApiError;
use crate::resolve::Target;
use crate::state::State;
use crate::upstream::exchange::ExtraHeader;
pub use compile::{KeyLimiter, Kind};
use shared::SharedWindows;
use window::{now_ns, Standing};

/// The process's limiter: the Redis windows, connected on first use when shared.
#[derive(Default)]
pub struct Limiter {
    shared: OnceLock<Option<Arc<SharedWindows>>>,
}

/// An admitted request's hold on its key's windows, corrected when it ends.
#[derive(Debug)]
pub struct Lease {
    key: Arc<KeyLimiter>,
    /// Scopes whose windows were taken from (bit i: scope i).
    scopes: u64,
    /// Tokens taken from each token window.
    estimate: u64,
    /// Taken from Redis windows (else from this process's).
    shared: bool,
    /// Counted in the key's requests in flight.
    in_flight: bool,
    /// `x-ratelimit-*` headers for the answer.
    pub headers: Vec<ExtraHeader>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.in_flight {
            self.key.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A refusal: which window, and when to come back.
#[derive(Debug)]
pub struct Exceeded {
    pub key: Box<str>,
    pub kind: Kind,
    /// "" for the key's own limits, else `model gpt-4o` or `provider openai`.
    pub scope: Box<str>,
    pub limit: u64,
    pub retry_after_ms: u64,
    pub headers: Vec<ExtraHeader>,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            Kind::Requests => "requests per minute",
            Kind::Tokens => "tokens per minute",
            Kind::Concurrent => "concurrent requests",
        };
        let scope = match &*self.scope {
            "" => String::new(),
            s => format!(" for {s}"),
        };
        let secs = self.retry_after_ms as f64 / 1000.0;
        write!(
            f,
            "Rate limit reached for access key `{}` on {what}{scope}: limit {}. Please try again in {secs:.3}s.",
            self.key, self.limit
        )
    }
}

/// One window's answer to an admission.
enum Verdict {
    Fits(Standing),
    Wait { retry_ns: u64, standing: Standing },
}

impl Limiter {
    /// Admits a request of access key `key` for `target` (`None`: raw passthrough)
    /// estimated at `tokens`, or refuses it. Keys without limits get `None`.
    pub async fn admit(
        &self,
        state: &State,
        key: usize,
        target: Option<&Target>,
        tokens: u64,
    ) -> Result<Option<Lease>, ApiError> {
        let Some(k) = state.limits.get(key).and_then(Option::as_ref) else {
            return Ok(None);
        };
        let mut lease = Lease {
            key: k.clone(),
            scopes: k.applicable(target),
            estimate: tokens,
            shared: false,
            in_flight: false,
            headers: Vec::new(),
        };
        if let Some(max) = k.concurrent {
            let now = k.in_flight.fetch_add(1, Ordering::AcqRel);
            lease.in_flight = true;
            if now >= max {
                // The lease's drop gives the slot back.
                return Err(k.refuse(Kind::Concurrent, 0, u64::from(max), 1000, Vec::new()));
            }
        }
        if lease.scopes == 0 {
            return Ok(Some(lease));
        }
        // Boxed: the Redis call's future is 4 KiB, which every request's future
        // would carry (and copy) otherwise.
        let verdicts = match self.windows(state) {
            Some(redis) if redis.is_up() => {
                match Box::pin(redis.take(k, lease.scopes, tokens)).await {
                    Ok(v) => {
                        lease.shared = true;
                        v
                    }
                    Err(e) => {
                        redis.mark_down(&e);
                        self.fallback(state, k, lease.scopes, tokens)?
                    }
                }
            }
            Some(_) => self.fallback(state, k, lease.scopes, tokens)?,
            None => k.take_local(lease.scopes, tokens, now_ns()),
        };
        lease.headers = headers(k, &verdicts);
        if let Some((i, kind, retry_ns)) = verdicts.iter().find_map(|(i, kind, v)| match v {
            Verdict::Wait { retry_ns, .. } => Some((*i, *kind, *retry_ns)),
            Verdict::Fits(_) => None,
        }) {
            let limit = k.rate(i, kind).map_or(0, |r| r.limit);
            return Err(k.refuse(
                kind,
                i,
                limit,
                retry_ns.div_ceil(1_000_000),
                std::mem::take(&mut lease.headers),
            ));
        }
        Ok(Some(lease))
    }

    /// While Redis is unreachable: this node's own windows, or a refusal.
    fn fallback(
        &self,
        state: &State,
        k: &KeyLimiter,
        scopes: u64,
        tokens: u64,
    ) -> Result<Vec<(usize, Kind, Verdict)>, ApiError> {
        match state.config.rate_limits.fallback {
            LimitFallback::Local => Ok(k.take_local(scopes, tokens, now_ns())),
            LimitFallback::Refuse => Err(ApiError::LimiterUnavailable(
                "the shared rate-limit store (Redis) is unreachable".into(),
            )),
        }
    }

    /// Corrects the token windows with what the request really used (`None`:
    /// unknown, the estimate stands).
    pub fn settle(&self, state: &State, lease: Lease, used: Option<u64>) {
        let Some(used) = used else { return };
        let delta = i64::try_from(used).unwrap_or(i64::MAX)
            - i64::try_from(lease.estimate).unwrap_or(i64::MAX);
        if delta == 0 || lease.scopes == 0 {
            return;
        }
        match self.windows(state) {
            Some(redis) if lease.shared => redis.adjust(&lease.key, lease.scopes, delta),
            _ => lease.key.adjust_local(lease.scopes, delta, now_ns()),
        }
    }

    /// The shared windows, when Redis is configured and sharing is on.
    fn windows(&self, state: &State) -> Option<&Arc<SharedWindows>> {
        self.shared
            .get_or_init(|| {
                let url = state.config.ledger.redis_url.as_deref()?;
                if !state.config.rate_limits.shared {
                    return None;
                }
                // Window keys carry the prefix already (built per access key).
                match SharedWindows::new(url, state.config.rate_limits.redis_timeout) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        log::error!("rate limits: not shared ({e}); each node keeps its own");
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// OpenAI's header trio for requests and for tokens, each from the applicable
/// window with the least remaining.
///
/// The limits are prebuilt; the remaining counts and reset times are written into one
/// buffer that the four values share, one allocation instead of four.
fn headers(k: &KeyLimiter, verdicts: &[(usize, Kind, Verdict)]) -> Vec<ExtraHeader> {
    static NAMES: [[HeaderName; 3]; 2] = [
        [
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ],
        [
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ],
    ];
    let mut out = Vec::with_capacity(6);
    let mut text = BytesMut::with_capacity(64);
    // (name, range in `text`) of each value written.
    let mut written: [(&HeaderName, Range<usize>); 4] =
        std::array::from_fn(|_| (&NAMES[0][1], 0..0));
    let mut n = 0;
    for (kind, names) in [Kind::Requests, Kind::Tokens].iter().zip(&NAMES) {
        let tightest = verdicts
            .iter()
            .filter(|(_, k, _)| k == kind)
            .map(|(i, _, v)| match v {
                Verdict::Fits(s) | Verdict::Wait { standing: s, .. } => (*i, *s),
            })
            .min_by_key(|(_, s)| s.remaining);
        let Some((scope, s)) = tightest else { continue };
        if let Some(limit) = k.limit_header(scope, *kind) {
            out.push((names[0].clone(), limit));
        }
        let start = text.len();
        window::put_u64(&mut text, s.remaining);
        written[n] = (&names[1], start..text.len());
        let mut buf = [0u8; 32];
        let len = window::write_reset(&mut buf, s.reset_ns);
        let start = text.len();
        text.extend_from_slice(&buf[..len]);
        written[n + 1] = (&names[2], start..text.len());
        n += 2;
    }
    let text = text.freeze();
    for (name, range) in &written[..n] {
        if let Ok(v) = HeaderValue::from_maybe_shared(text.slice(range.clone())) {
            out.push(((*name).clone(), v));
        }
    }
    out
}

#[cfg(test)]
mod tests;
