//! Background endpoint health checks: every endpoint of a provider with several
//! base URLs is checked with pingora-load-balancing's TCP or HTTP check, off the
//! request path, and marked healthy or dead for `Upstream::pick_endpoint`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use pingora_load_balancing::health_check::{HealthCheck, HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::Backend;

use super::Endpoint;
use crate::config::EndpointCheck;
use crate::metrics::metrics;
use crate::state::State;

/// Checks the endpoint pools of whatever state is current.
pub struct Prober {
    pub state: Arc<ArcSwap<State>>,
}

type Checker = Box<dyn HealthCheck + Send + Sync>;

fn checker(ep: &Endpoint, check: &EndpointCheck) -> Checker {
    match &check.http_path {
        None if ep.tls => TcpHealthCheck::new_tls(&ep.host),
        None => TcpHealthCheck::new(),
        Some(path) => {
            let host = ep.authority.to_str().unwrap_or(&ep.host);
            let mut c = HttpHealthCheck::new(host, ep.tls);
            if let Ok(mut req) = pingora_http::RequestHeader::build("GET", path.as_bytes(), None) {
                if req.insert_header("host", host).is_ok() {
                    c.req = req;
                }
            }
            Box::new(c)
        }
    }
}

impl Prober {
    /// One round over every endpoint of every multi-endpoint provider.
    async fn round(&self, state: &State, checkers: &mut Vec<(usize, usize, Checker)>) {
        for (p, e, check) in checkers.iter() {
            let (Some(provider), Some(ep)) = (
                state.catalog.providers.get(*p),
                state.upstreams.get(*p).and_then(|u| u.endpoints.get(*e)),
            ) else {
                continue;
            };
            let healthy = match ep.dns.addr().await {
                Ok(addr) => match Backend::new(&addr.to_string()) {
                    Ok(backend) => check.check(&backend).await.is_ok(),
                    Err(_) => false,
                },
                Err(_) => false,
            };
            if ep.healthy.swap(healthy, Ordering::Relaxed) != healthy {
                log::warn!(
                    "provider {} endpoint {} is now {}",
                    provider.id,
                    ep.authority.to_str().unwrap_or("?"),
                    if healthy { "healthy" } else { "DOWN" }
                );
            }
            if let Some(m) = metrics() {
                let endpoint = format!("{}{}", ep.authority.to_str().unwrap_or("?"), ep.base_path);
                m.endpoint_healthy
                    .with_label_values(&[&*provider.id, endpoint.as_str()])
                    .set(i64::from(healthy));
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Prober {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut current: Option<Arc<State>> = None;
        let mut checkers = Vec::new();
        loop {
            let state = self.state.load_full();
            if !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &state)) {
                let check = &state.config.upstream.endpoint_check;
                checkers = state
                    .upstreams
                    .iter()
                    .enumerate()
                    .filter(|(_, u)| u.endpoints.len() > 1)
                    .flat_map(|(p, u)| {
                        u.endpoints
                            .iter()
                            .enumerate()
                            .map(move |(e, ep)| (p, e, ep))
                    })
                    .map(|(p, e, ep)| (p, e, checker(ep, check)))
                    .collect();
                current = Some(state.clone());
            }
            self.round(&state, &mut checkers).await;
            let interval = state.config.upstream.endpoint_check.interval;
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
