//! Three `girok-server` processes as a cluster on 127.0.0.1, producers writing throughout, and
//! the leader SIGKILLed and restarted on its directory, cycle after cycle. A history check then
//! finds every acknowledged record exactly once, at its acknowledged offset, on every node, and
//! every node holding the same log.
//!
//! `GIROK_CLUSTER_CRASH_CYCLES` (default 2) sets the number of leader kills.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::binary::{ServerProcess, server_command, spawn};
use girok::api::v1::log_client::LogClient;
use girok::api::v1::{ConsumeRequest, GetServersRequest, OffsetsRequest, ProduceRequest, Record};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

const LOG: &str = "history";
const PRODUCERS: usize = 3;

fn cycles() -> usize {
    std::env::var("GIROK_CLUSTER_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

/// Free loopback ports for the nodes (bound, read, released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

struct Node {
    id: u64,
    dir: std::path::PathBuf,
    process: Option<ServerProcess>,
}

fn start_node(id: u64, dir: &std::path::Path, members: &str) -> ServerProcess {
    let id_text = id.to_string();
    let mut command = server_command(
        dir,
        &[
            ("GIROK_NODE_ID", &id_text),
            ("GIROK_CLUSTER", members),
            ("GIROK_RAFT_HEARTBEAT", "100ms"),
            ("GIROK_RAFT_ELECTION_TIMEOUT", "500ms"),
        ],
    );
    // The node listens on its own --cluster entry.
    command.env_remove("GIROK_LISTEN_ADDR");
    spawn(command, std::process::Stdio::null())
}

async fn client(addr: &str) -> Option<LogClient<Channel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(5));
    endpoint.connect().await.ok().map(LogClient::new)
}

/// The leader's address as some running node reports it.
async fn find_leader(addrs: &[String]) -> Option<String> {
    for addr in addrs {
        let Some(mut client) = client(addr).await else { continue };
        let Ok(servers) = client.get_servers(GetServersRequest {}).await else { continue };
        if let Some(leader) = servers.into_inner().servers.into_iter().find(|s| s.is_leader) {
            return Some(leader.rpc_addr);
        }
    }
    None
}

/// What the producers were told: value → acknowledged offset.
type Acked = Arc<Mutex<HashMap<String, u64>>>;

/// Produces unique values until `stop`, each attempt a new value (an unacknowledged attempt is
/// never retried as such, so an acknowledged value can appear only once).
async fn producer(
    k: usize,
    addrs: Vec<String>,
    acked: Acked,
    stop: Arc<std::sync::atomic::AtomicBool>,
    first_ack: Arc<Mutex<Option<Instant>>>,
) {
    let mut attempt = 0u64;
    let mut leader: Option<LogClient<Channel>> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if leader.is_none() {
            match find_leader(&addrs).await {
                Some(addr) => leader = client(&addr).await,
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
            continue;
        }
        attempt += 1;
        let value = format!("p{k}-{attempt}");
        let request = ProduceRequest {
            log: LOG.into(),
            record: Some(Record { value: Bytes::from(value.clone()), ..Default::default() }),
        };
        match leader.as_mut().unwrap().produce(request).await {
            Ok(response) => {
                acked.lock().unwrap().insert(value, response.into_inner().offset);
                first_ack.lock().unwrap().get_or_insert_with(Instant::now);
            }
            Err(_) => {
                leader = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Every record of the log on the node at `addr`, by offset.
async fn read_all(addr: &str, next: u64) -> BTreeMap<u64, (u64, Bytes)> {
    let mut client = client(addr).await.expect("connect for the check");
    let request = ConsumeRequest { log: LOG.into(), offset: 0 };
    let mut stream = client.consume_stream(request).await.unwrap().into_inner();
    let mut records = BTreeMap::new();
    while (records.len() as u64) < next {
        let response = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the tail stalled")
            .expect("the tail ended")
            .unwrap();
        let record = response.record.unwrap();
        records.insert(record.offset, (record.timestamp_ms, record.value));
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_record_survives_leader_crashes_exactly_once_on_every_node() {
    let root = tempfile::tempdir().unwrap();
    let ports = free_ports(3);
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let members = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}={a}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes: Vec<Node> = (1..=3u64)
        .map(|id| {
            let dir = root.path().join(format!("node{id}"));
            Node { id, process: Some(start_node(id, &dir, &members)), dir }
        })
        .collect();

    let acked: Acked = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let first_ack = Arc::new(Mutex::new(None));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|k| {
            tokio::spawn(producer(
                k,
                addrs.clone(),
                Arc::clone(&acked),
                Arc::clone(&stop),
                Arc::clone(&first_ack),
            ))
        })
        .collect();

    let mut failovers = Vec::new();
    for cycle in 0..cycles() {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = acked.lock().unwrap().len();
        assert!(before > 0 || cycle > 0, "the producers acknowledged nothing");
        let leader = find_leader(&addrs).await.expect("a leader");
        let node = nodes.iter_mut().find(|n| addrs[n.id as usize - 1] == leader).unwrap();
        // Crash the leader while the producers write, and time the first acknowledgement after.
        *first_ack.lock().unwrap() = None;
        let killed = Instant::now();
        node.process.take().unwrap().kill9();
        let deadline = killed + Duration::from_secs(20);
        let recovered = loop {
            if let Some(at) = *first_ack.lock().unwrap() {
                break at.duration_since(killed);
            }
            assert!(Instant::now() < deadline, "no write acknowledged within 20 s of the kill");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        failovers.push(recovered);
        tokio::time::sleep(Duration::from_millis(500)).await;
        node.process = Some(start_node(node.id, &node.dir, &members));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for producer in producers {
        producer.await.unwrap();
    }

    // Wait until the three agree on the log's end, through the leader's read index.
    let leader = find_leader(&addrs).await.expect("a leader at the end");
    let mut at_leader = client(&leader).await.unwrap();
    let linear = OffsetsRequest { log: LOG.into(), linearizable: true };
    let next = at_leader.offsets(linear).await.unwrap().into_inner().next_offset;
    let deadline = Instant::now() + Duration::from_secs(30);
    for addr in &addrs {
        loop {
            let mut c = client(addr).await.unwrap();
            let plain = OffsetsRequest { log: LOG.into(), linearizable: false };
            if c.offsets(plain).await.is_ok_and(|o| o.into_inner().next_offset >= next) {
                break;
            }
            assert!(Instant::now() < deadline, "{addr} did not catch up to {next}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let reference = read_all(&addrs[0], next).await;
    for addr in &addrs[1..] {
        assert!(read_all(addr, next).await == reference, "{addr} holds a different log");
    }
    let acked = acked.lock().unwrap().clone();
    let mut seen: HashMap<&[u8], u64> = HashMap::new();
    for (offset, (_, value)) in &reference {
        assert!(seen.insert(value.as_ref(), *offset).is_none(), "a value appears twice");
    }
    for (value, offset) in &acked {
        assert_eq!(seen.get(value.as_bytes()), Some(offset), "acknowledged {value} lost or moved");
    }
    println!(
        "cluster crash test: {} cycles, {} records acknowledged, {} held, first ack after each \
         leader kill: {:?}",
        cycles(),
        acked.len(),
        reference.len(),
        failovers
    );
    for node in &mut nodes {
        if let Some(mut process) = node.process.take() {
            process.kill9();
        }
    }
}
