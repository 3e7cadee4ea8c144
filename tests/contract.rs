//! The `CommitLog` contract (see the trait's doc in `src/storage/mod.rs`), checked against every
//! implementation: the in-memory log, and the disk log with tiny segments (so that rolls happen)
//! under each fsync policy, and a named log of a data directory's registry (tiny segments set by
//! its `segment_bytes`). Each check is a plain function taking a factory; `contract_suite!`
//! instantiates all of them for one factory.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use girok::logs::{LogSettings, Logs, LogsConfig};
use girok::storage::{CommitLog, DiskConfig, DiskLog, Error, FsyncPolicy, LogConfig, MemoryLog};
use tempfile::TempDir;

/// A log under test and whatever must outlive it (the temp dir of a disk log).
struct Subject {
    log: Arc<dyn CommitLog>,
    /// The registry a named log belongs to: dropped before the directory.
    _logs: Option<Logs>,
    _dir: Option<TempDir>,
}

/// Makes a fresh, empty log from a config.
type Factory = fn(LogConfig) -> Subject;

/// The config every check starts from; checks change `initial_offset` or nothing.
fn base_config() -> LogConfig {
    LogConfig { max_record_bytes: 1024, ..LogConfig::default() }
}

fn memory(config: LogConfig) -> Subject {
    Subject { log: Arc::new(MemoryLog::new(config)), _logs: None, _dir: None }
}

fn disk(config: LogConfig, fsync: FsyncPolicy) -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    // Tiny segments roll often; few open ones make reads of old segments reopen their files.
    let config = DiskConfig {
        log: config,
        max_store_bytes: 256,
        max_index_bytes: 8 * 12,
        fsync,
        max_open_segments: 2,
    };
    let log = DiskLog::open(dir.path(), config).expect("open disk log");
    Subject { log: Arc::new(log), _logs: None, _dir: Some(dir) }
}

/// A log named `orders` among others of a registry, its segments made tiny by its settings.
fn named(config: LogConfig) -> Subject {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = DiskConfig {
        log: config,
        max_index_bytes: 8 * 12,
        fsync: FsyncPolicy::Always,
        max_open_segments: 2,
        ..DiskConfig::default()
    };
    let logs = Logs::open(dir.path(), disk, LogsConfig::default()).expect("open registry");
    logs.create("before", LogSettings::default()).expect("create a neighbour");
    let settings = LogSettings { segment_bytes: Some(256), ..LogSettings::default() };
    let log = Arc::clone(logs.create("orders", settings).expect("create orders").log());
    logs.create("after", LogSettings::default()).expect("create a neighbour");
    Subject { log, _logs: Some(logs), _dir: Some(dir) }
}

fn disk_never(config: LogConfig) -> Subject {
    disk(config, FsyncPolicy::Never)
}

fn disk_always(config: LogConfig) -> Subject {
    disk(config, FsyncPolicy::Always)
}

fn disk_interval(config: LogConfig) -> Subject {
    disk(config, FsyncPolicy::Interval(Duration::from_millis(5)))
}

fn value(i: u64) -> Bytes {
    Bytes::from(format!("value-{i}").repeat((i % 4) as usize))
}

fn is_out_of_range(err: &Error, offset: u64, lowest: u64, next: u64) -> bool {
    matches!(err, Error::OffsetOutOfRange { offset: o, lowest: l, next: n }
        if (*o, *l, *n) == (offset, lowest, next))
}

/// Appends `n` records, alternating single appends and batches of three, and returns the values
/// by offset, starting at the log's next offset.
fn append_mixed(log: &dyn CommitLog, n: u64) -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let start = log.next_offset();
        if i % 2 == 0 || n - i < 3 {
            let v = value(start);
            assert_eq!(log.append(v.clone()).expect("append"), start);
            out.push((start, v));
            i += 1;
        } else {
            let values: Vec<Bytes> = (start..start + 3).map(value).collect();
            assert_eq!(log.append_batch(&values).expect("append batch"), start..start + 3);
            out.extend((start..start + 3).zip(values));
            i += 3;
        }
    }
    out
}

