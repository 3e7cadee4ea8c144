//! How a failed command reads: one line on stderr, `girok: ` and what went wrong, with the
//! details the server attached to its status decoded rather than dropped.
//!
//! - an offset out of range names the range the log holds: `offset 7 is out of range: the log
//!   holds [0, 3)`;
//! - any other status with an `ErrorInfo` ends with its code, reason and metadata in brackets:
//!   `record too large (RESOURCE_EXHAUSTED MESSAGE_TOO_LARGE, limit_bytes=1024)`;
//! - `UNAUTHENTICATED` adds the flags that carry credentials;
//! - `NOT_LEADER`, once the retries within `--timeout` are spent, names the leader the last node
//!   knew of: `the server is not the leader; the leader is node 2 at 10.0.0.2:8400 (UNAVAILABLE
//!   NOT_LEADER, after retrying for --timeout)`;
//! - a failed TLS handshake names the server and rustls's reason: `TLS handshake with
//!   127.0.0.1:8400 failed: invalid peer certificate: UnknownIssuer`, and when the server
//!   refused this client's certificate (or its absence), what to pass instead;
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
            if status.code() == Code::Unauthenticated {
                format!("{line} ({detail}): check --token (GIROK_TOKEN), or --cert and --key")
            } else {
                format!("{line} ({detail})")
            }
        }
        CliError::Client(err @ ClientError::NotLeader { .. }) => {
            format!("{err} (UNAVAILABLE NOT_LEADER, after retrying for --timeout)")
        }
        CliError::Client(err @ ClientError::LeaderChanged { .. }) => {
            format!("{err} (UNAVAILABLE LEADER_CHANGED): check before retrying")
        }
        CliError::Client(handshake @ ClientError::Handshake { reason, .. }) => {
            // The alerts a server sends when it will not take this client's certificate.
            let hint = if reason.ends_with("CertificateRequired") {
                ": the server requires a client certificate: pass --cert and --key"
            } else if reason.starts_with("received fatal alert") {
                ": the server refused the client certificate: check that its client CA signed --cert"
            } else {
                ""
            };
            format!("{handshake}{hint}")
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

#[cfg(test)]
mod tests {
    use girok::client::ClientError;
    use tonic::{Code, Status};
    use tonic_types::{ErrorDetails, StatusExt};

    use super::describe;
    use crate::CliError;

    fn status(code: Code, message: &str, details: ErrorDetails) -> CliError {
        CliError::Client(ClientError::from(Status::with_error_details(code, message, details)))
    }

    #[test]
    fn a_status_reads_as_its_message_then_its_code_reason_and_metadata() {
        // The reason a RESOURCE_EXHAUSTED carries is named, metadata sorted by key, and a
        // message spread over lines is folded into one.
        let info = ErrorDetails::with_error_info(
            "DISK_LOW",
            "girok",
            [("min_free_bytes".to_string(), "268435456".to_string()), ("log".into(), "a".into())],
        );
        let err = status(Code::ResourceExhausted, "the disk is\nalmost full", info);
        assert_eq!(
            describe(&err),
            "the disk is almost full (RESOURCE_EXHAUSTED DISK_LOW, log=a, min_free_bytes=268435456)"
        );
        let bare = status(Code::Unavailable, "shutting down", ErrorDetails::new());
        assert_eq!(describe(&bare), "shutting down (UNAVAILABLE)");
    }

    #[test]
    fn not_leader_names_the_leader() {
        // What a user of a cluster needs when the retries gave up: where the leader is.
        let err = CliError::Client(ClientError::NotLeader {
            leader_id: Some(2),
            leader_addr: Some("10.0.0.2:8400".into()),
        });
        assert_eq!(
            describe(&err),
            "the server is not the leader; the leader is node 2 at 10.0.0.2:8400 \
             (UNAVAILABLE NOT_LEADER, after retrying for --timeout)"
        );
    }

    #[test]
    fn an_offset_out_of_range_names_the_range_the_log_holds() {
        // The range is what a reader acts on, so it comes first in words.
        let err = CliError::Client(ClientError::OffsetOutOfRange {
            offset: 7,
            lowest_offset: 0,
            next_offset: 3,
        });
        assert_eq!(describe(&err), "offset 7 is out of range: the log holds [0, 3)");
    }
}
