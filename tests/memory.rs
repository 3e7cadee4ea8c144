//! The server's memory budget against a flood: producers that stream large records and never
//! read their acks fill the budget and are then held back by flow control, while the server's
//! memory stays within the budget plus its fixed and per-connection overheads and other clients
//! keep being served.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::binary::spawn_server;
use futures_util::StreamExt;
use girok::client::Client;

/// An environment knob with a CI-sized default.
fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The server's resident memory in bytes.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn producers_that_never_read_acks_cannot_grow_the_server_past_its_budget() {
    // 8 connections × 16 ProduceStreams push 1 MiB records and never read an ack. The server
    // buffers within --max-buffered-bytes, stops reading, and stays within that plus the HTTP/2
    // windows of the connections and a fixed overhead; a client on another connection is served
    // all along.
    let connections = knob("GIROK_FLOOD_CONNECTIONS", 8);
    let streams = knob("GIROK_FLOOD_STREAMS", 16);
    let budget_mib = knob("GIROK_FLOOD_BUDGET_MIB", 64);
    let dir = tempfile::tempdir().unwrap();
    let budget = format!("{budget_mib}MiB");
    let env = [("GIROK_FSYNC", "never"), ("GIROK_MAX_BUFFERED_BYTES", budget.as_str())];
    let server = spawn_server(dir.path(), &env);
    let baseline = rss_of(server.id());

    let record = Bytes::from(vec![7u8; 1 << 20]);
    let mut flood = Vec::new();
    for _ in 0..connections {
        let client = Client::connect(server.url()).await.unwrap();
        for _ in 0..streams {
            let (mut client, record) = (client.clone(), record.clone());
            flood.push(tokio::spawn(async move {
                let values = futures_util::stream::repeat(record).take(64);
                // Open the stream and keep its acks unread for as long as the task lives.
                let acks = client.produce_stream(values).await;
                std::future::pending::<()>().await;
                drop(acks);
            }));
        }
    }

    // Let the flood fill whatever it can, then watch the server's memory settle.
    let mut peak = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        peak = peak.max(rss_of(server.id()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut polite = Client::connect(server.url()).await.unwrap();
    let offset = common::bounded("a polite producer", polite.produce("polite")).await.unwrap();
    assert_eq!(polite.consume(offset).await.unwrap().value, "polite");

    // The budget, the HTTP/2 connection window (16 MiB) of every flooding connection, and per
    // stream one decoded request waiting for budget plus tonic's decode buffer (its capacity
    // grows to twice a message), and a fixed overhead for the process itself. Before the budget
    // the same flood grew with every record sent (1.0 GB and climbing).
    let mib = 1u64 << 20;
    let allowed = baseline
        + budget_mib as u64 * mib
        + connections as u64 * 16 * mib
        + (connections * streams) as u64 * 3 * mib
        + 64 * mib;
    eprintln!(
        "flood: {connections} connections x {streams} streams of 1 MiB records, budget {budget_mib} MiB: \
         RSS baseline {} MiB, peak {} MiB, allowed {} MiB",
        baseline / mib,
        peak / mib,
        allowed / mib
    );
    assert!(peak <= allowed, "peak RSS {} MiB above {} MiB", peak / mib, allowed / mib);
    for task in flood {
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_large_requests_on_one_connection_never_deadlock_on_the_budget() {
    // 128 concurrent 1 MiB Produce calls on one connection against a 32 MiB budget: nothing
    // waits for budget while holding half a message (and with it HTTP/2 connection window that
    // the other messages need), so every call completes.
    use girok::server::ServerConfig;
    use girok::storage::MemoryLog;
    let config = ServerConfig { max_buffered_bytes: 32 << 20, ..ServerConfig::default() };
    let server = common::start_server_with(std::sync::Arc::new(MemoryLog::default()), config).await;
    let client = server.client().await;
    let record = Bytes::from(vec![3u8; 1 << 20]);
    let calls: Vec<_> = (0..128)
        .map(|_| {
            let (mut client, record) = (client.clone(), record.clone());
            tokio::spawn(async move { client.produce(record).await })
        })
        .collect();
    let mut offsets = Vec::new();
    for call in calls {
        let offset = common::bounded("a large Produce", call).await.unwrap().unwrap();
        offsets.push(offset);
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..128).collect::<Vec<u64>>());
}

/// A newer client's ProduceRequest: the fields girok knows, and one it does not.
#[derive(Clone, PartialEq, prost::Message)]
struct FutureProduceRequest {
    #[prost(message, optional, tag = "1")]
    record: Option<girok::api::v1::Record>,
    #[prost(bytes = "vec", tag = "15")]
    unknown: Vec<u8>,
}

#[tokio::test]
async fn requests_with_fields_the_server_does_not_know_release_their_budget() {
    // A newer client's requests carry fields this server drops when decoding; what a queued
    // request holds of the budget is given back whole when its record is appended, so such a
    // stream never runs its cap dry.
    use girok::api::v1::{ProduceResponse, Record};
    use girok::server::ServerConfig;
    use girok::storage::MemoryLog;
    let config = ServerConfig { produce_queue_bytes: 64 * 1024, ..ServerConfig::default() };
    let server = common::start_server_with(std::sync::Arc::new(MemoryLog::default()), config).await;
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    grpc.ready().await.unwrap();
    let requests = futures_util::stream::iter((0..1000).map(|i: u32| FutureProduceRequest {
        record: Some(Record { value: i.to_be_bytes().to_vec().into(), ..Record::default() }),
        unknown: vec![9; 1024],
    }));
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/log.v1.Log/ProduceStream");
    let codec = tonic_prost::ProstCodec::<FutureProduceRequest, ProduceResponse>::default();
    let response = grpc.streaming(tonic::Request::new(requests), path, codec).await.unwrap();
    let mut acks = response.into_inner();
    for expected in 0..1000u64 {
        let ack = common::bounded("an ack", acks.message()).await.unwrap().expect("an ack");
        assert_eq!(ack.offset, expected);
    }
}
