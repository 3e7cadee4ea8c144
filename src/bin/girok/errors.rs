//! How a failed command reads: one line on stderr, `girok: ` and what went wrong, with the
//! details the server attached to its status decoded rather than dropped.
//!
//! - an offset out of range names the range the log holds: `offset 7 is out of range: the log
//!   holds [0, 3)`;
//! - any other status with an `ErrorInfo` ends with its code, reason and metadata in brackets:
//!   `record too large (RESOURCE_EXHAUSTED MESSAGE_TOO_LARGE, limit_bytes=1024)`;
//! - other errors give their causes after a colon each.

use std::error::Error;

use girok::client::ClientError;
use tonic::Code;
use tonic_types::StatusExt;

use crate::CliError;

/// `err` as the one line printed for it, without the `girok: ` prefix.
pub(crate) fn describe(err: &CliError) -> String {
    let line = match err {
        CliError::Client(ClientError::OffsetOutOfRange { offset, lowest_offset, next_offset }) => {
            format!(
                "offset {offset} is out of range: the log holds [{lowest_offset}, {next_offset})"
            )
        }
        CliError::Client(ClientError::Status(status)) => {
            let mut line = status.message().to_owned();
            if line.is_empty() {
                line = status.code().description().to_owned();
            }
            let mut detail = code_name(status.code()).to_owned();
            if let Some(info) = status.get_error_details().error_info() {
                detail = format!("{detail} {}", info.reason);
                let mut metadata: Vec<_> = info.metadata.iter().collect();
                metadata.sort();
                for (key, value) in metadata {
                    detail = format!("{detail}, {key}={value}");
                }
            }
            format!("{line} ({detail})")
        }
        _ => with_causes(err),
    };
    // One line, whatever the server put in its message.
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `err` followed by each of its causes that it does not already end with.
fn with_causes(err: &dyn Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !message.ends_with(&cause_text) {
            message = format!("{message}: {cause_text}");
        }
        source = cause.source();
    }
    message
}

/// The code's canonical name, as gRPC documents it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
