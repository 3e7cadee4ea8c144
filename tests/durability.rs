//! Durability under injected faults, through [`FaultyFiles`]: a failed sync
//! turns the log read-only until reopened, a full disk fails an append without writing half of
//! it, and a power cut that drops every unsynced write never takes back a record acknowledged
//! under `FsyncPolicy::Always`.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::storage::*;
use girok::storage::disk::verify;
use girok::storage::{CommitLog, DiskConfig, DiskLog, Error, FsyncPolicy};

fn open_faulty(dir: &Path, config: &DiskConfig) -> (DiskLog, FaultyFiles) {
    let files = FaultyFiles::new();
    let log = DiskLog::open_with(dir, config.clone(), Arc::new(files.clone())).expect("open");
    (log, files)
}

/// Reopens `dir` with plain files and checks `[0, n)` plus densely continued appends.
fn assert_reopens_with(dir: &Path, config: &DiskConfig, n: u64) {
    let log = open(dir, config);
    assert!(log.next_offset() >= n, "lost acknowledged records: next {}", log.next_offset());
    assert_values(&log, 0..n);
    let next = log.next_offset();
    assert_eq!(log.append(Bytes::from_static(b"after")).expect("append after reopen"), next);
    log.close().expect("close");
    let log = open(dir, config);
    assert_eq!(log.read(next).expect("read after second reopen").value, "after");
    log.close().expect("close");
    assert!(verify(dir).expect("verify").is_ok());
}

#[test]
fn a_failed_sync_turns_the_log_read_only_until_reopened() {
    // Under Always, a failed fdatasync fails the append, and every later append too even once
    // syncs work again; reads go on; a reopen brings the log back.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Always);
    let (log, files) = open_faulty(dir.path(), &config);
    fill(&log, 0, 10);
    let mut rx = log.subscribe();
    rx.borrow_and_update();
    files.fail_sync(true);
    assert!(matches!(log.append(value_for(10)), Err(Error::ReadOnly(_))));
    assert!(!rx.has_changed().unwrap(), "the watch announced an unsynced record");
    assert!(matches!(log.read(10), Err(Error::OffsetOutOfRange { offset: 10, next: 10, .. })));
    files.fail_sync(false);
    assert!(
        matches!(log.append(value_for(10)), Err(Error::ReadOnly(_))),
        "a failed sync is not retried"
    );
    assert!(matches!(log.append_batch(&[value_for(10)]), Err(Error::ReadOnly(_))));
    assert_eq!(log.next_offset(), 10, "an unsynced record became visible");
    assert_values(&log, 0..10);
    assert_eq!(log.read_batch(0, 100, usize::MAX).expect("read batch")[0].offset, 0);
    drop(log);
    assert_reopens_with(dir.path(), &config, 10);
}

#[test]
fn a_failed_seal_turns_the_log_read_only_under_never() {
    // Under Never the only syncs are at a roll and on demand; a failure there turns the log
    // read-only all the same.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Never);
    let (log, files) = open_faulty(dir.path(), &config);
    fill(&log, 0, 3);
    files.fail_sync(true);
    let mut acked = 3;
    let err = loop {
        match log.append(value_for(acked)) {
            Ok(offset) => {
                assert_eq!(offset, acked);
                acked += 1;
                assert!(acked < 100, "no roll happened");
            }
            Err(err) => break err,
        }
    };
    assert!(matches!(err, Error::ReadOnly(_)), "{err:?}");
    files.fail_sync(false);
    assert!(matches!(log.append(value_for(acked)), Err(Error::ReadOnly(_))));
    assert!(matches!(log.sync(), Err(Error::ReadOnly(_))));
    assert_values(&log, 0..acked);
    log.close().expect("close after failure");
    assert_reopens_with(dir.path(), &config, acked);
}

