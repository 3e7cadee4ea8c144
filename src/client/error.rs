//! [`ClientError`]: what a call fails with. The statuses a caller is expected to act on are
//! decoded from the status's `ErrorInfo` into variants carrying its metadata: an offset out of
//! range, a corrupt record, a log that does not exist or already does. Every other status, and
//! one of those without the metadata, is passed through as is; except a status that a failed
//! TLS handshake caused (a server refusing this client's certificate, or its absence, says so
//! only once the first call is under way), which becomes [`ClientError::Handshake`].
//!
//! The rest are [`Connect`](super::Connect)'s: options that cannot work, files that cannot be
//! read, and connections that could not be made.

use std::path::PathBuf;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::connect::tls_failure;
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
    /// The TLS handshake failed: the server's certificate is not trusted or does not name the
    /// host, or the server refused this client's certificate (or its absence). `reason` is
    /// rustls's; `peer` the server's `HOST:PORT` when known.
    #[error(
        "TLS handshake{} failed: {reason}",
        peer.as_ref().map(|peer| format!(" with {peer}")).unwrap_or_default()
    )]
    Handshake {
        /// The server, as `HOST:PORT`; unknown when the failure surfaced in a call.
        peer: Option<String>,
        /// Why, in rustls's words, e.g. `invalid peer certificate: UnknownIssuer`.
        reason: String,
    },
    /// Connecting took longer than [`Connect::connect_timeout`](super::Connect::connect_timeout).
    #[error("timed out after {} connecting to {addr}", humantime::format_duration(*after))]
    Timeout {
        /// The address connected to.
        addr: String,
        /// The limit.
        after: Duration,
    },
    /// The address is not one the client can connect to, or does not fit the other options
    /// (a CA or client certificate with an `http://` address).
    #[error("invalid address {addr:?}: {reason}")]
    Address {
        /// The address as given.
        addr: String,
        /// What is wrong, and what to write instead.
        reason: String,
    },
    /// A PEM file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    ReadFile {
        /// Which input: `CA certificate`, `client certificate` or `client key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM input holds no item of the kind it must (no certificate in a CA file, say).
    #[error("the {what} {origin} holds no PEM {item}")]
    InvalidPem {
        /// Which input: `CA certificate`, `client certificate` or `client key`.
        what: &'static str,
        /// The file's path, or `given` for PEM given in memory.
        origin: String,
        /// What it lacks: `certificate` or `private key`.
        item: &'static str,
    },
    /// rustls refused the TLS settings (a key that does not parse or does not match its
    /// certificate, no system roots to trust, …).
    #[error("unusable TLS settings: {0}")]
    TlsSettings(String),
    /// The bearer token cannot be sent: it is empty or holds a character outside visible
    /// ASCII (it is not repeated here, so it never reaches a log).
    #[error("the token must be visible ASCII without spaces")]
    InvalidToken,
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
            Self::Connect(_)
            | Self::Handshake { .. }
            | Self::Timeout { .. }
            | Self::Address { .. }
            | Self::ReadFile { .. }
            | Self::InvalidPem { .. }
            | Self::TlsSettings(_)
            | Self::InvalidToken => None,
        }
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        if let Some(reason) = tls_failure(&status) {
            return Self::Handshake { peer: None, reason };
        }
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
