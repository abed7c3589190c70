//! Prometheus metrics (SPEC §8), registered once in the default registry that
//! pingora-prometheus serves on the metrics listener. Label values are names,
//! never secrets, and bounded: models outside the catalog are `unlisted`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{LazyLock, OnceLock};

use pingora_prometheus::prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge_vec,
    Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
};

/// Label of a model the catalog does not list (keeps the series count bounded).
pub const UNLISTED: &str = "unlisted";
/// Access-key label of a request that used no access key (passthrough or refused).
pub const NO_KEY: &str = "none";

pub struct Metrics {
    pub requests: IntCounterVec,
    pub tokens: IntCounterVec,
    pub unpriced_tokens: IntCounterVec,
    pub estimated_tokens: IntCounterVec,
    pub credits: IntCounterVec,
    pub attempts: IntCounterVec,
    pub key_healthy: IntGaugeVec,
    pub endpoint_healthy: IntGaugeVec,
    pub aborted: IntCounterVec,
    pub duration: HistogramVec,
    pub ttfb: HistogramVec,
    pub rate_limited: IntCounterVec,
    pub reloads: IntCounterVec,
    pub access_log_dropped: IntCounter,
}

/// Latency buckets (seconds): 1 ms … 10 min, for answers from instant errors to
/// long reasoning streams.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

fn build() -> Result<Metrics, pingora_prometheus::prometheus::Error> {
    Ok(Metrics {
        requests: register_int_counter_vec!(
            "tollgate_requests_total",
            "Requests answered, by access key, provider, model and status.",
            &["access_key", "provider", "model", "status"]
        )?,
        tokens: register_int_counter_vec!(
            "tollgate_tokens_total",
            "Tokens reported by providers; kind = input|output (cached input is part of input).",
            &["access_key", "provider", "model", "kind"]
        )?,
        unpriced_tokens: register_int_counter_vec!(
            "tollgate_unpriced_tokens_total",
            "Tokens of models without a catalog price (counted, never silently free).",
            &["access_key", "provider", "model", "kind"]
        )?,
        estimated_tokens: register_int_counter_vec!(
            "tollgate_estimated_tokens_total",
            "Output tokens estimated for streams cut before the provider reported usage.",
            &["access_key", "provider", "model"]
        )?,
        credits: register_int_counter_vec!(
            "tollgate_credits_spent_microusd_total",
            "Credits charged, integer micro-USD (model cost and gateway fee).",
            &["access_key", "provider", "model"]
        )?,
        attempts: register_int_counter_vec!(
            "tollgate_upstream_attempts_total",
            "Upstream attempts by provider key and outcome.",
            &["provider", "key", "outcome"]
        )?,
        key_healthy: register_int_gauge_vec!(
            "tollgate_provider_key_healthy",
            "1 when a provider key is usable, 0 while cooling down or disabled.",
            &["provider", "key"]
        )?,
        endpoint_healthy: register_int_gauge_vec!(
            "tollgate_endpoint_healthy",
            "1 when an endpoint of a multi-endpoint provider passes its health check.",
            &["provider", "endpoint"]
        )?,
        aborted: register_int_counter_vec!(
            "tollgate_responses_aborted_total",
            "Responses cut after the first byte, by side (client|upstream).",
            &["provider", "side"]
        )?,
        duration: register_histogram_vec!(
            "tollgate_request_duration_seconds",
            "Time from request to last byte.",
            &["provider"],
            BUCKETS.to_vec()
        )?,
        ttfb: register_histogram_vec!(
            "tollgate_time_to_first_byte_seconds",
            "Time from request to the first response byte relayed.",
            &["provider"],
            BUCKETS.to_vec()
        )?,
        rate_limited: register_int_counter_vec!(
            "tollgate_rate_limited_total",
            "Requests refused by an access key's rate limit; limit = requests|tokens|concurrent.",
            &["access_key", "limit"]
        )?,
        access_log_dropped: register_int_counter!(
            "tollgate_access_log_dropped_total",
            "Access-log lines dropped because the writer fell behind."
        )?,
        reloads: register_int_counter_vec!(
            "tollgate_reloads_total",
            "Configuration reloads by result (ok|error).",
            &["result"]
        )?,
    })
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| match build() {
    Ok(m) => Some(m),
    Err(e) => {
        log::error!("metrics disabled: {e}");
        None
    }
});

/// The process's metrics (`None` only if registration failed, which is logged).
pub fn metrics() -> Option<&'static Metrics> {
    METRICS.as_ref()
}

