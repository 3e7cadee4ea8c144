//! The one mapping from the storage [`Error`] (and from request validation) to gRPC statuses, with
//! `google.rpc` rich error details named from [`crate::api::errors`]. Clients rely on these codes
//! and details; `README.md` lists them.
//!
//! | cause | code | details |
//! | --- | --- | --- |
//! | offset outside `[lowest, next)` | `OUT_OF_RANGE` | `ErrorInfo` `OFFSET_OUT_OF_RANGE` + `LocalizedMessage` |
//! | missing or oversized record, bad log name or settings | `INVALID_ARGUMENT` | `BadRequest` field violation |
//! | unknown (or deleted) log | `NOT_FOUND` | `ErrorInfo` `LOG_NOT_FOUND` |
//! | `CreateLog` of an existing name | `ALREADY_EXISTS` | `ErrorInfo` `LOG_EXISTS` |
//! | `DeleteLog` of `default` | `FAILED_PRECONDITION` | `ErrorInfo` `DEFAULT_LOG` |
//! | `--max-logs` reached | `RESOURCE_EXHAUSTED` | `ErrorInfo` `LOG_LIMIT` |
//! | message above the decode limit, record above the encode limit | `RESOURCE_EXHAUSTED` | `ErrorInfo` `MESSAGE_TOO_LARGE` |
//! | disk full | `RESOURCE_EXHAUSTED` | `ErrorInfo` `DISK_FULL` |
//! | data volume below `--min-free-disk` (appends only) | `RESOURCE_EXHAUSTED` | `ErrorInfo` `DISK_LOW` |
//! | offsets exhausted | `RESOURCE_EXHAUSTED` | `ErrorInfo` `OFFSETS_EXHAUSTED` |
//! | corrupt record | `DATA_LOSS` | `ErrorInfo` `RECORD_CORRUPT` |
//! | read-only log, I/O, anything else | `INTERNAL` | — (no paths) |
//! | no token and no client certificate, or a wrong token | `UNAUTHENTICATED` | — |
//! | the ACL does not allow the subject the action on the log | `PERMISSION_DENIED` | `ErrorInfo` `ACCESS_DENIED` (`subject`, `action`, `log`) |
//! | log closed, server draining, no descriptor or memory free, log that could not be opened | `UNAVAILABLE` | — |
//!
//! `OUT_OF_RANGE` is for offsets only: tonic reports a message over the decode limit as
//! `OUT_OF_RANGE` by itself, and a compressed message over it once decompressed as a bare
//! `RESOURCE_EXHAUSTED` ("Error decompressing: size limit..."); [`rewrite_decode_limit`] (and
//! [`rewrite_transport`], mid-stream) turn both into `RESOURCE_EXHAUSTED` with
//! `MESSAGE_TOO_LARGE`.

use std::collections::HashMap;

use tonic::codegen::http;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::api::errors::{DOMAIN, key, reason};
use crate::cluster::node::{MembershipError, WriteError};
use crate::logs;
use crate::server::security::Action;
use crate::storage::Error;

impl From<logs::Error> for Status {
    fn from(err: logs::Error) -> Self {
        match err {
            logs::Error::InvalidName { name, why } => invalid_log_name("log", &name, why),
            logs::Error::InvalidSettings { field, why } => {
                bad_request(&format!("settings.{field}"), why)
            }
            logs::Error::NotFound { log } => log_not_found(&log),
            logs::Error::Exists { log } => with_info(
                Code::AlreadyExists,
                format!("log {log:?} already exists"),
                reason::LOG_EXISTS,
                &[(key::LOG, log)],
            ),
            logs::Error::DefaultLog => with_info(
                Code::FailedPrecondition,
                "the default log cannot be deleted".into(),
                reason::DEFAULT_LOG,
                &[(key::LOG, logs::DEFAULT_LOG.into())],
            ),
            logs::Error::Limit { limit } => with_info(
                Code::ResourceExhausted,
                format!("the server holds {limit} logs, its limit (--max-logs)"),
                reason::LOG_LIMIT,
                &[(key::LIMIT, limit.to_string())],
            ),
            logs::Error::Storage(err) => err.into(),
        }
    }
}

