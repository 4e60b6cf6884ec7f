use crate::state::Refused;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The change does not apply to the current state.
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("control log entry {path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("control log: {0}")]
    Other(String),
}
