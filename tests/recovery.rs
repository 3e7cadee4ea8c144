//! Recovery of a `DiskLog` from what crashes and damage leave on disk: torn tails, lost or stale
//! indexes, garbage, flipped bits, odd sizes, and `verify`'s view of each.
//!
//! Each test builds a log, closes it or drops it (a faithful crash), does surgery on the files,
//! and reopens.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::storage::*;
use girok::storage::disk::verify;
use girok::storage::{CommitLog, DiskConfig, DiskLog, Error, FsyncPolicy, LogConfig};

fn config() -> DiskConfig {
    small_config(FsyncPolicy::Never)
}

/// Writes the test values for `[0, n)` into a new log at `dir`, then closes it or drops it.
fn build(dir: &Path, n: u64, close: bool) {
    let log = open(dir, &config());
    fill(&log, 0, n);
    if close {
        log.close().expect("close");
    }
}

/// Reopens `dir` and checks that `[0, n)` reads back, `next` is `n`, appends continue densely,
/// and all of it survives one more close and reopen.
fn assert_recovers(dir: &Path, n: u64) {
    let log = open(dir, &config());
    assert_eq!(log.next_offset(), n, "next offset after reopen");
    assert_eq!(log.lowest_offset(), 0);
    assert_values(&log, 0..n);
    assert!(
        matches!(log.read(n), Err(Error::OffsetOutOfRange { offset, next, .. }) if offset == n && next == n)
    );
    fill(&log, n, n + 3);
    log.close().expect("close");
    let log = open(dir, &config());
    assert_eq!(log.next_offset(), n + 3);
    assert_values(&log, 0..n + 3);
    log.close().expect("close");
    assert!(verify(dir).expect("verify").is_ok());
}

#[test]
fn torn_tail_at_every_byte_of_the_last_frame_is_cut() {
    // Cutting the active store anywhere inside its last frame loses exactly that record.
    for close in [false, true] {
        let template = tempfile::tempdir().unwrap();
        let n = 20;
        build(template.path(), n, close);
        let active = *segment_bases(template.path()).last().unwrap();
        let store = store_file(template.path(), active);
        let last = *frame_positions(&store).last().unwrap();
        let end = file_len(&store);
        assert!(end - last > FRAME_HEADER, "the last frame should carry a payload");
        for cut in last..end {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template.path(), dir.path());
            set_len(&store_file(dir.path(), active), cut);
            let log = open(dir.path(), &config());
            assert_eq!(log.next_offset(), n - 1, "cut at {cut} (close {close})");
            drop(log);
            assert_eq!(file_len(&store_file(dir.path(), active)), last, "cut at {cut}");
            assert_recovers(dir.path(), n - 1);
        }
    }
}

/// The kinds of damage done to an index file.
#[derive(Clone, Copy, Debug)]
enum IndexDamage {
    ZeroFill,
    ShortenToHalf,
    ShortenMidEntry,
    Delete,
}

fn damage_index(path: &Path, damage: IndexDamage) {
    match damage {
        IndexDamage::ZeroFill => zero_fill(path),
        IndexDamage::ShortenToHalf => set_len(path, file_len(path) / 24 * 12),
        IndexDamage::ShortenMidEntry => set_len(path, file_len(path).saturating_sub(5)),
        IndexDamage::Delete => std::fs::remove_file(path).unwrap(),
    }
}

#[test]
fn damaged_indexes_are_rebuilt() {
    // A zero-filled, shortened or deleted index, of a sealed or of the active segment, after a
    // clean close or a crash, is rebuilt: every record reads back.
    let damages = [
        IndexDamage::ZeroFill,
        IndexDamage::ShortenToHalf,
        IndexDamage::ShortenMidEntry,
        IndexDamage::Delete,
    ];
    for close in [false, true] {
        for damage in damages {
            for sealed in [true, false] {
                let dir = tempfile::tempdir().unwrap();
                let n = 30;
                build(dir.path(), n, close);
                let bases = segment_bases(dir.path());
                assert!(bases.len() >= 3, "want several segments, got {bases:?}");
                let base = if sealed { bases[1] } else { *bases.last().unwrap() };
                damage_index(&index_file(dir.path(), base), damage);
                let what = format!("{damage:?} sealed={sealed} close={close}");
                let log = open(dir.path(), &config());
                assert_eq!(log.next_offset(), n, "{what}");
                drop(log);
                assert_recovers(dir.path(), n);
            }
        }
    }
}

