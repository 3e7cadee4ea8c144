//! One segment: the offsets `[base, end)` of a log, kept in a store file and its index.
//!
//! Only the last segment of a log is active (appended to); it holds its store file open and its
//! index mapped. A sealed segment holds no file at all, just its [`Span`]: reads open its files
//! through the bounded cache in `sealed`, so a log's descriptors and mappings do not grow with
//! its segments.
//!
//! Invariants: index entry `i` holds the position of offset `base + i` for every `i < entries`;
//! `end == base + entries` except in a sealed segment whose store lost frames (those offsets read
//! as corrupt); a sealed segment's store and index are synced. Opening a segment from its files
//! is `recovery`'s job; file names are `dir`'s.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::dir::{index_path, store_path};
use super::fs::{FileOpener, SegmentFile};
use super::index::{Index, grown_capacity};
use super::store::{FRAME_HEADER_BYTES, Store};
use crate::storage::error::at;
use crate::storage::{Error, Result};

/// Where a committed offset's frame lies, found under the log's lock and read outside it.
#[derive(Debug)]
pub(super) struct Located {
    /// The store file.
    pub(super) file: Arc<dyn SegmentFile>,
    /// Where the first frame starts.
    pub(super) pos: u64,
    /// The end of each frame, in order (one per located offset).
    pub(super) ends: Vec<u64>,
}

/// What a segment covers, without its files.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    /// The segment's first offset.
    pub(super) base: u64,
    /// How many records its store and index hold.
    pub(super) entries: u64,
    /// One past its last offset.
    pub(super) end: u64,
    /// The end of the store's valid data: nothing past it is read.
    pub(super) store_size: u64,
}

/// The open files of a segment, which a read locates frames through.
#[derive(Clone, Copy)]
pub(super) struct Files<'a> {
    pub(super) store: &'a Arc<dyn SegmentFile>,
    pub(super) index: &'a Index,
}

/// The files an active segment keeps open.
#[derive(Debug)]
struct Active {
    store: Store,
    index: Index,
}

/// A segment: its span, its records' times, and its files while it is active.
#[derive(Debug)]
pub(super) struct Segment {
    span: Span,
    /// `Some` while the segment is appended to; `None` once sealed.
    active: Option<Active>,
    /// The timestamps of its first and last records, `None` while it holds none (or they could
    /// not be read at open): retention by age reads them, never the files.
    times: Option<Times>,
}

/// The timestamps of a segment's oldest and newest records, in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Times {
    /// The first record's (records never go back in time within a log: the oldest).
    pub(super) oldest_ms: u64,
    /// The last record's (the newest).
    pub(super) newest_ms: u64,
}

impl Segment {
    /// Creates a new, empty active segment whose index holds `capacity` entries. On failure
    /// neither file is left behind.
    pub(super) fn create(
        dir: &Path,
        base: u64,
        capacity: u64,
        opener: &dyn FileOpener,
    ) -> io::Result<Self> {
        let created = Store::create(opener, &store_path(dir, base), base)
            .and_then(|store| Ok((store, Index::create(&index_path(dir, base), capacity)?)));
        match created {
            Ok((store, index)) => Ok(Self::active(base, store, index, 0)),
            Err(err) => {
                let _ = std::fs::remove_file(store_path(dir, base));
                let _ = std::fs::remove_file(index_path(dir, base));
                Err(err)
            }
        }
    }

    /// An active segment whose `store` and `index` hold `entries` records.
    pub(super) fn active(base: u64, store: Store, index: Index, entries: u64) -> Self {
        debug_assert!(entries <= index.capacity(), "more entries than the index holds");
        let span = Span { base, entries, end: base + entries, store_size: store.size() };
        Self { span, active: Some(Active { store, index }), times: None }
    }

    /// A sealed segment covering `span`, its files closed.
    pub(super) fn sealed(span: Span) -> Self {
        debug_assert!(span.end >= span.base + span.entries, "a segment ends before its entries");
        Self { span, active: None, times: None }
    }

    /// The segment with its records' times, as recovery read them from its frames.
    pub(super) fn with_times(mut self, times: Option<Times>) -> Self {
        self.times = times;
        self
    }