/// `NOT_FOUND` with `LOG_NOT_FOUND` for the log `name`.
pub(crate) fn log_not_found(name: &str) -> Status {
    with_info(
        Code::NotFound,
        format!("log {name:?} does not exist"),
        reason::LOG_NOT_FOUND,
        &[(key::LOG, name.to_string())],
    )
}

/// `UNAUTHENTICATED`: the request carries no usable credentials; `why` says which were wrong
/// (never echoing a token).
pub(crate) fn unauthenticated(why: &str) -> Status {
    Status::unauthenticated(why)
}

/// `PERMISSION_DENIED`: the access-control list does not let `subject` do `action` on `log`.
pub(crate) fn permission_denied(subject: Option<&str>, action: Action, log: &str) -> Status {
    let subject = subject.unwrap_or("(anonymous)");
    with_info(
        Code::PermissionDenied,
        format!("subject {subject:?} is not permitted to {action} on log {log:?}"),
        reason::ACCESS_DENIED,
        &[
            (key::SUBJECT, subject.to_string()),
            (key::ACTION, action.to_string()),
            (key::LOG, log.to_string()),
        ],
    )
}

/// `UNAVAILABLE` for a log the server could not open when it started (the reason is logged with
/// its paths; the client gets none).
pub(crate) fn log_unavailable(name: &str, why: &str) -> Status {
    tracing::debug!(log = name, why, "call on a log that could not be opened");
    Status::unavailable(format!(
        "log {name:?} could not be opened when the server started; an operator must repair or \
         delete it"
    ))
}

/// `INVALID_ARGUMENT` naming `field` (`log` or `name`) unless `name` is a valid log name.
pub(crate) fn check_log_name(field: &str, name: &str) -> Result<(), Status> {
    logs::name::validate(name).map_err(|why| invalid_log_name(field, name, why))
}

fn invalid_log_name(field: &str, name: &str, why: &str) -> Status {
    let shown: String = name.chars().take(64).collect();
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, why);
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid log name {shown:?}: {why}"),
        details,
    )
}

/// `INVALID_ARGUMENT` with one field violation.
pub(crate) fn bad_request(field: &str, why: impl Into<String>) -> Status {
    let why = why.into();
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field, why.clone());
    Status::with_error_details(Code::InvalidArgument, why, details)
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::OffsetOutOfRange { offset, lowest, next } => out_of_range(offset, lowest, next),
            Error::Corrupt { offset, .. } => with_info(
                Code::DataLoss,
                format!("the record at offset {offset} is corrupt"),
                reason::RECORD_CORRUPT,
                &[(key::OFFSET, offset.to_string())],
            ),
            Error::RecordTooLarge { size, max } => record_too_large(size, max),
            Error::StorageFull => with_info(
                Code::ResourceExhausted,
                "the log's disk is full; retry later".into(),
                reason::DISK_FULL,
                &[],
            ),
            Error::DiskLow { free, floor } => with_info(
                Code::ResourceExhausted,
                format!(
                    "the data volume has {} free, below --min-free-disk {}; appends resume once \
                     space is freed",
                    bytesize::ByteSize(free).display().iec(),
                    bytesize::ByteSize(floor).display().iec()
                ),
                reason::DISK_LOW,
                &[(key::FREE_BYTES, free.to_string()), (key::LIMIT_BYTES, floor.to_string())],
            ),
            Error::OffsetsExhausted { next } => with_info(
                Code::ResourceExhausted,
                format!("the log has run out of offsets at {next}"),
                reason::OFFSETS_EXHAUSTED,
                &[(key::NEXT_OFFSET, next.to_string())],
            ),
            Error::Closed => Status::unavailable("the log is closed: the server is shutting down"),
            Error::ReadOnly(_) => {
                tracing::error!(error = %err, "append refused: log is read-only");
                Status::internal(
                    "the log is read-only after a failed sync or an internal error; restart the server",
                )
            }
            other if other.is_transient() => {
                tracing::warn!(error = %other, "storage call failed for want of descriptors or memory");
                Status::unavailable(
                    "the server is short of file descriptors or memory; retry shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "storage error");
                Status::internal("internal storage error")
            }
        }
    }
}

