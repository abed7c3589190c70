//! Provider-key health (SPEC §6): a 429 cools a key down for `Retry-After` (or a
//! default), a 401/403 takes it out until reload, and repeated failures open a
//! circuit that half-opens after a backoff: the next attempt probes the key, and
//! one more failure opens it again at once.
//! Lock-free: a few atomics per key, read on every attempt.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;

/// Milliseconds since the process started: the clock of every health deadline.
pub fn now_ms() -> u64 {
    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How key health reacts to failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Cool-down after a 429 without `Retry-After`: 30 s.
    pub cooldown: Duration,
    /// Longest cool-down honoured from `Retry-After`: 1 h.
    pub max_cooldown: Duration,
    /// Consecutive failures (5xx, timeouts, connect errors) that open the circuit: 5.
    pub failure_threshold: u32,
    /// How long an open circuit stays open before a probe: 30 s.
    pub circuit_backoff: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(3600),
            failure_threshold: 5,
            circuit_backoff: Duration::from_secs(30),
        }
    }
}

/// What an attempt with a key showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// 429, with the cool-down it asked for.
    RateLimited(Option<Duration>),
    /// 401/403: the key is refused.
    Refused,
    /// 5xx, timeout or connect error.
    Failed,
}

/// Why a key cannot be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Cooling down after a 429 until this `now_ms`.
    Cooling(u64),
    /// Refused by the provider (401/403): out until reload.
    Disabled,
    /// Circuit open until this `now_ms`.
    Open(u64),
}

#[derive(Debug, Default)]
pub struct KeyHealth {
    cool_until: AtomicU64,
    disabled: AtomicBool,
    failures: AtomicU32,
    open_until: AtomicU64,
}

impl KeyHealth {
    /// Whether the key may be tried now (no side effects). Past its backoff an open
    /// circuit is half-open: the key is tried again, and the failure count, still at
    /// the threshold, re-opens the circuit on the first failure.
    pub fn check(&self, now: u64) -> Result<(), Unusable> {
        if self.disabled.load(Ordering::Relaxed) {
            return Err(Unusable::Disabled);
        }
        let cool = self.cool_until.load(Ordering::Relaxed);
        if cool > now {
            return Err(Unusable::Cooling(cool));
        }
        let open = self.open_until.load(Ordering::Relaxed);
        if open > now {
            return Err(Unusable::Open(open));
        }
        Ok(())
    }

    /// Records an attempt's outcome; returns whether the key is healthy afterwards.
    pub fn record(&self, outcome: Outcome, now: u64, policy: &HealthPolicy) -> bool {
        match outcome {
            Outcome::Ok => {
                self.failures.store(0, Ordering::Relaxed);
                self.open_until.store(0, Ordering::Relaxed);
                self.cool_until.store(0, Ordering::Relaxed);
                true
            }
            Outcome::RateLimited(wait) => {
                let wait = wait.unwrap_or(policy.cooldown).min(policy.max_cooldown);
                self.cool_until
                    .store(now.saturating_add(millis(wait)), Ordering::Relaxed);
                false
            }
            Outcome::Refused => {
                self.disabled.store(true, Ordering::Relaxed);
                false
            }
            Outcome::Failed => {
                let n = self
                    .failures
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                if n >= policy.failure_threshold {
                    self.open_until.store(
                        now.saturating_add(millis(policy.circuit_backoff)),
                        Ordering::Relaxed,
                    );
                    false
                } else {
                    true
                }
            }
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub fn retry_after(value: &HeaderValue) -> Option<Duration> {
    let s = value.to_str().ok()?.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(s).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_cool_down_for_retry_after() {
        let (h, p) = (KeyHealth::default(), HealthPolicy::default());
        assert!(h.check(1000).is_ok());
        h.record(Outcome::RateLimited(Some(Duration::from_secs(2))), 1000, &p);
        assert_eq!(h.check(2999), Err(Unusable::Cooling(3000)));
        assert!(h.check(3000).is_ok());
        h.record(Outcome::RateLimited(None), 5000, &p);
        assert_eq!(h.check(5000), Err(Unusable::Cooling(35_000)));
    }

    #[test]
    fn refused_keys_stay_out() {
        let (h, p) = (KeyHealth::default(), HealthPolicy::default());
        h.record(Outcome::Refused, 0, &p);
        assert_eq!(h.check(u64::MAX / 2), Err(Unusable::Disabled));
    }

    #[test]
    fn circuit_opens_half_opens_and_closes_on_success() {
        let (h, p) = (KeyHealth::default(), HealthPolicy::default());
        for _ in 0..4 {
            assert!(h.record(Outcome::Failed, 0, &p));
        }
        assert!(!h.record(Outcome::Failed, 0, &p));
        assert_eq!(h.check(10), Err(Unusable::Open(30_000)));
        assert!(h.check(30_000).is_ok(), "half-open: probe");
        assert!(
            !h.record(Outcome::Failed, 30_001, &p),
            "a failed probe re-opens at once"
        );
        assert_eq!(h.check(30_002), Err(Unusable::Open(60_001)));
        h.record(Outcome::Ok, 60_002, &p);
        assert!(h.check(60_003).is_ok());
        assert!(
            h.record(Outcome::Failed, 60_004, &p),
            "closed: counting from zero again"
        );
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(
            retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        let d = retry_after(&HeaderValue::from_str(&future).unwrap()).unwrap();
        assert!(
            d > Duration::from_secs(95) && d <= Duration::from_secs(100),
            "{d:?}"
        );
        assert_eq!(retry_after(&HeaderValue::from_static("soon")), None);
    }
}