#[test]
fn a_failed_interval_sync_turns_the_log_read_only() {
    // Under Interval the background syncer's failure is what turns appends away.
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig {
        max_store_bytes: 1 << 20,
        ..small_config(FsyncPolicy::Interval(Duration::from_millis(1)))
    };
    let (log, files) = open_faulty(dir.path(), &config);
    fill(&log, 0, 3);
    files.fail_sync(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut acked = 3;
    // The syncer runs every millisecond; keep appending until it has failed.
    let err = loop {
        match log.append(value_for(acked)) {
            Ok(_) => acked += 1,
            Err(err) => break err,
        }
        assert!(Instant::now() < deadline, "the interval syncer never ran");
    };
    assert!(matches!(err, Error::ReadOnly(_)), "{err:?}");
    assert_values(&log, 0..acked);
    drop(log);
    files.fail_sync(false);
    assert_reopens_with(dir.path(), &config, acked);
}

/// A store file's bytes without the zeros preallocated after its data (under `Always`).
fn data_of(store: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(store).expect("read store");
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

#[test]
fn a_full_disk_fails_appends_without_writing_half_of_them() {
    // ENOSPC (the fault writes half the bytes first) fails the append with StorageFull, leaves
    // the commit point and the file as they were, and appends work again once space is back;
    // the fault is hit at every position, including at rolls.
    for fsync in [FsyncPolicy::Never, FsyncPolicy::Always] {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(fsync);
        let (log, files) = open_faulty(dir.path(), &config);
        let mut rx = log.subscribe();
        for offset in 0..40u64 {
            let bases = segment_bases(dir.path());
            let store_data = data_of(&store_file(dir.path(), *bases.last().unwrap()));
            rx.borrow_and_update();
            files.enospc(true);
            assert!(matches!(log.append(value_for(offset)), Err(Error::StorageFull)), "{fsync:?}");
            let batch = [value_for(offset), value_for(offset + 1)];
            assert!(matches!(log.append_batch(&batch), Err(Error::StorageFull)));
            files.enospc(false);
            assert_eq!(log.next_offset(), offset, "{fsync:?}: a failed append moved next");
            assert!(!rx.has_changed().unwrap(), "a failed append moved the watch");
            assert_eq!(segment_bases(dir.path()), bases, "a failed roll left a segment behind");
            let store = store_file(dir.path(), *bases.last().unwrap());
            assert_eq!(data_of(&store), store_data, "half a frame kept");
            assert_eq!(log.append(value_for(offset)).expect("append after ENOSPC"), offset);
        }
        assert_values(&log, 0..40);
        assert!(log.segment_count() > 3);
        drop(log);
        assert_reopens_with(dir.path(), &config, 40);
    }
}

#[test]
fn a_power_cut_under_never_can_take_back_acknowledged_records() {
    // The simulation bites: without syncs, a power cut loses the active segment's tail, and what
    // is left is a clean, dense prefix.
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig { max_store_bytes: 1 << 20, ..small_config(FsyncPolicy::Never) };
    let (log, files) = open_faulty(dir.path(), &config);
    fill(&log, 0, 5);
    files.power_cut();
    drop(log);
    let log = open(dir.path(), &config);
    assert!(log.next_offset() < 5, "nothing was lost: the power cut simulation does not work");
    assert_values(&log, 0..log.next_offset());
}

#[test]
fn a_power_cut_under_always_keeps_every_acknowledged_record() {
    // Sequential appends and batches, cut at various points across several restarts: every
    // acknowledged record survives and the log stays clean.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Always);
    let mut acked = 0;
    for round in 0..6u64 {
        let (log, files) = open_faulty(dir.path(), &config);
        assert!(log.next_offset() >= acked);
        assert_values(&log, 0..acked);
        // Anything past what was acknowledged came from an append that failed at the cut.
        let start = log.next_offset();
        let mut next = start;
        for i in 0..(5 + round * 3) {
            if i % 3 == 2 {
                let values: Vec<Bytes> = (next..next + 3).map(value_for).collect();
                assert_eq!(log.append_batch(&values).unwrap(), next..next + 3);
                next += 3;
            } else {
                assert_eq!(log.append(value_for(next)).unwrap(), next);
                next += 1;
            }
        }
        files.power_cut();
        assert!(log.append(value_for(next)).is_err(), "the machine is off");
        drop(log);
        let log = open(dir.path(), &config);
        assert_eq!(log.next_offset(), next, "round {round}: acknowledged records lost");
        assert_values(&log, start..next);
        acked = next;
    }
    assert!(verify(dir.path()).unwrap().is_ok());
}

#[test]
fn a_power_cut_during_concurrent_appends_keeps_every_acknowledged_record() {
    // Appenders race under Always (group commit) when the power goes; each record any of them
    // saw acknowledged, or a reader saw committed, is there after the restart, with its value.
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig { max_store_bytes: 2048, ..small_config(FsyncPolicy::Always) };
    let (log, files) = open_faulty(dir.path(), &config);
    let log = Arc::new(log);
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0.. {
                    let value = Bytes::from(format!("t{t}-{i}"));
                    let result = if i % 5 == 4 {
                        let batch = [value.clone(), Bytes::from(format!("t{t}-{i}b"))];
                        log.append_batch(&batch).map(|r| {
                            acked.push((r.start + 1, batch[1].clone()));
                            r.start
                        })
                    } else {
                        log.append(value.clone())
                    };
                    match result {
                        Ok(offset) => acked.push((offset, value)),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut rx = log.subscribe();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|&n| n >= 150))
            .await
            .expect("appends made progress")
            .expect("log open");
    });
    // Whatever a reader could see before the cut was synced, so it must come back too.
    let visible = log.next_offset();
    files.power_cut();
    let acked: Vec<(u64, Bytes)> =
        writers.into_iter().flat_map(|w| w.join().expect("writer")).collect();
    drop(log);
    assert!(acked.len() >= 150);
    let log = open(dir.path(), &config);
    for (offset, value) in &acked {
        let record = log.read(*offset).unwrap_or_else(|e| panic!("acknowledged {offset}: {e}"));
        assert_eq!(&record.value, value);
    }
    let max = acked.iter().map(|(o, _)| *o).max().unwrap();
    assert!(log.next_offset() > max);
    assert!(log.next_offset() >= visible, "a visible record was lost: {visible} were visible");
    for offset in 0..log.next_offset() {
        log.read(offset).unwrap_or_else(|e| panic!("offset {offset} unreadable: {e}"));
    }
}

