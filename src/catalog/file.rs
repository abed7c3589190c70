//! The catalog file as written (`catalog.yaml`): serde structs, validated by `compile`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    pub version: u32,
    pub providers: Vec<ProviderFile>,
    /// Price-only rows (seed 004) for models the catalog does not list.
    #[serde(default)]
    pub prices: Vec<PriceRowFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub base_url: String,
    pub auth: AuthStyle,
    /// Headers sent upstream when the client did not send them (e.g. `anthropic-version`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub apis: Vec<Api>,
    #[serde(default)]
    pub website: Option<String>,
    pub provider_key_required: bool,
    #[serde(default)]
    pub vision: Option<String>,
    #[serde(default)]
    pub models: Vec<ModelFile>,
}

/// How a provider expects its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthStyle {
    /// `Authorization: Bearer KEY`.
    Bearer,
    /// `x-api-key: KEY` (Anthropic).
    XApiKey,
    /// `Authorization: Bearer KEY` when a key is configured, nothing otherwise (Ollama).
    OptionalBearer,
}

/// A wire API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// chat/completions, completions, embeddings, responses.
    Openai,
    /// messages.
    Anthropic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub modalities: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub pricing: Option<PricingFile>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub use_case_hint: Option<String>,
}

/// USD per million tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingFile {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRowFile {
    pub model: String,
    pub provider: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub context_window: Option<u64>,
    pub input: f64,
    pub output: f64,
}
