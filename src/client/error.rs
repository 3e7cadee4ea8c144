//! [`ClientError`]: what a call fails with. The statuses a caller is expected to act on are
//! decoded from the status's `ErrorInfo` into variants carrying its metadata: an offset out of
//! range, a corrupt record, a log that does not exist or already does. Every other status, and
//! one of those without the metadata, is passed through as is.

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::api::errors::{key, reason};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `OUT_OF_RANGE`: `offset` lies outside the committed range `[lowest_offset, next_offset)`.
    /// Below `lowest_offset`, resume from `lowest_offset`; at or past `next_offset`, wait.
    #[error("offset {offset} is out of range [{lowest_offset}, {next_offset})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// The lowest offset the log held.
        lowest_offset: u64,
        /// The log's commit point.
        next_offset: u64,
    },
    /// `DATA_LOSS`: the record at `offset` is corrupt on the server. Skipping it is the caller's
    /// decision; the server never skips it.
    #[error("the record at offset {offset} is corrupt")]
    RecordCorrupt {
        /// The damaged record's offset.
        offset: u64,
    },
    /// `NOT_FOUND`: the log named `log` does not exist, or was deleted while a stream used it.
    #[error("log {log:?} does not exist")]
    LogNotFound {
        /// The log's name.
        log: String,
    },
    /// `ALREADY_EXISTS`: a log named `log` exists already.
    #[error("log {log:?} already exists")]
    LogExists {
        /// The log's name.
        log: String,
    },
    /// Any other status (boxed: a `Status` is large).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(Box<Status>),
    /// The connection could not be made.
    #[error("connecting: {0}")]
    Connect(#[from] tonic::transport::Error),
}

impl ClientError {
    /// The gRPC code this error came from, if it came from a status.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::OffsetOutOfRange { .. } => Some(Code::OutOfRange),
            Self::RecordCorrupt { .. } => Some(Code::DataLoss),
            Self::LogNotFound { .. } => Some(Code::NotFound),
            Self::LogExists { .. } => Some(Code::AlreadyExists),
            Self::Status(status) => Some(status.code()),
            Self::Connect(_) => None,
        }
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        let details = status.get_error_details();
        let info = details.error_info();
        let field = |name: &str| info.and_then(|i| i.metadata.get(name)?.parse::<u64>().ok());
        let log = || info.and_then(|i| i.metadata.get(key::LOG)).cloned();
        match (status.code(), info.map(|i| i.reason.as_str())) {
            (Code::OutOfRange, Some(reason::OFFSET_OUT_OF_RANGE)) => {
                match (field(key::OFFSET), field(key::LOWEST_OFFSET), field(key::NEXT_OFFSET)) {
                    (Some(offset), Some(lowest_offset), Some(next_offset)) => {
                        Self::OffsetOutOfRange { offset, lowest_offset, next_offset }
                    }
                    _ => Self::Status(Box::new(status)),
                }
            }
            (Code::DataLoss, Some(reason::RECORD_CORRUPT)) => match field(key::OFFSET) {
                Some(offset) => Self::RecordCorrupt { offset },
                None => Self::Status(Box::new(status)),
            },
            (Code::NotFound, Some(reason::LOG_NOT_FOUND)) => match log() {
                Some(log) => Self::LogNotFound { log },
                None => Self::Status(Box::new(status)),
            },
            (Code::AlreadyExists, Some(reason::LOG_EXISTS)) => match log() {
                Some(log) => Self::LogExists { log },
                None => Self::Status(Box::new(status)),
            },
            _ => Self::Status(Box::new(status)),
        }
    }
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
