//! Store benches, below the log: encoding frames (`encode_frame`, with and without the payload
//! CRC the log computes before taking its lock), decoding and checking them (`decode_frame`), for
//! 100 B, 1 KiB and 64 KiB values; `Store::append` of a batch of encoded frames to a real file,
//! growing with each write (`never`, `interval`) or zero-filled ahead (`always`); and
//! `Store::read` of single frames, in order and at random. Throughput is in bytes of value (codec)
//! or of frames (file). Run with `make bench`.
//!
//! The store files live in a temporary directory on the same filesystem as the working tree (set
//! `GIROK_BENCH_DIR` to choose another), and are all deleted at the end.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use girok::storage::disk::fs::OsFiles;
use girok::storage::disk::store::{
    FRAME_HEADER_BYTES, STORE_HEADER_BYTES, Store, decode_frame, encode_frame,
};

const SIZES: [(usize, &str); 3] = [(100, "100B"), (1024, "1KiB"), (64 * 1024, "64KiB")];
/// Frames per appended batch for each size: about 100 KiB to 1 MiB, as in the log benches.
const BATCH: [usize; 3] = [1000, 256, 16];
/// A store being appended to is cut back to its header past this size, so the bench neither
/// fills the disk nor waits on write-back of data nobody reads.
const MAX_STORE_BYTES: u64 = 64 * 1024 * 1024;
/// The zero-fill limit of a store under the `always` policy (the log's default segment size).
const FILL_LIMIT: u64 = 128 * 1024 * 1024;
const TIMESTAMP_MS: u64 = 1_700_000_000_000;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("GIROK_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")),
    }
    .expect("a temporary directory for the bench")
}

fn value(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

/// One encoded frame holding `value` at `offset`.
fn frame(offset: u64, value: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(FRAME_HEADER_BYTES as usize + value.len());
    encode_frame(&mut buf, offset, TIMESTAMP_MS, value, crc32c::crc32c(value));
    Bytes::from(buf)
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for (size, label) in SIZES {
        let value = value(size);
        let crc = crc32c::crc32c(&value);
        let mut buf = Vec::with_capacity(FRAME_HEADER_BYTES as usize + size);
        group.throughput(Throughput::Bytes(size as u64));

        // What the log does under its lock: the payload CRC is already known.
        group.bench_function(BenchmarkId::new("encode", label), |b| {
            b.iter(|| {
                buf.clear();
                encode_frame(&mut buf, black_box(42), TIMESTAMP_MS, black_box(&value), crc);
            })
        });
        // The whole per-record cost of encoding, payload CRC included.
        group.bench_function(BenchmarkId::new("crc_and_encode", label), |b| {
            b.iter(|| {
                buf.clear();
                let crc = crc32c::crc32c(black_box(&value));
                encode_frame(&mut buf, black_box(42), TIMESTAMP_MS, &value, crc);
            })
        });

        let encoded = frame(42, &value);
        group.bench_function(BenchmarkId::new("decode_and_check", label), |b| {
            b.iter(|| decode_frame(black_box(&encoded), 42).expect("a valid frame"))
        });
    }
    group.finish();
}

/// A batch of `count` encoded frames of `size`-byte values, as one buffer.
fn batch(size: usize, count: usize) -> Vec<u8> {
    let value = value(size);
    let mut buf = Vec::new();
    for offset in 0..count as u64 {
        encode_frame(&mut buf, offset, TIMESTAMP_MS, &value, crc32c::crc32c(&value));
    }
    buf
}

fn append(c: &mut Criterion) {
    let dir = bench_dir();
    let mut group = c.benchmark_group("store_append");
    for (mode, fill) in [("grow", false), ("preallocated", true)] {
        for ((size, label), count) in SIZES.into_iter().zip(BATCH) {
            let path = dir.path().join(format!("{mode}-{label}.store"));
            let mut store = Store::create(&OsFiles, &path, 0).expect("create store");
            let frames = batch(size, count);
            group.throughput(Throughput::Bytes(frames.len() as u64));
            group.bench_function(BenchmarkId::new(mode, format!("{label}x{count}")), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        // Cutting syncs the file: keep it out of the measured time.
                        if store.size() + frames.len() as u64 > MAX_STORE_BYTES {
                            store.cut(STORE_HEADER_BYTES).expect("cut store");
                        }
                        let start = Instant::now();
                        store.append(&frames).expect("append");
                        if fill {
                            store.fill_ahead(FILL_LIMIT);
                        }
                        timed += start.elapsed();
                    }
                    timed
                })
            });
            drop(store);
            std::fs::remove_file(&path).expect("remove store");
        }
    }
    group.finish();
}

/// A store at `path` filled with about `bytes` of frames of `size`-byte values; returns it
/// and the frame count.
fn filled(path: &Path, size: usize, bytes: u64) -> (Store, u64) {
    let mut store = Store::create(&OsFiles, path, 0).expect("create store");
    let per_batch = (1 << 20) / size + 1;
    let frames = batch(size, per_batch);
    let frame_len = FRAME_HEADER_BYTES + size as u64;
    let mut count = 0;
    while count * frame_len < bytes {
        store.append(&frames).expect("fill");
        count += per_batch as u64;
    }
    (store, count)
}

fn read(c: &mut Criterion) {
    let dir = bench_dir();
    let mut group = c.benchmark_group("store_read");
    for (size, label) in SIZES {
        let path = dir.path().join(format!("read-{label}.store"));
        let (store, count) = filled(&path, size, 32 * 1024 * 1024);
        let frame_len = FRAME_HEADER_BYTES + size as u64;
        let at = |i: u64| STORE_HEADER_BYTES + i * frame_len;
        group.throughput(Throughput::Bytes(frame_len));

        let mut next = 0;
        group.bench_function(BenchmarkId::new("sequential", label), |b| {
            b.iter(|| {
                next = (next + 1) % count;
                store.read(at(next), frame_len).expect("read")
            })
        });

        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        group.bench_function(BenchmarkId::new("random", label), |b| {
            b.iter(|| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                store.read(at(state % count), frame_len).expect("read")
            })
        });
        drop(store);
        std::fs::remove_file(&path).expect("remove store");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = codec, append, read
}
criterion_main!(benches);
