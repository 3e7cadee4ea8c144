//! The unary RPCs end to end: round trips, dense offsets, and the status codes with their rich
//! details, decoded by the typed client.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use common::faulty::FaultyLog;
use common::{for_each_log, start_server, start_server_with};
use girok::api::v1::{ConsumeRequest, ProduceRequest, Record};
use girok::client::ClientError;
use girok::server::ServerConfig;
use girok::storage::{CommitLog, DiskLog, Error, LogConfig};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn round_trip() {
    // Produced records, the empty one included, read back by offset, and Offsets reports them.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = server.client().await;
        assert_eq!(client.offsets().await.unwrap(), 0..0);
        for (i, value) in ["first", "", "third"].into_iter().enumerate() {
            assert_eq!(client.produce(value).await.unwrap(), i as u64);
        }
        for (i, value) in ["first", "", "third"].into_iter().enumerate() {
            let record = client.consume(i as u64).await.unwrap();
            assert_eq!((record.offset, record.value), (i as u64, Bytes::from(value)));
        }
        assert_eq!(client.offsets().await.unwrap(), 0..3);
    })
    .await;
}

#[tokio::test]
async fn round_trip_on_a_named_log() {
    // The same through a named log, whose neighbours (and `default`) see none of it.
    for_each_log(|logs| async move {
        let server = common::start_server_as("orders", logs.open_default()).await;
        let client = server.client().await;
        let mut orders = client.log("orders");
        assert_eq!(orders.offsets().await.unwrap(), 0..0);
        for (i, value) in ["first", "", "third"].into_iter().enumerate() {
            assert_eq!(orders.produce(value).await.unwrap(), i as u64);
        }
        for (i, value) in ["first", "", "third"].into_iter().enumerate() {
            let record = orders.consume(i as u64).await.unwrap();
            assert_eq!((record.offset, record.value), (i as u64, Bytes::from(value)));
        }
        assert_eq!(orders.offsets().await.unwrap(), 0..3);
        for neighbour in ["default", "first", "zz-last"] {
            assert_eq!(client.log(neighbour).offsets().await.unwrap(), 0..0, "{neighbour}");
        }
        match orders.consume(3).await {
            Err(ClientError::OffsetOutOfRange { offset: 3, lowest_offset: 0, next_offset: 3 }) => {}
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn records_carry_their_append_time_and_a_producer_cannot_set_it() {
    // Every record read back, by Consume or ConsumeStream, carries the log's append time in ms
    // since the epoch, never decreasing; a timestamp in the produce request is ignored.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = server.client().await;
        let before =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as u64;
        let forged = Record { value: "x".into(), offset: 0, timestamp_ms: 42 };
        client
            .inner()
            .produce(ProduceRequest { record: Some(forged), ..Default::default() })
            .await
            .unwrap();
        client.produce("y").await.unwrap();
        let first = client.consume(0).await.unwrap();
        assert!(first.timestamp_ms >= before, "{} is before {before}", first.timestamp_ms);
        let mut tail = client.consume_stream(0).await.unwrap();
        let streamed = common::bounded("tail", tail.next()).await.unwrap().unwrap();
        assert_eq!(streamed.timestamp_ms, first.timestamp_ms);
        let second = common::bounded("tail", tail.next()).await.unwrap().unwrap();
        assert!(second.timestamp_ms >= first.timestamp_ms);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_producers_get_dense_offsets() {
    // Eight producers racing get every offset exactly once, and each offset holds their value.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut tasks = Vec::new();
        for producer in 0..8 {
            let mut client = server.client().await;
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..50 {
                    let value = format!("{producer}-{i}");
                    acked.push((client.produce(value.clone()).await.unwrap(), value));
                }
                acked
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let offsets: HashSet<u64> = all.iter().map(|(offset, _)| *offset).collect();
        assert_eq!(offsets, (0..400).collect());
        let mut client = server.client().await;
        for (offset, value) in all {
            assert_eq!(client.consume(offset).await.unwrap().value, Bytes::from(value));
        }
    })
    .await;
}

#[tokio::test]
async fn out_of_range_carries_decoded_details() {
    // Reads past the end and below the start fail with OUT_OF_RANGE, and the client decodes
    // the offsets from ErrorInfo; a person gets an en-US LocalizedMessage.
    for_each_log(|logs| async move {
        let log = logs.open(LogConfig { initial_offset: 10, ..LogConfig::default() });
        let server = start_server(log).await;
        let mut client = server.client().await;
        client.produce("a").await.unwrap();
        client.produce("b").await.unwrap();

        for (asked, expected) in
            [(12, (12, 10, 12)), (3, (3, 10, 12)), (u64::MAX, (u64::MAX, 10, 12))]
        {
            match client.consume(asked).await {
                Err(ClientError::OffsetOutOfRange { offset, lowest_offset, next_offset }) => {
                    assert_eq!((offset, lowest_offset, next_offset), expected)
                }
                other => panic!("consume({asked}): expected OffsetOutOfRange, got {other:?}"),
            }
        }

        let status = client
            .inner()
            .consume(girok::api::v1::ConsumeRequest { offset: 12, ..Default::default() })
            .await;
        let status = status.unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange);
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("OFFSET_OUT_OF_RANGE", "girok"));
        assert_eq!(info.metadata["offset"], "12");
        assert_eq!(info.metadata["lowest_offset"], "10");
        assert_eq!(info.metadata["next_offset"], "12");
        let message = details.localized_message().expect("LocalizedMessage");
        assert_eq!(message.locale, "en-US");
        assert!(message.message.contains("10 to 11"), "{}", message.message);
    })
    .await;
}

#[tokio::test]
async fn invalid_and_oversized_records_are_rejected() {
    // A request without a record and a value over --max-record-bytes both get INVALID_ARGUMENT
    // with a BadRequest violation naming the field, and nothing is appended.
    for_each_log(|logs| async move {
        let log = logs.open(LogConfig { max_record_bytes: 1024, ..LogConfig::default() });
        let server = start_server(log).await;
        let mut client = server.client().await;

        let missing = client
            .inner()
            .produce(ProduceRequest { record: None, ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::InvalidArgument);
        let violations = missing.get_error_details().bad_request().expect("BadRequest").clone();
        assert_eq!(violations.field_violations[0].field, "record");

        let big = ProduceRequest {
            record: Some(Record { value: vec![7; 1025].into(), ..Record::default() }),
            ..Default::default()
        };
        let oversized = client.inner().produce(big).await.unwrap_err();
        assert_eq!(oversized.code(), Code::InvalidArgument);
        let violations = oversized.get_error_details().bad_request().expect("BadRequest").clone();
        assert_eq!(violations.field_violations[0].field, "record.value");

        assert_eq!(client.offsets().await.unwrap(), 0..0);
        assert_eq!(client.produce(vec![7; 1024]).await.unwrap(), 0, "the limit itself is fine");
    })
    .await;
}

#[tokio::test]
async fn message_over_the_transport_limit_is_resource_exhausted() {
    // A message above the decode limit is RESOURCE_EXHAUSTED (not tonic's OUT_OF_RANGE, which is
    // for offsets only), and nothing is appended.
    for_each_log(|logs| async move {
        let config = ServerConfig { max_decoding_message_size: 64 * 1024, ..Default::default() };
        let log = logs.open(LogConfig { max_record_bytes: 16 * 1024, ..LogConfig::default() });
        let server = start_server_with(log, config).await;
        let mut client = server.client().await;
        let err = client.inner().produce(produce_request(vec![1; 100 * 1024])).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        let info = err.get_error_details().error_info().expect("ErrorInfo").clone();
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("MESSAGE_TOO_LARGE", "girok"));
        assert_eq!(client.offsets().await.unwrap(), 0..0);
        assert_eq!(client.produce("after").await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn corrupt_record_is_data_loss_with_its_offset() {
    // A record failing its checksum is DATA_LOSS with ErrorInfo RECORD_CORRUPT, decoded by the
    // client into the offset.
    let log = Arc::new(FaultyLog::new(LogConfig::default()));
    log.append_batch(&[Bytes::from("a"), Bytes::from("b")]).unwrap();
    *log.corrupt_offset.lock().unwrap() = Some(1);
    let server = start_server(log).await;
    let mut client = server.client().await;
    common::bounded("corrupt", async {
        match client.consume(1).await {
            Err(ClientError::RecordCorrupt { offset: 1 }) => {}
            other => panic!("expected RecordCorrupt, got {other:?}"),
        }
        let status = client
            .inner()
            .consume(girok::api::v1::ConsumeRequest { offset: 1, ..Default::default() })
            .await;
        let details = status.unwrap_err().get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!((info.reason.as_str(), info.domain.as_str()), ("RECORD_CORRUPT", "girok"));
        assert_eq!(info.metadata["offset"], "1");
        assert_eq!(client.consume(0).await.unwrap().value, Bytes::from("a"));
    })
    .await;
}

#[tokio::test]
async fn storage_failures_map_to_their_codes_without_paths() {
    // Disk full is RESOURCE_EXHAUSTED; a read-only log and other I/O errors are INTERNAL and their
    // messages name no file; a closed log, and a shortage of descriptors, are UNAVAILABLE.
    // Nothing is appended.
    let cases: [(fn() -> Error, Code); 5] = [
        (|| Error::StorageFull, Code::ResourceExhausted),
        (|| Error::ReadOnly("fsync of /secret/path failed".into()), Code::Internal),
        (
            || Error::Io {
                path: Some("/secret/path/00000.store".into()),
                source: std::io::Error::other("open failed"),
            },
            Code::Internal,
        ),
        (|| Error::Closed, Code::Unavailable),
        (
            || Error::Io {
                path: Some("/secret/path/00000.index".into()),
                source: std::io::Error::from_raw_os_error(libc::EMFILE),
            },
            Code::Unavailable,
        ),
    ];
    for (make, code) in cases {
        let log = Arc::new(FaultyLog::new(LogConfig::default()));
        log.fail_appends_from(0, make);
        let server = start_server(log).await;
        let mut client = server.client().await;
        let err = common::bounded("storage failure", client.produce("x")).await.unwrap_err();
        let ClientError::Status(status) = err else { panic!("expected a status, got {err:?}") };
        assert_eq!(status.code(), code, "{status:?}");
        assert!(!status.message().contains("/secret"), "path leaked: {}", status.message());
        if code == Code::ResourceExhausted {
            let info = status.get_error_details().error_info().expect("ErrorInfo").clone();
            assert_eq!((info.reason.as_str(), info.domain.as_str()), ("DISK_FULL", "girok"));
        }
        assert_eq!(client.offsets().await.unwrap(), 0..0);
    }
}

#[tokio::test]
async fn a_stored_record_above_the_encoding_limit_is_resource_exhausted_not_out_of_range() {
    // A record written while the log allowed larger records cannot be sent under today's
    // limit: Consume and ConsumeStream say RESOURCE_EXHAUSTED with MESSAGE_TOO_LARGE, never
    // OUT_OF_RANGE (which clients take to mean "past the end").
    let dir = tempfile::tempdir().unwrap();
    let large = LogConfig { max_record_bytes: 1 << 20, ..LogConfig::default() };
    let log = DiskLog::open(dir.path(), large.into()).unwrap();
    log.append(Bytes::from(vec![7u8; 256 * 1024])).unwrap();
    log.close().unwrap();
    let small = LogConfig { max_record_bytes: 16 * 1024, ..LogConfig::default() };
    let log = Arc::new(DiskLog::open(dir.path(), small.into()).unwrap());
    let config = ServerConfig { max_encoding_message_size: 64 * 1024, ..ServerConfig::default() };
    let server = start_server_with(log, config).await;
    let mut client = server.client().await;
    let err = client
        .inner()
        .consume(ConsumeRequest { offset: 0, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    let info = err.get_error_details().error_info().expect("ErrorInfo").clone();
    assert_eq!(info.reason, "MESSAGE_TOO_LARGE");
    let mut tail = client.consume_stream(0).await.unwrap();
    let err = common::bounded("tail", tail.next()).await.unwrap_err();
    assert_eq!(err.code(), Some(Code::ResourceExhausted), "{err}");
}

fn produce_request(value: Vec<u8>) -> ProduceRequest {
    ProduceRequest {
        record: Some(Record { value: value.into(), ..Record::default() }),
        ..Default::default()
    }
}
