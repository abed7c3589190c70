//! Fuzzes model resolution over the embedded catalog: never a panic, names are
//! case-insensitive, and every target points into the catalog.
//!
//! Input: the client's model string (invalid UTF-8 is replaced, as a JSON body cannot
//! carry it). Catalog names are looked up by hash, which gives the fuzzer no coverage
//! to climb towards them, so two prefixes that never start a UTF-8 string build names
//! from the catalog itself (no dictionary to keep in step with it):
//! - `FF i i rest`: catalog name `i` (u16, little-endian; model IDs and aliases, then
//!   provider IDs and aliases) + `rest`;
//! - `FE j i i rest`: provider name `j / 2`, then `:` (even `j`) or `/` (odd `j`), then
//!   catalog name `i` + `rest`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::catalog::Catalog;
use tollgate::resolve::{resolve, resolve_model, Routes, Target};

/// Routes as a config might define them (and as `State::build` compiles them).
const ROUTES: &[(&str, &[&str])] = &[
    (
        "auto",
        &["gpt-4o", "claude-sonnet-4-6", "groq/llama-3.3-70b"],
    ),
    ("Fast-Chat", &["gpt-4o-mini", "openai:not-in-the-catalog"]),
    ("team/default", &["anthropic/claude-opus-4-8"]),
];

struct World {
    catalog: Catalog,
    routes: Routes,
    /// Every model ID and alias, then every provider ID and alias.
    names: Vec<String>,
    providers: Vec<String>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let catalog = Catalog::embedded().expect("the embedded catalog compiles");
        let mut routes = Routes::default();
        for (name, members) in ROUTES {
            let targets = members
                .iter()
                .map(|m| resolve_model(&catalog, m).expect("route member resolves"))
                .collect();
            routes.insert(name, targets);
        }
        let providers: Vec<String> = catalog
            .providers
            .iter()
            .flat_map(|p| std::iter::once(&p.id).chain(&p.aliases))
            .map(|n| n.to_string())
            .collect();
        let names = catalog
            .models
            .iter()
            .flat_map(|m| std::iter::once(&*m.id).chain(m.aliases.iter().map(|a| &**a)))
            .map(|n| n.to_string())
            .chain(providers.iter().cloned())
            .collect();
        World {
            catalog,
            routes,
            names,
            providers,
        }
    })
}

/// The model string `data` stands for (see the module docs).
fn name_of(world: &World, data: &[u8]) -> String {
    fn pick(list: &[String], at: usize) -> &str {
        &list[at % list.len()]
    }
    match data {
        [0xFF, a, b, rest @ ..] => {
            let name = pick(&world.names, usize::from(u16::from_le_bytes([*a, *b])));
            name.to_string() + &String::from_utf8_lossy(rest)
        }
        [0xFE, j, a, b, rest @ ..] => {
            let provider = pick(&world.providers, usize::from(j / 2));
            let sep = if j % 2 == 1 { "/" } else { ":" };
            let name = pick(&world.names, usize::from(u16::from_le_bytes([*a, *b])));
            format!("{provider}{sep}{name}{}", String::from_utf8_lossy(rest))
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    }
}

fuzz_target!(|data: &[u8]| {
    let world = world();
    let name = name_of(world, data);
    let World {
        catalog, routes, ..
    } = world;

    let got = resolve(catalog, routes, &name);
    let single = resolve_model(catalog, &name);
    if let Some(t) = &single {
        assert_eq!(
            got.as_deref(),
            Some(std::slice::from_ref(t)),
            "a model wins over routes"
        );
        if t.model.is_none() {
            // `provider:model` with a model the catalog lacks: sent exactly as written.
            let prefix = name.strip_suffix(&*t.upstream_model);
            assert!(
                prefix.is_some_and(|p| p.ends_with([':', '/'])),
                "`{name}` sends `{}` upstream",
                t.upstream_model
            );
        }
    }
    for t in got.iter().flatten() {
        check_target(catalog, t);
    }
    for other in [name.to_ascii_uppercase(), name.to_ascii_lowercase()] {
        let again = resolve(catalog, routes, &other);
        assert_eq!(
            got.as_ref()
                .map(|ts| ts.iter().map(key).collect::<Vec<_>>()),
            again
                .as_ref()
                .map(|ts| ts.iter().map(key).collect::<Vec<_>>()),
            "`{name}` and `{other}` resolve differently"
        );
    }
});

/// What must not depend on the name's case: the provider, the catalog model, and the
/// upstream model (which, for a model the catalog does not list, is sent as written).
fn key(t: &Target) -> (usize, Option<usize>, String) {
    let upstream = match t.model {
        Some(_) => t.upstream_model.to_string(),
        None => t.upstream_model.to_ascii_lowercase(),
    };
    (t.provider, t.model, upstream)
}

fn check_target(catalog: &Catalog, t: &Target) {
    assert!(
        t.provider < catalog.providers.len(),
        "provider out of range"
    );
    match t.model {
        Some(i) => {
            let m = catalog.models.get(i).expect("model index in range");
            assert_eq!(m.provider, t.provider, "model of another provider");
            assert_eq!(
                &*m.id, &*t.upstream_model,
                "catalog model sent under another name"
            );
        }
        None => assert!(!t.upstream_model.is_empty(), "empty upstream model"),
    }
}