/// A status with an `ErrorInfo` of girok's domain.
fn with_info(code: Code, message: String, reason: &str, metadata: &[(&str, String)]) -> Status {
    let mut details = ErrorDetails::new();
    let metadata: HashMap<String, String> =
        metadata.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    details.set_error_info(reason, DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// `OUT_OF_RANGE` for `offset` outside `[lowest, next)`, with `ErrorInfo` (values in base 10)
/// and an en-US `LocalizedMessage`.
pub(crate) fn out_of_range(offset: u64, lowest: u64, next: u64) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        reason::OFFSET_OUT_OF_RANGE,
        DOMAIN,
        HashMap::from([
            (key::OFFSET.to_string(), offset.to_string()),
            (key::LOWEST_OFFSET.to_string(), lowest.to_string()),
            (key::NEXT_OFFSET.to_string(), next.to_string()),
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
pub(crate) fn missing_record() -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation("record", "a produce request must carry a record");
    Status::with_error_details(Code::InvalidArgument, "the request has no record", details)
}

/// `INVALID_ARGUMENT` for a record value above the limit.
pub(crate) fn record_too_large(size: usize, max: usize) -> Status {
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
pub(crate) fn record_too_large_to_send(offset: u64, size: usize, max: usize) -> Status {
    with_info(
        Code::ResourceExhausted,
        format!(
            "record at offset {offset} is {size} bytes, above the server's maximum message size \
             of {max} bytes; restart the server with a larger --max-record-bytes to read it"
        ),
        reason::MESSAGE_TOO_LARGE,
        &[(key::OFFSET, offset.to_string()), (key::LIMIT_BYTES, max.to_string())],
    )
}

/// The status of a write the cluster did not apply: `UNAVAILABLE` with `NOT_LEADER` (nothing
/// was proposed) or `LEADER_CHANGED` (the outcome is unknown), naming the leader when known.
pub(crate) fn from_write_error(err: WriteError) -> Status {
    let leader = |id: Option<u64>, addr: Option<String>| -> Vec<(&'static str, String)> {
        match (id, addr) {
            (Some(id), Some(addr)) => {
                vec![(key::LEADER_ID, id.to_string()), (key::LEADER_ADDR, addr)]
            }
            (Some(id), None) => vec![(key::LEADER_ID, id.to_string())],
            _ => Vec::new(),
        }
    };
    match err {
        WriteError::NotLeader { leader_id, leader_addr } => {
            let message = match (&leader_id, &leader_addr) {
                (Some(id), Some(addr)) => {
                    format!("this node is not the leader; node {id} at {addr} is")
                }
                _ => {
                    "this node is not the leader, and no leader is known now; retry shortly".into()
                }
            };
            let metadata = leader(leader_id, leader_addr);
            with_info(Code::Unavailable, message, reason::NOT_LEADER, &metadata)
        }
        WriteError::LeaderChanged { leader_id, leader_addr } => {
            let metadata = leader(leader_id, leader_addr);
            let message = "leadership changed while the write was in flight: it may or may not \
                           have been appended"
                .into();
            with_info(Code::Unavailable, message, reason::LEADER_CHANGED, &metadata)
        }
        WriteError::Stopped(why) => {
            tracing::error!(error = %why, "the cluster node cannot take writes");
            Status::unavailable("this cluster node has stopped replicating; retry on another node")
        }
    }
}

/// `UNAVAILABLE` from a node that was started to join a cluster and has not been added yet.
pub(crate) fn not_a_member(id: u64) -> Status {
    Status::unavailable(format!(
        "node {id} is not a member of the cluster yet: add it with AddServer (girok cluster add) \
         on the leader"
    ))
}

/// `UNAVAILABLE` from a node whose Raft has stopped after a failure (its log says which): it
/// serves nothing, rather than reads that fall further behind.
pub(crate) fn cluster_stopped(id: u64) -> Status {
    Status::unavailable(format!(
        "node {id} has stopped replicating after a failure; use another node"
    ))
}

/// The status of a refused membership change.
pub(crate) fn from_membership_error(err: MembershipError) -> Status {
    match err {
        MembershipError::Write(err) => from_write_error(err),
        MembershipError::Exists(id) => with_info(
            Code::AlreadyExists,
            format!("node id {id} is or was a member of the cluster: ids are never reused"),
            reason::SERVER_EXISTS,
            &[(key::SERVER_ID, id.to_string())],
        ),
        MembershipError::NotFound(id) => with_info(
            Code::NotFound,
            format!("node {id} is not a member of the cluster"),
            reason::SERVER_NOT_FOUND,
            &[(key::SERVER_ID, id.to_string())],
        ),
        MembershipError::Refused(why) => Status::failed_precondition(why),
        MembershipError::CatchingUp(why) => Status::unavailable(why),
    }
}

/// `FAILED_PRECONDITION` for a cluster RPC on a server outside a cluster.
pub(crate) fn not_a_cluster() -> Status {
    with_info(
        Code::FailedPrecondition,
        "this server is not part of a cluster (start it with --node-id and --cluster)".into(),
        reason::NOT_A_CLUSTER,
        &[],
    )
}

/// `UNAVAILABLE` for calls cut short by the server draining.
pub(crate) fn draining() -> Status {
    Status::unavailable("the server is shutting down; retry on another connection")
}

/// `INTERNAL` for a storage call whose blocking task died.
pub(crate) fn task_failed(err: tokio::task::JoinError) -> Status {
    tracing::error!(error = %err, "storage task failed");
    Status::internal("internal error")
}

/// The start of tonic's message for a compressed message over the decode limit once
/// decompressed (tonic 0.14, `codec/decode.rs`).
const DECOMPRESSED_OVER_LIMIT: &str = "Error decompressing: size limit";

/// Whether a status is tonic's own decode-limit error: `OUT_OF_RANGE` without girok's details,
/// or `RESOURCE_EXHAUSTED` without details saying decompressing hit the limit.
fn is_decode_limit(code: Code, has_details: bool, message: &str) -> bool {
    !has_details
        && (code == Code::OutOfRange
            || (code == Code::ResourceExhausted && message.starts_with(DECOMPRESSED_OVER_LIMIT)))
}

/// `RESOURCE_EXHAUSTED` with `MESSAGE_TOO_LARGE` for a message over the decode limit.
fn message_too_large(message: &str) -> Status {
    with_info(Code::ResourceExhausted, message.to_string(), reason::MESSAGE_TOO_LARGE, &[])
}

/// Rewrites a status that tonic produced on its own: `OUT_OF_RANGE` without girok's details can
/// only be tonic's "decoded message length too large", which is `RESOURCE_EXHAUSTED`, and a
/// decompression over the limit lacks the `MESSAGE_TOO_LARGE` detail.
pub(crate) fn rewrite_transport(status: Status) -> Status {
    if is_decode_limit(status.code(), !status.details().is_empty(), status.message()) {
        message_too_large(status.message())
    } else {
        status
    }
}

/// The same rewrite on a trailers-only HTTP response, which is how tonic answers a unary request
/// it could not decode.
pub(crate) fn rewrite_decode_limit<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    // Most responses carry their status in trailers; only look closer at an OUT_OF_RANGE or
    // RESOURCE_EXHAUSTED header.
    let (out_of_range, exhausted) =
        ((Code::OutOfRange as i32).to_string(), (Code::ResourceExhausted as i32).to_string());
    let Some(code) = headers.get("grpc-status") else { return response };
    if code.as_bytes() != out_of_range.as_bytes() && code.as_bytes() != exhausted.as_bytes() {
        return response;
    }
    let Some(status) = Status::from_header_map(headers) else { return response };
    if !is_decode_limit(status.code(), !status.details().is_empty(), status.message()) {
        return response;
    }
    let mut rewritten = http::HeaderMap::new();
    if message_too_large(status.message()).add_header(&mut rewritten).is_ok() {
        for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
            headers.remove(name);
        }
        headers.extend(rewritten);
    }
    response
}
