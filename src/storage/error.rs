//! The storage layer's one error type. The service maps it to gRPC statuses in one place
//! (`server::status`); nothing here knows about gRPC.

use std::io;

/// What can go wrong in a [`CommitLog`](super::CommitLog).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read asked for an offset outside the committed range `[lowest, next)`.
    #[error("offset {offset} is out of range: the log holds [{lowest}, {next})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// The lowest offset held when the read failed.
        lowest: u64,
        /// The commit point when the read failed.
        next: u64,
    },
    /// The bytes stored for a committed offset fail their checksum or name another offset.
    #[error("record at offset {offset} is corrupt: {detail}")]
    Corrupt {
        /// The offset whose record is damaged.
        offset: u64,
        /// What the check found.
        detail: String,
    },
    /// A record larger than the configured `max_record_bytes`.
    #[error("record of {size} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// The record's size in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The append would take offsets past `u64::MAX`; nothing was appended.
    #[error("the log has run out of offsets: the next one would be {next}")]
    OffsetsExhausted {
        /// The log's next offset.
        next: u64,
    },
    /// The disk is full; nothing of the failed append was kept.
    #[error("no space left on the log's device")]
    StorageFull,
    /// A sync failed earlier; the log refuses appends until it is reopened.
    #[error("log is read-only after a failed sync: {0}")]
    ReadOnly(String),
    /// The log was closed.
    #[error("log is closed")]
    Closed,
    /// Another process holds the data directory.
    #[error("data directory {0} is locked by another girok process")]
    Locked(String),
    /// The on-disk files are not girok's, or of a version this build cannot read.
    #[error("{file}: {detail}")]
    Format {
        /// The file concerned.
        file: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A configuration value that cannot work.
    #[error("invalid log configuration: {0}")]
    Config(String),
    /// Any other I/O error.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        if err.raw_os_error() == Some(libc::ENOSPC) || err.kind() == io::ErrorKind::StorageFull {
            Error::StorageFull
        } else {
            Error::Io(err)
        }
    }
}

/// The storage layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
