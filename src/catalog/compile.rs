//! Compiles a parsed catalog file into lookup tables, checking every reference.

use super::file::{Api, CatalogFile, PricingFile};
use super::{Catalog, Model, Price, PriceRow, Provider, Source};
use crate::names::NameMap;

/// Why a catalog could not be loaded.
pub type CatalogError = crate::load_error::LoadError;

/// The origin of a catalog, as printed in errors.
fn origin(source: &Source) -> String {
    match source {
        Source::Embedded => "catalog.yaml (embedded)".to_string(),
        Source::File(p) => p.display().to_string(),
    }
}

pub(super) fn compile(text: &str, source: Source) -> Result<Catalog, CatalogError> {
    let file = origin(&source);
    let raw: CatalogFile =
        serde_yaml_ng::from_str(text).map_err(|e| CatalogError::yaml(&file, &e))?;
    let invalid = |path: String, reason: String| CatalogError::Invalid {
        file: file.clone(),
        path,
        reason,
    };
    if raw.version != 1 {
        return Err(invalid(
            "version".into(),
            format!("unsupported version {}, expected 1", raw.version),
        ));
    }

    let mut providers = Vec::with_capacity(raw.providers.len());
    let mut models = Vec::new();
    let mut provider_names = NameMap::default();
    let mut model_names: NameMap<usize> = NameMap::default();

    for (pi, p) in raw.providers.into_iter().enumerate() {
        let at = format!("providers[{pi}] ({})", p.id);
        if p.id.is_empty() || p.id.contains([':', '/']) || p.id.contains(char::is_whitespace) {
            return Err(invalid(
                format!("{at}.id"),
                "provider IDs must be non-empty, without `:`, `/` or spaces".into(),
            ));
        }
        for name in std::iter::once(&p.id).chain(&p.aliases) {
            if let Some(other) = provider_names.insert(name, pi) {
                if other != pi {
                    return Err(invalid(
                        format!("{at}.aliases"),
                        format!("`{name}` already names provider #{other}"),
                    ));
                }
            }
        }
        if !(p.base_url.starts_with("https://") || p.base_url.starts_with("http://")) {
            return Err(invalid(
                format!("{at}.base_url"),
                format!("`{}` is not an http(s) URL", p.base_url),
            ));
        }
        if p.apis.is_empty() {
            return Err(invalid(format!("{at}.apis"), "lists no API".into()));
        }
        let mut model_idx = Vec::with_capacity(p.models.len());
        for (mi, m) in p.models.into_iter().enumerate() {
            let mat = format!("{at}.models[{mi}] ({})", m.id);
            let index = models.len();
            for name in std::iter::once(&m.id).chain(&m.aliases) {
                if let Some(other) = model_names.insert(name, index) {
                    if other != index {
                        let other_id = models.get(other).map_or("?", |o: &Model| &o.id);
                        return Err(invalid(
                            format!("{mat}.aliases"),
                            format!("`{name}` already names model `{other_id}`"),
                        ));
                    }
                }
            }
            let price = m
                .pricing
                .as_ref()
                .map(price)
                .transpose()
                .map_err(|reason| invalid(format!("{mat}.pricing"), reason))?;
            models.push(Model {
                id_header: http::HeaderValue::from_str(&m.id).ok(),
                id: m.id.into(),
                provider: pi,
                display_name: m.display_name.map(Into::into),
                context_window: m.context_window,
                max_output_tokens: m.max_output_tokens,
                modalities: m.modalities.into_iter().map(Into::into).collect(),
                aliases: m.aliases.into_iter().map(Into::into).collect(),
                price,
                category: m.category.map(Into::into),
                use_case_hint: m.use_case_hint.map(Into::into),
            });
            model_idx.push(index);
        }
        providers.push(Provider {
            env: env_prefix(&p.id).into(),
            id_header: http::HeaderValue::from_str(&p.id).ok(),
            id: p.id.into(),
            name: p.name.into(),
            aliases: p.aliases.into_iter().map(Into::into).collect(),
            base_url: p.base_url.into(),
            auth: p.auth,
            headers: p
                .headers
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            openai: p.apis.contains(&Api::Openai),
            anthropic: p.apis.contains(&Api::Anthropic),
            website: p.website.map(Into::into),
            key_required: p.provider_key_required,
            vision: p.vision.map(Into::into),
            models: model_idx,
        });
    }

    let mut price_rows = Vec::with_capacity(raw.prices.len());
    for (ri, r) in raw.prices.into_iter().enumerate() {
        let at = format!("prices[{ri}] ({})", r.model);
        let pricing = PricingFile {
            input: r.input,
            output: r.output,
            cached_input: None,
        };
        let price = price(&pricing).map_err(|reason| invalid(at, reason))?;
        price_rows.push(PriceRow {
            model: r.model.into(),
            provider: r.provider.into(),
            category: r.category.map(Into::into),
            context_window: r.context_window,
            price,
        });
    }

    Ok(Catalog {
        source,
        providers,
        models,
        price_rows,
        model_names,
        provider_names,
    })
}

