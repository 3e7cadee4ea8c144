//! One segment: a store file and its index, covering the offsets `[base, end)`, and its recovery
//! when a log is opened.
//!
//! Files are named by the zero-padded base offset: `00000000000000000000.store` and
//! `00000000000000000000.index`. Invariants: index entry `i` holds the position of offset
//! `base + i` for every `i < entries`; `end == base + entries` except in a sealed segment whose
//! store lost frames (those offsets read as corrupt); only the last segment of a log is active
//! (appended to), and a sealed segment's store and index are synced.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::file::{FileOpener, SegmentFile};
use super::index::Index;
use super::scan::scan;
use super::store::{FRAME_HEADER_BYTES, FrameHeader, STORE_HEADER_BYTES, Store, check_header};
use crate::log::{Error, Result};

/// The path of the store file of the segment based at `base`.
pub fn store_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.store"))
}

/// The path of the index file of the segment based at `base`.
pub fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

/// The base offsets of the segment files in `dir`: stores and indexes, each sorted. Files with
/// other names are ignored.
pub fn list_bases(dir: &Path) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let (mut stores, mut indexes) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        let parse = |stem: &str| (stem.len() == 20).then(|| stem.parse::<u64>().ok()).flatten();
        if let Some(base) = name.strip_suffix(".store").and_then(parse) {
            stores.push(base);
        } else if let Some(base) = name.strip_suffix(".index").and_then(parse) {
            indexes.push(base);
        }
    }
    stores.sort_unstable();
    indexes.sort_unstable();
    Ok((stores, indexes))
}

/// Where a committed offset's frame lies, found under the log's lock and read outside it.
#[derive(Debug)]
pub struct Located {
    /// The store file.
    pub file: Arc<dyn SegmentFile>,
    /// Where the first frame starts.
    pub pos: u64,
    /// The end of each frame, in order (one per located offset).
    pub ends: Vec<u64>,
}

/// A store and index pair.
#[derive(Debug)]
pub struct Segment {
    base: u64,
    store: Store,
    index: Index,
    entries: u64,
    end: u64,
    sealed: bool,
}

impl Segment {
    /// Creates a new, empty active segment whose index holds `capacity` entries.
    pub fn create(
        dir: &Path,
        base: u64,
        capacity: u64,
        opener: &dyn FileOpener,
    ) -> io::Result<Self> {
        let created = Store::create(opener, &store_path(dir, base), base)
            .and_then(|store| Ok((store, Index::create(&index_path(dir, base), capacity)?)));
        match created {
            Ok((store, index)) => {
                Ok(Self { base, store, index, entries: 0, end: base, sealed: false })
            }
            Err(err) => {
                let _ = std::fs::remove_file(store_path(dir, base));
                let _ = std::fs::remove_file(index_path(dir, base));
                Err(err)
            }
        }
    }

