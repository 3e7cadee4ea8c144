//! Recovery: opening a log's segments from their files after a clean stop or a crash.
//!
//! - A **sealed** segment's index is checked cheaply (its length, its first and last entry
//!   against the store) and rebuilt from the store if that fails. Offsets whose frames are damaged
//!   or missing read as corrupt; nothing is renumbered.
//! - The **active** (last) segment's index is trusted as far as it checks out; the store is
//!   scanned forward from the last trusted entry (rebuilding the index), and a torn tail is cut
//!   back to the end of the last valid frame, the cut synced.
//! - A last segment whose creation was cut short (a store shorter than its header, or all zeros)
//!   is created again.

use std::io;
use std::path::Path;

use super::dir::{index_path, store_path};
use super::fs::{FileOpener, SegmentFile};
use super::index::{Index, grown_capacity};
use super::scan::{all_zeros, scan};
use super::segment::{Segment, Span, Times};
use super::store::{FRAME_HEADER_BYTES, FrameHeader, STORE_HEADER_BYTES, Store, check_header};
use crate::storage::{Error, Result};

/// Opens a sealed segment that must cover `[base, next_base)`. Its index is checked cheaply
/// (length, first and last entry against the store) and rebuilt from the store if that fails.
/// Offsets whose frames are damaged or missing read as corrupt.
pub(super) fn open_sealed(
    dir: &Path,
    base: u64,
    next_base: u64,
    opener: &dyn FileOpener,
) -> Result<Segment> {
    let mut store = match open_store(dir, base, opener) {
        Ok(store) => store,
        Err(Error::Format { file, detail }) => {
            // Never renumber: the segment keeps its offsets, and each reads as corrupt.
            tracing::error!(file, detail, "damaged store header: its records read as corrupt");
            let span = Span { base, entries: 0, end: next_base, store_size: 0 };
            return Ok(Segment::sealed(span));
        }
        Err(err) => return Err(err),
    };
    let expected = next_base - base;
    let index = match Index::open_existing(&index_path(dir, base)) {
        Ok(index) if sealed_index_checks(&store, &index, base, expected)? => index,
        Ok(_) | Err(_) => {
            tracing::warn!(base, "rebuilding the index of a sealed segment from its store");
            let found =
                scan(store.file().as_ref(), STORE_HEADER_BYTES, store.size(), base, expected)?;
            if found.positions.len() as u64 != expected || !found.corrupt.is_empty() {
                tracing::error!(
                    base,
                    found = found.positions.len(),
                    expected,
                    "sealed segment is damaged: its missing or corrupt records will read as corrupt"
                );
            }
            store.limit(found.valid_end);
            Index::rewrite(&index_path(dir, base), &found.positions)?
        }
    };
    let span = Span { base, entries: index.capacity(), end: next_base, store_size: store.size() };
    let times = record_times(&store, &index, span.entries);
    // The files close here: a sealed segment's are opened again only while reads need them.
    Ok(Segment::sealed(span).with_times(times))
}

