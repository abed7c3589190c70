//! The seed documents themselves, parsed here, against the compiled catalog:
//! every provider, model, alias and price they list resolves as they say.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use tollgate::catalog::Catalog;
use tollgate::resolve::resolve_model;

fn seed(prefix: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seeds");
    let entry = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("seed {prefix} missing"));
    std::fs::read_to_string(entry.path()).unwrap()
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

fn number(s: &str) -> Option<u64> {
    s.replace(',', "").parse().ok()
}

#[derive(Debug)]
struct ModelRow {
    provider: String,
    id: String,
    display: String,
    context: Option<u64>,
    output: Option<u64>,
    modalities: Vec<String>,
}

/// Seed 000: model tables, model-alias tables and the provider-alias table.
type Seed000 = (
    Vec<ModelRow>,
    Vec<(String, String)>,
    Vec<(String, Vec<String>)>,
);

fn parse_000() -> Seed000 {
    let text = seed("000_");
    let (mut models, mut aliases, mut provider_aliases) = (Vec::new(), Vec::new(), Vec::new());
    let mut provider = String::new();
    #[derive(PartialEq)]
    enum Table {
        None,
        Models,
        Aliases,
        ProviderAliases,
    }
    let mut table = Table::None;
    for line in text.lines() {
        let c = cells(line);
        if line.starts_with("| Provider ID |") && c.len() == 2 && c[1] != "Aliases" {
            provider = c[1].clone();
            table = Table::None;
        } else if line.starts_with("| Model ID |") {
            table = Table::Models;
        } else if line.starts_with("| Alias | Resolves to |") {
            table = Table::Aliases;
        } else if line.starts_with("| Provider ID | Aliases |") {
            table = Table::ProviderAliases;
        } else if line.starts_with("|---") {
        } else if line.starts_with('|') || !line.contains(" | ") {
            table = Table::None;
        } else {
            match table {
                Table::Models if c.len() == 5 => models.push(ModelRow {
                    provider: provider.clone(),
                    id: c[0].clone(),
                    display: c[1].clone(),
                    context: number(&c[2]),
                    output: number(&c[3]),
                    modalities: c[4].split(',').map(|m| m.trim().to_string()).collect(),
                }),
                Table::Aliases if c.len() == 2 => aliases.push((c[0].clone(), c[1].clone())),
                Table::ProviderAliases if c.len() == 2 => provider_aliases.push((
                    c[0].clone(),
                    c[1].split(',').map(|a| a.trim().to_string()).collect(),
                )),
                _ => {}
            }
        }
    }
    (models, aliases, provider_aliases)
}

#[test]
fn every_seed_model_is_in_the_catalog_with_its_metadata() {
    let catalog = Catalog::embedded().unwrap();
    let (models, _, _) = parse_000();
    assert!(models.len() >= 58, "parsed {} model rows", models.len());
    for row in &models {
        let m = catalog
            .model(&row.id)
            .unwrap_or_else(|| panic!("{} missing", row.id));
        assert_eq!(&*m.id, row.id);
        assert_eq!(
            &*catalog.providers[m.provider].id, row.provider,
            "{}",
            row.id
        );
        assert_eq!(
            m.display_name.as_deref(),
            Some(row.display.as_str()),
            "{}",
            row.id
        );
        assert_eq!(m.context_window, row.context, "{}", row.id);
        assert_eq!(m.max_output_tokens, row.output, "{}", row.id);
        let modalities: Vec<&str> = m.modalities.iter().map(|s| &**s).collect();
        assert_eq!(modalities, row.modalities, "{}", row.id);
    }
}