/// The token and credit counters of one access key, provider and model, each made
/// when it first counts something (a series at zero is never published).
#[derive(Default)]
struct Spend([Option<IntCounter>; 3]);

/// Which [`Spend`]: the state's generation, then the access key, provider and model
/// indices in that state (`u32::MAX` for none).
pub type SpendKey = (u64, u32, u32, u32);

/// The request counter and latency histograms a finished request is counted in.
struct Served {
    /// `tollgate_requests_total` of the access key, provider, model and status.
    requests: IntCounter,
    /// Made when first observed, as the series would be without the cache.
    duration: Option<Histogram>,
    ttfb: Option<Histogram>,
}

/// Which [`Served`]: a [`SpendKey`] and the response status.
pub type ServedKey = (SpendKey, u16);

/// Each worker thread's [`Spend`] and [`Served`] series of the current state
/// generation.
#[derive(Default)]
struct SeriesCache {
    generation: u64,
    series: HashMap<SpendKey, Spend, BuildHasherDefault<IndexHasher>>,
    served: HashMap<ServedKey, Served, BuildHasherDefault<IndexHasher>>,
}

impl SeriesCache {
    /// The cache, emptied first when `generation` is not the one it holds.
    fn at(&mut self, generation: u64) -> &mut Self {
        if self.generation != generation {
            self.generation = generation;
            self.series.clear();
            self.served.clear();
        }
        self
    }
}

thread_local! {
    static SERIES: RefCell<SeriesCache> = RefCell::new(SeriesCache::default());
}

impl Metrics {
    /// Adds input tokens, output tokens and micro-USD to the series of `labels`
    /// (access key, provider, model), which `key` names.
    ///
    /// Resolving label values costs about 300 instructions a counter (hash, lock,
    /// map lookup), so each thread keeps the counters it used; a new state generation
    /// (a reload, which may renumber keys and models) starts afresh.
    pub fn add_spend(&self, key: SpendKey, labels: [&str; 3], amounts: [u64; 3]) {
        SERIES.with(|cache| {
            let mut cache = cache.borrow_mut();
            let spend = cache.at(key.0).series.entry(key).or_default();
            let [access, provider, model] = labels;
            for (i, (slot, n)) in spend.0.iter_mut().zip(amounts).enumerate() {
                if n == 0 {
                    continue;
                }
                slot.get_or_insert_with(|| match i {
                    0 => self
                        .tokens
                        .with_label_values(&[access, provider, model, "input"]),
                    1 => self
                        .tokens
                        .with_label_values(&[access, provider, model, "output"]),
                    _ => self.credits.with_label_values(&labels),
                })
                .inc_by(n);
            }
        });
    }

    /// Counts a finished request in `tollgate_requests_total` under `labels`
    /// (access key, provider, model, status), which `key` names, and observes its
    /// duration and time to first byte (seconds) under the provider. Cached per
    /// thread as [`Metrics::add_spend`]'s counters are.
    pub fn served(
        &self,
        key: ServedKey,
        labels: [&str; 4],
        duration: Option<f64>,
        ttfb: Option<f64>,
    ) {
        SERIES.with(|cache| {
            let mut cache = cache.borrow_mut();
            let served = cache
                .at(key.0 .0)
                .served
                .entry(key)
                .or_insert_with(|| Served {
                    requests: self.requests.with_label_values(&labels),
                    duration: None,
                    ttfb: None,
                });
            served.requests.inc();
            let provider = [labels[1]];
            if let Some(d) = duration {
                let h = served
                    .duration
                    .get_or_insert_with(|| self.duration.with_label_values(&provider));
                h.observe(d);
            }
            if let Some(t) = ttfb {
                let h = served
                    .ttfb
                    .get_or_insert_with(|| self.ttfb.with_label_values(&provider));
                h.observe(t);
            }
        });
    }
}

/// How an upstream attempt ended: the `outcome` label of
/// `tollgate_upstream_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Ok,
    ErrorPassedThrough,
    RateLimited,
    AuthError,
    ServerError,
    Timeout,
    ConnectError,
    ClientGone,
    Aborted,
}

impl AttemptOutcome {
    const COUNT: usize = 9;

    pub fn label(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::ErrorPassedThrough => "error_passed_through",
            AttemptOutcome::RateLimited => "rate_limited",
            AttemptOutcome::AuthError => "auth_error",
            AttemptOutcome::ServerError => "server_error",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::ConnectError => "connect_error",
            AttemptOutcome::ClientGone => "client_gone",
            AttemptOutcome::Aborted => "aborted",
        }
    }
}