    /// Its records' times; `None` while it holds none.
    pub(super) fn times(&self) -> Option<Times> {
        self.times
    }

    /// Notes that records stamped `timestamp_ms` were just appended.
    pub(super) fn stamped(&mut self, timestamp_ms: u64) {
        let oldest_ms = self.times.map_or(timestamp_ms, |t| t.oldest_ms);
        self.times = Some(Times { oldest_ms, newest_ms: timestamp_ms });
    }

    /// What the segment covers.
    pub(super) fn span(&self) -> Span {
        self.span
    }

    /// The segment's first offset.
    pub(super) fn base(&self) -> u64 {
        self.span.base
    }

    /// One past the segment's last offset.
    pub(super) fn end(&self) -> u64 {
        self.span.end
    }

    /// How many records the segment holds.
    pub(super) fn entries(&self) -> u64 {
        self.span.entries
    }

    /// Whether the segment is sealed (no longer appended to).
    pub(super) fn is_sealed(&self) -> bool {
        self.active.is_none()
    }

    /// The files of an active segment; `None` once sealed.
    pub(super) fn files(&self) -> Option<Files<'_>> {
        self.active.as_ref().map(|a| Files { store: a.store.file(), index: &a.index })
    }

    /// The store's size.
    pub(super) fn store_size(&self) -> u64 {
        self.span.store_size
    }

    /// How many more index entries fit (none once sealed).
    pub(super) fn index_room(&self) -> u64 {
        self.index_capacity() - self.span.entries
    }

    /// How many entries the active index holds before it must grow (none once sealed).
    pub(super) fn index_capacity(&self) -> u64 {
        self.active.as_ref().map_or(self.span.entries, |a| a.index.capacity())
    }

    /// Zero-fills an active store ahead of its data once the data has reached the zeros' end
    /// (see `store`), never past `limit` bytes.
    pub(super) fn fill_ahead(&mut self, limit: u64) {
        if let Some(active) = self.active.as_mut() {
            active.store.fill_ahead(limit);
        }
    }

    /// Grows an active index so that `count` more entries fit: by doubling, up to `max`
    /// entries unless they alone need more (see [`grown_capacity`]). Call holding the log's
    /// write lock: the index is mapped anew, and a reader must not be locating frames in it.
    pub(super) fn make_index_room(&mut self, count: u64, max: u64) -> io::Result<()> {
        let entries = self.span.entries;
        let active = self.active.as_mut().ok_or_else(sealed_error)?;
        let needed = entries + count;
        if needed > active.index.capacity() {
            active.index.grow(grown_capacity(active.index.capacity(), needed, max))?;
        }
        Ok(())
    }

    /// The active store file, for syncing outside the log's lock.
    pub(super) fn store_file(&self) -> Option<&Arc<dyn SegmentFile>> {
        self.active.as_ref().map(|a| a.store.file())
    }

    /// Appends encoded frames with one write; `starts` holds each frame's start within `frames`.
    /// All-or-nothing: on error neither the store's size nor the entry count moves.
    pub(super) fn append(&mut self, frames: &[u8], starts: &[u64]) -> io::Result<()> {
        let room = self.index_room();
        let active = self.active.as_mut().ok_or_else(sealed_error)?;
        debug_assert!(starts.len() as u64 <= room, "a batch past the index's room");
        let pos = active.store.append(frames)?;
        for (i, start) in starts.iter().enumerate() {
            active.index.set(self.span.entries + i as u64, pos + start);
        }
        self.span.entries += starts.len() as u64;
        self.span.end = self.span.base + self.span.entries;
        self.span.store_size = active.store.size();
        Ok(())
    }

    /// Trims and syncs the store, then flushes, trims and syncs the index, and closes both:
    /// appends end here. If the store's trim or sync fails the segment stays active; once the
    /// store is synced the segment is sealed, and an error from the index's flush is still
    /// returned (the caller turns the log read-only).
    pub(super) fn seal(&mut self) -> io::Result<()> {
        let Some(active) = self.active.as_mut() else { return Ok(()) };
        active.store.trim()?;
        active.store.file().sync_data()?;
        self.span.store_size = active.store.size();
        let Active { index, .. } = self.active.take().expect("checked above");
        index.seal(self.span.entries)
    }

    /// Deletes the files of the segment based at `base`: the store first, so that a crash
    /// between the two leaves an index without a store, which the next open deletes.
    pub(super) fn delete(dir: &Path, base: u64, opener: &dyn FileOpener) -> io::Result<()> {
        let store = store_path(dir, base);
        match opener.remove_file(&store) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(at(&store)(err)),
            _ => {}
        }
        let index = index_path(dir, base);
        match opener.remove_file(&index) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(at(&index)(err)),
            _ => Ok(()),
        }
    }
}

