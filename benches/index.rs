//! Index benches, below the log: `Index::set` of a whole default-sized segment's entries into a
//! freshly created index (page faults of a new mapping included) and into one already touched;
//! `Index::position` lookups in order and at random; and `Index::rewrite` of 300 000 entries (a
//! sealed segment's index rebuilt on open), whose final `fsync` is part of the cost. Throughput is
//! in entries. Run with `make bench`.
//!
//! The index files live in a temporary directory on the same filesystem as the working tree (set
//! `GIROK_BENCH_DIR` to choose another), and are all deleted at the end.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use girok::storage::DiskConfig;
use girok::storage::disk::index::{INDEX_ENTRY_BYTES, Index};
use girok::storage::disk::store::{FRAME_HEADER_BYTES, STORE_HEADER_BYTES};

/// Entries set per iteration: what a default `max_index_bytes` holds (about 1.4 M).
fn segment_entries() -> u64 {
    DiskConfig::default().max_index_bytes / INDEX_ENTRY_BYTES
}

/// Entries rewritten per iteration: a sealed segment of a few hundred thousand records (a full
/// 128 MiB segment of ~300 B records).
const REWRITE_ENTRIES: u64 = 300_000;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("GIROK_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")),
    }
    .expect("a temporary directory for the bench")
}

/// The store position of entry `i` in a segment of 100 B records.
fn position(i: u64) -> u64 {
    STORE_HEADER_BYTES + i * (FRAME_HEADER_BYTES + 100)
}

fn set(c: &mut Criterion) {
    let dir = bench_dir();
    let path = dir.path().join("set.index");
    let entries = segment_entries();
    let mut group = c.benchmark_group("index_set");
    group.throughput(Throughput::Elements(entries));

    // A new segment's index: creating (and allocating) it is not timed, touching its pages is.
    group.bench_function("fresh", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let mut index = Index::create(&path, entries).expect("create index");
                let start = Instant::now();
                for i in 0..entries {
                    index.set(i, position(i));
                }
                timed += start.elapsed();
            }
            timed
        })
    });

    let mut index = Index::create(&path, entries).expect("create index");
    group.bench_function("touched", |b| {
        b.iter(|| {
            for i in 0..entries {
                index.set(black_box(i), position(i));
            }
        })
    });
    drop(index);
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let dir = bench_dir();
    let entries = segment_entries();
    let mut index = Index::create(&dir.path().join("lookup.index"), entries).expect("create");
    for i in 0..entries {
        index.set(i, position(i));
    }
    let mut group = c.benchmark_group("index_position");
    group.throughput(Throughput::Elements(1));

    let mut next = 0;
    group.bench_function("sequential", |b| {
        b.iter(|| {
            next = (next + 1) % entries;
            index.position(next).expect("a set entry")
        })
    });

    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    group.bench_function("random", |b| {
        b.iter(|| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            index.position(state % entries).expect("a set entry")
        })
    });
    group.finish();
}

fn rewrite(c: &mut Criterion) {
    let dir = bench_dir();
    let path = dir.path().join("rewrite.index");
    let positions: Vec<u64> = (0..REWRITE_ENTRIES).map(position).collect();
    let mut group = c.benchmark_group("index_rewrite");
    group.throughput(Throughput::Elements(REWRITE_ENTRIES));
    // Each iteration ends in an fsync: a few samples are enough and keep the disk calm.
    group.sample_size(10);
    group.bench_function("300k", |b| {
        b.iter(|| Index::rewrite(&path, black_box(&positions)).expect("rewrite"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = set, lookup, rewrite
}
criterion_main!(benches);