#[test]
fn garbage_after_the_active_store_is_cut() {
    // Bytes after the last valid frame of the active segment are a torn tail: cut on reopen.
    let garbage: [&[u8]; 3] = [&[0u8; 100], &[0xab; 7], &[0xff; 40]];
    for bytes in garbage {
        let dir = tempfile::tempdir().unwrap();
        let n = 20;
        build(dir.path(), n, false);
        let active = *segment_bases(dir.path()).last().unwrap();
        let store = store_file(dir.path(), active);
        let len = file_len(&store);
        append_bytes(&store, bytes);
        let report = verify(dir.path()).unwrap();
        assert!(report.is_ok(), "a torn tail is not corruption: {report}");
        assert_eq!(report.segments.last().unwrap().torn_tail_bytes, bytes.len() as u64);
        let log = open(dir.path(), &config());
        assert_eq!(log.next_offset(), n);
        drop(log);
        assert_eq!(file_len(&store), len, "the garbage was not cut");
        assert_recovers(dir.path(), n);
    }
}

#[test]
fn a_duplicate_last_frame_in_the_active_store_is_cut() {
    // A copy of the last frame after it names the wrong offset, so it is a torn tail, not a record.
    let dir = tempfile::tempdir().unwrap();
    let n = 20;
    build(dir.path(), n, false);
    let active = *segment_bases(dir.path()).last().unwrap();
    let store = store_file(dir.path(), active);
    let last = *frame_positions(&store).last().unwrap();
    let bytes = std::fs::read(&store).unwrap();
    append_bytes(&store, &bytes[last as usize..]);
    assert_recovers(dir.path(), n);
}

#[test]
fn garbage_after_a_sealed_store_never_renumbers() {
    // Garbage after a sealed segment's last frame leaves every record readable with its own
    // offset, is left in place, and verify reports it.
    for close in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let n = 30;
        build(dir.path(), n, close);
        let base = segment_bases(dir.path())[1];
        let store = store_file(dir.path(), base);
        append_bytes(&store, &[0x5a; 61]);
        let len = file_len(&store);
        let log = open(dir.path(), &config());
        assert_eq!(log.next_offset(), n);
        assert_values(&log, 0..n);
        fill(&log, n, n + 2);
        drop(log);
        assert_eq!(file_len(&store), len, "a sealed store must not be modified");
        let report = verify(dir.path()).unwrap();
        assert!(!report.is_ok(), "garbage inside the log should be reported: {report}");
        let segment = report.segments.iter().find(|s| s.base == base).unwrap();
        assert!(segment.corrupt.is_empty(), "no record is damaged: {segment:?}");
        let log = open(dir.path(), &config());
        assert_values(&log, 0..n + 2);
    }
}

/// Where to flip a bit inside a frame.
#[derive(Clone, Copy, Debug)]
enum FlipAt {
    Payload,
    OffsetField,
    LengthField,
    /// The length's top byte: the frame then claims to run far past the end of the file.
    LengthHighByte,
}

#[test]
fn a_flipped_bit_mid_log_reads_as_corrupt_at_exactly_that_offset() {
    // A bit flipped in a frame of a sealed segment (any frame) or of the active one (before its
    // last), with or without its index, makes exactly that offset read as Corrupt, forever, and
    // nothing else changes.
    for (sealed, frame) in [(true, 0), (true, 1), (true, 2), (false, 0), (false, 1)] {
        for drop_index in [false, true] {
            for flip in
                [FlipAt::Payload, FlipAt::OffsetField, FlipAt::LengthField, FlipAt::LengthHighByte]
            {
                for close in [false, true] {
                    for fsync in [FsyncPolicy::Never, FsyncPolicy::Always] {
                        let what = format!(
                            "sealed={sealed} frame={frame} drop_index={drop_index} {flip:?} \
                             close={close} {fsync:?}"
                        );
                        let config = small_config(fsync);
                        flipped_bit_case(sealed, frame, drop_index, flip, close, &config, &what);
                    }
                }
            }
        }
    }
}

