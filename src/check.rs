//! `tollgate check`: what a valid configuration amounts to, without secrets.

use crate::state::State;

/// One line: catalog source and sizes, keys and routes (names and counts only).
pub fn summary(state: &State) -> String {
    let keyed = state
        .upstreams
        .iter()
        .filter(|u| !u.keys.keys.is_empty())
        .count();
    format!(
        "catalog {} with {} providers and {} models; {} access keys; {} providers with managed keys; {} routes",
        match &state.catalog.source {
            crate::catalog::Source::Embedded => "embedded".to_string(),
            crate::catalog::Source::File(p) => p.display().to_string(),
        },
        state.catalog.providers.len(),
        state.catalog.models.len(),
        state.config.access_keys.len(),
        keyed,
        state.routes.len(),
    )
}