/// One provider key label's attempt counters and health gauge, each resolved when
/// first used (a series at zero is never published) and kept with the key, so an
/// attempt costs an atomic add, not a label lookup (hash, lock, map: ~400
/// instructions a series). A reload builds new keys, which resolve afresh.
#[derive(Debug, Default)]
pub struct KeySeries {
    attempts: [OnceLock<IntCounter>; AttemptOutcome::COUNT],
    healthy: OnceLock<IntGauge>,
}

impl KeySeries {
    /// Counts an attempt of `provider` with key label `key` that ended so.
    pub fn attempt(&self, provider: &str, key: &str, outcome: AttemptOutcome) {
        let Some(m) = metrics() else { return };
        self.attempts[outcome as usize]
            .get_or_init(|| {
                m.attempts
                    .with_label_values(&[provider, key, outcome.label()])
            })
            .inc();
    }

    /// Sets `tollgate_provider_key_healthy` of `provider`'s key `key`.
    pub fn set_healthy(&self, provider: &str, key: &str, healthy: bool) {
        let Some(m) = metrics() else { return };
        self.healthy
            .get_or_init(|| m.key_healthy.with_label_values(&[provider, key]))
            .set(i64::from(healthy));
    }
}

/// A hasher for small tuples of indices (FxHash's mixing step): no SipHash rounds
/// for keys that no client chooses.
#[derive(Default)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let families = pingora_prometheus::prometheus::gather();
        let family = families.iter().find(|f| f.name() == name)?;
        family.get_metric().iter().find_map(|m| {
            let all = labels.iter().all(|(k, v)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == *k && l.value() == *v)
            });
            all.then(|| m.get_counter().value())
        })
    }

    fn histogram_count(name: &str, provider: &str) -> Option<u64> {
        let families = pingora_prometheus::prometheus::gather();
        let family = families.iter().find(|f| f.name() == name)?;
        family.get_metric().iter().find_map(|m| {
            let hit = m
                .get_label()
                .iter()
                .any(|l| l.name() == "provider" && l.value() == provider);
            hit.then(|| m.get_histogram().get_sample_count())
        })
    }

    #[test]
    fn served_counts_each_status_apart_and_makes_histograms_when_observed() {
        let m = metrics().expect("metrics register");
        let ok = ["served-test", "served-provider", "m", "200"];
        let key = (3, 0, 0, 0);
        m.served((key, 200), ok, Some(0.5), None);
        m.served((key, 200), ok, Some(0.25), None);
        m.served(
            (key, 502),
            ["served-test", "served-provider", "m", "502"],
            None,
            None,
        );
        let count = |status| {
            value(
                "tollgate_requests_total",
                &[("access_key", "served-test"), ("status", status)],
            )
        };
        assert_eq!(count("200"), Some(2.0));
        assert_eq!(count("502"), Some(1.0));
        let duration = "tollgate_request_duration_seconds";
        let ttfb = "tollgate_time_to_first_byte_seconds";
        assert_eq!(histogram_count(duration, "served-provider"), Some(2));
        assert_eq!(histogram_count(ttfb, "served-provider"), None);
        // A new generation resolves the labels again: the same series, counting on.
        m.served(((4, 9, 9, 9), 200), ok, Some(0.1), Some(0.05));
        assert_eq!(count("200"), Some(3.0));
        assert_eq!(histogram_count(duration, "served-provider"), Some(3));
        assert_eq!(histogram_count(ttfb, "served-provider"), Some(1));
    }

    #[test]
    fn spend_counts_into_the_labelled_series_and_publishes_no_zeros() {
        let m = metrics().expect("metrics register");
        let labels = ["spend-test", "openai", "gpt-4o"];
        let input = [("access_key", "spend-test"), ("kind", "input")];
        let output = [("access_key", "spend-test"), ("kind", "output")];
        let credits = [("access_key", "spend-test")];
        m.add_spend((7, 0, 1, 2), labels, [10, 0, 0]);
        assert_eq!(value("tollgate_tokens_total", &input), Some(10.0));
        assert_eq!(value("tollgate_tokens_total", &output), None);
        assert_eq!(
            value("tollgate_credits_spent_microusd_total", &credits),
            None
        );
        m.add_spend((7, 0, 1, 2), labels, [1, 2, 3]);
        // A new generation resolves the labels again: the same series, counting on.
        m.add_spend((8, 5, 1, 2), labels, [1, 2, 3]);
        assert_eq!(value("tollgate_tokens_total", &input), Some(12.0));
        assert_eq!(value("tollgate_tokens_total", &output), Some(4.0));
        assert_eq!(
            value("tollgate_credits_spent_microusd_total", &credits),
            Some(6.0)
        );
    }
}
