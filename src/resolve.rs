//! Model resolution (SPEC §4): a client's model string → the provider(s) and the
//! model ID each expects. Lookups are case-insensitive and allocation-free.

use crate::catalog::Catalog;
use crate::names::NameMap;

/// One model to try: a provider and the model name to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: usize,
    /// The catalog model, or `None` for a model the catalog does not list.
    pub model: Option<usize>,
    /// What goes upstream in `model`: the canonical ID, or the name as written.
    pub upstream_model: std::sync::Arc<str>,
}

/// Named routes: ordered lists of targets to fall back through.
pub type Routes = NameMap<Vec<Target>>;

/// Resolves `name` in SPEC order: catalog model or alias; `provider:model` or
/// `provider/model`; route name. `None` means 404 `model_not_found`.
pub fn resolve(catalog: &Catalog, routes: &Routes, name: &str) -> Option<Vec<Target>> {
    if let Some(t) = resolve_model(catalog, name) {
        return Some(vec![t]);
    }
    routes.get(name).cloned()
}

/// Steps 1 and 2: a single model, never a route.
pub fn resolve_model(catalog: &Catalog, name: &str) -> Option<Target> {
    if let Some(i) = catalog.model_index(name) {
        return catalog_target(catalog, i);
    }
    let split = name.find([':', '/'])?;
    let (prefix, rest) = (&name[..split], &name[split + 1..]);
    let provider = catalog.provider_index(prefix)?;
    if rest.is_empty() {
        return None;
    }
    match catalog.model_index(rest) {
        Some(i)
            if catalog
                .models
                .get(i)
                .is_some_and(|m| m.provider == provider) =>
        {
            catalog_target(catalog, i)
        }
        _ => Some(Target {
            provider,
            model: None,
            upstream_model: rest.into(),
        }),
    }
}

fn catalog_target(catalog: &Catalog, index: usize) -> Option<Target> {
    let m = catalog.models.get(index)?;
    Some(Target {
        provider: m.provider,
        model: Some(index),
        upstream_model: m.id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::embedded().unwrap()
    }

    fn provider_of(c: &Catalog, t: &Target) -> String {
        c.providers[t.provider].id.to_string()
    }

    #[test]
    fn model_ids_and_aliases() {
        let c = catalog();
        let t = resolve_model(&c, "GPT-4o").unwrap();
        assert_eq!(
            (&*t.upstream_model, provider_of(&c, &t).as_str()),
            ("gpt-4o", "openai")
        );
        let t = resolve_model(&c, "chatgpt-4o-latest").unwrap();
        assert_eq!(&*t.upstream_model, "gpt-4o");
    }

    #[test]
    fn ids_with_slashes_are_whole_names_first() {
        let c = catalog();
        let t = resolve_model(&c, "meta-llama/llama-3.3-70b-versatile").unwrap();
        assert_eq!(provider_of(&c, &t), "groq");
        assert_eq!(&*t.upstream_model, "meta-llama/llama-3.3-70b-versatile");
    }

    #[test]
    fn provider_prefixes() {
        let c = catalog();
        let t = resolve_model(&c, "openai:gpt-4-omni").unwrap();
        assert_eq!(&*t.upstream_model, "gpt-4o");
        let t = resolve_model(&c, "Anthropic/claude-opus-4-8").unwrap();
        assert_eq!(provider_of(&c, &t), "anthropic");
        assert_eq!(&*t.upstream_model, "claude-opus-4-8");
        assert_eq!(t.model, None);
        let t = resolve_model(&c, "groq/llama-3.3-70b").unwrap();
        assert_eq!(&*t.upstream_model, "meta-llama/llama-3.3-70b-versatile");
        let t = resolve_model(&c, "ollama_cloud/gpt-oss:120b").unwrap();
        assert_eq!(provider_of(&c, &t), "ollama_cloud");
        assert_eq!(&*t.upstream_model, "gpt-oss:120b");
        let t = resolve_model(&c, "cloudflare/@cf/meta/llama-3.3-70b-instruct-fp8-fast").unwrap();
        assert_eq!(
            &*t.upstream_model,
            "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
        );
        // A model of another provider is passed as written, not re-routed.
        let t = resolve_model(&c, "openai:kimi-k2").unwrap();
        assert_eq!(
            (provider_of(&c, &t).as_str(), &*t.upstream_model),
            ("openai", "kimi-k2")
        );
    }

    #[test]
    fn unknown_names() {
        let c = catalog();
        assert!(resolve_model(&c, "gpt-4x").is_none());
        assert!(resolve_model(&c, "nope:gpt-4o").is_none());
        assert!(resolve_model(&c, "openai:").is_none());
        assert!(resolve_model(&c, "").is_none());
    }

    #[test]
    fn routes_come_after_models() {
        let c = catalog();
        let mut routes = Routes::default();
        let t = resolve_model(&c, "gpt-4o").unwrap();
        routes.insert("auto", vec![t.clone()]);
        assert_eq!(resolve(&c, &routes, "AUTO"), Some(vec![t]));
    }
}
