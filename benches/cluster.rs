//! Produce throughput of a three-node cluster against a single node, side by side: 100-byte
//! records over one ProduceStream and over unary Produce with 64 calls in flight, to the leader,
//! with the WAL (cluster) or the log (single node) under `--fsync always`. The three nodes, the
//! single node and the client all run in this process, on this machine's cores: the cluster's
//! figure includes two followers' work that a real deployment puts on other machines. Run with
//! `cargo bench --bench cluster`.

#[path = "../tests/common/cluster.rs"]
mod cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use girok::client::Client;
use girok::logs::{Logs, LogsConfig};
use girok::server::{self, ServerConfig};
use girok::storage::{DiskConfig, FsyncPolicy};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Records per ProduceStream iteration.
const STREAM_RECORDS: u64 = 10_000;
/// Records per unary iteration, and calls in flight.
const UNARY_RECORDS: u64 = 2_000;
const IN_FLIGHT: usize = 64;

fn value() -> Bytes {
    Bytes::from(vec![b'x'; 100])
}

/// A single node over a disk registry under `--fsync always`; answers its URL.
async fn single_node() -> (String, tempfile::TempDir, oneshot::Sender<()>) {
    let dir = tempfile::tempdir().unwrap();
    let disk = DiskConfig { fsync: FsyncPolicy::Always, ..DiskConfig::default() };
    let logs = Arc::new(Logs::open(dir.path(), disk, LogsConfig::default()).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server::run(listener, logs, ServerConfig::default(), async {
        let _ = stopped.await;
    }));
    (url, dir, stop)
}

async fn stream(url: &str, records: u64) {
    let mut client = Client::connect(url.to_string()).await.unwrap();
    let values = tokio_stream::iter((0..records).map(|_| value()));
    let mut acks = client.produce_stream(values).await.unwrap();
    let mut n = 0;
    while acks.next().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, records);
}

async fn unary(url: &str, records: u64) {
    let client = Client::connect(url.to_string()).await.unwrap();
    let mut tasks = Vec::new();
    for worker in 0..IN_FLIGHT as u64 {
        let mut client = client.clone();
        let share = records / IN_FLIGHT as u64 + u64::from(worker < records % IN_FLIGHT as u64);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                client.produce(value()).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn produce(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let (single, _dir, _stop) = runtime.block_on(single_node());
    let three = runtime.block_on(cluster::TestCluster::start(3));
    let leader = runtime.block_on(three.leader());
    let leader_url = format!("http://{}", three.addrs[&leader]);
    let targets = [("single_node", single.as_str()), ("three_nodes", leader_url.as_str())];

    let mut group = c.benchmark_group("cluster_produce_stream");
    group.throughput(Throughput::Elements(STREAM_RECORDS)).sample_size(10);
    for (name, url) in targets {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&runtime).iter_custom(|iters| async move {
                let started = Instant::now();
                for _ in 0..iters {
                    stream(url, STREAM_RECORDS).await;
                }
                started.elapsed()
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("cluster_produce_unary_64");
    group.throughput(Throughput::Elements(UNARY_RECORDS)).sample_size(10);
    for (name, url) in targets {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&runtime).iter_custom(|iters| async move {
                let started = Instant::now();
                for _ in 0..iters {
                    unary(url, UNARY_RECORDS).await;
                }
                started.elapsed()
            });
        });
    }
    group.finish();
    drop(three);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(2));
    targets = produce
}
criterion_main!(benches);
