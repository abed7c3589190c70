//! `LoadError`: why a config or catalog could not be loaded, naming the file, the
//! line or field path, and what is wrong (never a secret).

/// One error type for every file tollgate loads.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read {what}: {reason}")]
    Read {
        file: String,
        what: &'static str,
        reason: String,
    },
    #[error("{file}:{line}:{column}: {reason}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{file}: {path}: {reason}")]
    Invalid {
        file: String,
        path: String,
        reason: String,
    },
    /// Several problems, one per line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<LoadError>),
}

impl LoadError {
    /// A YAML parse error, at its line and column.
    pub fn yaml(file: &str, e: &serde_yaml_ng::Error) -> LoadError {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        LoadError::Syntax {
            file: file.to_string(),
            line,
            column,
            reason: redact_values(&e.to_string()),
        }
    }
}

/// A serde message without the values it quotes (`invalid type: string
/// "sk-…", expected u64`): a value in the wrong place may be a secret.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        match c {
            '"' if quoted => {
                quoted = false;
                out.push_str("…\"");
            }
            '"' => {
                quoted = true;
                out.push('"');
            }
            _ if quoted => {}
            c => out.push(c),
        }
    }
    if quoted {
        out.push_str("…\"");
    }
    out
}