fn flipped_bit_case(
    sealed: bool,
    frame: usize,
    drop_index: bool,
    flip: FlipAt,
    close: bool,
    config: &DiskConfig,
    what: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    // Values of 40 bytes: three frames per 256-byte segment, so the victim has neighbours.
    let log = open(dir.path(), config);
    let value = |o: u64| Bytes::from(vec![o as u8; 40]);
    let n = 21;
    for o in 0..n {
        log.append(value(o)).unwrap();
    }
    if close {
        log.close().unwrap();
    }
    drop(log);
    let bases = segment_bases(dir.path());
    let base = if sealed { bases[1] } else { *bases.last().unwrap() };
    let store = store_file(dir.path(), base);
    let frames = frame_positions(&store);
    assert!(frames.len() >= 3, "{what}: want three frames in the segment, got {}", frames.len());
    let victim = base + frame as u64;
    let at = frames[frame]
        + match flip {
            FlipAt::Payload => FRAME_HEADER + 10,
            FlipAt::OffsetField => 0,
            FlipAt::LengthField => 16,
            FlipAt::LengthHighByte => 19,
        };
    flip_bit(&store, at);
    if drop_index {
        std::fs::remove_file(index_file(dir.path(), base)).unwrap();
    }

    let report = verify(dir.path()).unwrap();
    assert!(!report.is_ok(), "{what}: verify missed the flip");
    let segment = report.segments.iter().find(|s| s.base == base).unwrap();
    assert_eq!(segment.corrupt, vec![victim..victim + 1], "{what}");

    for round in 0..2 {
        let log = open(dir.path(), config);
        let next = n + round * 2;
        assert_eq!(log.next_offset(), next, "{what}: next offset moved");
        for o in 0..next {
            match log.read(o) {
                Err(Error::Corrupt { offset, .. }) if o == victim => assert_eq!(offset, victim),
                Ok(record) if o != victim => {
                    assert_eq!((record.offset, record.value), (o, value(o)), "{what}")
                }
                other => panic!("{what}: read {o} gave {other:?}"),
            }
        }
        let before = log.read_batch(victim - 1, 10, usize::MAX).unwrap();
        assert_eq!(before.len(), 1, "{what}: a batch must stop before the corrupt record");
        let after = log.read_batch(victim + 1, 10, usize::MAX).unwrap();
        assert_eq!(after[0].value, value(victim + 1), "{what}: the record after is intact");
        assert!(matches!(log.read_batch(victim, 10, usize::MAX), Err(Error::Corrupt { .. })));
        for o in next..next + 2 {
            assert_eq!(log.append(value(o)).unwrap(), o, "{what}");
        }
        log.close().unwrap();
    }
}

#[test]
fn a_record_larger_than_a_segment_gets_its_own() {
    // A record (or batch) bigger than max_store_bytes is stored alone in a fresh segment, the
    // next record starts another one, and nothing wedges. A batch is one write, so its records
    // share a segment.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &config());
    fill(&log, 0, 3);
    let big = Bytes::from(vec![9u8; 1000]);
    assert_eq!(log.append(big.clone()).unwrap(), 3);
    assert_eq!(log.append_batch(&[big.clone(), big.clone()]).unwrap(), 4..6);
    fill(&log, 6, 10);
    let bases = segment_bases(dir.path());
    assert_eq!(bases, vec![0, 3, 4, 6], "segments: a big record and a big batch each alone");
    for o in 3..6 {
        assert_eq!(log.read(o).unwrap().value, big);
    }
    drop(log);
    let log = open(dir.path(), &config());
    assert_eq!(log.next_offset(), 10);
    for o in 3..6 {
        assert_eq!(log.read(o).unwrap().value, big);
    }
    assert_values(&log, 0..3);
    assert_values(&log, 6..10);
}

#[test]
fn an_index_size_not_a_multiple_of_the_entry_size_does_not_wedge() {
    // max_index_bytes of 3 entries and 7 bytes rolls every 3 records and keeps appending.
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig { max_store_bytes: 1 << 20, max_index_bytes: 3 * 12 + 7, ..config() };
    let log = DiskLog::open(dir.path(), config.clone()).unwrap();
    fill(&log, 0, 40);
    assert_eq!(log.segment_count(), 14);
    log.append_batch(&[Bytes::new(), Bytes::new(), Bytes::new(), Bytes::new(), Bytes::new()])
        .unwrap();
    drop(log);
    let log = DiskLog::open(dir.path(), config).unwrap();
    assert_eq!(log.next_offset(), 45);
    assert_values(&log, 0..40);
    fill(&log, 45, 50);
    log.close().unwrap();
    assert!(verify(dir.path()).unwrap().is_ok());
}

