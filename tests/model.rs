//! Model-based test: random sequences of appends, batches, reads, batch reads, truncations,
//! clean reopens, crashes (drops without close), full disks, failed syncs and power cuts (through
//! the fault-injecting `FaultyFiles`) against a `DiskLog` with tiny segments, with a `MemoryLog`
//! as the oracle. After every step both agree on the bounds, and every read agrees.
//!
//! Cases: `GIROK_PROPTEST_CASES` (default 100, sized for CI: about ten seconds).

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use common::storage::{FaultyFiles, segment_bases};
use girok::storage::{
    CommitLog, DiskConfig, DiskLog, Error, FsyncPolicy, LogConfig, MemoryLog, Record,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<u8>),
    AppendBatch(Vec<Vec<u8>>),
    /// An offset chosen relative to the bounds, reaching a little past both ends.
    Read(u16),
    ReadBatch {
        at: u16,
        max_records: usize,
        max_bytes: usize,
    },
    Truncate(u16),
    Reopen,
    Crash,
    /// An append and a batch on a full disk: both fail and change nothing.
    FullDisk(Vec<u8>),
    /// An append whose sync fails: the log turns read-only, and after a reopen the record is
    /// there or not (it was never acknowledged), and nothing else changed.
    FailedSync(Vec<u8>),
    /// A power cut dropping unsynced writes; under `Always` nothing acknowledged is lost (under
    /// `Never` it is a plain crash, since the oracle cannot know what the OS wrote back).
    PowerCut,
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => value().prop_map(Op::Append),
        3 => proptest::collection::vec(value(), 0..6).prop_map(Op::AppendBatch),
        4 => any::<u16>().prop_map(Op::Read),
        3 => (any::<u16>(), 0..8usize, 0..200usize)
            .prop_map(|(at, max_records, max_bytes)| Op::ReadBatch { at, max_records, max_bytes }),
        1 => any::<u16>().prop_map(Op::Truncate),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => value().prop_map(Op::FullDisk),
        1 => value().prop_map(Op::FailedSync),
        1 => Just(Op::PowerCut),
    ]
}

fn config() -> impl Strategy<Value = DiskConfig> {
    let offsets = prop_oneof![Just(0u64), Just(1u64 << 40)];
    (64..320u64, 24..100u64, offsets, 0..4u8, 1..4usize).prop_map(
        |(max_store_bytes, max_index_bytes, initial_offset, fsync, max_open_segments)| DiskConfig {
            max_store_bytes,
            max_index_bytes,
            log: LogConfig { max_record_bytes: 300, initial_offset },
            fsync: if fsync == 0 { FsyncPolicy::Always } else { FsyncPolicy::Never },
            max_open_segments,
        },
    )
}

/// An offset in `[lowest - 2, next + 2)`, picked by `pick`.
fn offset_near(oracle: &MemoryLog, pick: u16) -> u64 {
    let low = oracle.lowest_offset().saturating_sub(2);
    let span = oracle.next_offset() + 2 - low;
    low + u64::from(pick) % span
}

fn same_record(disk: &Record, oracle: &Record) -> bool {
    disk.offset == oracle.offset && disk.value == oracle.value
}

fn same_error(disk: &Error, oracle: &Error) -> bool {
    match (disk, oracle) {
        (
            Error::OffsetOutOfRange { offset: a, lowest: b, next: c },
            Error::OffsetOutOfRange { offset: x, lowest: y, next: z },
        ) => (a, b, c) == (x, y, z),
        _ => false,
    }
}

/// Opens the disk log through a fresh fault-injecting opener.
fn open(dir: &Path, config: &DiskConfig) -> (DiskLog, FaultyFiles) {
    let files = FaultyFiles::new();
    let log = DiskLog::open_with(dir, config.clone(), Arc::new(files.clone())).expect("open");
    (log, files)
}

