//! `tollgate_rate_limit_remaining{access_key,limit}`: what each window has left,
//! computed when Prometheus scrapes (windows refill with time, so a value set at
//! the last request would go stale), at no cost to requests.

use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora_prometheus::prometheus::core::{Collector, Desc};
use pingora_prometheus::prometheus::proto::MetricFamily;
use pingora_prometheus::prometheus::{IntGaugeVec, Opts};

use super::window::now_ns;
use crate::state::State;

struct Remaining {
    state: Arc<ArcSwap<State>>,
    gauge: IntGaugeVec,
}

impl Collector for Remaining {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauge.reset();
        let state = self.state.load();
        let now = now_ns();
        for k in state.limits.iter().flatten() {
            for (limit, left) in k.remaining(now) {
                self.gauge
                    .with_label_values(&[&*k.name, limit.as_str()])
                    .set(i64::try_from(left).unwrap_or(i64::MAX));
            }
        }
        self.gauge.collect()
    }
}

/// Registers the gauge over the gateway's live state (once per process).
pub fn register(state: Arc<ArcSwap<State>>) {
    let opts = Opts::new(
        "tollgate_rate_limit_remaining",
        "What a rate-limit window has left now (requests or tokens), per access key.",
    );
    let made = IntGaugeVec::new(opts, &["access_key", "limit"]).and_then(|gauge| {
        pingora_prometheus::prometheus::register(Box::new(Remaining { state, gauge }))
    });
    if let Err(e) = made {
        log::warn!("rate-limit gauge not registered: {e}");
    }
}
