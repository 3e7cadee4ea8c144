//! The Rust client's named logs: the statuses of a missing or taken log decoded into typed
//! errors, and (against the shipped server) a handle per log keeping its records apart, and the
//! admin calls round trip.

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use common::binary::Served;
use common::bounded;
use girok::api::errors::{DOMAIN, key, reason};
use girok::client::{ClientError, DEFAULT_LOG, LogInfo, LogSettings};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_named_log_keeps_its_own_records_and_offsets() {
    // Records produced through `client.log(name)`, one by one or streamed, land in that log
    // only: each log counts its offsets from 0, reads and tails see only its records, and the
    // client's own calls are the `default` log.
    let served = Served::start();
    bounded("named logs", async {
        let mut client = served.client().await;
        let mut orders = client.log("orders");
        let mut audit = client.log("audit");
        assert_eq!(orders.name(), "orders");

        assert_eq!(orders.produce("o0").await.unwrap(), 0);
        assert_eq!(orders.produce("o1").await.unwrap(), 1);
        assert_eq!(client.produce("d0").await.unwrap(), 0);
        let values = ["a0", "a1", "a2"].map(Bytes::from);
        let mut acks = audit.produce_stream(tokio_stream::iter(values)).await.unwrap();
        for offset in 0..3 {
            assert_eq!(acks.next().await.unwrap(), Some(offset));
        }
        assert_eq!(acks.next().await.unwrap(), None);

        assert_eq!(orders.offsets().await.unwrap(), 0..2);
        assert_eq!(audit.offsets().await.unwrap(), 0..3);
        assert_eq!(client.offsets().await.unwrap(), 0..1);
        assert_eq!(client.log(DEFAULT_LOG).offsets().await.unwrap(), 0..1);
        assert_eq!(orders.consume(1).await.unwrap().value, "o1");
        assert_eq!(audit.consume(2).await.unwrap().value, "a2");
        assert_eq!(client.consume(0).await.unwrap().value, "d0");
        let past = orders.consume(2).await.unwrap_err();
        assert!(matches!(past, ClientError::OffsetOutOfRange { next_offset: 2, .. }), "{past:?}");

        let mut tail = orders.consume_stream(0).await.unwrap();
        assert_eq!(tail.next().await.unwrap().map(|r| r.value), Some("o0".into()));
        assert_eq!(tail.next().await.unwrap().map(|r| r.value), Some("o1".into()));
        client.produce("d1").await.unwrap();
        audit.produce("a3").await.unwrap();
        assert_eq!(orders.produce("o2").await.unwrap(), 2);
        let record = tail.next().await.unwrap().expect("a live record");
        assert_eq!((record.offset, record.value), (2, Bytes::from_static(b"o2")));
    })
    .await;
}

/// The names `logs` lists, in its order.
fn names(logs: &[LogInfo]) -> Vec<&str> {
    logs.iter().map(|log| log.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_created_listed_updated_and_deleted() {
    // A created log answers its name, an empty range and the settings given (the rest absent);
    // the list holds it in name order with its records counted; an update replaces only the
    // settings it carries; a deleted log leaves the list and takes its records with it.
    let served = Served::start();
    bounded("admin round trip", async {
        let mut client = served.client().await;
        client.produce("d0").await.unwrap();
        let settings = LogSettings {
            retention_bytes: Some(1 << 30),
            retention_ms: None,
            segment_bytes: Some(1 << 20),
        };
        let created = client.create_log("orders", settings).await.unwrap();
        assert_eq!(created.name, "orders");
        assert_eq!((created.lowest_offset, created.next_offset), (0, 0));
        assert_eq!(created.settings, Some(settings));
        assert!(created.created_ms > 0);

        client.log("orders").produce("o0").await.unwrap();
        let listed = client.list_logs().await.unwrap();
        assert_eq!(names(&listed), [DEFAULT_LOG, "orders"]);
        let orders = &listed[1];
        assert_eq!((orders.lowest_offset, orders.next_offset), (0, 1));
        assert!(orders.size_bytes > 0, "{orders:?}");
        assert_eq!(orders.created_ms, created.created_ms);

        let change = LogSettings {
            retention_bytes: Some(0),
            retention_ms: Some(7 * 86_400_000),
            segment_bytes: None,
        };
        let updated = client.update_log("orders", change).await.unwrap();
        let expected = LogSettings { segment_bytes: Some(1 << 20), ..change };
        assert_eq!(updated.settings, Some(expected));
        assert_eq!(updated.next_offset, 1);
        assert_eq!(client.list_logs().await.unwrap()[1].settings, Some(expected));

        client.delete_log("orders").await.unwrap();
        assert_eq!(names(&client.list_logs().await.unwrap()), [DEFAULT_LOG]);
        let gone = client.log("orders").offsets().await.unwrap_err();
        assert!(matches!(&gone, ClientError::LogNotFound { log } if log == "orders"), "{gone:?}");
        assert_eq!(client.offsets().await.unwrap(), 0..1, "the default log is untouched");
    })
    .await;
}

/// Whether `err` is `LogNotFound` for `name`.
fn not_found(err: &ClientError, name: &str) -> bool {
    matches!(err, ClientError::LogNotFound { log } if log == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_taken_logs_fail_with_typed_errors() {
    // Every call on a log that does not exist fails with LogNotFound naming it, a tail included,
    // also when its log is deleted under it; creating a taken name fails with LogExists; the
    // default log cannot be deleted and a bad name is refused, both as plain statuses.
    let served = Served::start();
    bounded("typed errors", async {
        let mut client = served.client().await;
        let mut ghost = client.log("ghost");
        let err = ghost.consume(0).await.unwrap_err();
        assert!(not_found(&err, "ghost"), "consume: {err:?}");
        assert_eq!(err.code(), Some(Code::NotFound));
        let err = ghost.offsets().await.unwrap_err();
        assert!(not_found(&err, "ghost"), "offsets: {err:?}");
        let err = match ghost.consume_stream(0).await {
            Err(err) => err,
            Ok(mut records) => records.next().await.unwrap_err(),
        };
        assert!(not_found(&err, "ghost"), "consume_stream: {err:?}");
        let err = client.update_log("ghost", LogSettings::default()).await.unwrap_err();
        assert!(not_found(&err, "ghost"), "update_log: {err:?}");
        let err = client.delete_log("ghost").await.unwrap_err();
        assert!(not_found(&err, "ghost"), "delete_log: {err:?}");

        client.create_log("orders", LogSettings::default()).await.unwrap();
        let err = client.create_log("orders", LogSettings::default()).await.unwrap_err();
        assert!(matches!(&err, ClientError::LogExists { log } if log == "orders"), "{err:?}");
        assert_eq!(err.code(), Some(Code::AlreadyExists));

        let mut tail = client.log("orders").consume_stream(0).await.unwrap();
        client.delete_log("orders").await.unwrap();
        let err = tail.next().await.unwrap_err();
        assert!(not_found(&err, "orders"), "a tail of a deleted log: {err:?}");

        let err = client.delete_log(DEFAULT_LOG).await.unwrap_err();
        assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err:?}");
        for bad in ["", "..", "a/b", &"x".repeat(201)] {
            let err = client.create_log(bad, LogSettings::default()).await.unwrap_err();
            assert_eq!(err.code(), Some(Code::InvalidArgument), "{bad:?}: {err:?}");
        }
    })
    .await;
}
