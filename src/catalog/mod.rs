//! The model catalog: providers, models, aliases and prices, compiled once from
//! `catalog.yaml` into lookup tables.

mod compile;
pub mod file;
pub mod listing;
mod suggest;

use std::path::PathBuf;

pub use compile::CatalogError;
pub use file::{Api, AuthStyle};

use crate::names::NameMap;

/// The catalog compiled into the binary (a copy of the repository's `catalog.yaml`).
pub const EMBEDDED: &str = include_str!("../../catalog.yaml");

/// Where a catalog came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Embedded,
    File(PathBuf),
}

impl Source {
    pub fn label(&self) -> &'static str {
        match self {
            Source::Embedded => "embedded",
            Source::File(_) => "file",
        }
    }
}

/// Price of a model, integer micro-USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cached_input: Option<u64>,
}

#[derive(Debug)]
pub struct Provider {
    pub id: Box<str>,
    /// The ID as an `x-tollgate-provider` value, built once (`None`: not a valid one).
    pub id_header: Option<http::HeaderValue>,
    pub name: Box<str>,
    pub aliases: Vec<Box<str>>,
    /// As written in the catalog; may hold `{VAR}` placeholders filled from `{P}_VAR`.
    pub base_url: Box<str>,
    pub auth: AuthStyle,
    pub headers: Vec<(Box<str>, Box<str>)>,
    pub openai: bool,
    pub anthropic: bool,
    pub website: Option<Box<str>>,
    pub key_required: bool,
    pub vision: Option<Box<str>>,
    /// Environment prefix: the ID upper-cased, non-alphanumerics as `_`.
    pub env: Box<str>,
    pub models: Vec<usize>,
}

#[derive(Debug)]
pub struct Model {
    pub id: std::sync::Arc<str>,
    /// The ID as an `x-tollgate-model` value, built once (`None`: not a valid one).
    pub id_header: Option<http::HeaderValue>,
    pub provider: usize,
    pub display_name: Option<Box<str>>,
    pub context_window: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub modalities: Vec<Box<str>>,
    pub aliases: Vec<Box<str>>,
    pub price: Option<Price>,
    pub category: Option<Box<str>>,
    pub use_case_hint: Option<Box<str>>,
}

/// A price-only row: a model the catalog does not route but whose price is known.
#[derive(Debug)]
pub struct PriceRow {
    pub model: Box<str>,
    pub provider: Box<str>,
    pub category: Option<Box<str>>,
    pub context_window: Option<u64>,
    pub price: Price,
}

#[derive(Debug)]
pub struct Catalog {
    pub source: Source,
    pub providers: Vec<Provider>,
    pub models: Vec<Model>,
    pub price_rows: Vec<PriceRow>,
    /// Model IDs and aliases → model index.
    model_names: NameMap<usize>,
    /// Provider IDs and aliases → provider index.
    provider_names: NameMap<usize>,
}

impl Catalog {
    /// The catalog compiled into the binary.
    pub fn embedded() -> Result<Catalog, CatalogError> {
        Catalog::from_yaml(EMBEDDED, Source::Embedded)
    }

    /// Reads and compiles a catalog file.
    pub fn from_path(path: &std::path::Path) -> Result<Catalog, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|e| CatalogError::Read {
            file: path.display().to_string(),
            what: "catalog",
            reason: e.to_string(),
        })?;
        Catalog::from_yaml(&text, Source::File(path.to_path_buf()))
    }

    /// Compiles catalog YAML.
    pub fn from_yaml(text: &str, source: Source) -> Result<Catalog, CatalogError> {
        compile::compile(text, source)
    }

    /// A model by ID or alias (case-insensitive).
    pub fn model(&self, name: &str) -> Option<&Model> {
        self.model_index(name).and_then(|i| self.models.get(i))
    }

    pub fn model_index(&self, name: &str) -> Option<usize> {
        self.model_names.get(name).copied()
    }

    /// A provider by ID or alias (case-insensitive).
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.provider_names.get(name).copied()
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.provider_index(name)
            .and_then(|i| self.providers.get(i))
    }

    /// The price-only row for a model the catalog does not list, if seed 004 priced it.
    pub fn price_row(&self, provider: &str, model: &str) -> Option<&PriceRow> {
        self.price_rows.iter().find(|r| {
            r.provider.eq_ignore_ascii_case(provider) && r.model.eq_ignore_ascii_case(model)
        })
    }

    /// Up to three catalog names closest to `name`, for "did you mean" hints.
    pub fn closest_names(&self, name: &str) -> Vec<&str> {
        suggest::closest(name, self.model_names.names(), 3)
    }
}
