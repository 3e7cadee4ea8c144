//! Many logs in one process, as the server's named logs hold them: disk logs opened in one
//! [`DiskGroup`]. An idle log costs little disk (an active index that starts at 64 KiB, zeros
//! written ahead only as its store fills) and one descriptor (its active store); the group's
//! interval logs share one syncer thread and its logs one bounded cache of sealed files; appends
//! to different logs do not wait on each other.
//!
//! The tests count the process's descriptors and threads, so they run one at a time (`SERIAL`):
//! with every test of this binary waiting on it, no other test starts or ends mid-count.
//! Run with `--nocapture` to see the measured figures.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::storage::{FaultyFiles, fds_into};
use girok::storage::{CommitLog, DiskConfig, DiskGroup, DiskLog, FsyncPolicy};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir).expect("list /proc").count()
}

/// The process's syncer threads, by name: the test harness's own threads come and go as other
/// tests start and finish, so a plain thread count is not a measure.
fn syncer_threads() -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("list /proc/self/task");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "girok-syncer")
        .count()
}

fn open_all(root: &Path, names: &[String], config: &DiskConfig, group: &DiskGroup) -> Vec<DiskLog> {
    names
        .iter()
        .map(|name| DiskLog::open_in(root.join(name), config.clone(), group).expect("open log"))
        .collect()
}

const MIB: f64 = 1024.0 * 1024.0;

#[test]
fn a_thousand_idle_logs_take_little_disk_and_one_descriptor_each() {
    // 1,000 logs under `always`, each holding a few records, take well under 1 GiB of disk
    // (about 128 KiB each: a 64 KiB index and 64 KiB of zeros ahead of the store), hold one
    // descriptor each, and open again quickly after a crash.
    let _serial = serial();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    const LOGS: usize = 1000;
    let root = tempfile::tempdir().expect("temp dir");
    let names: Vec<String> = (0..LOGS).map(|i| format!("logs/log-{i:04}")).collect();
    let config = DiskConfig { fsync: FsyncPolicy::Always, ..DiskConfig::default() };
    let records = vec![Bytes::from_static(&[7u8; 100]); 3];
    let (fds_before, threads_before) = (count_entries("/proc/self/fd"), syncer_threads());

    let group = DiskGroup::new(64);
    let start = Instant::now();
    let logs = open_all(root.path(), &names, &config, &group);
    let opened = start.elapsed();
    for log in &logs {
        assert_eq!(log.append_batch(&records).expect("append"), 0..3);
    }
    let written = start.elapsed();
    let fds = fds_into(root.path());
    let live_disk = common::allocated_bytes(root.path());
    assert_eq!(fds, LOGS, "one descriptor per log, its active store");
    assert!(count_entries("/proc/self/fd") <= fds_before + LOGS + 8);
    assert_eq!(syncer_threads(), threads_before, "no thread for `always` logs");
    assert_eq!(logs[0].size_bytes(), 24 + 3 * (24 + 100));
    drop(logs);
    assert_eq!(fds_into(root.path()), 0, "dropped logs keep files open");

    let start = Instant::now();
    let logs = open_all(root.path(), &names, &config, &group);
    let reopened = start.elapsed();
    let reopened_disk = common::allocated_bytes(root.path());
    assert_eq!(fds_into(root.path()), LOGS);
    for log in &logs {
        assert_eq!(log.read_batch(0, 10, usize::MAX).expect("read back").len(), 3);
        assert_eq!(log.size_bytes(), 24 + 3 * (24 + 100));
    }
    println!(
        "{LOGS} logs, 3 records each, fsync always: opened (created) in {opened:.2?}, \
         written in {:.2?}, reopened after a crash in {reopened:.2?}; disk allocated {:.1} MiB \
         live, {:.1} MiB after the reopen; {fds} descriptors",
        written - opened,
        live_disk as f64 / MIB,
        reopened_disk as f64 / MIB,
    );
    assert!(live_disk < 1 << 30, "{live_disk} bytes allocated for {LOGS} idle logs");
    assert!(live_disk / LOGS as u64 <= 1 << 20, "more than 1 MiB per idle log");
    assert!(reopened_disk <= live_disk, "a reopen grew the logs to {reopened_disk} bytes");
    for log in &logs {
        log.close().expect("close");
    }
}