/// `{P}`: the provider ID upper-cased with every non-alphanumeric as `_`.
pub fn env_prefix(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// USD per million tokens → integer micro-USD per million tokens.
fn price(p: &PricingFile) -> Result<Price, String> {
    Ok(Price {
        input: micro_usd(p.input)?,
        output: micro_usd(p.output)?,
        cached_input: p.cached_input.map(micro_usd).transpose()?,
    })
}

fn micro_usd(usd: f64) -> Result<u64, String> {
    if !usd.is_finite() || !(0.0..=1.0e6).contains(&usd) {
        return Err(format!("price {usd} is not between 0 and 1,000,000 USD"));
    }
    // Rounds the decimal the YAML held (e.g. 1.93 stored as 1.9299999…) to the micro-USD.
    Ok((usd * 1_000_000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_prefixes() {
        assert_eq!(env_prefix("inference-net"), "INFERENCE_NET");
        assert_eq!(env_prefix("ollama_cloud"), "OLLAMA_CLOUD");
        assert_eq!(env_prefix("openai"), "OPENAI");
    }

    #[test]
    fn prices_are_exact_micro_usd() {
        assert_eq!(micro_usd(1.93), Ok(1_930_000));
        assert_eq!(micro_usd(0.28), Ok(280_000));
        assert_eq!(micro_usd(2.50), Ok(2_500_000));
        assert!(micro_usd(-1.0).is_err());
        assert!(micro_usd(f64::NAN).is_err());
    }

    const MINI: &str = r#"
version: 1
providers:
  - id: openai
    name: OpenAI
    aliases: [open-ai]
    base_url: https://api.openai.com/v1/
    auth: bearer
    apis: [openai]
    provider_key_required: false
    models:
      - id: gpt-4o
        aliases: [gpt-4-omni, GPT-4O]
        pricing: {input: 2.5, output: 10}
"#;

    #[test]
    fn compiles_and_looks_up_case_insensitively() {
        let c = compile(MINI, Source::Embedded).unwrap();
        assert_eq!(c.model("GPT-4-Omni").unwrap().id.as_ref(), "gpt-4o");
        assert_eq!(c.provider("OPEN-AI").unwrap().id.as_ref(), "openai");
        let price = c.model("gpt-4o").unwrap().price.unwrap();
        assert_eq!((price.input, price.output), (2_500_000, 10_000_000));
    }

    #[test]
    fn conflicting_alias_names_both_ends() {
        let text = MINI.replace(
            "models:\n",
            "models:\n      - id: o3\n        aliases: [gpt-4-omni]\n",
        );
        let err = compile(&text, Source::Embedded).unwrap_err().to_string();
        assert!(err.contains("gpt-4-omni"), "{err}");
        assert!(err.contains("already names model `o3`"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = compile("version: 1\nproviders: [\n", Source::Embedded).unwrap_err();
        assert!(
            matches!(err, CatalogError::Syntax { line, .. } if line > 0),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = MINI.replace("auth: bearer", "auth: bearer\n    colour: blue");
        let err = compile(&text, Source::Embedded).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }
}