#[test]
fn every_seed_model_alias_resolves_to_its_target() {
    let catalog = Catalog::embedded().unwrap();
    let (models, aliases, _) = parse_000();
    assert!(aliases.len() >= 50, "parsed {} alias rows", aliases.len());
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    for (alias, target) in &aliases {
        let t = resolve_model(&catalog, alias)
            .unwrap_or_else(|| panic!("alias {alias} does not resolve"));
        // A target listed only under a `vendor/` prefix resolves to that listed ID.
        let listed = ids
            .iter()
            .find(|id| id.eq_ignore_ascii_case(target))
            .or_else(|| {
                ids.iter()
                    .find(|id| id.rsplit('/').next() == Some(target.as_str()))
            })
            .copied()
            .or_else(|| {
                catalog
                    .model(target)
                    .map(|m| &*m.id)
                    .and_then(|id| ids.iter().find(|i| **i == id).copied())
            })
            .unwrap_or_else(|| panic!("target {target} of {alias} is not a listed model"));
        assert_eq!(&*t.upstream_model, listed, "alias {alias}");
        // Case does not matter.
        let upper = resolve_model(&catalog, &alias.to_uppercase()).unwrap();
        assert_eq!(upper.upstream_model, t.upstream_model);
    }
}

#[test]
fn every_seed_provider_and_alias_is_known() {
    let catalog = Catalog::embedded().unwrap();
    let (_, _, provider_aliases) = parse_000();
    assert!(provider_aliases.len() >= 8);
    for (id, aliases) in &provider_aliases {
        let p = catalog
            .provider(id)
            .unwrap_or_else(|| panic!("provider {id}"));
        for alias in aliases {
            assert_eq!(
                catalog.provider(alias).map(|a| &a.id),
                Some(&p.id),
                "{alias} → {id}"
            );
        }
    }
    // Seed 001's environment names are the catalog's providers.
    let text = seed("001_");
    let list = text
        .lines()
        .find_map(|l| {
            l.split_once("(uppercase): ")
                .map(|(_, rest)| rest.trim_end_matches('.').to_string())
        })
        .unwrap();
    let envs: Vec<&str> = catalog.providers.iter().map(|p| &*p.env).collect();
    for name in list.split(',').map(str::trim) {
        assert!(envs.contains(&name), "{name} not a catalog provider");
    }
    for id in [
        "openrouter",
        "hyperbolic",
        "inceptionlabs",
        "inference-net",
        "cohere",
        "cloudflare",
        "ollama",
        "ollama_cloud",
        "mistral",
        "moonshot",
    ] {
        assert!(catalog.provider(id).is_some(), "{id}");
    }
}

#[test]
fn every_seed_price_is_carried_exactly() {
    let catalog = Catalog::embedded().unwrap();
    let text = seed("004_");
    let providers = ["openai", "deepseek", "moonshot", "xai", "meta"];
    let categories = ["frontier", "premium", "reasoning", "standard", "efficient"];
    let mut rows = HashMap::new();
    for line in text.lines().filter(|l| l.matches('$').count() == 2) {
        let (head, prices) = line.split_once('$').unwrap();
        let (input, output) = prices.split_once('$').unwrap();
        let (provider, at) = providers
            .iter()
            .filter_map(|p| head.rfind(p).map(|i| (*p, i)))
            .find(|(p, i)| {
                categories
                    .iter()
                    .any(|c| head[i + p.len()..].starts_with(c))
            })
            .unwrap_or_else(|| panic!("cannot split {line}"));
        let micro = |s: &str| (s.parse::<f64>().unwrap() * 1e6).round() as u64;
        rows.insert(
            head[..at].to_string(),
            (provider, micro(input), micro(output)),
        );
    }
    assert_eq!(rows.len(), 22);
    for (model, (provider, input, output)) in rows {
        let price = match catalog.model(&model) {
            Some(m) => m.price.unwrap_or_else(|| panic!("{model} has no price")),
            None => {
                catalog
                    .price_row(provider, &model)
                    .unwrap_or_else(|| panic!("{provider} {model} has no price row"))
                    .price
            }
        };
        assert_eq!((price.input, price.output), (input, output), "{model}");
    }
}
