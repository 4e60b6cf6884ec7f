//! Errors of the detection crate.

use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error while loading or compiling rules, mappings or indicators.
///
/// Messages are lowercase and name the failing input (file, line, field).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A YAML document could not be parsed.
    #[error("{path}:{line}:{column}: invalid yaml: {message}")]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A mapping file is invalid.
    #[error("{path}: invalid mapping: {message}")]
    Mapping { path: PathBuf, message: String },
    /// A rule or rule set is invalid as a whole (not one rule).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn yaml(path: impl Into<PathBuf>, err: &serde_yaml_ng::Error) -> Self {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        Error::Yaml {
            path: path.into(),
            line,
            column,
            message: err.to_string(),
        }
    }
}
