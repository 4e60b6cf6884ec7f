/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An archive error: a bad identifier, a bad store URL, or a failure to
/// encode or store an object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tenant id or topic name that cannot be used.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidId {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    /// A store URL that cannot be opened.
    #[error("store {url:?}: {reason}")]
    Store { url: String, reason: String },
    /// Arrow or Parquet encoding failed.
    #[error("encoding {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object store failed.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
}

impl Error {
    pub(crate) fn encode(
        what: &'static str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Encode {
            what,
            source: Box::new(e),
        }
    }
}
