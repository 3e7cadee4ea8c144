//! Named-log benches: whether appends to different logs run in parallel (4 writers appending
//! single 100 B records to one shared log, or each to a log of its own, under `never` and
//! `always`), and what finding a log by name costs among 10,000. Run with
//! `cargo bench --bench logs`; the README quotes them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
#[path = "common/mod.rs"]
mod common;

use common::bench_dir;
use girok::logs::{LogEntry, LogSettings, Logs, LogsConfig};
use girok::storage::{DiskConfig, FsyncPolicy, LogConfig};

const WRITERS: usize = 4;

fn registry(dir: &tempfile::TempDir, fsync: FsyncPolicy) -> Logs {
    let disk = DiskConfig { fsync, ..DiskConfig::default() };
    Logs::open(dir.path(), disk, LogsConfig::default()).expect("open registry")
}

/// Appends from `WRITERS` threads, writer `w` to `targets[w % targets.len()]`.
fn appends_from_writers(c: &mut Criterion) {
    let mut group = c.benchmark_group("appends_4_writers");
    group.throughput(Throughput::Elements(1));
    let value = Bytes::from(vec![0x5a; 100]);
    for (fsync, policy) in [(FsyncPolicy::Never, "never"), (FsyncPolicy::Always, "always")] {
        for (logs_used, label) in [(1, "one_log"), (WRITERS, "a_log_each")] {
            let dir = bench_dir();
            let logs = registry(&dir, fsync);
            let targets: Vec<Arc<LogEntry>> = (0..logs_used)
                .map(|i| logs.create(&format!("log-{i}"), LogSettings::default()).expect("create"))
                .collect();
            group.bench_function(BenchmarkId::new(policy, label), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for w in 0..WRITERS {
                            let (target, value) = (&targets[w % targets.len()], &value);
                            s.spawn(move || {
                                for _ in (w as u64..iters).step_by(WRITERS) {
                                    target.log().append(value.clone()).expect("append");
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

/// `Logs::get` of a name among 10,000 logs: what every request pays to find its log.
fn lookup(c: &mut Criterion) {
    let config = LogsConfig { max_logs: 10_001, ..LogsConfig::default() };
    let logs = Logs::in_memory(LogConfig::default(), config);
    let names: Vec<String> = (0..10_000).map(|i| format!("tenant-{i:05}.events")).collect();
    for name in &names {
        logs.create(name, LogSettings::default()).expect("create");
    }
    let mut i = 0;
    c.bench_function("lookup_among_10000", |b| {
        b.iter(|| {
            i = (i + 7919) % names.len();
            logs.get(&names[i]).expect("found")
        })
    });
}

criterion_group! {
    name = benches;
    config = common::criterion(Duration::from_secs(3));
    targets = appends_from_writers, lookup
}
criterion_main!(benches);