#[test]
fn records_recovered_after_a_crash_are_synced_before_they_are_served() {
    // Records a crash left written but unsynced become readable on reopen only once they are
    // durable: a power cut right after the reopen takes none of them back.
    let dir = tempfile::tempdir().unwrap();
    let never = DiskConfig { max_store_bytes: 1 << 20, ..small_config(FsyncPolicy::Never) };
    let (log, files) = open_faulty(dir.path(), &never);
    fill(&log, 0, 5);
    drop(log);
    let always = DiskConfig { fsync: FsyncPolicy::Always, ..never.clone() };
    let log = DiskLog::open_with(dir.path(), always.clone(), Arc::new(files.clone())).unwrap();
    let served = log.next_offset();
    assert_eq!(served, 5);
    assert_values(&log, 0..served);
    files.power_cut();
    drop(log);
    let log = open(dir.path(), &always);
    assert_eq!(log.next_offset(), served, "a record served after recovery was lost");
    assert_values(&log, 0..served);
}

#[test]
fn concurrent_appends_under_always_share_syncs() {
    // Group commit: appends that arrive while a sync is running wait for the next one and share
    // it, instead of each paying for a sync of its own; every append still returns committed.
    let dir = tempfile::tempdir().unwrap();
    // One segment for the whole test, so that every sync counted is an append's.
    let config = DiskConfig { fsync: FsyncPolicy::Always, ..DiskConfig::default() };
    let (log, files) = open_faulty(dir.path(), &config);
    files.slow_sync(Duration::from_millis(2));
    let before = files.sync_count();
    let (threads, per_thread) = (8u64, 25u64);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per_thread {
                    let offset = log.append(Bytes::from_static(b"shared")).unwrap();
                    assert!(offset < log.next_offset(), "append returned before its commit");
                }
            });
        }
    });
    let appends = threads * per_thread;
    let syncs = files.sync_count() - before;
    assert_eq!(log.next_offset(), appends);
    assert!(syncs <= appends / 2, "{syncs} syncs for {appends} concurrent appends: too few shared");
}

/// Appends test values from `from` until an append fails, returning the first offset that did
/// not land and the error; panics if none fails within `limit` appends.
fn append_until_failure(log: &DiskLog, from: u64, limit: u64) -> (u64, Error) {
    for offset in from..from + limit {
        match log.append(value_for(offset)) {
            Ok(got) => assert_eq!(got, offset),
            Err(err) => return (offset, err),
        }
    }
    panic!("no append failed in {limit} tries");
}

#[test]
fn a_directory_that_cannot_be_opened_to_sync_fails_the_roll_but_not_the_log() {
    // No descriptor free to open the directory after creating a segment means nothing was
    // synced and nothing is uncertain: that append fails with a transient error, the log stays
    // writable, and the next append syncs the directory before anything lands in the segment.
    for fsync in [FsyncPolicy::Never, FsyncPolicy::Always] {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(fsync);
        let (log, files) = open_faulty(dir.path(), &config);
        fill(&log, 0, 3);
        files.fail_dir_open(true);
        let (failed_at, err) = append_until_failure(&log, 3, 50);
        assert!(err.is_transient(), "{fsync:?}: {err:?}");
        assert_eq!(log.next_offset(), failed_at, "{fsync:?}: the failed append became visible");
        assert!(matches!(log.append(value_for(failed_at)), Err(e) if e.is_transient()));
        files.fail_dir_open(false);
        let synced = files.dirs_synced().len();
        assert_eq!(log.append(value_for(failed_at)).expect("append after"), failed_at);
        assert!(files.dirs_synced().len() > synced, "the directory was not synced first");
        fill(&log, failed_at + 1, failed_at + 20);
        assert_values(&log, 0..failed_at + 20);
        log.close().unwrap();
        assert_reopens_with(dir.path(), &config, failed_at + 20);
    }
}