fn offsets_are_dense_from(factory: Factory, initial_offset: u64) {
    // A new log starts at its initial offset and hands out dense offsets that read back.
    let s = factory(LogConfig { initial_offset, ..base_config() });
    let log = s.log.as_ref();
    assert_eq!(log.lowest_offset(), initial_offset);
    assert_eq!(log.next_offset(), initial_offset);
    let written = append_mixed(log, 40);
    for (k, (offset, v)) in written.iter().enumerate() {
        assert_eq!(*offset, initial_offset + k as u64);
        let record = log.read(*offset).expect("read");
        assert_eq!((record.offset, &record.value), (*offset, v));
    }
    assert_eq!(log.next_offset(), initial_offset + 40);
    assert_eq!(log.lowest_offset(), initial_offset);
}

fn dense_offsets_from_zero(factory: Factory) {
    // Offsets start at 0 by default and are dense.
    offsets_are_dense_from(factory, 0);
}

fn dense_offsets_from_initial_offset(factory: Factory) {
    // A configured initial offset is where the first record lands.
    offsets_are_dense_from(factory, 1_000_000);
}

fn batch_is_all_or_nothing(factory: Factory) {
    // A batch holding one too-large record appends nothing and leaves the log as it was.
    let s = factory(base_config());
    let log = s.log.as_ref();
    append_mixed(log, 5);
    let mut rx = log.subscribe();
    rx.borrow_and_update();
    let batch = vec![Bytes::from_static(b"ok"), Bytes::from(vec![7u8; 1025]), Bytes::new()];
    match log.append_batch(&batch) {
        Err(Error::RecordTooLarge { size: 1025, max: 1024 }) => {}
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert!(matches!(log.append(Bytes::from(vec![0u8; 1025])), Err(Error::RecordTooLarge { .. })));
    assert_eq!(log.next_offset(), 5);
    assert!(!rx.has_changed().expect("log open"), "a failed batch must not move the commit point");
    assert!(is_out_of_range(&log.read(5).unwrap_err(), 5, 0, 5));
    assert_eq!(log.append(Bytes::from_static(b"after")).expect("append"), 5);
    // The largest allowed record is fine.
    assert_eq!(log.append(Bytes::from(vec![1u8; 1024])).expect("append max"), 6);
    assert_eq!(log.read(6).expect("read").value.len(), 1024);
}

fn max_record_bytes_is_the_configured_limit(factory: Factory) {
    // The log reports the record limit it enforces.
    let s = factory(base_config());
    assert_eq!(s.log.max_record_bytes(), 1024);
}

fn timestamps_are_append_times_that_never_decrease(factory: Factory) {
    // Every record carries the time it was appended, in ms since the epoch, never decreasing.
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as u64
    };
    let s = factory(base_config());
    let log = s.log.as_ref();
    let before = now_ms();
    append_mixed(log, 20);
    let after = now_ms();
    let mut previous = 0;
    for offset in 0..20 {
        let stamp = log.read(offset).expect("read").timestamp_ms;
        assert!((before..=after).contains(&stamp), "{stamp} outside [{before}, {after}]");
        assert!(stamp >= previous, "time went back at offset {offset}");
        previous = stamp;
    }
}

fn offsets_stop_before_they_wrap(factory: Factory) {
    // A log near the end of the offset space refuses a batch that would wrap, appending nothing.
    let last = u64::MAX - 1;
    let s = factory(LogConfig { initial_offset: last - 2, ..base_config() });
    let log = s.log.as_ref();
    assert_eq!(log.append_batch(&[Bytes::new(), Bytes::new()]).expect("batch"), last - 2..last);
    assert_eq!(log.append(Bytes::from_static(b"last")).expect("the last offset"), last);
    assert_eq!(log.next_offset(), u64::MAX);
    match log.append(Bytes::new()) {
        Err(Error::OffsetsExhausted { next: u64::MAX }) => {}
        other => panic!("expected OffsetsExhausted, got {other:?}"),
    }
    assert_eq!((log.lowest_offset(), log.next_offset()), (last - 2, u64::MAX));
    assert_eq!(log.read(last).expect("read").value, "last");
}

