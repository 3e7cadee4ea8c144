//! How long a segment roll holds up readers under `--fsync never`: one writer appends 1 KiB
//! records in batches through four 64 MiB segment rolls while a reader reads in a loop; the
//! bench prints the worst single-read and single-append latency of each run and their medians.
//! A roll seals the old segment (syncing up to a whole segment of unsynced data), so this is
//! the tail latency a `never` deployment sees. Run with `make bench`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy};

const RUNS: usize = 5;

/// One run: (worst append, worst read).
fn run() -> (Duration, Duration) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let config = DiskConfig {
        fsync: FsyncPolicy::Never,
        max_store_bytes: 64 << 20,
        ..DiskConfig::default()
    };
    let log = Arc::new(DiskLog::open(dir.path(), config).expect("open"));
    let values = vec![Bytes::from(vec![1u8; 1000]); 200];
    log.append_batch(&values).expect("append");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            let mut offset = 0;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                log.read(offset % 200).expect("read");
                worst = worst.max(started.elapsed());
                offset += 1;
            }
            worst
        })
    };
    let mut worst_append = Duration::ZERO;
    while log.segment_count() < 5 {
        let started = Instant::now();
        log.append_batch(&values).expect("append");
        worst_append = worst_append.max(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    (worst_append, reader.join().expect("reader"))
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench targets without `--bench`: do nothing then.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let (appends, reads): (Vec<_>, Vec<_>) = (0..RUNS).map(|_| run()).unzip();
    println!("roll_stall/never/64MiB: worst append per run {appends:?}");
    println!("roll_stall/never/64MiB: worst read per run {reads:?}");
    println!(
        "roll_stall/never/64MiB: median worst append {:?}, median worst read {:?}",
        median(appends),
        median(reads)
    );
}