#[test]
fn many_small_segments_hold_two_descriptors_each_and_release_them() {
    // Thousands of records in 1 KiB segments open two descriptors per segment, no more, and
    // give all of them back on close.
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig { max_store_bytes: 1024, max_index_bytes: 1024, ..config() };
    let log = DiskLog::open(dir.path(), config.clone()).unwrap();
    let n = 3000;
    let values: Vec<Bytes> = (0..n).map(value_for).collect();
    for chunk in values.chunks(10) {
        log.append_batch(chunk).unwrap();
    }
    let segments = log.segment_count();
    assert!(segments > 100, "only {segments} segments");
    let fds = fds_into(dir.path());
    assert!(fds <= 2 * segments + 1, "{fds} descriptors for {segments} segments");
    log.close().unwrap();
    drop(log);
    assert_eq!(fds_into(dir.path()), 0, "descriptors leaked after close");
    let log = DiskLog::open(dir.path(), config).unwrap();
    assert_values(&log, 0..n);
}

#[test]
fn truncating_every_sealed_segment_leaves_a_working_log() {
    // Dropping every sealed segment keeps the active one readable and appendable, across reopen.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &config());
    fill(&log, 0, 30);
    let active = *segment_bases(dir.path()).last().unwrap();
    assert_eq!(log.truncate(u64::MAX).unwrap(), active);
    assert_eq!(segment_bases(dir.path()), vec![active]);
    assert_values(&log, active..30);
    fill(&log, 30, 40);
    assert_eq!(log.truncate(u64::MAX).unwrap(), *segment_bases(dir.path()).last().unwrap());
    let lowest = log.lowest_offset();
    log.close().unwrap();
    let log = open(dir.path(), &config());
    assert_eq!((log.lowest_offset(), log.next_offset()), (lowest, 40));
    assert_values(&log, lowest..40);
    fill(&log, 40, 45);
    assert_eq!(log.truncate(0).unwrap(), lowest);
}

#[test]
fn reopen_keeps_lowest_and_next_and_ignores_initial_offset() {
    // Reopening a log that starts at an initial offset keeps its bounds, whatever the config says.
    let dir = tempfile::tempdir().unwrap();
    let first =
        DiskConfig { log: LogConfig { initial_offset: 500, ..LogConfig::default() }, ..config() };
    let log = DiskLog::open(dir.path(), first).unwrap();
    for o in 500..530 {
        assert_eq!(log.append(value_for(o)).unwrap(), o);
    }
    let lowest = log.truncate(510).unwrap();
    assert!(lowest > 500);
    log.close().unwrap();
    let log = open(dir.path(), &config());
    assert_eq!((log.lowest_offset(), log.next_offset()), (lowest, 530));
    assert_values(&log, lowest..530);
}

#[test]
fn verify_reports_clean_corrupt_and_torn_logs() {
    // verify says OK on a clean log, names the offset of a flipped bit, and calls a torn tail
    // what it is.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 30, true);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records(), 30);
    assert!(report.to_string().ends_with("OK"), "{report}");

    let active = *segment_bases(dir.path()).last().unwrap();
    let store = store_file(dir.path(), active);
    append_bytes(&store, &[1, 2, 3]);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.segments.last().unwrap().torn_tail_bytes, 3);
    assert!(report.to_string().contains("torn tail of 3 bytes"), "{report}");

    let base = segment_bases(dir.path())[0];
    let frames = frame_positions(&store_file(dir.path(), base));
    flip_bit(&store_file(dir.path(), base), frames[2] + 5);
    let report = verify(dir.path()).unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.segments[0].corrupt, vec![base + 2..base + 3]);
    assert!(report.to_string().contains("CORRUPT offsets [2, 3)"), "{report}");
}

#[test]
fn a_locked_directory_cannot_be_opened_twice() {
    // A second open of a directory in use fails with Locked; once the first is gone it opens.
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), &config());
    fill(&log, 0, 3);
    assert!(matches!(DiskLog::open(dir.path(), config()), Err(Error::Locked(_))));
    drop(log);
    let log = open(dir.path(), &config());
    assert_values(&log, 0..3);
    log.close().unwrap();
    let log = open(dir.path(), &config());
    assert_eq!(log.next_offset(), 3);
}

#[test]
fn a_crash_keeps_every_acknowledged_record() {
    // A log dropped without close, under every policy, reopens with every acknowledged record.
    let policies = [
        FsyncPolicy::Never,
        FsyncPolicy::Always,
        FsyncPolicy::Interval(std::time::Duration::from_millis(1)),
    ];
    for fsync in policies {
        let dir = tempfile::tempdir().unwrap();
        let config = small_config(fsync);
        let mut next = 0;
        for _ in 0..4 {
            let log = DiskLog::open(dir.path(), config.clone()).unwrap();
            assert_eq!(log.next_offset(), next, "{fsync:?}");
            assert_values(&log, 0..next);
            fill(&log, next, next + 25);
            next += 25;
            drop(log);
        }
        let log = DiskLog::open(dir.path(), config).unwrap();
        assert_values(&log, 0..next);
    }
}