    /// Opens a sealed segment that must cover `[base, next_base)`. Its index is checked cheaply
    /// (length, first and last entry against the store) and rebuilt from the store if that fails.
    /// Offsets whose frames are damaged or missing read as corrupt.
    pub fn open_sealed(
        dir: &Path,
        base: u64,
        next_base: u64,
        opener: &dyn FileOpener,
    ) -> Result<Self> {
        let mut store = match open_store(dir, base, opener) {
            Ok(store) => store,
            Err(Error::Format { file, detail }) => {
                // Never renumber: the segment keeps its offsets, and each reads as corrupt.
                tracing::error!(file, detail, "damaged store header: its records read as corrupt");
                let mut store = Store::open(opener, &store_path(dir, base))?;
                store.limit(0);
                let index = Index::open_existing(&index_path(dir, base))
                    .or_else(|_| Index::rewrite(&index_path(dir, base), &[]))?;
                return Ok(Self { base, store, index, entries: 0, end: next_base, sealed: true });
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
        let entries = index.capacity();
        Ok(Self { base, store, index, entries, end: next_base, sealed: true })
    }

    /// Opens the last segment of a log for appending: trusts the index as far as it checks out,
    /// scans the store forward from the last trusted entry (rebuilding the index), and cuts a
    /// torn tail back to the end of the last valid frame, syncing the cut.
    pub fn open_active(
        dir: &Path,
        base: u64,
        capacity: u64,
        opener: &dyn FileOpener,
    ) -> Result<Self> {
        let path = store_path(dir, base);
        let mut store = match open_store(dir, base, opener) {
            Ok(store) => store,
            Err(Error::Format { .. }) if unborn(opener, &path)? => {
                tracing::warn!(base, "recreating a segment whose creation was cut short");
                Store::create(opener, &path, base)?
            }
            Err(err) => return Err(err),
        };
        let mut index = Index::open(&index_path(dir, base), capacity)?;
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
            index.grow(entries)?;
        }
        for (i, pos) in found.positions.iter().enumerate() {
            index.set(trusted + i as u64, *pos);
        }
        index.clear_from(entries);
        if found.valid_end < store.size() {
            tracing::warn!(
                base,
                cut_bytes = store.size() - found.valid_end,
                "cutting the active segment after its last valid frame (a torn write, or space preallocated and never written)"
            );
            store.cut(found.valid_end)?;
        } else {
            // Records a crash left written but unsynced are about to become readable: make them
            // durable first, so no reader sees a record a power cut could still take back.
            store.file().sync_data()?;
        }
        if !found.corrupt.is_empty() {
            tracing::error!(base, corrupt = ?found.corrupt, "active segment has corrupt records");
        }
        Ok(Self { base, store, index, entries, end: base + entries, sealed: false })
    }

    /// The segment's first offset.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// One past the segment's last offset.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// How many records the segment holds.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Whether the segment is sealed (no longer appended to).
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The store's size.
    pub fn store_size(&self) -> u64 {
        self.store.size()
    }

    /// How many more index entries fit.
    pub fn index_room(&self) -> u64 {
        self.index.capacity() - self.entries
    }

    /// Zero-fills the store ahead of its data (see `store`), up to `limit` bytes.
    pub fn preallocate(&mut self, chunk: u64, limit: u64) {
        self.store.preallocate(chunk, limit);
    }

    /// Grows the index so that `count` more entries fit.
    pub fn reserve(&mut self, count: u64) -> io::Result<()> {
        self.index.grow(self.entries + count)
    }

    /// The store file, for syncing outside the log's lock.
    pub fn store_file(&self) -> &Arc<dyn SegmentFile> {
        self.store.file()
    }

    /// Appends encoded frames with one write; `starts` holds each frame's start within `frames`.
    /// All-or-nothing: on error neither the store's size nor the entry count moves.
    pub fn append(&mut self, frames: &[u8], starts: &[u64]) -> io::Result<()> {
        debug_assert!(!self.sealed && starts.len() as u64 <= self.index_room());
        let pos = self.store.append(frames)?;
        for (i, start) in starts.iter().enumerate() {
            self.index.set(self.entries + i as u64, pos + start);
        }
        self.entries += starts.len() as u64;
        self.end = self.base + self.entries;
        Ok(())
    }

    /// Syncs the store, trims the index to its entries and syncs it. Appends end here.
    pub fn seal(&mut self) -> io::Result<()> {
        self.store.trim()?;
        self.store.file().sync_data()?;
        self.index.seal(self.entries)?;
        self.sealed = true;
        Ok(())
    }

    /// Locates up to `max_records` frames from `offset` (which must be in `[base, end)`), within
    /// `limit` (an exclusive offset bound) and stopping once their payloads add up to
    /// `max_bytes` (at least one frame).
    pub fn locate(
        &self,
        offset: u64,
        limit: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Located> {
        let rel = offset - self.base;
        let corrupt = |detail: &str| Error::Corrupt { offset, detail: detail.to_string() };
        if rel >= self.entries {
            return Err(corrupt("the record is missing from its segment's store"));
        }
        let pos = self.index.position(rel).ok_or_else(|| corrupt("bad index entry"))?;
        let last = (limit.min(self.end) - self.base)
            .min(self.entries)
            .min(rel + max_records.max(1) as u64);
        let mut ends = Vec::with_capacity((last - rel) as usize);
        let mut payload_bytes = 0;
        let mut i = rel + 1;
        loop {
            let end =
                if i < self.entries { self.index.position(i) } else { Some(self.store.size()) };
            let end = end.ok_or_else(|| corrupt("bad index entry"))?;
            let prev = ends.last().copied().unwrap_or(pos);
            // A damaged index entry must never make a read run past the store (or allocate a
            // buffer for it): anything out of order or out of bounds reads as corrupt.
            if end > self.store.size() || end < prev.saturating_add(FRAME_HEADER_BYTES) {
                if ends.is_empty() {
                    return Err(corrupt("the index points at a damaged frame"));
                }
                break;
            }
            ends.push(end);
            // The limit counts values, as the `CommitLog::read_batch` contract says, not frames.
            payload_bytes += end - prev - FRAME_HEADER_BYTES;
            if i >= last || payload_bytes >= max_bytes as u64 {
                break;
            }
            i += 1;
        }
        Ok(Located { file: self.store.file().clone(), pos, ends })
    }

    /// Deletes the segment's files.
    pub fn delete(self, dir: &Path) -> io::Result<()> {
        std::fs::remove_file(store_path(dir, self.base))?;
        match std::fs::remove_file(index_path(dir, self.base)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
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
pub fn is_unborn(file: &dyn SegmentFile) -> io::Result<bool> {
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
    use super::super::file::OsFiles;
    use super::super::store::encode_frame;
    use super::*;
    use crate::log::{CommitLog, DiskLog, FsyncPolicy, LogConfig};

    /// Encoded frames for `values` from `offset`, and each frame's start.
    fn frames(offset: u64, values: &[&[u8]]) -> (Vec<u8>, Vec<u64>) {
        let (mut buf, mut starts) = (Vec::new(), Vec::new());
        for (i, value) in values.iter().enumerate() {
            starts.push(buf.len() as u64);
            encode_frame(&mut buf, offset + i as u64, 1, value, crc32c::crc32c(value));
        }
        (buf, starts)
    }

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
        let active = Segment::open_active(dir.path(), 100, 8, &OsFiles).unwrap();
        assert_eq!((active.end(), active.entries(), active.is_sealed()), (104, 4, false));
        let mut active = active;
        active.seal().unwrap();
        drop(active);
        let sealed = Segment::open_sealed(dir.path(), 100, 104, &OsFiles).unwrap();
        assert_eq!((sealed.end(), sealed.entries(), sealed.is_sealed()), (104, 4, true));
        let located = sealed.locate(101, 104, 10, usize::MAX).unwrap();
        assert_eq!(located.ends.len(), 3);
    }

    #[test]
    fn locate_counts_value_bytes_and_stops_at_the_limit() {
        // locate honours max_records, the commit limit, and max_bytes counted over values.
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 0, 16, &OsFiles).unwrap();
        let values: Vec<&[u8]> = vec![&[1u8; 10]; 8];
        let (buf, starts) = frames(0, &values);
        segment.append(&buf, &starts).unwrap();
        let count = |offset, limit, records, bytes| {
            segment.locate(offset, limit, records, bytes).unwrap().ends.len()
        };
        assert_eq!(count(0, 8, 100, usize::MAX), 8);
        assert_eq!(count(0, 5, 100, usize::MAX), 5, "past the commit limit");
        assert_eq!(count(2, 8, 3, usize::MAX), 3);
        assert_eq!(count(0, 8, 0, usize::MAX), 1, "at least one record");
        assert_eq!(count(0, 8, 100, 0), 1);
        assert_eq!(count(0, 8, 100, 25), 3, "10 + 10 < 25 <= 30 bytes of values");
        assert_eq!(count(0, 8, 100, 30), 3);
        assert_eq!(count(0, 8, 100, 31), 4);
        assert!(matches!(segment.locate(8, 9, 1, 0), Err(Error::Corrupt { offset: 8, .. })));
    }

    #[test]
    fn a_log_rolls_exactly_at_the_store_and_index_limits() {
        // A store never grows past max_store_bytes (unless one record alone does), and an index
        // never holds more entries than max_index_bytes allows.
        let dir = tempfile::tempdir().unwrap();
        // Frames of 24 + 16 = 40 bytes: header 24 + 4 frames = 184 <= 200 < 224.
        let config = LogConfig {
            max_store_bytes: 200,
            max_index_bytes: 1 << 20,
            fsync: FsyncPolicy::Never,
            ..LogConfig::default()
        };
        let log = DiskLog::open(dir.path(), config).unwrap();
        for _ in 0..12 {
            log.append(bytes::Bytes::from_static(&[7u8; 16])).unwrap();
        }
        assert_eq!(log.segment_count(), 3);
        for base in [0, 4, 8] {
            let len = std::fs::metadata(store_path(dir.path(), base)).unwrap().len();
            assert_eq!(len, 184, "segment {base}");
        }
        drop(log);

        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            max_index_bytes: 3 * 12,
            fsync: FsyncPolicy::Never,
            ..LogConfig::default()
        };
        let log = DiskLog::open(dir.path(), config).unwrap();
        for _ in 0..7 {
            log.append(bytes::Bytes::new()).unwrap();
        }
        assert_eq!(log.segment_count(), 3);
        let batch = vec![bytes::Bytes::new(); 3];
        assert_eq!(log.append_batch(&batch).unwrap(), 7..10);
        assert_eq!(log.segment_count(), 4, "a batch that does not fit starts a new segment");
        log.close().unwrap();
        let sealed = std::fs::metadata(index_path(dir.path(), 0)).unwrap().len();
        assert_eq!(sealed, 36, "a sealed index is trimmed to its entries");
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
        let segment = Segment::open_sealed(dir.path(), 0, 5, &OsFiles).unwrap();
        assert_eq!((segment.entries(), segment.end()), (3, 5));
        assert_eq!(segment.locate(2, 5, 10, usize::MAX).unwrap().ends.len(), 1);
        assert!(matches!(segment.locate(3, 5, 1, 0), Err(Error::Corrupt { offset: 3, .. })));
        assert!(matches!(segment.locate(4, 5, 1, 0), Err(Error::Corrupt { offset: 4, .. })));
    }
}
