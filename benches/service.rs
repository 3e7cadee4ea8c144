//! End-to-end benches of the gRPC service over loopback: unary Produce, ProduceStream and
//! ConsumeStream throughput of 100-byte records, against an in-process server (`server::run` on
//! 127.0.0.1:0) over the disk log under `--fsync never` and `always`, with the in-memory log as
//! the ceiling the transport allows. Run with `make bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use girok::client::Client;
use girok::logs::{Logs, LogsConfig};
use girok::server::{self, ServerConfig};
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy, MemoryLog};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Records per ProduceStream / ConsumeStream iteration.
const STREAM_RECORDS: u64 = 10_000;

/// A server on its own port, stopped on drop.
struct Bench {
    url: String,
    log: Arc<dyn CommitLog>,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn logs() -> Vec<(&'static str, Option<FsyncPolicy>)> {
    vec![
        ("memory", None),
        ("disk_never", Some(FsyncPolicy::Never)),
        ("disk_always", Some(FsyncPolicy::Always)),
    ]
}

fn start(rt: &Runtime, fsync: Option<FsyncPolicy>) -> Bench {
    let (log, dir): (Arc<dyn CommitLog>, _) = match fsync {
        None => (Arc::new(MemoryLog::default()), None),
        Some(fsync) => {
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
            let config = DiskConfig { fsync, ..DiskConfig::default() };
            (Arc::new(DiskLog::open(dir.path(), config).expect("open")), Some(dir))
        }
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let logs = Arc::new(Logs::serving(Arc::clone(&log), LogsConfig::default()));
    rt.spawn(server::run(listener, logs, ServerConfig::default(), async {
        let _ = stopped.await;
    }));
    Bench { url, log, _dir: dir, stop: Some(stop) }
}

fn value() -> Bytes {
    Bytes::from(vec![0x5a; 100])
}

fn produce_unary(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("grpc_produce_unary");
    group.throughput(Throughput::Elements(1));
    for (name, fsync) in logs() {
        let bench = start(&rt, fsync);
        let client = rt.block_on(Client::connect(bench.url.clone())).expect("connect");
        group.bench_function(BenchmarkId::new(name, "100B"), |b| {
            b.to_async(&rt).iter(|| {
                let mut client = client.clone();
                async move { client.produce(value()).await.expect("produce") }
            })
        });
    }
    group.finish();
}

fn produce_stream(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("grpc_produce_stream");
    group.throughput(Throughput::Elements(STREAM_RECORDS));
    for (name, fsync) in logs() {
        let bench = start(&rt, fsync);
        let client = rt.block_on(Client::connect(bench.url.clone())).expect("connect");
        group.bench_function(BenchmarkId::new(name, "100B"), |b| {
            b.to_async(&rt).iter(|| {
                let mut client = client.clone();
                async move {
                    let values = tokio_stream::iter((0..STREAM_RECORDS).map(|_| value()));
                    let mut acks = client.produce_stream(values).await.expect("stream");
                    let mut n = 0;
                    while acks.next().await.expect("ack").is_some() {
                        n += 1;
                    }
                    assert_eq!(n, STREAM_RECORDS);
                }
            })
        });
    }
    group.finish();
}

fn consume_stream(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("grpc_consume_stream");
    group.throughput(Throughput::Elements(STREAM_RECORDS));
    for (name, fsync) in logs() {
        let bench = start(&rt, fsync);
        let values = vec![value(); 1000];
        while bench.log.next_offset() < STREAM_RECORDS * 10 {
            bench.log.append_batch(&values).expect("fill");
        }
        let client = rt.block_on(Client::connect(bench.url.clone())).expect("connect");
        let mut from = 0;
        group.bench_function(BenchmarkId::new(name, "100B"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let offset = from;
                    from = (from + STREAM_RECORDS) % (STREAM_RECORDS * 9);
                    let mut client = client.clone();
                    rt.block_on(async move {
                        let mut records = client.consume_stream(offset).await.expect("tail");
                        for _ in 0..STREAM_RECORDS {
                            records.next().await.expect("record").expect("open");
                        }
                    });
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = produce_unary, produce_stream, consume_stream
}
criterion_main!(benches);