fn empty_values_are_records(factory: Factory) {
    // Empty values get offsets and read back empty.
    let s = factory(base_config());
    let log = s.log.as_ref();
    assert_eq!(log.append(Bytes::new()).expect("append"), 0);
    assert_eq!(log.append_batch(&[Bytes::new(), Bytes::new()]).expect("batch"), 1..3);
    for offset in 0..3 {
        let record = log.read(offset).expect("read");
        assert_eq!(record.offset, offset);
        assert!(record.value.is_empty());
    }
    assert_eq!(log.read_batch(0, 10, 0).expect("read batch").len(), 1);
}

fn empty_batch_appends_nothing(factory: Factory) {
    // An empty batch returns an empty range at the commit point and changes nothing.
    let s = factory(base_config());
    let log = s.log.as_ref();
    assert_eq!(log.append_batch(&[]).expect("empty batch"), 0..0);
    append_mixed(log, 4);
    let mut rx = log.subscribe();
    rx.borrow_and_update();
    assert_eq!(log.append_batch(&[]).expect("empty batch"), 4..4);
    assert_eq!(log.next_offset(), 4);
    assert!(!rx.has_changed().expect("log open"));
}

fn reads_out_of_range_carry_bounds(factory: Factory) {
    // Reads below lowest and at or after next fail with the offset and both bounds.
    let s = factory(LogConfig { initial_offset: 10, ..base_config() });
    let log = s.log.as_ref();
    assert!(is_out_of_range(&log.read(10).unwrap_err(), 10, 10, 10));
    assert!(is_out_of_range(&log.read(0).unwrap_err(), 0, 10, 10));
    append_mixed(log, 30);
    for offset in [0, 9, 40, 41, u64::MAX] {
        assert!(is_out_of_range(&log.read(offset).unwrap_err(), offset, 10, 40), "{offset}");
        assert!(is_out_of_range(&log.read_batch(offset, 5, 100).unwrap_err(), offset, 10, 40));
    }
    let lowest = log.truncate(25).expect("truncate");
    assert!(lowest > 10, "truncate(25) over 30 records should drop something, got {lowest}");
    assert!(is_out_of_range(&log.read(lowest - 1).unwrap_err(), lowest - 1, lowest, 40));
    assert!(is_out_of_range(&log.read(10).unwrap_err(), 10, lowest, 40));
    assert_eq!(log.read(lowest).expect("read lowest").offset, lowest);
}

/// Checks the shape of one `read_batch` answer: non-empty, consecutive from `offset`, before
/// `next`, at most `max_records`, and never past the byte limit by more than its last record.
fn check_batch(log: &dyn CommitLog, offset: u64, max_records: usize, max_bytes: usize) -> usize {
    let batch = log.read_batch(offset, max_records, max_bytes).expect("read batch");
    assert!(!batch.is_empty(), "read_batch always returns at least one record");
    assert!(batch.len() <= max_records.max(1), "{} > {max_records}", batch.len());
    for (i, record) in batch.iter().enumerate() {
        assert_eq!(record.offset, offset + i as u64);
        assert_eq!(record.value, value(record.offset));
        assert!(record.offset < log.next_offset());
    }
    let before_last: usize = batch[..batch.len() - 1].iter().map(|r| r.value.len()).sum();
    assert!(before_last < max_bytes || batch.len() == 1, "went past max_bytes {max_bytes}");
    batch.len()
}

fn read_batch_respects_limits(factory: Factory) {
    // read_batch returns at least one record, at most max_records, stops at max_bytes, never
    // past next, and repeated calls walk the whole log without gaps.
    let s = factory(base_config());
    let log = s.log.as_ref();
    append_mixed(log, 40);
    assert_eq!(check_batch(log, 0, 0, usize::MAX), 1);
    assert_eq!(check_batch(log, 0, 1, usize::MAX), 1);
    assert_eq!(check_batch(log, 3, 100, 0), 1);
    assert_eq!(check_batch(log, 39, 100, usize::MAX), 1);
    assert_eq!(check_batch(log, 38, 100, usize::MAX), 2);
    for offset in 0..40 {
        for (max_records, max_bytes) in [(3, usize::MAX), (100, 20), (5, 60), (100, 1)] {
            check_batch(log, offset, max_records, max_bytes);
        }
    }
    let mut offset = 0;
    while offset < 40 {
        offset += check_batch(log, offset, 7, 50) as u64;
    }
    assert_eq!(offset, 40);
}

