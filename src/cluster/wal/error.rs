//! [`WalError`]: everything the Raft WAL can fail with, one `thiserror` enum.
//!
//! An I/O error during a write or a sync leaves the WAL *failed*: what reached the disk is
//! unknown (a failed `fdatasync` may have dropped dirty pages), so every later write and every
//! pending durability callback fails with [`WalError::Failed`] until the WAL is reopened, when
//! recovery reads back what is really there.

use std::io;

/// A Raft WAL error.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The disk failed (the file named in the message).
    #[error("wal i/o: {0}")]
    Io(#[from] io::Error),
    /// An appended entry does not continue the log: indexes are dense.
    #[error("wal append out of order: expected index {expected}, got {got}")]
    Gap {
        /// The next index the log accepts.
        expected: u64,
        /// The index offered.
        got: u64,
    },
    /// An appended entry's term is lower than the last entry's.
    #[error("wal term goes back: index {index} has term {term} after term {last_term}")]
    TermRegression {
        /// The offending entry's index.
        index: u64,
        /// Its term.
        term: u64,
        /// The term of the entry before it.
        last_term: u64,
    },
    /// A truncation or read reached below the logical start (into purged entries).
    #[error("wal index {index} is purged: the log starts at {first}")]
    Purged {
        /// The index asked for.
        index: u64,
        /// The first index the log holds.
        first: u64,
    },
    /// A file of the WAL is damaged where no crash could have torn it.
    #[error("wal corrupt: {0}")]
    Corrupt(String),
    /// An earlier write or sync failed; reopen the WAL to learn what is on disk.
    #[error("wal failed earlier ({0}); reopen it")]
    Failed(String),
    /// Another handle (in this process or another) has the WAL's directory open.
    #[error("wal directory {0} is in use by another process or handle")]
    Locked(String),
    /// The WAL was closed or dropped before the operation completed.
    #[error("wal closed")]
    Closed,
}

impl From<WalError> for io::Error {
    fn from(err: WalError) -> Self {
        match err {
            WalError::Io(err) => err,
            other => io::Error::other(other),
        }
    }
}

/// The WAL's result type.
pub type Result<T> = std::result::Result<T, WalError>;