/// Opens the last segment of a log for appending: trusts the index as far as it checks out,
/// scans the store forward from the last trusted entry (rebuilding the index), and cuts a
/// torn tail back to the end of the last valid frame, syncing the cut. The index holds at least
/// `start` entries, grown as appends would grow it (doubling, up to `max`) when its records need
/// more: never to `max` for a few records.
pub(super) fn open_active(
    dir: &Path,
    base: u64,
    (start, max): (u64, u64),
    opener: &dyn FileOpener,
) -> Result<Segment> {
    let path = store_path(dir, base);
    let mut store = match open_store(dir, base, opener) {
        Ok(store) => store,
        Err(Error::Format { .. }) if unborn(opener, &path)? => {
            tracing::warn!(base, "recreating a segment whose creation was cut short");
            Store::create(opener, &path, base)?
        }
        Err(err) => return Err(err),
    };
    let mut index = Index::open(&index_path(dir, base), start)?;
    let trusted = trusted_entries(&store, &index, base)?;
    let from = match trusted {
        0 => STORE_HEADER_BYTES,
        n => {
            let pos = index.position(n - 1).expect("trusted entry");
            pos + frame_header(&store, pos)?.frame_len()
        }
    };
    let found = scan(store.file().as_ref(), from, store.size(), base + trusted, u64::MAX)?;
    let entries = trusted + found.positions.len() as u64;
    if entries > index.capacity() {
        index.grow(grown_capacity(start, entries, max))?;
    }
    for (i, pos) in found.positions.iter().enumerate() {
        index.set(trusted + i as u64, *pos);
    }
    index.clear_from(entries);
    if found.valid_end < store.size() {
        let cut_bytes = store.size() - found.valid_end;
        if all_zeros(store.file().as_ref(), found.valid_end, store.size())? {
            // Space zero-filled ahead under `always` and never written: every crash leaves some.
            tracing::debug!(base, cut_bytes, "cutting preallocated zeros after the last frame");
        } else {
            tracing::warn!(
                base,
                cut_bytes,
                "cutting the active segment after its last valid frame (a torn write)"
            );
        }
        store.cut(found.valid_end)?;
    } else {
        // Records a crash left written but unsynced are about to become readable: make them
        // durable first, so no reader sees a record a power cut could still take back.
        store.file().sync_data()?;
    }
    if !found.corrupt.is_empty() {
        tracing::error!(base, corrupt = ?found.corrupt, "active segment has corrupt records");
    }
    let times = record_times(&store, &index, entries);
    Ok(Segment::active(base, store, index, entries).with_times(times))
}

/// The timestamps of the first and last of a segment's `entries` records, from their frame
/// headers (two small reads, never a scan); `None` when it holds none or either is unreadable.
fn record_times(store: &Store, index: &Index, entries: u64) -> Option<Times> {
    let time_at = |i: u64| {
        let pos = index.position(i)?;
        (pos.saturating_add(FRAME_HEADER_BYTES) <= store.size())
            .then(|| frame_header(store, pos).ok().map(|h| h.timestamp_ms))?
    };
    let last = entries.checked_sub(1)?;
    Some(Times { oldest_ms: time_at(0)?, newest_ms: time_at(last)? })
}

/// Opens a store and checks its header.
fn open_store(dir: &Path, base: u64, opener: &dyn FileOpener) -> Result<Store> {
    let path = store_path(dir, base);
    let store = Store::open(opener, &path)?;
    let format = |detail: String| Error::Format { file: file_name(&path), detail };
    if store.size() < STORE_HEADER_BYTES {
        return Err(format("shorter than a store header".into()));
    }
    let header = store.read(0, STORE_HEADER_BYTES)?;
    check_header(&header, base).map_err(format)?;
    Ok(store)
}

/// Whether a store file is a segment whose creation never finished: shorter than a header, or
/// nothing but zeros.
fn unborn(opener: &dyn FileOpener, path: &Path) -> io::Result<bool> {
    is_unborn(opener.open(path, false)?.as_ref())
}

