//! Unit and reopen tests of the Raft WAL, on real files in temporary directories.

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::storage::disk::fs::OsFiles;

fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, payload: Bytes::from(format!("entry {index} of term {term}")) }
}

fn entries(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

/// Appends one entry at a time, so small segments roll.
fn append_each(wal: &Wal, entries: Vec<Entry>) {
    for entry in entries {
        wal.append([entry]).unwrap();
    }
}

fn small() -> WalConfig {
    WalConfig { segment_bytes: 200, first_index: 0 }
}

fn segment_files(dir: &Path) -> Vec<u64> {
    let mut firsts: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| segment::parse_name(e.unwrap().file_name().to_str()?))
        .collect();
    firsts.sort_unstable();
    firsts
}

#[test]
fn appended_entries_are_readable_at_once_and_after_a_reopen() {
    // Append makes entries readable; close and reopen keeps them, across several segments.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!((wal.first_index().unwrap(), wal.next_index().unwrap()), (0, 0));
    assert_eq!(wal.last().unwrap(), None);
    for i in 0..20 {
        wal.append([entry(i, 1 + i / 10)]).unwrap();
        assert_eq!(wal.read(i..=i).unwrap(), vec![entry(i, 1 + i / 10)]);
    }
    assert!(segment_files(dir.path()).len() > 2, "rolled: {:?}", segment_files(dir.path()));
    assert_eq!(wal.last().unwrap(), Some(LogId { index: 19, term: 2 }));
    wal.close().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    let all = wal.read(..).unwrap();
    assert_eq!(all.len(), 20);
    assert!(all.iter().enumerate().all(|(i, e)| *e == entry(i as u64, 1 + i as u64 / 10)));
    assert_eq!(wal.read(5..8).unwrap(), entries(5..8, 1));
    assert_eq!(wal.read(18..100).unwrap().len(), 2, "reads stop at the end");
}

#[test]
fn an_append_that_does_not_continue_the_log_is_refused() {
    // Indexes are dense and terms never go back; a refused append changes nothing.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    wal.append(entries(0..3, 2)).unwrap();
    assert!(matches!(wal.append([entry(4, 2)]), Err(WalError::Gap { expected: 3, got: 4 })));
    assert!(matches!(wal.append([entry(3, 1)]), Err(WalError::TermRegression { .. })));
    wal.append([entry(3, 3)]).unwrap();
    assert_eq!(wal.next_index().unwrap(), 4);
}

#[test]
fn a_flush_callback_is_called_once_after_the_sync() {
    // Group commit: every callback queued completes with Ok, each exactly once.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..50 {
        let tx = tx.clone();
        wal.append_then([entry(i, 1)], move |r| tx.send((i, r.is_ok())).unwrap()).unwrap();
    }
    let mut seen: Vec<(u64, bool)> =
        (0..50).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..50).map(|i| (i, true)).collect::<Vec<_>>());
    drop(wal);
    assert!(rx.try_recv().is_err(), "no callback twice");
}

#[test]
fn truncation_removes_the_suffix_for_good() {
    // Entries after the kept index are gone, also after a reopen, and the log continues there.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    wal.append(entries(0..30, 1)).unwrap();
    wal.truncate_after(Some(11)).unwrap();
    assert_eq!(wal.next_index().unwrap(), 12);
    assert_eq!(wal.last().unwrap(), Some(LogId { index: 11, term: 1 }));
    assert_eq!(wal.read(..).unwrap(), entries(0..12, 1));
    wal.append(entries(12..15, 2)).unwrap();
    wal.close().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    let mut expected = entries(0..12, 1);
    expected.extend(entries(12..15, 2));
    assert_eq!(wal.read(..).unwrap(), expected);
    wal.truncate_after(None).unwrap();
    assert_eq!((wal.next_index().unwrap(), wal.last().unwrap()), (0, None));
    assert!(wal.read(..).unwrap().is_empty());
    wal.truncate_after(Some(40)).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.next_index().unwrap(), 0);
}

#[test]
fn a_truncation_interrupted_by_a_crash_is_finished_at_open() {
    // The truncation target is recorded first; recovery completes the cut.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    wal.append(entries(0..10, 1)).unwrap();
    wal.close().unwrap();
    let mut stored = Stored::load(dir.path()).unwrap().unwrap();
    stored.truncate_from = Some(4);
    stored.save(dir.path(), &OsFiles).unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.read(..).unwrap(), entries(0..4, 1));
    assert_eq!(Stored::load(dir.path()).unwrap().unwrap().truncate_from, None);
}

