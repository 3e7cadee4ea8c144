//! Recovery bench: how long `DiskLog::open` takes on a log of a few GiB, after a clean stop and
//! after a crash, and a one-line summary of both medians. Run with `make bench`; size the log with
//! `GIROK_BENCH_RECOVERY_BYTES` (human units, default `2GiB`).
//!
//! The log is built once per run: 1 KiB records in batches, default 128 MiB segments, under
//! `FsyncPolicy::Never` (building is not what is measured), then closed. Every measured open
//! uses the default `DiskConfig` (`FsyncPolicy::Always`), as `girok-server` does.
//!
//! - **clean**: each iteration opens the cleanly closed log (timed), then closes it (not timed).
//! - **crash**: each iteration opens a crashed log (timed), then appends a few records to it and
//!   drops it without `close()` (not timed): a faithful kill -9, whose written data the page cache
//!   keeps. So every timed open finds what a killed `always` server leaves: an active segment
//!   whose index was never trimmed, and whose store runs on past its last frame into zeros
//!   preallocated ahead of it, which recovery must scan and cut. Before each crash open the bench
//!   checks (untimed) that the active index is indeed untrimmed, and after it that the records of
//!   the crash survived.
//!
//! Both cases read a log the page cache holds whole (it was just written): this measures
//! recovery's work, not cold reads from the disk.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use girok::storage::disk::index::INDEX_ENTRY_BYTES;
use girok::storage::disk::store::FRAME_HEADER_BYTES;
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy};
use girok::units::parse_size;

const RECORD_BYTES: usize = 1024;
const BATCH: usize = 256;
/// Records appended before each simulated crash.
const CRASH_RECORDS: usize = 4;
const DEFAULT_BYTES: &str = "2GiB";
/// The log's size when criterion runs the bench as a test (`cargo test --benches`): big enough
/// to have sealed segments, small enough not to cost a test run gigabytes of disk.
const TEST_MODE_BYTES: u64 = 300 * 1024 * 1024;

/// Whether criterion will measure (`cargo bench`), rather than run each bench once as a test or
/// list them.
fn benchmarking() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test" || a == "--list")
}

fn target_bytes() -> u64 {
    match std::env::var("GIROK_BENCH_RECOVERY_BYTES") {
        Ok(text) => {
            parse_size(&text).unwrap_or_else(|err| panic!("GIROK_BENCH_RECOVERY_BYTES: {err}"))
        }
        Err(_) if benchmarking() => parse_size(DEFAULT_BYTES).expect("a valid default"),
        Err(_) => TEST_MODE_BYTES,
    }
}

/// Where the log is built: `GIROK_BENCH_DIR`, else `TMPDIR` when set, else the working tree's
/// `target/tmp`. Not plain `/tmp`: on many systems it is a tmpfs, which would hold gigabytes of
/// RAM and measure memory rather than the filesystem the log is meant for.
fn parent_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GIROK_BENCH_DIR") {
        return dir.into();
    }
    if std::env::var_os("TMPDIR").is_some() {
        return std::env::temp_dir();
    }
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Free bytes on the filesystem holding `dir`, from `df` (its POSIX output), or `None` when `df`
/// cannot tell. Asked before building so that a big log never fills a shared disk.
fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

fn check_room(dir: &Path, bytes: u64) {
    // The stores, their sealed indexes (12 B per 1 KiB record), the active index and slack.
    let needed = bytes + bytes / 64 + (1 << 30);
    match free_bytes(dir) {
        Some(free) if free < needed => panic!(
            "{} has {} free; a {} log needs about {}: set GIROK_BENCH_DIR or a smaller \
             GIROK_BENCH_RECOVERY_BYTES",
            dir.display(),
            gib(free),
            gib(bytes),
            gib(needed)
        ),
        Some(_) => {}
        None => eprintln!("recovery: df could not tell the free space of {}", dir.display()),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1 << 30))
}