#[test]
fn a_segment_whose_creation_was_cut_short_is_recreated() {
    // A crash between creating a new segment's store and writing its header leaves an empty or
    // zeroed file; reopening recreates it and appends continue there.
    for content in [&[][..], &[0u8; 10][..], &[0u8; 24][..]] {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), 20, false);
        std::fs::write(store_file(dir.path(), 20), content).unwrap();
        let report = verify(dir.path()).unwrap();
        assert!(report.is_ok(), "what a crash leaves is not corruption: {report}");
        assert_recovers(dir.path(), 20);
    }
}

#[test]
fn dropping_an_interval_synced_log_releases_its_directory_at_once() {
    // The background syncer must not keep a dropped log's directory locked: reopening right
    // after a drop (a crash in tests, a restart in an embedder) succeeds every time.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(FsyncPolicy::Interval(std::time::Duration::from_millis(1)));
    for round in 0..300 {
        let log = DiskLog::open(dir.path(), config.clone())
            .unwrap_or_else(|e| panic!("reopen {round} failed: {e}"));
        log.append(value_for(round)).unwrap();
        drop(log);
    }
}

#[test]
fn a_batch_larger_than_an_index_into_an_empty_segment_stays_one_segment() {
    // A batch with more records than an index holds, landing in an empty segment, grows that
    // segment's index instead of opening a second segment at the same base, so a truncation
    // afterwards neither fails nor deletes live files.
    let dir = tempfile::tempdir().unwrap();
    let config = DiskConfig { max_store_bytes: 64, max_index_bytes: 24, ..config() };
    let log = DiskLog::open(dir.path(), config.clone()).unwrap();
    assert_eq!(log.append_batch(&[Bytes::new(), Bytes::new(), Bytes::new()]).unwrap(), 0..3);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.append(value_for(3)).unwrap(), 3);
    assert_eq!(log.truncate(2).unwrap(), 0);
    assert_eq!(log.truncate(3).unwrap(), 3);
    assert_values(&log, 3..4);
    drop(log);
    let log = DiskLog::open(dir.path(), config).unwrap();
    assert_eq!((log.lowest_offset(), log.next_offset()), (3, 4));
    assert_values(&log, 3..4);
}

#[test]
fn a_lost_sealed_segment_reads_as_corrupt_and_is_never_renumbered() {
    // When a sealed segment's files disappear from the middle of the log, its offsets read as
    // Corrupt, the others keep theirs, and verify names the gap.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 30, true);
    let bases = segment_bases(dir.path());
    let (lost, after) = (bases[1], bases[2]);
    std::fs::remove_file(store_file(dir.path(), lost)).unwrap();
    std::fs::remove_file(index_file(dir.path(), lost)).unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.segments[0].corrupt, vec![lost..after], "{report}");
    let log = open(dir.path(), &config());
    assert_eq!((log.lowest_offset(), log.next_offset()), (0, 30));
    for o in 0..30 {
        match log.read(o) {
            Err(Error::Corrupt { offset, .. }) if (lost..after).contains(&o) => {
                assert_eq!(offset, o)
            }
            Ok(record) if !(lost..after).contains(&o) => assert_eq!(record.value, value_for(o)),
            other => panic!("read {o} gave {other:?}"),
        }
    }
    fill(&log, 30, 32);
}

