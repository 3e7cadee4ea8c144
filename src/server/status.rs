//! The one mapping from the storage [`Error`] (and from request validation) to gRPC statuses, with
//! `google.rpc` rich error details. Clients rely on these codes and details; `README.md` lists them.
//!
//! | cause | code | details |
//! | --- | --- | --- |
//! | offset outside `[lowest, next)` | `OUT_OF_RANGE` | `ErrorInfo` `OFFSET_OUT_OF_RANGE` + `LocalizedMessage` |
//! | missing or oversized record | `INVALID_ARGUMENT` | `BadRequest` field violation |
//! | message above the decode limit | `RESOURCE_EXHAUSTED` | — |
//! | disk full | `RESOURCE_EXHAUSTED` | — |
//! | corrupt record | `DATA_LOSS` | `ErrorInfo` `RECORD_CORRUPT` |
//! | read-only log, I/O, anything else | `INTERNAL` | — (no paths) |
//! | log closed, server draining | `UNAVAILABLE` | — |
//!
//! `OUT_OF_RANGE` is for offsets only: tonic reports a message over the decode limit as
//! `OUT_OF_RANGE` by itself, and [`rewrite_decode_limit`] turns that into `RESOURCE_EXHAUSTED`.

use std::collections::HashMap;

use tonic::codegen::http;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::log::Error;

/// The `ErrorInfo.domain` of every error girok reports.
pub const DOMAIN: &str = "girok";
/// `ErrorInfo.reason` of a read outside the committed range.
pub const REASON_OUT_OF_RANGE: &str = "OFFSET_OUT_OF_RANGE";
/// `ErrorInfo.reason` of a record that failed its checksum.
pub const REASON_CORRUPT: &str = "RECORD_CORRUPT";

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::OffsetOutOfRange { offset, lowest, next } => out_of_range(offset, lowest, next),
            Error::Corrupt { offset, .. } => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    REASON_CORRUPT,
                    DOMAIN,
                    HashMap::from([("offset".to_string(), offset.to_string())]),
                );
                Status::with_error_details(
                    Code::DataLoss,
                    format!("the record at offset {offset} is corrupt"),
                    details,
                )
            }
            Error::RecordTooLarge { size, max } => record_too_large(size, max),
            Error::StorageFull => Status::resource_exhausted("the log's disk is full"),
            Error::Closed => Status::unavailable("the log is closed: the server is shutting down"),
            Error::ReadOnly(_) => {
                tracing::error!(error = %err, "append refused: log is read-only");
                Status::internal("the log is read-only after a failed sync; restart the server")
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Status::internal("internal storage error")
            }
        }
    }
}

/// `OUT_OF_RANGE` for `offset` outside `[lowest, next)`, with `ErrorInfo` (values in base 10)
/// and an en-US `LocalizedMessage`.
pub fn out_of_range(offset: u64, lowest: u64, next: u64) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        REASON_OUT_OF_RANGE,
        DOMAIN,
        HashMap::from([
            ("offset".to_string(), offset.to_string()),
            ("lowest_offset".to_string(), lowest.to_string()),
            ("next_offset".to_string(), next.to_string()),
        ]),
    );
    let readable = if lowest == next {
        format!("the log holds no records; the next one will get offset {next}")
    } else {
        format!("the log holds offsets {lowest} to {}", next - 1)
    };
    details.set_localized_message("en-US", format!("Offset {offset} is out of range: {readable}."));
    Status::with_error_details(
        Code::OutOfRange,
        format!("offset {offset} is out of range [{lowest}, {next})"),
        details,
    )
}

/// `INVALID_ARGUMENT` for a produce request without a record.
pub fn missing_record() -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation("record", "a produce request must carry a record");
    Status::with_error_details(Code::InvalidArgument, "the request has no record", details)
}

/// `INVALID_ARGUMENT` for a record value above the limit.
pub fn record_too_large(size: usize, max: usize) -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(
        "record.value",
        format!("the value is {size} bytes; the limit is {max} bytes"),
    );
    Status::with_error_details(
        Code::InvalidArgument,
        format!("record of {size} bytes exceeds the limit of {max} bytes"),
        details,
    )
}

/// `RESOURCE_EXHAUSTED` for a stored record too large to send under the server's encoding limit
/// (written while the server allowed larger records). Without this, tonic would answer
/// `OUT_OF_RANGE`, which girok keeps for offsets.
pub fn record_too_large_to_send(offset: u64, size: usize, max: usize) -> Status {
    Status::resource_exhausted(format!(
        "record at offset {offset} is {size} bytes, above the server's maximum message size of \
         {max} bytes; restart the server with a larger --max-record-bytes to read it"
    ))
}

/// `UNAVAILABLE` for calls cut short by the server draining.
pub fn draining() -> Status {
    Status::unavailable("the server is shutting down; retry on another connection")
}

/// `INTERNAL` for a storage call whose blocking task died.
pub fn task_failed(err: tokio::task::JoinError) -> Status {
    tracing::error!(error = %err, "storage task failed");
    Status::internal("internal error")
}

/// Rewrites a status that tonic produced on its own: `OUT_OF_RANGE` without girok's details can
/// only be tonic's "decoded message length too large", which is `RESOURCE_EXHAUSTED`.
pub fn rewrite_transport(status: Status) -> Status {
    if status.code() == Code::OutOfRange && status.details().is_empty() {
        Status::resource_exhausted(status.message().to_string())
    } else {
        status
    }
}

/// The same rewrite on a trailers-only HTTP response, which is how tonic answers a unary request
/// it could not decode.
pub fn rewrite_decode_limit<B>(mut response: http::Response<B>) -> http::Response<B> {
    const GRPC_STATUS: &str = "grpc-status";
    let headers = response.headers_mut();
    let out_of_range = (Code::OutOfRange as i32).to_string();
    if headers.get(GRPC_STATUS).is_some_and(|v| v.as_bytes() == out_of_range.as_bytes())
        && !headers.contains_key("grpc-status-details-bin")
    {
        let exhausted = (Code::ResourceExhausted as i32).to_string();
        if let Ok(value) = http::HeaderValue::from_str(&exhausted) {
            headers.insert(GRPC_STATUS, value);
        }
    }
    response
}
