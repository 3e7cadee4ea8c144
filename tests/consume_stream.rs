//! ConsumeStream end to end: replay then live delivery, waiting at a future offset, many tails
//! on one connection, the range and corruption errors, bounded buffering, and clean-up when the
//! consumer goes away.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::faulty::FaultyLog;
use common::{for_each_log, start_server, start_server_with};
use girok::client::{Client, ClientError};
use girok::server::ServerConfig;
use girok::storage::{CommitLog, LogConfig, MemoryLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replays_then_delivers_live_records_promptly() {
    // A tail from 0 replays what is there, then gets each new record soon after it is acked.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = server.client().await;
        for i in 0..5 {
            client.produce(format!("old-{i}")).await.unwrap();
        }
        let mut tail = server.client().await.consume_stream(0).await.unwrap();
        for i in 0..5u64 {
            let record = tail.next().await.unwrap().unwrap();
            assert_eq!((record.offset, record.value), (i, Bytes::from(format!("old-{i}"))));
        }
        for i in 5..10u64 {
            let acked = Instant::now();
            client.produce(format!("new-{i}")).await.unwrap();
            let record = tail.next().await.unwrap().unwrap();
            assert_eq!((record.offset, record.value), (i, Bytes::from(format!("new-{i}"))));
            let latency = acked.elapsed();
            assert!(latency < Duration::from_millis(500), "delivered after {latency:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_of_a_named_log_replays_then_follows_that_log_only() {
    for_each_log(|logs| async move {
        let server = common::start_server_as("orders", logs.open_default()).await;
        let client = server.client().await;
        let mut orders = client.log("orders");
        for i in 0..5 {
            orders.produce(format!("old-{i}")).await.unwrap();
        }
        let mut tail = client.log("orders").consume_stream(0).await.unwrap();
        for i in 0..5u64 {
            let record = tail.next().await.unwrap().unwrap();
            assert_eq!((record.offset, record.value), (i, Bytes::from(format!("old-{i}"))));
        }
        let mut neighbour = client.log("first");
        for i in 5..10u64 {
            neighbour.produce("elsewhere").await.unwrap();
            client.log("default").produce("elsewhere").await.unwrap();
            orders.produce(format!("new-{i}")).await.unwrap();
            let record = tail.next().await.unwrap().unwrap();
            assert_eq!((record.offset, record.value), (i, Bytes::from(format!("new-{i}"))));
        }
    })
    .await;
}

#[tokio::test]
async fn a_stream_at_a_future_offset_waits_for_it() {
    // A tail from offset 10 of an empty log gets nothing until offset 10 is appended.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = server.client().await;
        let mut tail = server.client().await.consume_stream(10).await.unwrap();
        for i in 0..10 {
            client.produce(format!("{i}")).await.unwrap();
        }
        let early = tokio::time::timeout(Duration::from_millis(200), tail.next()).await;
        assert!(early.is_err(), "nothing before offset 10, got {early:?}");
        client.produce("ten").await.unwrap();
        let record = tail.next().await.unwrap().unwrap();
        assert_eq!((record.offset, record.value), (10, Bytes::from("ten")));
    })
    .await;
}

#[tokio::test]
async fn a_stream_below_the_lowest_offset_is_out_of_range() {
    // Starting below the lowest offset fails with OUT_OF_RANGE and its details.
    for_each_log(|logs| async move {
        let log = logs.open(LogConfig { initial_offset: 10, ..LogConfig::default() });
        let server = start_server(log).await;
        let mut tail = server.client().await.consume_stream(3).await.unwrap();
        match tail.next().await {
            Err(ClientError::OffsetOutOfRange {
                offset: 3,
                lowest_offset: 10,
                next_offset: 10,
            }) => {}
            other => panic!("expected OffsetOutOfRange, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_overtaking_a_slow_reader_is_out_of_range() {
    // A reader far behind when the records it still needs are truncated away gets OUT_OF_RANGE
    // naming the new lowest offset, after the records it had already been sent.
    let log = Arc::new(MemoryLog::new(LogConfig::default()));
    let values: Vec<Bytes> = (0..200).map(|_| Bytes::from(vec![0; 64 * 1024])).collect();
    log.append_batch(&values).unwrap();
    let server = start_server(log.clone()).await;
    let mut tail = server.client().await.consume_stream(0).await.unwrap();
    common::bounded("retention", async {
        assert_eq!(tail.next().await.unwrap().unwrap().offset, 0);
        log.truncate(150).unwrap();
        let mut last = 0;
        loop {
            match tail.next().await {
                Ok(Some(record)) => {
                    assert_eq!(record.offset, last + 1);
                    last = record.offset;
                }
                Err(ClientError::OffsetOutOfRange {
                    offset,
                    lowest_offset: 150,
                    next_offset: 200,
                }) => {
                    assert_eq!(offset, last + 1);
                    break;
                }
                other => panic!("expected records then OffsetOutOfRange, got {other:?}"),
            }
        }
        assert!(last < 149, "the slow reader was overtaken (last {last})");
    })
    .await;
}

#[tokio::test]
async fn a_corrupt_record_ends_the_stream_with_data_loss() {
    // A tail reaching a corrupt record gets the records before it, then DATA_LOSS naming it.
    let log = Arc::new(FaultyLog::new(LogConfig::default()));
    let values: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("{i}"))).collect();
    log.append_batch(&values).unwrap();
    *log.corrupt_offset.lock().unwrap() = Some(3);
    let server = start_server(log).await;
    let mut tail = server.client().await.consume_stream(0).await.unwrap();
    common::bounded("corrupt tail", async {
        for i in 0..3 {
            assert_eq!(tail.next().await.unwrap().unwrap().offset, i);
        }
        match tail.next().await {
            Err(ClientError::RecordCorrupt { offset: 3 }) => {}
            other => panic!("expected RecordCorrupt, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_tails_share_one_connection() {
    // 200 concurrent tails over one HTTP/2 connection each get every new record, in order.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let client = Client::new(server.channel().await);
        let mut tails = Vec::new();
        for _ in 0..200 {
            tails.push(client.clone().consume_stream(0).await.unwrap());
        }
        let mut producer = client.clone();
        for i in 0..10 {
            producer.produce(format!("{i}")).await.unwrap();
        }
        let readers = tails.into_iter().map(|mut tail| {
            tokio::spawn(async move {
                for i in 0..10u64 {
                    let record = tail.next().await.unwrap().unwrap();
                    assert_eq!((record.offset, record.value), (i, Bytes::from(format!("{i}"))));
                }
            })
        });
        for reader in readers.collect::<Vec<_>>() {
            reader.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_consumer_that_disconnects_frees_its_stream() {
    // Dropping a tail mid-stream frees the server's stream state (its handle on the log) at once.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let log = server.logs.get("default").unwrap();
        let serving = Arc::strong_count(&log);
        let mut client = server.client().await;
        client.produce("one").await.unwrap();
        let mut tail = client.consume_stream(0).await.unwrap();
        assert_eq!(tail.next().await.unwrap().unwrap().offset, 0);
        assert!(Arc::strong_count(&log) > serving, "the tail holds the log");
        drop(tail);
        common::eventually("tail freed", Duration::from_secs(5), || {
            Arc::strong_count(&log) == serving
        })
        .await;
        client.produce("two").await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_consumer_is_back_pressured_not_buffered() {
    // A tail whose client reads nothing makes the server stop reading the log once the HTTP/2
    // windows are full: far fewer than all 10,000 records (10 MiB) are read.
    let log = Arc::new(FaultyLog::new(LogConfig::default()));
    let values: Vec<Bytes> = (0..10_000).map(|_| Bytes::from(vec![1; 1024])).collect();
    log.append_batch(&values).unwrap();
    let config = ServerConfig { consume_batch_records: 64, ..ServerConfig::default() };
    let server = start_server_with(log.clone(), config).await;
    let mut tail = server.client().await.consume_stream(0).await.unwrap();
    common::bounded("back-pressure", async {
        assert_eq!(tail.next().await.unwrap().unwrap().offset, 0);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let read = log.records_read.load(Ordering::SeqCst);
        assert!(read < 5_000, "{read} records read for a consumer that read one");
        for i in 1..10_000 {
            assert_eq!(tail.next().await.unwrap().unwrap().offset, i);
        }
    })
    .await;
}
