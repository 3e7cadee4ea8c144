//! End-to-end benches of the gRPC service over loopback: unary Produce, ProduceStream and
//! ConsumeStream throughput of 100-byte records, against an in-process server (`server::run` on
//! 127.0.0.1:0) over the disk log under `--fsync never` and `always`, with the in-memory log as
//! the ceiling the transport allows. Run with `make bench`.
//!
//! The `overhead_*` groups measure what the router's metrics and the per-call span cost (there is
//! no switch that turns them off): `overhead_call` and `overhead_messages` run the router's
//! per-call work alone (`Metrics::instrument_call` over in-memory bodies) beside the same bodies
//! passed through bare, and `overhead_grpc_*` run whole calls against the in-memory log with no
//! tracing subscriber, and with a `fmt` subscriber (to a sink) at `warn` and at `info` (where
//! every call's span is recorded). `cargo bench --bench service -- overhead` runs only those.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use girok::client::Client;
use girok::logs::{Logs, LogsConfig};
use girok::server::{self, Metrics, ServerConfig};
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy, MemoryLog};
use http_body::{Body, Frame};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tonic::codegen::http;
use tracing::Dispatch;

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

/// The tracing set-ups the overhead benches compare: none, and a `fmt` subscriber writing to a
/// sink at `warn` (spans disabled) and at `info` (each call's span recorded).
fn subscribers() -> Vec<(&'static str, Dispatch)> {
    let fmt = |level| {
        let subscriber =
            tracing_subscriber::fmt().with_writer(std::io::sink).with_max_level(level).finish();
        Dispatch::new(subscriber)
    };
    vec![
        ("no_subscriber", Dispatch::none()),
        ("fmt_warn", fmt(tracing::Level::WARN)),
        ("fmt_info", fmt(tracing::Level::INFO)),
    ]
}

/// A body that yields the frames it was given, always ready.
struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(Ok))
    }
}

/// `messages` gRPC messages of 110 bytes (about a Produce of a 100-byte record), one per frame,
/// then, when `status` is set, the trailers of an OK call.
fn frames(messages: usize, status: bool) -> Frames {
    let mut message = vec![0u8, 0, 0, 0, 110];
    message.resize(5 + 110, 0x5a);
    let message = Bytes::from(message);
    let mut frames: VecDeque<_> = (0..messages).map(|_| Frame::data(message.clone())).collect();
    if status {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        frames.push_back(Frame::trailers(trailers));
    }
    Frames(frames)
}

/// Polls `body` to its end; returns its frames.
fn drain(body: impl Body) -> usize {
    let mut body = pin!(body);
    let mut cx = Context::from_waker(Waker::noop());
    let mut count = 0;
    loop {
        match body.as_mut().poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(_))) => count += 1,
            Poll::Ready(None) => return count,
            Poll::Ready(Some(Err(_))) | Poll::Pending => panic!("an in-memory body fails or waits"),
        }
    }
}

/// One call's request and response bodies, passed through bare or through the router's
/// metrics and span.
fn one_call(metrics: Option<&Metrics>, path: &str, requests: usize, responses: usize) -> usize {
    let response = http::Response::new(tonic::body::Body::new(frames(responses, true)));
    let request = frames(requests, false);
    match metrics {
        None => drain(request) + drain(response.into_body()),
        Some(metrics) => {
            let peer = Some(SocketAddr::from(([127, 0, 0, 1], 50_000)));
            let (request, response) = metrics.instrument_call(path, peer, request, response);
            drain(request) + drain(response.into_body())
        }
    }
}

fn overhead_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("overhead_call");
    group.throughput(Throughput::Elements(1));
    let metrics = Metrics::default();
    group.bench_function(BenchmarkId::new("bare_bodies", "unary"), |b| {
        b.iter(|| one_call(None, "/log.v1.Log/Produce", 1, 1))
    });
    for (name, dispatch) in subscribers() {
        tracing::dispatcher::with_default(&dispatch, || {
            group.bench_function(BenchmarkId::new(format!("metrics_{name}"), "unary"), |b| {
                b.iter(|| one_call(Some(&metrics), "/log.v1.Log/Produce", 1, 1))
            });
        });
    }
    group.finish();
}

fn overhead_messages(c: &mut Criterion) {
    let mut group = c.benchmark_group("overhead_messages");
    group.throughput(Throughput::Elements(STREAM_RECORDS));
    let metrics = Metrics::default();
    let messages = STREAM_RECORDS as usize;
    let path = "/log.v1.Log/ConsumeStream";
    group.bench_function(BenchmarkId::new("bare_bodies", "stream"), |b| {
        b.iter(|| one_call(None, path, 1, messages))
    });
    for (name, dispatch) in subscribers() {
        tracing::dispatcher::with_default(&dispatch, || {
            group.bench_function(BenchmarkId::new(format!("metrics_{name}"), "stream"), |b| {
                b.iter(|| one_call(Some(&metrics), path, 1, messages))
            });
        });
    }
    group.finish();
}

/// A runtime whose threads, and the bench's own, trace to `dispatch`.
fn traced_runtime(dispatch: &Dispatch) -> Runtime {
    let each = dispatch.clone();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            // The threads live as long as the runtime; so does their default.
            std::mem::forget(tracing::dispatcher::set_default(&each));
        })
        .build()
        .expect("runtime")
}

fn overhead_grpc(c: &mut Criterion) {
    for stream in [false, true] {
        let mut group = c.benchmark_group(if stream {
            "overhead_grpc_produce_stream"
        } else {
            "overhead_grpc_produce_unary"
        });
        group.throughput(Throughput::Elements(if stream { STREAM_RECORDS } else { 1 }));
        for (name, dispatch) in subscribers() {
            // A server each, so that the in-memory log one run fills is freed before the next.
            let rt = traced_runtime(&dispatch);
            let bench = start(&rt, None);
            let client = rt.block_on(Client::connect(bench.url.clone())).expect("connect");
            tracing::dispatcher::with_default(&dispatch, || {
                group.bench_function(BenchmarkId::new(name, "memory_100B"), |b| {
                    b.to_async(&rt).iter(|| {
                        let mut client = client.clone();
                        async move {
                            if !stream {
                                client.produce(value()).await.expect("produce");
                                return;
                            }
                            let values = tokio_stream::iter((0..STREAM_RECORDS).map(|_| value()));
                            let mut acks = client.produce_stream(values).await.expect("stream");
                            while acks.next().await.expect("ack").is_some() {}
                        }
                    })
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = produce_unary, produce_stream, consume_stream, overhead_call, overhead_messages,
        overhead_grpc
}
criterion_main!(benches);