#[test]
fn a_zeroed_run_of_frames_mid_log_reads_as_corrupt_exactly_there() {
    // A run of zeroed bytes (a lost page) across several frames in the middle of a segment,
    // sealed or active, with or without its index, makes exactly those offsets corrupt.
    for sealed in [true, false] {
        for drop_index in [false, true] {
            let what = format!("sealed={sealed} drop_index={drop_index}");
            let dir = tempfile::tempdir().unwrap();
            let config = DiskConfig { max_store_bytes: 4096, max_index_bytes: 1024, ..config() };
            let value = |o: u64| Bytes::from(vec![o as u8 | 1; 40]);
            let log = DiskLog::open(dir.path(), config.clone()).unwrap();
            for o in 0..100 {
                log.append(value(o)).unwrap();
            }
            drop(log);
            let bases = segment_bases(dir.path());
            let base = if sealed { bases[0] } else { *bases.last().unwrap() };
            let store = store_file(dir.path(), base);
            let frames = frame_positions(&store);
            assert!(frames.len() > 20, "{what}");
            let (from, to) = (frames[10], frames[14] + 10);
            let file = std::fs::OpenOptions::new().write(true).open(&store).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&file, &vec![0u8; (to - from) as usize], from)
                .unwrap();
            if drop_index {
                std::fs::remove_file(index_file(dir.path(), base)).unwrap();
            }
            let damaged = base + 10..base + 15;
            let report = verify(dir.path()).unwrap();
            let segment = report.segments.iter().find(|s| s.base == base).unwrap();
            assert_eq!(segment.corrupt, vec![damaged.clone()], "{what}");
            let log = DiskLog::open(dir.path(), config).unwrap();
            assert_eq!(log.next_offset(), 100, "{what}");
            for o in 0..100 {
                match log.read(o) {
                    Err(Error::Corrupt { offset, .. }) if damaged.contains(&o) => {
                        assert_eq!(offset, o)
                    }
                    Ok(record) if !damaged.contains(&o) => {
                        assert_eq!(record.value, value(o), "{what}")
                    }
                    other => panic!("{what}: read {o} gave {other:?}"),
                }
            }
        }
    }
}

/// A 40-byte value per offset: three frames per 256-byte segment, so segments have neighbours.
fn value40(offset: u64) -> Bytes {
    Bytes::from(vec![offset as u8; 40])
}

/// Writes `[0, n)` of [`value40`] into a new log at `dir` and closes it.
fn closed_log_of_value40(dir: &Path, n: u64) {
    let log = open(dir, &config());
    for o in 0..n {
        log.append(value40(o)).unwrap();
    }
    log.close().unwrap();
}

/// Every offset in `[0, n)` reads its [`value40`], except that offsets in `corrupt` may read as
/// Corrupt (and nothing else does).
fn assert_reads_value40_or_corrupt_in(log: &DiskLog, n: u64, corrupt: std::ops::Range<u64>) {
    for o in 0..n {
        match log.read(o) {
            Err(Error::Corrupt { offset, .. }) => {
                assert!(corrupt.contains(&offset), "offset {offset} read as corrupt")
            }
            Ok(record) => assert_eq!(record.value, value40(o)),
            Err(other) => panic!("offset {o}: {other}"),
        }
    }
}

#[test]
fn a_damaged_index_entry_reads_as_corrupt_and_never_runs_past_the_store() {
    // A middle entry of a sealed index pointing far past its store (a flipped high bit) passes
    // the cheap open-time check; reads of the offsets around it fail as Corrupt, they do not
    // read (or allocate) past the store, and every other record reads fine.
    let dir = tempfile::tempdir().unwrap();
    closed_log_of_value40(dir.path(), 12);
    let base = segment_bases(dir.path())[1];
    // Entry 1's position field is bytes 16..24; its top byte is 23.
    flip_bit(&index_file(dir.path(), base), 23);
    let log = open(dir.path(), &config());
    assert_reads_value40_or_corrupt_in(&log, 12, base..base + 2);
    assert!(matches!(log.read(base + 1), Err(Error::Corrupt { .. })));
}

#[test]
fn a_damaged_sealed_store_header_reads_as_corrupt_without_renumbering() {
    // A sealed store whose header is not girok's no longer stops the log from opening: its
    // offsets read as Corrupt, the others read fine, and the next offset is unchanged.
    let dir = tempfile::tempdir().unwrap();
    closed_log_of_value40(dir.path(), 12);
    let bases = segment_bases(dir.path());
    let (base, next_base) = (bases[1], bases[2]);
    flip_bit(&store_file(dir.path(), base), 0);
    let log = open(dir.path(), &config());
    assert_eq!(log.next_offset(), 12);
    assert_reads_value40_or_corrupt_in(&log, 12, base..next_base);
    assert!(matches!(log.read(base), Err(Error::Corrupt { .. })));
    assert!(!verify(dir.path()).unwrap().is_ok());
}

#[test]
fn files_that_only_look_like_segments_are_ignored() {
    // A stray file whose name parses as a number only loosely (a sign, too few or too many
    // digits) is not a segment: the log opens as if it were not there.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 30, true);
    for stray in
        ["+0000000000000000005.store", "0000000000000000005.store", "000000000000000000005.index"]
    {
        std::fs::write(dir.path().join(stray), b"not a segment").unwrap();
    }
    assert_recovers(dir.path(), 30);
}
