//! Admission policy, applied to a resolved request before anything reaches a
//! provider: per-access-key model allow-lists and the vision gate (seed 001's
//! `ENABLE_VISION`).

use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::request::vision::has_image;
use crate::resolve::{resolve_model, Routes, Target};
use crate::state::State;

/// Whether requests carrying image content are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vision {
    /// Accept (the default: tollgate reads only `model` unless asked to do more).
    On,
    /// Refuse every request with image content: 400 `vision_disabled`.
    Off,
    /// Refuse image content for models whose catalog modalities lack `image`:
    /// 400 `model_not_multimodal`. Models the catalog does not list are not refused.
    PerModel,
}

impl Vision {
    /// `on`, `off`, `per-model`; also `true`/`false` as `ENABLE_VISION` writes them.
    pub fn parse(s: &str) -> Option<Vision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Some(Vision::On),
            "off" | "false" | "0" | "no" => Some(Vision::Off),
            "per-model" | "per_model" => Some(Vision::PerModel),
            _ => None,
        }
    }
}

/// What an access key may call: providers, catalog models, and unlisted models by
/// provider and name. Route names stand for the models they contain.
#[derive(Debug, Default)]
pub struct Allow {
    providers: Vec<usize>,
    models: Vec<usize>,
    unlisted: Vec<(usize, Box<str>)>,
}

impl Allow {
    pub fn compile(
        catalog: &Catalog,
        routes: &Routes,
        models: &[String],
        providers: &[String],
    ) -> Result<Allow, String> {
        let mut allow = Allow::default();
        for p in providers {
            let i = catalog
                .provider_index(p)
                .ok_or_else(|| format!("provider `{p}` is not defined by the catalog"))?;
            allow.providers.push(i);
        }
        for m in models {
            let targets = match resolve_model(catalog, m) {
                Some(t) => vec![t],
                None => routes.get(m).cloned().ok_or_else(|| {
                    format!("model `{m}` is neither a catalog model, provider:model nor a route")
                })?,
            };
            for t in targets {
                match t.model {
                    Some(i) => allow.models.push(i),
                    None => allow
                        .unlisted
                        .push((t.provider, t.upstream_model.to_ascii_lowercase().into())),
                }
            }
        }
        Ok(allow)
    }

    pub fn permits(&self, t: &Target) -> bool {
        self.providers.contains(&t.provider)
            || t.model.is_some_and(|m| self.models.contains(&m))
            || (t.model.is_none()
                && self.unlisted.iter().any(|(p, name)| {
                    *p == t.provider && name.eq_ignore_ascii_case(&t.upstream_model)
                }))
    }
}

/// Filters `targets` by the caller's allow-list and the vision gate; refuses the
/// request when nothing is left.
pub fn admit(
    state: &State,
    access_key: Option<usize>,
    body: &[u8],
    mut targets: Vec<Target>,
) -> Result<Vec<Target>, ApiError> {
    if let Some(allow) = access_key
        .and_then(|k| state.allow.get(k))
        .and_then(Option::as_ref)
    {
        let first = targets
            .first()
            .map(|t| t.upstream_model.to_string())
            .unwrap_or_default();
        targets.retain(|t| allow.permits(t));
        if targets.is_empty() {
            return Err(ApiError::ModelNotAllowed(first));
        }
    }
    match state.config.vision {
        Vision::On => Ok(targets),
        Vision::Off if has_image(body) => Err(ApiError::VisionDisabled),
        Vision::Off => Ok(targets),
        Vision::PerModel => {
            if !has_image(body) {
                return Ok(targets);
            }
            let first = targets
                .first()
                .map(|t| t.upstream_model.to_string())
                .unwrap_or_default();
            targets.retain(
                |t| match t.model.and_then(|i| state.catalog.models.get(i)) {
                    Some(m) => m.modalities.iter().any(|x| &**x == "image"),
                    None => true,
                },
            );
            if targets.is_empty() {
                return Err(ApiError::ModelNotMultimodal(first));
            }
            Ok(targets)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vision_settings_parse() {
        assert_eq!(Vision::parse("TRUE"), Some(Vision::On));
        assert_eq!(Vision::parse("false"), Some(Vision::Off));
        assert_eq!(Vision::parse("per-model"), Some(Vision::PerModel));
        assert_eq!(Vision::parse("maybe"), None);
    }

    #[test]
    fn allow_lists_cover_models_providers_and_routes() {
        let c = Catalog::embedded().unwrap();
        let mut routes = Routes::default();
        routes.insert("fast", vec![resolve_model(&c, "o3").unwrap()]);
        let allow = Allow::compile(
            &c,
            &routes,
            &["gpt-4o".into(), "fast".into(), "openai:gpt-9".into()],
            &["groq".into()],
        )
        .unwrap();
        assert!(allow.permits(&resolve_model(&c, "gpt-4-omni").unwrap()));
        assert!(allow.permits(&resolve_model(&c, "o3").unwrap()));
        assert!(allow.permits(&resolve_model(&c, "OpenAI/GPT-9").unwrap()));
        assert!(allow.permits(&resolve_model(&c, "groq/qwen/qwen3-32b").unwrap()));
        assert!(!allow.permits(&resolve_model(&c, "gpt-4o-mini").unwrap()));
        assert!(Allow::compile(&c, &routes, &["nope".into()], &[]).is_err());
    }
}
