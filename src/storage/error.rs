//! The storage layer's one error type. The service maps it to gRPC statuses in one place
//! (`server::status`); nothing here knows about gRPC.
//!
//! I/O errors name the file they concern: the disk layer wraps every `io::Error` at the file it
//! came from ([`at`]), and the conversion into [`Error::Io`] keeps that path for the server's log,
//! its startup errors and `girok verify`. Statuses sent to clients never carry it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

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
    /// The data volume has less free space than the floor the log keeps: appends are refused
    /// until space is freed (by retention or an operator); reads go on.
    #[error("the data volume has {free} bytes free, below the floor of {floor} bytes")]
    DiskLow {
        /// The bytes free to an unprivileged writer when last measured.
        free: u64,
        /// The floor.
        floor: u64,
    },
    /// A sync failed earlier (or a lock was poisoned by a panic); the log refuses appends until
    /// it is reopened.
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
    /// Any other I/O error, with the file it concerns when known.
    #[error("{}{source}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Io {
        /// The file or directory concerned.
        path: Option<PathBuf>,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Whether this is a shortage that passes by itself: too many open files (per process or
    /// system-wide) or too little memory for a mapping. Nothing was written or synced, nothing is
    /// uncertain: a retry later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Io { source, .. } => is_shortage(source),
            _ => false,
        }
    }
}

/// Whether `err` is EMFILE, ENFILE or ENOMEM.
pub(crate) fn is_shortage(err: &io::Error) -> bool {
    matches!(os_error(err), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM))
}

/// The errno behind `err`, looking through a path wrapper.
fn os_error(err: &io::Error) -> Option<i32> {
    match err.get_ref().and_then(|inner| inner.downcast_ref::<PathError>()) {
        Some(wrapped) => wrapped.source.raw_os_error(),
        None => err.raw_os_error(),
    }
}

/// An `io::Error` that names its file; made by [`at`], unwrapped by `From<io::Error>`.
#[derive(Debug)]
struct PathError {
    path: PathBuf,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Names `path` in an `io::Error` (once: an error that names a file already keeps it), keeping
/// its kind. Use as `.map_err(at(path))`.
pub(crate) fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |err| {
        if err.get_ref().is_some_and(|inner| inner.is::<PathError>()) {
            return err;
        }
        io::Error::new(err.kind(), PathError { path: path.to_path_buf(), source: err })
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        if os_error(&err) == Some(libc::ENOSPC) || err.kind() == io::ErrorKind::StorageFull {
            return Error::StorageFull;
        }
        if !err.get_ref().is_some_and(|inner| inner.is::<PathError>()) {
            return Error::Io { path: None, source: err };
        }
        let kind = err.kind();
        match err.into_inner().map(|inner| inner.downcast::<PathError>()) {
            Some(Ok(wrapped)) => Error::Io { path: Some(wrapped.path), source: wrapped.source },
            Some(Err(inner)) => Error::Io { path: None, source: io::Error::new(kind, inner) },
            None => Error::Io { path: None, source: kind.into() },
        }
    }
}

/// The storage layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
