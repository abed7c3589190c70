//! `State`: config, catalog, upstreams, access keys and routes compiled together,
//! read by every request and swapped whole on reload.

use std::sync::Arc;

use crate::auth::AccessTable;
use crate::catalog::listing::ModelsApi;
use crate::catalog::Catalog;
use crate::config::{Config, Env};
use crate::limits::KeyLimiter;
use crate::policy::Allow;
use crate::resolve::{resolve_model, Routes};
use crate::upstream::Upstream;

#[derive(Debug)]
pub struct State {
    /// Distinct for every state built in this process (see [`crate::metrics::SpendKey`]).
    pub generation: u64,
    pub config: Config,
    pub catalog: Catalog,
    /// One per catalog provider, same index.
    pub upstreams: Vec<Upstream>,
    pub access: AccessTable,
    pub routes: Routes,
    /// `/v1/models` bodies, rendered once.
    pub models_api: ModelsApi,
    /// Per access key (same index): its allow-list, if it has one.
    pub allow: Vec<Option<Allow>>,
    /// Per access key (same index): its rate limits, if it has any.
    pub limits: Vec<Option<Arc<KeyLimiter>>>,
}

/// Why the state could not be built; names both ends of a broken reference.
pub type StateError = crate::load_error::LoadError;

impl State {
    /// Keeps what a reload must not reset: the health of provider keys that did
    /// not change, and the rate windows of access keys whose limits did not.
    pub fn inherit(&mut self, old: &State) {
        for (p, upstream) in self.catalog.providers.iter().zip(&mut self.upstreams) {
            let Some(before) = old
                .catalog
                .provider_index(&p.id)
                .and_then(|i| old.upstreams.get(i))
            else {
                continue;
            };
            for key in &mut upstream.keys.keys {
                let same = before
                    .keys
                    .keys
                    .iter()
                    .find(|k| k.name == key.name && k.header == key.header);
                if let Some(k) = same {
                    key.health = k.health.clone();
                }
            }
        }
        self.publish_key_health();
        for slot in &mut self.limits {
            let Some(new) = slot else { continue };
            let same = old.limits.iter().flatten().find(|o| o.same_rules(new));
            if let Some(o) = same {
                *slot = Some(o.clone());
            }
        }
    }

    /// Loads the catalog the config names (or the embedded one) and compiles it all.
    pub fn load(config: Config, env: Env<'_>) -> Result<State, StateError> {
        let catalog = match &config.catalog {
            Some(path) => Catalog::from_path(path)?,
            None => Catalog::embedded()?,
        };
        State::build(config, catalog, env)
    }

    /// Compiles config and catalog together; reports every broken reference.
    pub fn build(config: Config, catalog: Catalog, env: Env<'_>) -> Result<State, StateError> {
        let file = config
            .file
            .as_ref()
            .map_or_else(|| "(config)".to_string(), |p| p.display().to_string());
        let invalid = |path: String, reason: String| StateError::Invalid {
            file: file.clone(),
            path,
            reason,
        };
        let mut problems = Vec::new();
        for id in config.providers.keys() {
            if catalog.provider_index(id).is_none() {
                problems.push(invalid(
                    format!("providers.{id}"),
                    format!("provider `{id}` is not defined by the catalog"),
                ));
            }
        }
        let mut upstreams = Vec::with_capacity(catalog.providers.len());
        for p in &catalog.providers {
            let overrides = config
                .providers
                .iter()
                .find(|(id, _)| {
                    catalog
                        .provider_index(id)
                        .is_some_and(|i| catalog.providers[i].id == p.id)
                })
                .map(|(_, o)| o);
            match Upstream::build(p, overrides, env) {
                Ok(u) => upstreams.push(u),
                Err(reason) => problems.push(invalid(format!("providers.{}", p.id), reason)),
            }
        }
        let access = AccessTable::build(&config.access_keys, &catalog)
            .map_err(|reason| problems.push(invalid("access_keys".into(), reason)))
            .unwrap_or_default();
        let mut routes = Routes::default();
        for (name, members) in &config.routes {
            if resolve_model(&catalog, name).is_some() {
                problems.push(invalid(
                    format!("routes.{name}"),
                    format!("route `{name}` would be shadowed by the catalog model of that name"),
                ));
            }
            let mut targets = Vec::with_capacity(members.len());
            for (i, m) in members.iter().enumerate() {
                match resolve_model(&catalog, m) {
                    Some(t) => targets.push(t),
                    None => problems.push(invalid(
                        format!("routes.{name}[{i}]"),
                        format!("route `{name}` names model `{m}`, which no provider lists"),
                    )),
                }
            }
            routes.insert(name, targets);
        }
        let mut allow = Vec::with_capacity(config.access_keys.len());
        let mut limits = Vec::with_capacity(config.access_keys.len());
        for (i, k) in config.access_keys.iter().enumerate() {
            let at = || format!("access_keys[{i}] ({})", k.name);
            allow.push(if k.models.is_empty() && k.providers.is_empty() {
                None
            } else {
                Allow::compile(&catalog, &routes, &k.models, &k.providers)
                    .map_err(|reason| problems.push(invalid(at(), reason)))
                    .ok()
            });
            limits.push(k.limits.as_ref().and_then(|spec| {
                KeyLimiter::compile(
                    &k.name,
                    spec,
                    &catalog,
                    &routes,
                    &config.ledger.redis_prefix,
                )
                .map_err(|reason| problems.push(invalid(at(), reason)))
                .ok()
                .map(Arc::new)
            }));
        }
        match problems.len() {
            0 => {}
            1 => return Err(problems.remove(0)),
            _ => return Err(StateError::Many(problems)),
        }
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let state = State {
            generation: GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            limits,
            allow,
            models_api: ModelsApi::render(&catalog),
            config,
            catalog,
            upstreams,
            access,
            routes,
        };
        state.publish_key_health();
        Ok(state)
    }

    /// Sets `tollgate_provider_key_healthy` for every managed key.
    fn publish_key_health(&self) {
        let now = crate::upstream::health::now_ms();
        for (p, u) in self.catalog.providers.iter().zip(&self.upstreams) {
            for k in &u.keys.keys {
                k.series
                    .set_healthy(&p.id, &k.name, k.health.check(now).is_ok());
            }
        }
    }
}
