//! Storage benches: appends of 100 B, 1 KiB and 64 KiB records, single and batched, under the
//! `never` and `always` fsync policies (plus batches from 4 and 8 concurrent writers, which share
//! syncs under `always`: group commit), and sequential and random reads. Run with `make bench`; the README quotes them.
//!
//! The logs live in a temporary directory on the same filesystem as the working tree (set
//! `GIROK_BENCH_DIR` to choose another), with production-sized segments.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
#[path = "common/mod.rs"]
mod common;

use common::bench_dir;
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy};

const SIZES: [(usize, &str); 3] = [(100, "100B"), (1024, "1KiB"), (64 * 1024, "64KiB")];
/// Records per batch for each size: about 100 KiB to 1 MiB per batch.
const BATCH: [usize; 3] = [1000, 256, 16];
/// Appends keep at most this much data on disk: older segments are truncated as the bench runs.
const KEEP_BYTES: u64 = 512 * 1024 * 1024;

fn open(dir: &tempfile::TempDir, fsync: FsyncPolicy) -> DiskLog {
    DiskLog::open(dir.path(), DiskConfig { fsync, ..DiskConfig::default() }).expect("open log")
}

fn policies() -> [(FsyncPolicy, &'static str); 2] {
    [(FsyncPolicy::Never, "never"), (FsyncPolicy::Always, "always")]
}

/// Drops whole segments once the log holds more than `KEEP_BYTES` of `size`-byte records.
fn trim(log: &DiskLog, size: usize) {
    let keep = KEEP_BYTES / (size as u64 + 24);
    let next = log.next_offset();
    if next - log.lowest_offset() > 2 * keep {
        log.truncate(next - keep).expect("truncate");
    }
}

fn append_single(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_single");
    group.throughput(Throughput::Elements(1));
    for (fsync, name) in policies() {
        for (size, label) in SIZES {
            let dir = bench_dir();
            let log = open(&dir, fsync);
            let value = Bytes::from(vec![0x5a; size]);
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    log.append(value.clone()).expect("append");
                    trim(&log, size);
                })
            });
        }
    }
    group.finish();
}

fn append_batched(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_batch");
    for (fsync, name) in policies() {
        for ((size, label), batch) in SIZES.into_iter().zip(BATCH) {
            let dir = bench_dir();
            let log = open(&dir, fsync);
            let values = vec![Bytes::from(vec![0x5a; size]); batch];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    log.append_batch(&values).expect("append");
                    trim(&log, size);
                })
            });
        }
    }
    group.finish();
}

/// Several writers appending batches at once: under `always` they share syncs (group commit).
fn append_batched_concurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_batch_concurrent");
    let (size, batch) = (100, 1000);
    for (fsync, name) in policies() {
        for writers in [4u64, 8] {
            let dir = bench_dir();
            let log = open(&dir, fsync);
            let values = vec![Bytes::from(vec![0x5a; size]); batch];
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(BenchmarkId::new(name, format!("100B/{writers}_writers")), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for w in 0..writers {
                            let (log, values) = (&log, &values);
                            s.spawn(move || {
                                for _ in (w..iters).step_by(writers as usize) {
                                    log.append_batch(values).expect("append");
                                }
                            });
                        }
                    });
                    let elapsed = start.elapsed();
                    trim(&log, size);
                    elapsed
                })
            });
        }
    }
    group.finish();
}

/// A log of `count` records of `size` bytes, for the read benches.
fn filled(dir: &tempfile::TempDir, count: u64, size: usize) -> DiskLog {
    let log = open(dir, FsyncPolicy::Never);
    let values = vec![Bytes::from(vec![0x5a; size]); 1000];
    while log.next_offset() < count {
        log.append_batch(&values).expect("fill");
    }
    log
}

fn reads(c: &mut Criterion) {
    const RECORDS: u64 = 1_000_000;
    let dir = bench_dir();
    let log = filled(&dir, RECORDS, 100);
    let mut group = c.benchmark_group("read");

    group.throughput(Throughput::Elements(1000));
    let mut next = 0;
    group.bench_function("sequential_batch/100B", |b| {
        b.iter(|| {
            let mut got = 0;
            while got < 1000 {
                if next >= RECORDS {
                    next = 0;
                }
                let records = log.read_batch(next, 1000 - got, 1 << 20).expect("read");
                got += records.len();
                next += records.len() as u64;
            }
        })
    });

    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function("sequential_single/100B", |b| {
        b.iter(|| {
            next = (next + 1) % RECORDS;
            log.read(next).expect("read")
        })
    });

    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    group.bench_function("random_single/100B", |b| {
        b.iter(|| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            log.read(state % RECORDS).expect("read")
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(Duration::from_secs(3));
    targets = append_single, append_batched, append_batched_concurrent, reads
}
criterion_main!(benches);
