//! Fuzzes config loading: YAML text → `Config::parse` → `State::build` over the
//! embedded catalog, with an empty environment. Never a panic; every refusal renders
//! to a message naming the file.
//!
//! Input: the config file's text (inputs that are not UTF-8 are skipped: the loader
//! reads files with `read_to_string`, which refuses them before parsing).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::catalog::Catalog;
use tollgate::config::Config;
use tollgate::load_error::LoadError;
use tollgate::state::State;

const FILE: &str = "fuzz.yaml";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |_: &str| None;
    let config = match Config::parse(text, FILE, &env) {
        Ok(config) => config,
        Err(e) => return check_error(&e, FILE),
    };
    // `Catalog` is not `Clone`, so each built state compiles its own (about a millisecond).
    let catalog = Catalog::embedded().expect("the embedded catalog compiles");
    if let Err(e) = State::build(config, catalog, &env) {
        // A config without a path (as here) is named `(config)`.
        check_error(&e, "(config)");
    }
});

/// The error names `file` and says what is wrong (each of them, for several).
fn check_error(e: &LoadError, file: &str) {
    let message = e.to_string();
    assert!(
        message.starts_with(file),
        "message does not name {file}: {message:?}"
    );
    match e {
        LoadError::Read { reason, .. }
        | LoadError::Syntax { reason, .. }
        | LoadError::Invalid { reason, .. } => {
            assert!(!reason.trim().is_empty(), "no reason given: {message:?}");
        }
        LoadError::Many(all) => {
            assert!(!all.is_empty(), "an empty list of problems");
            for e in all {
                check_error(e, file);
            }
        }
        // A kind of error added since: at least it says something.
        #[allow(unreachable_patterns)]
        _ => assert!(message.len() > file.len() + 2, "empty message: {message:?}"),
    }
}