fn truncate_is_bounded_and_monotonic(factory: Factory) {
    // truncate drops only below the offset asked for, never past next, never moves lowest back,
    // and leaves a log that still appends densely.
    let s = factory(base_config());
    let log = s.log.as_ref();
    append_mixed(log, 40);
    assert_eq!(log.truncate(0).expect("truncate 0"), 0);
    let first = log.truncate(20).expect("truncate 20");
    assert!(first <= 20);
    assert_eq!(log.lowest_offset(), first);
    for offset in first..40 {
        assert_eq!(log.read(offset).expect("read kept").value, value(offset));
    }
    assert_eq!(log.truncate(5).expect("truncate back"), first, "lowest moved backwards");
    let all = log.truncate(u64::MAX).expect("truncate all");
    assert!(all >= first && all <= 40, "lowest {all} outside [{first}, 40]");
    assert_eq!(log.next_offset(), 40);
    assert_eq!(log.append(value(40)).expect("append after truncate"), 40);
    assert_eq!(log.read(40).expect("read after truncate").value, value(40));
    assert_eq!(log.lowest_offset(), all);
}

fn size_bytes_follows_appends_and_truncation(factory: Factory) {
    // size_bytes grows by at least each appended record's frame (a 24-byte header and its
    // value), and shrinks when truncation drops records.
    let s = factory(base_config());
    let log = s.log.as_ref();
    let empty = log.size_bytes();
    let mut frames = 0;
    for i in 0..40 {
        let value = value(i);
        frames += 24 + value.len() as u64;
        log.append(value).expect("append");
        assert!(log.size_bytes() >= empty + frames, "{} after {i}", log.size_bytes());
    }
    let before = log.size_bytes();
    assert!(log.truncate(20).expect("truncate") > 0);
    assert!(log.size_bytes() < before, "truncation did not shrink {before}");
}

fn subscribe_sees_the_commit_point(factory: Factory) {
    // A subscriber sees the commit point advance with every append, and a waiter wakes up.
    let s = factory(base_config());
    let log = s.log.clone();
    let mut rx = log.subscribe();
    assert_eq!(*rx.borrow_and_update(), 0);
    log.append(value(0)).expect("append");
    assert!(rx.has_changed().expect("open"));
    assert_eq!(*rx.borrow_and_update(), 1);
    log.append_batch(&[value(1), value(2)]).expect("batch");
    assert_eq!(*rx.borrow_and_update(), 3);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let waiter = tokio::spawn(async move {
            let seen = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|&n| n >= 8))
                .await
                .expect("commit point reached 8 in time")
                .map(|n| *n);
            seen.expect("log still open")
        });
        let writer = log.clone();
        tokio::task::spawn_blocking(move || {
            for i in 3..8 {
                writer.append(value(i)).expect("append");
            }
        })
        .await
        .expect("writer");
        assert_eq!(waiter.await.expect("waiter"), 8);
    });
}

fn the_watch_never_runs_ahead_of_reads(factory: Factory) {
    // A tailing reader woken by the watch can read every offset below the point it was shown,
    // while appenders race on.
    let s = factory(base_config());
    let total = 150;
    let mut rx = s.log.subscribe();
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let log = s.log.clone();
            std::thread::spawn(move || {
                for i in 0..total / 2 {
                    if i % 5 == 0 {
                        log.append_batch(&[value(i), value(i + 1)]).expect("batch");
                    } else {
                        log.append(value(i)).expect("append");
                    }
                }
            })
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut read_to = 0;
    runtime.block_on(async {
        while read_to < total {
            let changed = tokio::time::timeout(Duration::from_secs(10), rx.changed()).await;
            changed.expect("the commit point advanced in time").expect("log open");
            let seen = *rx.borrow_and_update();
            while read_to < seen {
                let batch =
                    s.log.read_batch(read_to, 64, usize::MAX).expect("read below the watch");
                read_to += batch.len() as u64;
            }
        }
    });
    for writer in writers {
        writer.join().expect("writer");
    }
}