#[test]
fn a_purge_persists_the_start_and_deletes_whole_segments() {
    // After a purge the log starts after the purged entry, also after a reopen.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    append_each(&wal, entries(0..30, 1));
    let before = segment_files(dir.path()).len();
    wal.purge_upto(LogId { index: 14, term: 1 }).unwrap();
    assert!(segment_files(dir.path()).len() < before);
    assert_eq!(wal.first_index().unwrap(), 15);
    assert_eq!(wal.read(..).unwrap(), entries(15..30, 1));
    assert!(matches!(wal.truncate_after(Some(3)), Err(WalError::Purged { index: 3, first: 15 })));
    wal.purge_upto(LogId { index: 2, term: 1 }).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.first_index().unwrap(), 15);
    assert_eq!(wal.purged().unwrap(), Some(LogId { index: 14, term: 1 }));
    assert_eq!(wal.read(0..20).unwrap(), entries(15..20, 1));
}

#[test]
fn a_purge_past_the_end_restarts_the_log_after_it() {
    // Purging beyond the last entry (a snapshot install) empties the log, which continues after
    // the purged id, even though no segment is left.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    wal.append(entries(0..5, 1)).unwrap();
    wal.purge_upto(LogId { index: 99, term: 4 }).unwrap();
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(wal.last().unwrap(), Some(LogId { index: 99, term: 4 }));
    drop(wal);
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!((wal.first_index().unwrap(), wal.next_index().unwrap()), (100, 100));
    assert_eq!(wal.last().unwrap(), Some(LogId { index: 99, term: 4 }));
    wal.append(entries(100..103, 4)).unwrap();
    assert_eq!(wal.read(..).unwrap(), entries(100..103, 4));
}

#[test]
fn a_new_wal_can_start_at_any_index() {
    // The first index of a new WAL is configurable and kept across reopens, entries or none.
    let dir = tempfile::tempdir().unwrap();
    let config = WalConfig { first_index: 42, ..small() };
    drop(Wal::open(dir.path(), config).unwrap());
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!((wal.first_index().unwrap(), wal.next_index().unwrap()), (42, 42));
    assert!(matches!(wal.append([entry(0, 1)]), Err(WalError::Gap { expected: 42, got: 0 })));
    wal.append(entries(42..44, 1)).unwrap();
    wal.close().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.read(..).unwrap(), entries(42..44, 1));
}

#[test]
fn metadata_is_saved_durably_and_reopened() {
    // save_meta keeps every field across a reopen.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(wal.meta().unwrap(), Meta::default());
    let meta = Meta {
        node_id: 2,
        cluster_id: Bytes::from_static(b"abc"),
        vote: Some(Bytes::from_static(b"term 3 for 2, committed")),
        committed: Some(LogId { index: 7, term: 3 }),
    };
    wal.save_meta(&meta).unwrap();
    drop(wal);
    assert_eq!(Wal::open(dir.path(), small()).unwrap().meta().unwrap(), meta);
}

#[test]
fn a_torn_tail_is_cut_off_at_open() {
    // Half a frame at the end of the last segment is a torn write: recovery drops it and the
    // log continues from the last whole entry.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalConfig::default()).unwrap();
    wal.append(entries(0..5, 1)).unwrap();
    wal.close().unwrap();
    let path = dir.path().join(segment::file_name(0));
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len - 3).unwrap();
    drop(file);
    let wal = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(wal.read(..).unwrap(), entries(0..4, 1));
    wal.append([entry(4, 2)]).unwrap();
    wal.close().unwrap();
    let wal = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(wal.last().unwrap(), Some(LogId { index: 4, term: 2 }));
}

#[test]
fn damage_in_a_sealed_segment_is_corruption() {
    // Only the last segment can be torn by a crash; a bad frame before it is reported.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    append_each(&wal, entries(0..20, 1));
    wal.close().unwrap();
    let path = dir.path().join(segment::file_name(0));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(Wal::open(dir.path(), small()), Err(WalError::Corrupt(_))));
}

#[test]
fn a_wal_directory_opens_once_at_a_time() {
    // Two writers would interleave frames: the second open is refused until the first closes.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), small()).unwrap();
    assert!(matches!(Wal::open(dir.path(), small()), Err(WalError::Locked(_))));
    drop(wal);
    Wal::open(dir.path(), small()).unwrap();
}
