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
            reason: e.to_string(),
        }
    }
}