fn close_ends_everything(factory: Factory) {
    // After close every call fails with Closed and every watch receiver ends.
    let s = factory(base_config());
    let log = s.log.as_ref();
    append_mixed(log, 5);
    let mut rx = log.subscribe();
    log.close().expect("close");
    assert!(matches!(log.append(value(5)), Err(Error::Closed)));
    assert!(matches!(log.append_batch(&[value(5)]), Err(Error::Closed)));
    assert!(matches!(log.read(0), Err(Error::Closed)));
    assert!(matches!(log.read_batch(0, 5, 100), Err(Error::Closed)));
    assert!(matches!(log.truncate(3), Err(Error::Closed)));
    assert!(matches!(log.close(), Err(Error::Closed)));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ended = tokio::time::timeout(Duration::from_secs(10), rx.changed()).await;
        assert!(ended.expect("receiver ended in time").is_err(), "receiver still open");
        let mut late = log.subscribe();
        let ended = tokio::time::timeout(Duration::from_secs(10), late.changed()).await;
        assert!(ended.expect("late receiver ended in time").is_err());
    });
}

fn concurrent_appends_get_unique_dense_offsets(factory: Factory) {
    // Appends racing from several threads get dense, unique offsets holding their own values.
    let s = factory(base_config());
    let threads = 4;
    let per_thread = 40;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = s.log.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..per_thread {
                    if i % 4 == 3 {
                        let values: Vec<Bytes> =
                            (0..2).map(|k| Bytes::from(format!("t{t}-{i}-{k}"))).collect();
                        let range = log.append_batch(&values).expect("batch");
                        assert_eq!(range.end - range.start, 2);
                        got.extend(range.zip(values));
                    } else {
                        let v = Bytes::from(format!("t{t}-{i}"));
                        got.push((log.append(v.clone()).expect("append"), v));
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.join().expect("appender thread"));
    }
    let offsets: HashSet<u64> = all.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets.len(), all.len(), "an offset was handed out twice");
    let total = all.len() as u64;
    assert_eq!(offsets, (0..total).collect::<HashSet<u64>>());
    assert_eq!(s.log.next_offset(), total);
    for (offset, v) in all {
        assert_eq!(s.log.read(offset).expect("read").value, v);
    }
}

/// Instantiates every check for every implementation: a module per implementation, a test per
/// check in it (`memory::batch_is_all_or_nothing`, `disk_always::…`).
macro_rules! contract_suite {
    (implementations: [$($implementation:ident),* $(,)?]; checks: $checks:tt $(;)?) => {
        $(contract_suite!(@one $implementation $checks);)*
    };
    (@one $implementation:ident [$($check:ident),* $(,)?]) => {
        mod $implementation {
            $(
                #[test]
                fn $check() {
                    super::$check(super::$implementation);
                }
            )*
        }
    };
}

contract_suite! {
    implementations: [memory, disk_never, disk_always, disk_interval, named];
    checks: [
        dense_offsets_from_zero,
        dense_offsets_from_initial_offset,
        batch_is_all_or_nothing,
        max_record_bytes_is_the_configured_limit,
        timestamps_are_append_times_that_never_decrease,
        offsets_stop_before_they_wrap,
        empty_values_are_records,
        empty_batch_appends_nothing,
        reads_out_of_range_carry_bounds,
        read_batch_respects_limits,
        truncate_is_bounded_and_monotonic,
        size_bytes_follows_appends_and_truncation,
        subscribe_sees_the_commit_point,
        the_watch_never_runs_ahead_of_reads,
        close_ends_everything,
        concurrent_appends_get_unique_dense_offsets,
    ];
}

#[test]
fn disk_truncate_keeps_the_active_segment() {
    // Truncating past everything keeps the disk log's active segment and its records.
    let s = disk_never(base_config());
    let log = s.log.as_ref();
    append_mixed(log, 40);
    let lowest = log.truncate(u64::MAX).expect("truncate");
    assert!(lowest < 40, "the active segment was dropped (lowest {lowest})");
    assert_eq!(log.read(39).expect("last record kept").value, value(39));
}

#[test]
fn memory_truncate_is_exact() {
    // The in-memory log has no segments: truncate drops exactly the records below the offset.
    let s = memory(base_config());
    let log = s.log.as_ref();
    append_mixed(log, 10);
    assert_eq!(log.truncate(7).expect("truncate"), 7);
    assert_eq!(log.truncate(u64::MAX).expect("truncate all"), 10);
}