#[test]
fn interval_logs_of_a_group_share_one_syncer_thread() {
    // 50 logs under `interval` in one group add one thread, not 50; it goes with the group.
    let _serial = serial();
    let root = tempfile::tempdir().expect("temp dir");
    let names: Vec<String> = (0..50).map(|i| format!("log-{i}")).collect();
    let config = DiskConfig {
        fsync: FsyncPolicy::Interval(Duration::from_millis(10)),
        ..DiskConfig::default()
    };
    let before = syncer_threads();
    let group = DiskGroup::new(64);
    let logs = open_all(root.path(), &names, &config, &group);
    for log in &logs {
        log.append(Bytes::from_static(b"synced by the group")).expect("append");
    }
    let during = syncer_threads();
    println!("syncer threads: {before} before 50 interval logs, {during} with them");
    assert_eq!(during, before + 1, "one syncer thread for the group");
    drop(logs);
    drop(group);
    assert_eq!(syncer_threads(), before, "the syncer outlived its group");
}

#[test]
fn a_group_keeps_at_most_max_open_segments_sealed_segments_open_across_its_logs() {
    // Reads over three logs with many sealed segments each never leave more than the group's
    // bound open between them, whatever each log's own config says.
    let _serial = serial();
    let root = tempfile::tempdir().expect("temp dir");
    let config = DiskConfig {
        max_store_bytes: 24 + 2 * 40,
        fsync: FsyncPolicy::Never,
        max_open_segments: 1000,
        ..DiskConfig::default()
    };
    let group = DiskGroup::new(4);
    let names: Vec<String> = (0..3).map(|i| format!("log-{i}")).collect();
    let logs = open_all(root.path(), &names, &config, &group);
    for log in &logs {
        for _ in 0..40 {
            log.append(Bytes::from_static(&[5u8; 16])).expect("append");
        }
        assert_eq!(log.segment_count(), 20);
    }
    for offset in 0..40 {
        for log in &logs {
            assert_eq!(log.read(offset).expect("read").offset, offset);
            let open: usize = logs.iter().map(DiskLog::open_sealed_segments).sum();
            assert!(open <= 4, "{open} sealed segments open");
            assert_eq!(open, group.open_sealed_segments());
        }
    }
    assert_eq!(group.open_sealed_segments(), 4);
    assert!(fds_into(root.path()) <= 3 + 4, "active stores and the cache's stores only");
}

#[test]
fn an_append_stalled_in_one_log_does_not_hold_up_another() {
    // Logs of a group share no lock on the append path: while one log's sync takes half a
    // second, another appends and syncs at its own pace.
    let _serial = serial();
    let root = tempfile::tempdir().expect("temp dir");
    let group = DiskGroup::new(64);
    let config = DiskConfig::default();
    let slow_files = FaultyFiles::new();
    let slow = DiskLog::open_in_with(
        root.path().join("slow"),
        config.clone(),
        &group,
        Arc::new(slow_files.clone()),
    )
    .expect("open the slow log");
    let fast = DiskLog::open_in(root.path().join("fast"), config, &group).expect("open");
    slow_files.slow_sync(Duration::from_millis(500));
    let start = Instant::now();
    std::thread::scope(|scope| {
        let stalled = scope.spawn(|| slow.append(Bytes::from_static(b"slow")).expect("append"));
        std::thread::sleep(Duration::from_millis(50));
        for i in 0..10 {
            assert_eq!(fast.append(Bytes::from_static(b"fast")).expect("append"), i);
        }
        let fast_done = start.elapsed();
        assert!(!stalled.is_finished(), "the slow sync was not slow");
        assert!(fast_done < Duration::from_millis(450), "the fast log waited: {fast_done:?}");
        assert_eq!(stalled.join().expect("join"), 0);
    });
}