/// The error of an append to a sealed segment, which the log never attempts.
fn sealed_error() -> io::Error {
    io::Error::other("append to a sealed segment")
}

impl Span {
    /// `Corrupt` when `offset` (in `[base, end)`) has no record in the store: a sealed segment
    /// that lost frames. Checked before any file is opened.
    pub(super) fn check_present(&self, offset: u64) -> Result<()> {
        if offset - self.base >= self.entries {
            return Err(Error::Corrupt {
                offset,
                detail: "the record is missing from its segment's store".into(),
            });
        }
        Ok(())
    }

    /// Locates up to `max_records` frames from `offset` (which must be in `[base, end)`), within
    /// `limit` (an exclusive offset bound) and stopping once their payloads add up to
    /// `max_bytes` (at least one frame), through the segment's open `files`.
    pub(super) fn locate(
        &self,
        files: Files<'_>,
        offset: u64,
        limit: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Located> {
        self.check_present(offset)?;
        let rel = offset - self.base;
        let corrupt = |detail: &str| Error::Corrupt { offset, detail: detail.to_string() };
        let pos = self.entry(files, rel).ok_or_else(|| corrupt("bad index entry"))?;
        let last = (limit.min(self.end) - self.base)
            .min(self.entries)
            .min(rel + max_records.max(1) as u64);
        let mut ends = Vec::with_capacity((last - rel) as usize);
        let mut payload_bytes = 0;
        let mut i = rel + 1;
        loop {
            let prev = ends.last().copied().unwrap_or(pos);
            let end = if i < self.entries { self.entry(files, i) } else { Some(self.store_size) };
            // A damaged entry (out of order, or past the store) ends a batch early, so the next
            // read reports it; only for the first record is it this read's error.
            let Some(end) = end.filter(|&end| end >= prev.saturating_add(FRAME_HEADER_BYTES))
            else {
                if ends.is_empty() {
                    return Err(corrupt("the index points at a damaged frame"));
                }
                break;
            };
            ends.push(end);
            // The limit counts values, as the `CommitLog::read_batch` contract says, not frames.
            payload_bytes += end - prev - FRAME_HEADER_BYTES;
            if i >= last || payload_bytes >= max_bytes as u64 {
                break;
            }
            i += 1;
        }
        Ok(Located { file: Arc::clone(files.store), pos, ends })
    }

    /// Index entry `i` when it is valid and inside the store. A damaged index entry must never
    /// make a read run past the store (or allocate a buffer for it).
    fn entry(&self, files: Files<'_>, i: u64) -> Option<u64> {
        files.index.position(i).filter(|&pos| pos <= self.store_size)
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
            let files = segment.files().unwrap();
            segment.span().locate(files, offset, limit, records, bytes).unwrap().ends.len()
        };
        assert_eq!(count(0, 8, 100, usize::MAX), 8);
        assert_eq!(count(0, 5, 100, usize::MAX), 5, "past the commit limit");
        assert_eq!(count(2, 8, 3, usize::MAX), 3);
        assert_eq!(count(0, 8, 0, usize::MAX), 1, "at least one record");
        assert_eq!(count(0, 8, 100, 0), 1);
        assert_eq!(count(0, 8, 100, 25), 3, "10 + 10 < 25 <= 30 bytes of values");
        assert_eq!(count(0, 8, 100, 30), 3);
        assert_eq!(count(0, 8, 100, 31), 4);
        let located = segment.span().locate(segment.files().unwrap(), 8, 9, 1, 0);
        assert!(matches!(located, Err(Error::Corrupt { offset: 8, .. })));
    }
}
