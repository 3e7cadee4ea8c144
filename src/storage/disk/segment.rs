//! One segment: a store file and its index, covering the offsets `[base, end)`.
//!
//! Invariants: index entry `i` holds the position of offset `base + i` for every `i < entries`;
//! `end == base + entries` except in a sealed segment whose store lost frames (those offsets read
//! as corrupt); only the last segment of a log is active (appended to), and a sealed segment's
//! store and index are synced. Opening a segment from its files is `recovery`'s job; file names
//! are `dir`'s.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::dir::{index_path, store_path};
use super::fs::{FileOpener, SegmentFile};
use super::index::Index;
use super::store::{FRAME_HEADER_BYTES, Store};
use crate::storage::{Error, Result};

/// Where a committed offset's frame lies, found under the log's lock and read outside it.
#[derive(Debug)]
pub(super) struct Located {
    /// The store file.
    pub file: Arc<dyn SegmentFile>,
    /// Where the first frame starts.
    pub pos: u64,
    /// The end of each frame, in order (one per located offset).
    pub ends: Vec<u64>,
}

/// A store and index pair.
#[derive(Debug)]
pub(super) struct Segment {
    base: u64,
    store: Store,
    index: Index,
    entries: u64,
    end: u64,
    sealed: bool,
}

impl Segment {
    /// Creates a new, empty active segment whose index holds `capacity` entries.
    pub(super) fn create(
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
    /// A segment recovery opened from its files; see the module doc for the invariants.
    pub(super) fn recovered(
        base: u64,
        store: Store,
        index: Index,
        entries: u64,
        end: u64,
        sealed: bool,
    ) -> Self {
        debug_assert!(entries <= index.capacity(), "more entries than the index holds");
        debug_assert!(end >= base + entries, "a segment ends before its entries");
        debug_assert!(sealed || end == base + entries, "an active segment with missing records");
        Self { base, store, index, entries, end, sealed }
    }

    /// The segment's first offset.
    pub(super) fn base(&self) -> u64 {
        self.base
    }

    /// One past the segment's last offset.
    pub(super) fn end(&self) -> u64 {
        self.end
    }

    /// How many records the segment holds.
    pub(super) fn entries(&self) -> u64 {
        self.entries
    }

    /// Whether the segment is sealed (no longer appended to).
    pub(super) fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The store's size.
    pub(super) fn store_size(&self) -> u64 {
        self.store.size()
    }

    /// How many more index entries fit.
    pub(super) fn index_room(&self) -> u64 {
        self.index.capacity() - self.entries
    }

    /// Zero-fills the store ahead of its data (see `store`), up to `limit` bytes.
    pub(super) fn preallocate(&mut self, chunk: u64, limit: u64) {
        self.store.preallocate(chunk, limit);
    }

    /// Grows the index so that `count` more entries fit.
    pub(super) fn reserve(&mut self, count: u64) -> io::Result<()> {
        self.index.grow(self.entries + count)
    }

    /// The store file, for syncing outside the log's lock.
    pub(super) fn store_file(&self) -> &Arc<dyn SegmentFile> {
        self.store.file()
    }

    /// Appends encoded frames with one write; `starts` holds each frame's start within `frames`.
    /// All-or-nothing: on error neither the store's size nor the entry count moves.
    pub(super) fn append(&mut self, frames: &[u8], starts: &[u64]) -> io::Result<()> {
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
    pub(super) fn seal(&mut self) -> io::Result<()> {
        self.store.trim()?;
        self.store.file().sync_data()?;
        self.index.seal(self.entries)?;
        self.sealed = true;
        Ok(())
    }

    /// Locates up to `max_records` frames from `offset` (which must be in `[base, end)`), within
    /// `limit` (an exclusive offset bound) and stopping once their payloads add up to
    /// `max_bytes` (at least one frame).
    pub(super) fn locate(
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
    pub(super) fn delete(self, dir: &Path) -> io::Result<()> {
        std::fs::remove_file(store_path(dir, self.base))?;
        match std::fs::remove_file(index_path(dir, self.base)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::fs::OsFiles;
    use super::super::store::encode_frame;
    use super::*;

    /// Encoded frames for `values` from `offset`, and each frame's start.
    pub(in crate::storage::disk) fn frames(offset: u64, values: &[&[u8]]) -> (Vec<u8>, Vec<u64>) {
        let (mut buf, mut starts) = (Vec::new(), Vec::new());
        for (i, value) in values.iter().enumerate() {
            starts.push(buf.len() as u64);
            encode_frame(&mut buf, offset + i as u64, 1, value, crc32c::crc32c(value));
        }
        (buf, starts)
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
}