fn run(dir: &Path, config: DiskConfig, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let oracle = MemoryLog::new(config.log.clone());
    let (log, mut files) = open(dir, &config);
    let mut disk = Some(log);
    for (step, op) in ops.into_iter().enumerate() {
        let log = disk.as_ref().expect("open log");
        match op {
            Op::Append(v) => {
                let v = Bytes::from(v);
                prop_assert_eq!(log.append(v.clone()).ok(), oracle.append(v).ok(), "step {}", step);
            }
            Op::AppendBatch(vs) => {
                let vs: Vec<Bytes> = vs.into_iter().map(Bytes::from).collect();
                prop_assert_eq!(log.append_batch(&vs).ok(), oracle.append_batch(&vs).ok());
            }
            Op::Read(pick) => {
                let offset = offset_near(&oracle, pick);
                match (log.read(offset), oracle.read(offset)) {
                    (Ok(d), Ok(o)) => prop_assert!(same_record(&d, &o), "read {}", offset),
                    (Err(d), Err(o)) => prop_assert!(same_error(&d, &o), "{:?} vs {:?}", d, o),
                    (d, o) => prop_assert!(false, "read {}: disk {:?}, oracle {:?}", offset, d, o),
                }
            }
            Op::ReadBatch { at, max_records, max_bytes } => {
                let offset = offset_near(&oracle, at);
                let disk_batch = log.read_batch(offset, max_records, max_bytes);
                match (disk_batch, oracle.read_batch(offset, max_records, max_bytes)) {
                    (Ok(d), Ok(o)) => {
                        prop_assert!(
                            !d.is_empty() && d.len() <= o.len(),
                            "{} vs {}",
                            d.len(),
                            o.len()
                        );
                        for (d, o) in d.iter().zip(&o) {
                            prop_assert!(same_record(d, o), "batch record {}", o.offset);
                        }
                        // The disk log may stop early only where a segment ends.
                        if d.len() < o.len() {
                            let stop = offset + d.len() as u64;
                            prop_assert!(
                                segment_bases(dir).contains(&stop),
                                "batch at {} stopped at {} (oracle {} records), not at a segment",
                                offset,
                                stop,
                                o.len()
                            );
                        }
                    }
                    (Err(d), Err(o)) => prop_assert!(same_error(&d, &o), "{:?} vs {:?}", d, o),
                    (d, o) => prop_assert!(false, "batch {}: disk {:?}, oracle {:?}", offset, d, o),
                }
            }
            Op::Truncate(pick) => {
                let target = offset_near(&oracle, pick);
                let before = log.lowest_offset();
                let lowest = log.truncate(target).expect("truncate");
                prop_assert!(lowest >= before, "lowest moved back from {} to {}", before, lowest);
                prop_assert!(
                    lowest <= target.max(before) && lowest <= oracle.next_offset(),
                    "truncate({}) gave {}",
                    target,
                    lowest
                );
                prop_assert_eq!(oracle.truncate(lowest).expect("oracle truncate"), lowest);
            }
            Op::Reopen => {
                disk.take().expect("open log").close().expect("close");
                (disk, files) = reopen(dir, &config);
            }
            Op::Crash => {
                drop(disk.take());
                (disk, files) = reopen(dir, &config);
            }
            Op::FullDisk(v) => {
                files.enospc(true);
                let v = Bytes::from(v);
                prop_assert!(matches!(log.append(v.clone()), Err(Error::StorageFull)));
                prop_assert!(matches!(log.append_batch(&[v.clone(), v]), Err(Error::StorageFull)));
                files.enospc(false);
            }
            Op::FailedSync(v) => {
                files.fail_sync(true);
                let v = Bytes::from(v);
                let result = log.append(v.clone());
                files.fail_sync(false);
                match result {
                    Ok(offset) => prop_assert_eq!(oracle.append(v).ok(), Some(offset)),
                    Err(Error::ReadOnly(_)) => {
                        prop_assert!(matches!(log.append(v.clone()), Err(Error::ReadOnly(_))));
                        disk.take().expect("open log").close().expect("close read-only log");
                        (disk, files) = reopen(dir, &config);
                        let log = disk.as_ref().expect("open log");
                        if log.next_offset() == oracle.next_offset() + 1 {
                            oracle.append(v).expect("oracle append");
                        }
                    }
                    // The sync that failed was a new segment's header, during a roll: the
                    // new files are removed and nothing was written, so the log goes on.
                    Err(Error::Io { .. }) => {
                        prop_assert_eq!(log.next_offset(), oracle.next_offset());
                    }
                    Err(err) => prop_assert!(false, "failed sync gave {:?}", err),
                }
            }
            Op::PowerCut => {
                if config.fsync == FsyncPolicy::Always {
                    files.power_cut();
                }
                drop(disk.take());
                (disk, files) = reopen(dir, &config);
            }
        }
        let log = disk.as_ref().expect("open log");
        prop_assert_eq!(log.next_offset(), oracle.next_offset(), "next after step {}", step);
        prop_assert_eq!(log.lowest_offset(), oracle.lowest_offset(), "lowest after step {}", step);
    }
    let log = disk.take().expect("open log");
    for offset in oracle.lowest_offset()..oracle.next_offset() {
        let (d, o) = (log.read(offset).expect("final read"), oracle.read(offset).expect("oracle"));
        prop_assert!(same_record(&d, &o), "final read {}", offset);
    }
    log.close().expect("close");
    prop_assert!(girok::storage::disk::verify(dir).expect("verify").is_ok());
    Ok(())
}

fn reopen(dir: &Path, config: &DiskConfig) -> (Option<DiskLog>, FaultyFiles) {
    let (log, files) = open(dir, config);
    (Some(log), files)
}

fn cases() -> u32 {
    std::env::var("GIROK_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn disk_log_behaves_like_the_memory_log(
        config in config(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        // Any sequence of operations, reopens and crashes leaves the disk log agreeing with the
        // in-memory oracle on every bound and every record.
        let dir = tempfile::tempdir().expect("temp dir");
        run(dir.path(), config, ops)?;
    }
}
