//! The Rust client's named logs: the statuses of a missing or taken log decoded into typed
//! errors, and (against the shipped server) a handle per log keeping its records apart, and the
//! admin calls round trip.

mod common;

use std::collections::HashMap;

use girok::api::errors::{DOMAIN, key, reason};
use girok::client::ClientError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A status as the server sends it: `code` with an `ErrorInfo` of `reason` and `metadata`.
fn status(code: Code, reason: &str, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> =
        metadata.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect();
    let details = ErrorDetails::with_error_info(reason, DOMAIN, metadata);
    Status::with_error_details(code, "from the server", details)
}

#[test]
fn a_missing_or_taken_log_decodes_to_a_typed_error_naming_it() {
    // NOT_FOUND with LOG_NOT_FOUND and ALREADY_EXISTS with LOG_EXISTS become variants carrying
    // the log's name, and keep their gRPC code.
    let missing =
        ClientError::from(status(Code::NotFound, reason::LOG_NOT_FOUND, &[(key::LOG, "orders")]));
    assert!(matches!(&missing, ClientError::LogNotFound { log } if log == "orders"), "{missing:?}");
    assert_eq!(missing.code(), Some(Code::NotFound));
    assert_eq!(missing.to_string(), r#"log "orders" does not exist"#);

    let taken =
        ClientError::from(status(Code::AlreadyExists, reason::LOG_EXISTS, &[(key::LOG, "orders")]));
    assert!(matches!(&taken, ClientError::LogExists { log } if log == "orders"), "{taken:?}");
    assert_eq!(taken.code(), Some(Code::AlreadyExists));
    assert_eq!(taken.to_string(), r#"log "orders" already exists"#);
}

#[test]
fn log_statuses_without_their_metadata_or_of_other_reasons_pass_through() {
    // A typed variant is only made when its metadata is there; DEFAULT_LOG, LOG_LIMIT and a
    // plain NOT_FOUND stay statuses with their code.
    let cases = [
        status(Code::NotFound, reason::LOG_NOT_FOUND, &[]),
        status(Code::AlreadyExists, reason::LOG_EXISTS, &[]),
        status(Code::FailedPrecondition, reason::DEFAULT_LOG, &[(key::LOG, "default")]),
        status(Code::ResourceExhausted, reason::LOG_LIMIT, &[(key::LIMIT, "3")]),
        Status::not_found("no such thing"),
    ];
    for status in cases {
        let code = status.code();
        let err = ClientError::from(status);
        assert!(matches!(&err, ClientError::Status(s) if s.code() == code), "{err:?}");
        assert_eq!(err.code(), Some(code));
    }
}