#[test]
fn a_failed_directory_fsync_turns_the_log_read_only() {
    // A directory fsync that fails leaves its entries uncertain: like a failed data sync, the
    // log refuses appends until it is reopened.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Never);
    let (log, files) = open_faulty(dir.path(), &config);
    fill(&log, 0, 3);
    files.fail_dir_sync(true);
    let (failed_at, err) = append_until_failure(&log, 3, 50);
    assert!(matches!(err, Error::ReadOnly(_)), "{err:?}");
    files.fail_dir_sync(false);
    assert!(matches!(log.append(value_for(failed_at)), Err(Error::ReadOnly(_))));
    assert_values(&log, 0..failed_at);
}

#[test]
fn a_sealed_segment_that_cannot_be_opened_reads_as_a_transient_error_not_corruption() {
    // Opening an old segment's files for a read can fail for want of descriptors: the read
    // fails with a transient error, never DATA_LOSS, and works once descriptors are free.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Never);
    let (log, files) = open_faulty(dir.path(), &config);
    fill(&log, 0, 60);
    assert!(log.segment_count() > config.max_open_segments + 2);
    files.fail_open(true);
    let err = log.read(0).expect_err("the first segment's files cannot be opened");
    assert!(err.is_transient(), "{err:?}");
    assert!(log.read_batch(0, 10, usize::MAX).is_err_and(|e| e.is_transient()));
    files.fail_open(false);
    assert_values(&log, 0..60);
    assert!(log.open_sealed_segments() <= config.max_open_segments);
}

#[test]
fn a_new_data_directory_is_synced_into_its_parent() {
    // Creating the data directory (and missing parents) syncs each new directory's parent, so a
    // power cut cannot take the directory, and the records acknowledged in it, back.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a").join("b").join("data");
    let (log, files) = open_faulty(&dir, &small_config(FsyncPolicy::Always));
    let synced = files.dirs_synced();
    for parent in [root.path().to_path_buf(), root.path().join("a"), root.path().join("a/b")] {
        assert!(synced.contains(&parent), "{} not synced: {synced:?}", parent.display());
    }
    assert!(synced.contains(&dir), "the data directory itself was not synced: {synced:?}");
    log.close().unwrap();
    // An earlier open may have crashed before its syncs: every open syncs the parent again.
    let (log, files) = open_faulty(&dir, &small_config(FsyncPolicy::Always));
    assert!(files.dirs_synced().contains(&root.path().join("a/b")), "{:?}", files.dirs_synced());
    log.close().unwrap();
}

#[test]
fn a_kill_between_two_retention_unlinks_reopens_at_the_first_whole_segment() {
    // Retention unlinks oldest first, store before index; a process killed before any one of
    // those unlinks leaves a prefix of them done. Each such directory reopens with its lowest
    // offset at the first segment whose store is still there, every record above it intact, no
    // orphan index, appends going on at the old end, and retention able to finish the job.
    let config = small_config(FsyncPolicy::Always);
    let records = 40;
    let deleted = 3;
    for kill_at in 0..=2 * deleted {
        let dir = tempfile::tempdir().unwrap();
        let (log, files) = open_faulty(dir.path(), &config);
        fill(&log, 0, records);
        let bases = segment_bases(dir.path());
        assert!(bases.len() > deleted + 1, "too few segments: {bases:?}");
        files.kill_at_unlink(kill_at);
        let truncated = log.truncate(bases[deleted]);
        assert_eq!(truncated.is_err(), kill_at < 2 * deleted, "kill at unlink {kill_at}");
        drop(log);

        let mut expected = Vec::new();
        for &base in &bases[..deleted] {
            expected.extend([store_file(dir.path(), base), index_file(dir.path(), base)]);
        }
        assert_eq!(files.unlinked(), expected[..kill_at], "unlinks before the kill");
        let first_whole = bases[kill_at.div_ceil(2)];

        let log = open(dir.path(), &config);
        assert_eq!(log.lowest_offset(), first_whole, "kill at unlink {kill_at}");
        assert_eq!(log.next_offset(), records);
        assert_values(&log, first_whole..records);
        assert_eq!(segment_bases(dir.path()), bases[kill_at.div_ceil(2)..]);
        for &base in &bases[..kill_at.div_ceil(2)] {
            assert!(!index_file(dir.path(), base).exists(), "orphan index {base} left");
        }
        assert_eq!(log.append(value_for(records)).unwrap(), records);
        assert_eq!(log.truncate(bases[deleted]).unwrap(), bases[deleted]);
        assert_values(&log, bases[deleted]..records + 1);
        log.close().unwrap();
        assert!(verify(dir.path()).expect("verify").is_ok());
    }
}