/// Whether `file` is a store whose creation never finished (see [`unborn`]); `verify` uses the
/// same rule, so what the next open recreates is never reported as corruption.
pub(super) fn is_unborn(file: &dyn SegmentFile) -> io::Result<bool> {
    let len = file.size()?;
    if len > 64 * 1024 {
        return Ok(false);
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(len < STORE_HEADER_BYTES || bytes.iter().all(|&b| b == 0))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn frame_header(store: &Store, pos: u64) -> io::Result<FrameHeader> {
    Ok(FrameHeader::decode(&store.read(pos, FRAME_HEADER_BYTES)?))
}

/// Whether the frame at `pos` is whole, checks, and holds `offset`.
fn frame_checks(store: &Store, pos: u64, offset: u64) -> io::Result<Option<FrameHeader>> {
    if pos.saturating_add(FRAME_HEADER_BYTES) > store.size() {
        return Ok(None);
    }
    let header = frame_header(store, pos)?;
    if header.offset != offset || pos.saturating_add(header.frame_len()) > store.size() {
        return Ok(None);
    }
    let frame = store.read(pos, header.frame_len())?;
    let (head, payload) = frame.split_at(FRAME_HEADER_BYTES as usize);
    Ok(header.checks(head, payload).then_some(header))
}

/// The cheap check of a sealed segment's index: it holds `expected` entries, the first points
/// just past the store header, and the last points at a frame of the right offset that ends
/// exactly at the end of the store.
fn sealed_index_checks(store: &Store, index: &Index, base: u64, expected: u64) -> io::Result<bool> {
    if index.capacity() != expected || expected == 0 {
        return Ok(false);
    }
    if index.position(0) != Some(STORE_HEADER_BYTES) {
        return Ok(false);
    }
    let Some(pos) = index.position(expected - 1) else { return Ok(false) };
    if pos.saturating_add(FRAME_HEADER_BYTES) > store.size() {
        return Ok(false);
    }
    let header = frame_header(store, pos)?;
    Ok(header.offset == base + expected - 1 && pos + header.frame_len() == store.size())
}

/// How many leading entries of an active segment's index can be trusted: the longest prefix of
/// well-formed entries (each naming its own slot, positions non-decreasing and inside the store),
/// walked back until its last entry points at a frame that checks.
fn trusted_entries(store: &Store, index: &Index, base: u64) -> io::Result<u64> {
    let mut n = 0;
    let mut prev = STORE_HEADER_BYTES;
    while let Some(pos) = index.position(n) {
        let first_ok = n > 0 || pos == STORE_HEADER_BYTES;
        if !first_ok || pos < prev || pos.saturating_add(FRAME_HEADER_BYTES) > store.size() {
            break;
        }
        prev = pos;
        n += 1;
    }
    while n > 0 {
        let pos = index.position(n - 1).expect("well-formed entry");
        if frame_checks(store, pos, base + n - 1)?.is_some() {
            break;
        }
        n -= 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::fs::OsFiles;
    use super::super::sealed::open_files;
    use super::super::segment::tests::frames;
    use super::*;

    #[test]
    fn reopen_keeps_base_and_end_sealed_or_active() {
        // A segment reopened, active or sealed, covers the same offsets and reads the same frames.
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 100, 8, &OsFiles).unwrap();
        let (buf, starts) = frames(100, &[b"a", b"bb", b"", b"dddd"]);
        segment.append(&buf, &starts).unwrap();
        assert_eq!((segment.base(), segment.end(), segment.entries()), (100, 104, 4));
        assert_eq!(segment.index_room(), 4);
        drop(segment);
        let active = open_active(dir.path(), 100, (8, 8), &OsFiles).unwrap();
        assert_eq!((active.end(), active.entries(), active.is_sealed()), (104, 4, false));
        let mut active = active;
        active.seal().unwrap();
        drop(active);
        let sealed = open_sealed(dir.path(), 100, 104, &OsFiles).unwrap();
        assert_eq!((sealed.end(), sealed.entries(), sealed.is_sealed()), (104, 4, true));
        let files = open_files(dir.path(), 100, &OsFiles).unwrap();
        let located = sealed.span().locate(files.files(), 101, 104, 10, usize::MAX).unwrap();
        assert_eq!(located.ends.len(), 3);
    }

    #[test]
    fn a_sealed_segment_missing_its_last_frame_reads_it_as_corrupt() {
        // A sealed store shorter than its successor's base says reports the missing offsets as
        // corrupt, never as out of range or as another record.
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, 8, &OsFiles).unwrap();
        let (buf, starts) = frames(0, &[b"a", b"b", b"c"]);
        segment.append(&buf, &starts).unwrap();
        segment.seal().unwrap();
        drop(segment);
        std::fs::remove_file(index_path(dir.path(), 0)).unwrap();
        let segment = open_sealed(dir.path(), 0, 5, &OsFiles).unwrap();
        assert_eq!((segment.entries(), segment.end()), (3, 5));
        let span = segment.span();
        let files = open_files(dir.path(), 0, &OsFiles).unwrap();
        assert_eq!(span.locate(files.files(), 2, 5, 10, usize::MAX).unwrap().ends.len(), 1);
        assert!(matches!(span.check_present(3), Err(Error::Corrupt { offset: 3, .. })));
        assert!(matches!(span.check_present(4), Err(Error::Corrupt { offset: 4, .. })));
    }
}
