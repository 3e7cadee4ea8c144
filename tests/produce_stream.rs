//! ProduceStream end to end: pipelined, in-order acks; errors mid-stream; half-close; and the
//! HTTP/2 flow of many small frames that must not draw GOAWAY.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::faulty::FaultyLog;
use common::{for_each_log, start_server, start_server_with};
use girok::api::v1::{ProduceRequest, Record};
use girok::server::ServerConfig;
use girok::storage::{CommitLog, Error, LogConfig};
use tonic::Code;

fn request(value: impl Into<Bytes>) -> ProduceRequest {
    ProduceRequest {
        record: Some(Record { value: value.into(), ..Record::default() }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_records_are_acked_in_order_then_ok() {
    // 10,000 records sent without waiting get one ack each, in order; the half-close ends the
    // stream with OK after the last ack, and the log holds every value at its acked offset.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = server.client().await;
        let values = (0..10_000).map(|i| Bytes::from(format!("record-{i}")));
        let mut acks = client.produce_stream(futures_util::stream::iter(values)).await.unwrap();
        for expected in 0..10_000 {
            assert_eq!(acks.next().await.unwrap(), Some(expected));
        }
        assert_eq!(acks.next().await.unwrap(), None, "half-close ends with OK");
        assert_eq!(client.offsets().await.unwrap(), 0..10_000);
        assert_eq!(client.consume(9_999).await.unwrap().value, Bytes::from("record-9999"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_to_a_named_log_is_acked_in_order_and_lands_there_only() {
    for_each_log(|logs| async move {
        let server = common::start_server_as("orders", logs.open_default()).await;
        let client = server.client().await;
        let mut orders = client.log("orders");
        let values = (0..2_000).map(|i| Bytes::from(format!("record-{i}")));
        let mut acks = orders.produce_stream(futures_util::stream::iter(values)).await.unwrap();
        for expected in 0..2_000 {
            assert_eq!(acks.next().await.unwrap(), Some(expected));
        }
        assert_eq!(acks.next().await.unwrap(), None, "half-close ends with OK");
        assert_eq!(orders.offsets().await.unwrap(), 0..2_000);
        assert_eq!(orders.consume(1_999).await.unwrap().value, Bytes::from("record-1999"));
        for neighbour in ["default", "first", "zz-last"] {
            assert_eq!(client.log(neighbour).offsets().await.unwrap(), 0..0, "{neighbour}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_arriving_during_a_sync_are_appended_as_one_batch() {
    // With each append taking 2 ms (a sync), 2,000 streamed records need far fewer appends than
    // records: the stream is pipelined, not a round trip per record.
    let log = Arc::new(FaultyLog::new(LogConfig::default()));
    *log.append_delay.lock().unwrap() = Duration::from_millis(2);
    let server = start_server(log.clone()).await;
    let mut client = server.client().await;
    common::bounded("batching", async {
        let values = (0..2_000).map(|i| Bytes::from(format!("{i}")));
        let mut acks = client.produce_stream(futures_util::stream::iter(values)).await.unwrap();
        for expected in 0..2_000 {
            assert_eq!(acks.next().await.unwrap(), Some(expected));
        }
        assert_eq!(acks.next().await.unwrap(), None);
    })
    .await;
    let calls = log.append_calls.load(Ordering::SeqCst);
    assert!(calls < 200, "{calls} appends for 2,000 records");
}

#[tokio::test]
async fn an_invalid_record_mid_stream_ends_it_after_acking_the_earlier_ones() {
    // Records before a request without a record are appended and acked, then the stream ends
    // with INVALID_ARGUMENT and nothing after it is appended.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = server.client().await;
        let mut requests: Vec<_> = (0..100).map(|i| request(format!("{i}"))).collect();
        requests.push(ProduceRequest { record: None, ..Default::default() });
        requests.extend((0..100).map(|i| request(format!("late-{i}"))));
        let response =
            client.inner().produce_stream(futures_util::stream::iter(requests)).await.unwrap();
        let mut acks = response.into_inner();
        for expected in 0..100 {
            assert_eq!(acks.message().await.unwrap().unwrap().offset, expected);
        }
        let status = acks.message().await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(client.offsets().await.unwrap(), 0..100);
    })
    .await;
}

#[tokio::test]
async fn a_message_over_the_transport_limit_mid_stream_is_resource_exhausted() {
    // A message above the decode limit ends the stream with RESOURCE_EXHAUSTED after acking
    // the records before it.
    for_each_log(|logs| async move {
        let config = ServerConfig { max_decoding_message_size: 64 * 1024, ..Default::default() };
        let log = logs.open(LogConfig { max_record_bytes: 16 * 1024, ..LogConfig::default() });
        let server = start_server_with(log, config).await;
        let mut client = server.client().await;
        let mut values: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("{i}"))).collect();
        values.push(Bytes::from(vec![0; 100 * 1024]));
        let mut acks = client.produce_stream(futures_util::stream::iter(values)).await.unwrap();
        for expected in 0..10 {
            assert_eq!(acks.next().await.unwrap(), Some(expected));
        }
        let err = acks.next().await.unwrap_err();
        assert_eq!(err.code(), Some(Code::ResourceExhausted), "{err:?}");
        assert_eq!(client.offsets().await.unwrap(), 0..10);
    })
    .await;
}

#[tokio::test]
async fn a_failed_batch_ends_the_stream_with_its_status() {
    // When the disk fills, the failing batch appends nothing: every ack comes before the
    // RESOURCE_EXHAUSTED status and matches a record that is really in the log.
    let log = Arc::new(FaultyLog::new(LogConfig::default()));
    log.fail_appends_from(50, || Error::StorageFull);
    let server = start_server(log.clone()).await;
    let mut client = server.client().await;
    common::bounded("failed batch", async {
        let values = (0..200).map(|i| Bytes::from(format!("{i}")));
        let mut acks = client.produce_stream(futures_util::stream::iter(values)).await.unwrap();
        let mut expected = 0;
        let err = loop {
            match acks.next().await {
                Ok(Some(offset)) => {
                    assert_eq!(offset, expected);
                    expected += 1;
                }
                Ok(None) => panic!("stream ended with OK"),
                Err(err) => break err,
            }
        };
        assert_eq!(err.code(), Some(Code::ResourceExhausted), "{err:?}");
        assert_eq!(log.next_offset(), expected, "acked exactly what was appended");
        assert!(expected <= 50);
    })
    .await;
}

#[tokio::test]
async fn an_open_stream_acks_each_record_as_it_arrives() {
    // Acks flow while the client keeps its side open: each record is acked before the next is
    // sent, then the half-close ends the stream with OK.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let mut client = server.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let mut acks =
            client.produce_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap();
        for i in 0..20u64 {
            tx.send(Bytes::from(format!("{i}"))).await.unwrap();
            assert_eq!(acks.next().await.unwrap(), Some(i));
        }
        drop(tx);
        assert_eq!(acks.next().await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_producer_that_disconnects_frees_its_stream() {
    // Dropping the client mid-stream frees the server's reader and pipeline (their handle on the
    // log goes away).
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let log = server.logs.get("default").unwrap();
        let serving = Arc::strong_count(&log);
        let mut client = server.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let mut acks =
            client.produce_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap();
        tx.send(Bytes::from("one")).await.unwrap();
        assert_eq!(acks.next().await.unwrap(), Some(0));
        assert!(Arc::strong_count(&log) > serving, "the stream holds the log");
        drop((acks, tx, client));
        common::eventually("stream freed", Duration::from_secs(5), || {
            Arc::strong_count(&log) == serving
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_thousand_small_data_frames_do_not_draw_goaway() {
    // A client that sends every message in its own small DATA frame (as Google's Python client
    // does) streams 20,000 records without the server's h2 answering ENHANCE_YOUR_CALM.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let acked = raw_h2::produce_one_frame_per_message(server.addr, 20_000).await;
        assert_eq!(acked, 20_000);
        let mut client = server.client().await;
        assert_eq!(client.offsets().await.unwrap(), 0..20_000);
    })
    .await;
}

/// A bare h2 client, to control DATA framing exactly.
mod raw_h2 {
    use std::net::SocketAddr;

    use bytes::{BufMut, Bytes, BytesMut};
    use girok::api::v1::ProduceResponse;
    use prost::Message;

    use super::request;

    fn frame(message: &impl Message) -> Bytes {
        let body = message.encode_to_vec();
        let mut buf = BytesMut::with_capacity(5 + body.len());
        buf.put_u8(0);
        buf.put_u32(body.len() as u32);
        buf.put_slice(&body);
        buf.freeze()
    }

    /// Sends `count` records over ProduceStream, one DATA frame each, and returns how many acks
    /// came back before the stream ended with OK.
    pub async fn produce_one_frame_per_message(addr: SocketAddr, count: usize) -> usize {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (mut h2, connection) = h2::client::handshake(tcp).await.unwrap();
        let connection = tokio::spawn(connection);
        let req =
            tonic::codegen::http::Request::post(format!("http://{addr}/log.v1.Log/ProduceStream"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .unwrap();
        let (response, mut send) = h2.send_request(req, false).unwrap();
        let sender = tokio::spawn(async move {
            for i in 0..count {
                let data = frame(&request(format!("{i}")));
                send.reserve_capacity(data.len());
                while send.capacity() < data.len() {
                    match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                        Some(Ok(_)) => {}
                        other => panic!("no send capacity: {other:?}"),
                    }
                }
                send.send_data(data, false).unwrap();
            }
            send.send_data(Bytes::new(), true).unwrap();
        });
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut buffered = BytesMut::new();
        let mut acks = 0;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            buffered.extend_from_slice(&chunk);
            while buffered.len() >= 5 {
                let len = u32::from_be_bytes(buffered[1..5].try_into().unwrap()) as usize;
                if buffered.len() < 5 + len {
                    break;
                }
                let message = buffered.split_to(5 + len);
                let ack = ProduceResponse::decode(&message[5..]).unwrap();
                assert_eq!(ack.offset, acks as u64);
                acks += 1;
            }
        }
        let trailers = body.trailers().await.unwrap().expect("trailers");
        assert_eq!(trailers.get("grpc-status").map(|v| v.as_bytes()), Some(&b"0"[..]));
        sender.await.unwrap();
        connection.abort();
        acks
    }
}
