/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A pipeline error. Messages are lowercase and name what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration: the message names the file, line or key.
    #[error("config: {0}")]
    Config(String),
    /// A tenant's rules, indicators or mapping could not be loaded.
    #[error("tenant {tenant}: {message}")]
    Tenant { tenant: String, message: String },
    /// Kafka client error.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Archive (store, encoding) error.
    #[error(transparent)]
    Archive(#[from] warden_archive::Error),
    /// Object store error.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// I/O error (HTTP listener, files).
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else, with its context.
    #[error("{0}")]
    Other(String),
}
