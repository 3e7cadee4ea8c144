//! The registry's errors. The server maps them to statuses (`server::status`); nothing here
//! knows about gRPC.

use crate::storage;

/// What a registry call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name breaks the naming rules (see [`validate`](super::name::validate)).
    #[error("invalid log name {name:?}: {why}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A setting that cannot work.
    #[error("invalid log settings: {why}")]
    InvalidSettings {
        /// The setting concerned.
        field: &'static str,
        /// Why it cannot work.
        why: String,
    },
    /// No log has this name (or it was deleted while in use).
    #[error("log {log:?} does not exist")]
    NotFound {
        /// The name asked for.
        log: String,
    },
    /// `create` of a name that is taken.
    #[error("log {log:?} already exists")]
    Exists {
        /// The name asked for.
        log: String,
    },
    /// The `default` log cannot be deleted.
    #[error("the default log cannot be deleted")]
    DefaultLog,
    /// The registry holds its limit of logs already.
    #[error("the server holds {limit} logs, its limit (--max-logs)")]
    Limit {
        /// The limit.
        limit: usize,
    },
    /// The log's storage failed.
    #[error(transparent)]
    Storage(#[from] storage::Error),
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Self::Storage(err.into())
    }
}

/// The registry's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