/// Writes `bytes` of 1 KiB records (frames included) into a new log in `dir`, and closes it.
fn build(dir: &Path, bytes: u64) {
    let config = DiskConfig { fsync: FsyncPolicy::Never, ..DiskConfig::default() };
    let log = DiskLog::open(dir, config).expect("open a new log");
    let values = vec![Bytes::from(vec![0x5a; RECORD_BYTES]); BATCH];
    let records = bytes.div_ceil(FRAME_HEADER_BYTES + RECORD_BYTES as u64);
    while log.next_offset() < records {
        log.append_batch(&values).expect("append");
    }
    log.close().expect("close");
}

/// The segment files of `dir` with extension `ext`, sorted by base offset (their zero-padded
/// names sort as numbers).
fn segment_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list the log")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// Whether the active (last) segment's index still runs past its entries (it ends in a zeroed,
/// unused entry): a crash leaves it so, `close()` trims it to its entries.
fn active_index_untrimmed(dir: &Path) -> bool {
    let last = segment_files(dir, "index").pop().expect("an index");
    let bytes = std::fs::read(last).expect("read the index");
    let entry = INDEX_ENTRY_BYTES as usize;
    bytes.len() >= entry && bytes[bytes.len() - entry..].iter().all(|&b| b == 0)
}

fn open(dir: &Path) -> (DiskLog, Duration) {
    let start = Instant::now();
    let log = DiskLog::open(dir, DiskConfig::default()).expect("open");
    (log, start.elapsed())
}

/// Appends a few records and drops the log without closing it: a crash. Returns the offset the
/// log must reopen at (the records were synced, so they survive).
fn crash(log: DiskLog, values: &[Bytes]) -> u64 {
    let end = log.append_batch(values).expect("append before the crash").end;
    drop(log);
    end
}

fn median(times: &[Duration]) -> Duration {
    let mut times = times.to_vec();
    times.sort();
    times[times.len() / 2]
}

fn recovery(c: &mut Criterion) {
    let bytes = target_bytes();
    let parent = parent_dir();
    check_room(&parent, bytes);
    let dir = tempfile::tempdir_in(&parent).expect("a temporary directory for the bench");
    eprintln!("recovery: building a {} log in {}", gib(bytes), dir.path().display());
    let started = Instant::now();
    build(dir.path(), bytes);
    let stores = segment_files(dir.path(), "store");
    let store_bytes: u64 =
        stores.iter().map(|p| std::fs::metadata(p).expect("store metadata").len()).sum();
    eprintln!("recovery: built in {:.1} s", started.elapsed().as_secs_f64());

    let mut group = c.benchmark_group("recovery");
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    // Every open criterion times, warm-up included, for the summary.
    let clean = RefCell::new(Vec::new());
    let crashed = RefCell::new(Vec::new());

    group.bench_function("open_after_clean_stop", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let (log, took) = open(dir.path());
                log.close().expect("close");
                clean.borrow_mut().push(took);
                timed += took;
            }
            timed
        })
    });

    let few = vec![Bytes::from(vec![0xa5; RECORD_BYTES]); CRASH_RECORDS];
    let (log, _) = open(dir.path());
    let mut expected = crash(log, &few);
    group.bench_function("open_after_crash", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                assert!(active_index_untrimmed(dir.path()), "the log to open did not crash");
                let (log, took) = open(dir.path());
                assert_eq!(log.next_offset(), expected, "records of the crash lost");
                expected = crash(log, &few);
                crashed.borrow_mut().push(took);
                timed += took;
            }
            timed
        })
    });
    group.finish();

    let (clean, crashed) = (clean.into_inner(), crashed.into_inner());
    if !clean.is_empty() && !crashed.is_empty() {
        println!(
            "recovery: {} in {} segments: median open {:.1} ms after a clean stop ({} opens), \
             {:.1} ms after a crash ({} opens)",
            gib(store_bytes),
            stores.len(),
            median(&clean).as_secs_f64() * 1e3,
            clean.len(),
            median(&crashed).as_secs_f64() * 1e3,
            crashed.len()
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = recovery
}
criterion_main!(benches);
