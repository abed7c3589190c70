//! `GET /v1/models[?provider=P]` and `GET /v1/models/{id}`: the catalog in
//! OpenAI's list shape, public and cacheable. Bodies are rendered once per catalog.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{Catalog, Model, Price};

/// `Cache-Control` of catalog answers (SPEC §3).
pub const CACHE_CONTROL: &str = "public, s-maxage=60, stale-while-revalidate=300";

/// Rendered catalog bodies: the whole list, and one list per provider.
#[derive(Debug)]
pub struct ModelsApi {
    pub all: Bytes,
    per_provider: Vec<Bytes>,
}

impl ModelsApi {
    pub fn render(catalog: &Catalog) -> ModelsApi {
        let all = list(catalog, catalog.models.iter());
        let per_provider = catalog
            .providers
            .iter()
            .map(|p| {
                list(
                    catalog,
                    p.models.iter().filter_map(|&i| catalog.models.get(i)),
                )
            })
            .collect();
        ModelsApi { all, per_provider }
    }

    pub fn provider(&self, index: usize) -> Option<&Bytes> {
        self.per_provider.get(index)
    }
}

fn list<'a>(catalog: &Catalog, models: impl Iterator<Item = &'a Model>) -> Bytes {
    let data: Vec<Value> = models.map(|m| entry(catalog, m)).collect();
    Bytes::from(json!({"object": "list", "data": data}).to_string())
}

/// One model entry: OpenAI's fields plus the catalog's metadata.
pub fn entry(catalog: &Catalog, m: &Model) -> Value {
    let provider = catalog.providers.get(m.provider);
    json!({
        "id": &*m.id,
        "object": "model",
        "created": 0,
        "owned_by": provider.map(|p| &*p.id),
        "display_name": m.display_name.as_deref().unwrap_or(&m.id),
        "context_window": m.context_window,
        "max_output_tokens": m.max_output_tokens,
        "modalities": m.modalities,
        "pricing": m.price.map(pricing),
        "aliases": m.aliases,
        "category": m.category,
        "use_case_hint": m.use_case_hint,
    })
}

fn pricing(p: Price) -> Value {
    let usd = |micro: u64| format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000);
    json!({
        "input_per_million": usd(p.input),
        "output_per_million": usd(p.output),
        "cached_input_per_million": p.cached_input.map(usd),
        "currency": "USD",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_model_with_metadata() {
        let c = Catalog::embedded().unwrap();
        let api = ModelsApi::render(&c);
        let v: Value = serde_json::from_slice(&api.all).unwrap();
        assert_eq!(v["object"], "list");
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), c.models.len());
        let gpt4o = data.iter().find(|e| e["id"] == "gpt-4o").unwrap();
        assert_eq!(gpt4o["owned_by"], "openai");
        assert_eq!(gpt4o["context_window"], 128000);
        assert_eq!(gpt4o["pricing"]["input_per_million"], "2.500000");
        let groq = c.provider_index("groq").unwrap();
        let v: Value = serde_json::from_slice(api.provider(groq).unwrap()).unwrap();
        assert!(v["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["owned_by"] == "groq"));
    }
}
