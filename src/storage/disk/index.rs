//! A segment's index: a memory-mapped file of fixed-width entries mapping a record's offset
//! relative to the segment's base to the position of its frame in the store file.
//!
//! | bytes | field    | meaning                                         |
//! |-------|----------|-------------------------------------------------|
//! | 0..4  | relative | offset − segment base, little-endian u32        |
//! | 4..12 | position | byte position of the frame in the store, LE u64 |
//!
//! Entry `i` lives at byte `12 * i` and is valid only when its `relative` field equals `i` and its
//! position lies inside the store, so a zero-filled entry (a pre-allocated file after a crash) is
//! never mistaken for a real one. The index is derived data: it may be lost or stale after a crash
//! and is rebuilt from the store.
//!
//! This module holds all of the crate's `unsafe` code. The mapping invariants that keep it sound:
//! every mapped byte is backed by allocated file space (allocated with `posix_fallocate` before
//! mapping, so a full disk is an error here, never a SIGBUS later — even when the file was left
//! sparse by a copy or a restore); the data directory is locked (by the log's own `LOCK`, or by
//! its group's owner over a parent directory), so no other process changes the file; and girok
//! never shrinks the file while it is mapped (sealing flushes and unmaps first, then trims).
//!
//! An active index starts small and grows (`grow`, by doubling: [`grown_capacity`]) as entries
//! fill it; growing maps the file anew and unmaps the old mapping, which `&mut self` makes safe:
//! no reference into the old mapping can be alive (the log grows under its write lock, and
//! readers copy positions out under its read lock).
//!
//! An [`Index`] holds no file descriptor: the descriptor is closed as soon as the file is mapped
//! (a mapping outlives it), and the rare operations that change the file's length (growing,
//! trimming) open it again by path. So a log's descriptors do not grow with its segments.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::storage::error::at;

/// Bytes per index entry.
pub const INDEX_ENTRY_BYTES: u64 = 12;

/// The capacity an active index of `current` entries grows to so that it holds `needed`: doubled
/// until it does, but no more than `max` entries unless `needed` alone is more (an oversized
/// batch). Growing in steps keeps an idle segment's index small; doubling keeps the number of
/// grows (each a `posix_fallocate` and a new mapping) logarithmic in the segment's records.
pub fn grown_capacity(current: u64, needed: u64, max: u64) -> u64 {
    let mut capacity = current.max(1);
    while capacity < needed && capacity < max {
        capacity = capacity.saturating_mul(2);
    }
    capacity.min(max).max(needed)
}

/// A segment's index file, mapped into memory.
#[derive(Debug)]
pub struct Index {
    path: PathBuf,
    /// `None` when the file is empty (a zero-length mapping is not allowed).
    map: Option<MmapMut>,
    /// How many entries the mapped file can hold.
    capacity: u64,
    /// Bytes from here on are known to be zero (space this index allocated itself), so clearing
    /// need not touch them: a page written needlessly is a page fault now and a page to flush
    /// when sealing.
    zeroed_from: u64,
}

impl Index {
    /// Opens (creating if needed) the index at `path` and makes it hold at least `capacity`
    /// entries, allocating real disk space for the whole file before mapping: a file that is long
    /// enough may still be sparse (restored with `cp --sparse`, `rsync -S`, `tar -S`), and a
    /// write to a hole of a mapping on a full disk is a SIGBUS.
    pub fn open(path: &Path, capacity: u64) -> io::Result<Self> {
        let file = open_rw(path, true, false)?;
        let len = file.metadata().map_err(at(path))?.len();
        allocate(&file, path, len.max(capacity * INDEX_ENTRY_BYTES))?;
        let mut index = Self::map(path, &file)?;
        index.zeroed_from = len;
        Ok(index)
    }

    /// Creates a fresh, zeroed index at `path` (replacing any file there) holding `capacity`
    /// entries, allocated before mapping.
    pub fn create(path: &Path, capacity: u64) -> io::Result<Self> {
        let file = open_rw(path, true, true)?;
        allocate(&file, path, capacity * INDEX_ENTRY_BYTES)?;
        let mut index = Self::map(path, &file)?;
        index.zeroed_from = 0;
        Ok(index)
    }

    /// Opens an existing index as it is, holding as many entries as its length allows (a sealed
    /// segment's trimmed index), to be read, never written: a hole in it (a sparse copy) reads as
    /// zeros without allocating, so reads go on even on a full disk. Fails with `NotFound` when
    /// it does not exist.
    pub fn open_existing(path: &Path) -> io::Result<Self> {
        let file = open_rw(path, false, false)?;
        Self::map(path, &file)
    }

    /// Writes a fresh index holding exactly `positions` (entry `i` → `positions[i]`), synced, and
    /// opens it. Used to rebuild a sealed segment's index.
    pub fn rewrite(path: &Path, positions: &[u64]) -> io::Result<Self> {
        let mut bytes = Vec::with_capacity(positions.len() * INDEX_ENTRY_BYTES as usize);
        for (i, pos) in positions.iter().enumerate() {
            bytes.extend_from_slice(&(i as u32).to_le_bytes());
            bytes.extend_from_slice(&pos.to_le_bytes());
        }
        let file = open_rw(path, true, true)?;
        std::os::unix::fs::FileExt::write_all_at(&file, &bytes, 0).map_err(at(path))?;
        file.sync_all().map_err(at(path))?;
        Self::map(path, &file)
    }

    /// Maps the whole entries of `file`; the descriptor may be closed afterwards.
    fn map(path: &Path, file: &File) -> io::Result<Self> {
        let len = file.metadata().map_err(at(path))?.len();
        let capacity = len / INDEX_ENTRY_BYTES;
        let map = if capacity == 0 {
            None
        } else {
            // SAFETY: every mapped byte that is ever written is allocated: by `rewrite`, or by
            // `allocate` in `open`, `create` and `grow`; an index from `open_existing` is sealed
            // and only read, and reading a hole maps the zero page. So touching a mapped page can
            // never fault for want of disk space. The mapping covers only whole entries inside
            // the file's length, so no page lies past its end. The data directory is locked
            // (by the log's `LOCK`, or by its group's owner over a parent directory, who opens
            // each log once), so no other girok log changes the file, and this crate never
            // shrinks it while a mapping exists (`seal` unmaps before trimming). The mapping
            // stays valid after `file` is closed.
            Some(unsafe {
                memmap2::MmapOptions::new()
                    .len((capacity * INDEX_ENTRY_BYTES) as usize)
                    .map_mut(file)
                    .map_err(at(path))?
            })
        };
        let zeroed_from = capacity * INDEX_ENTRY_BYTES;
        Ok(Self { path: path.to_path_buf(), map, capacity, zeroed_from })
    }

    /// How many entries the file can hold.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The raw entry `i`: `(relative, position)`, or `None` past the capacity.
    pub fn entry(&self, i: u64) -> Option<(u32, u64)> {
        if i >= self.capacity {
            return None;
        }
        let map = self.map.as_ref()?;
        let at = (i * INDEX_ENTRY_BYTES) as usize;
        let rel = u32::from_le_bytes(map[at..at + 4].try_into().ok()?);
        let pos = u64::from_le_bytes(map[at + 4..at + 12].try_into().ok()?);
        Some((rel, pos))
    }

    /// The position of entry `i` when the entry is valid (its relative field is `i`).
    pub fn position(&self, i: u64) -> Option<u64> {
        match self.entry(i)? {
            (rel, pos) if u64::from(rel) == i => Some(pos),
            _ => None,
        }
    }

    /// Writes entry `i` → `pos`. Panics past the capacity: callers check [`Self::capacity`].
    pub fn set(&mut self, i: u64, pos: u64) {
        assert!(i < self.capacity, "index entry {i} past capacity {}", self.capacity);
        let map = self.map.as_mut().expect("a non-empty index is mapped");
        let at = (i * INDEX_ENTRY_BYTES) as usize;
        map[at..at + 4].copy_from_slice(&(i as u32).to_le_bytes());
        map[at + 4..at + 12].copy_from_slice(&pos.to_le_bytes());
        self.zeroed_from = self.zeroed_from.max((i + 1) * INDEX_ENTRY_BYTES);
    }

    /// Grows the file to hold at least `capacity` entries, allocating before mapping again.
    /// Growing never invalidates the old mapping's pages, and two shared mappings of one file
    /// see the same pages, so the old mapping stays in use until the new one exists: a failure
    /// (a full disk, no descriptor free) leaves the index as it was. The old mapping is unmapped
    /// on success; `&mut self` guarantees no reference into it is alive (the log grows an index
    /// under its write lock, and readers copy positions out under the read lock).
    pub fn grow(&mut self, capacity: u64) -> io::Result<()> {
        if capacity <= self.capacity {
            return Ok(());
        }
        let file = open_rw(&self.path, false, false)?;
        allocate(&file, &self.path, capacity * INDEX_ENTRY_BYTES)?;
        let zeroed_from = self.zeroed_from.min(self.capacity * INDEX_ENTRY_BYTES);
        *self = Self::map(&self.path, &file)?;
        self.zeroed_from = zeroed_from;
        Ok(())
    }

    /// Zeroes every entry from `i` on, so stale entries past a cut tail are never trusted later.
    pub fn clear_from(&mut self, i: u64) {
        if let Some(map) = self.map.as_mut() {
            let from = (i.min(self.capacity) * INDEX_ENTRY_BYTES) as usize;
            let to = (self.zeroed_from as usize).clamp(from, map.len());
            map[from..to].fill(0);
        }
    }

    /// Makes the entries durable (`msync`), unmaps the file, then trims it to its first
    /// `entries` entries and syncs it. A failed flush is a failed sync. A failed trim is not: the
    /// index is derived data, and the next open rebuilds one whose length does not match, so the
    /// trim's failure is only logged.
    pub fn seal(self, entries: u64) -> io::Result<()> {
        if let Some(map) = &self.map {
            map.flush().map_err(at(&self.path))?;
        }
        drop(self.map);
        let trimmed = open_rw(&self.path, false, false).and_then(|file| {
            file.set_len(entries * INDEX_ENTRY_BYTES).map_err(at(&self.path))?;
            file.sync_all().map_err(at(&self.path))
        });
        if let Err(err) = trimmed {
            tracing::warn!(error = %err, "could not trim a sealed index; the next open rebuilds it");
        }
        Ok(())
    }
}

/// Opens `path` for reading and writing; `create` creates it if missing, `truncate` empties it.
fn open_rw(path: &Path, create: bool, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(truncate)
        .open(path)
        .map_err(at(path))
}

/// Allocates real disk space for the first `len` bytes of `file` (not a sparse hole), so that a
/// full disk fails here rather than as a SIGBUS on a mapped page. Allocating space that is
/// already allocated changes nothing.
fn allocate(file: &File, path: &Path, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::other("index too large"))?;
    // SAFETY: posix_fallocate only reads its integer arguments; the descriptor is valid for the
    // duration of the call because `file` is borrowed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 { Ok(()) } else { Err(at(path)(io::Error::from_raw_os_error(rc))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_len(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().len()
    }

    #[test]
    fn entries_round_trip_and_zeroed_ones_are_invalid() {
        // A set entry reads back; a never-set (zeroed) entry or one past the capacity is invalid.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        let mut index = Index::create(&path, 4).unwrap();
        assert_eq!((index.capacity(), file_len(&path)), (4, 48));
        // A zeroed entry 0 names its own slot, but its position (0) is inside the store header,
        // which callers never take for a frame.
        assert!(index.position(0).is_none_or(|pos| pos < 24));
        for i in 1..4 {
            assert_eq!(index.position(i), None, "zeroed entry {i} taken for real");
        }
        index.set(0, 24);
        index.set(1, 60);
        assert_eq!((index.position(0), index.position(1)), (Some(24), Some(60)));
        assert_eq!(index.position(2), None);
        assert_eq!(index.entry(4), None);
        index.clear_from(1);
        assert_eq!((index.position(0), index.position(1)), (Some(24), None));
    }

    #[test]
    fn an_entry_naming_another_slot_is_invalid() {
        // An entry whose relative offset is not its slot (a stale or shifted entry) is refused.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        let index = Index::rewrite(&path, &[24, 50, 80]).unwrap();
        assert_eq!(index.position(2), Some(80));
        drop(index);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[12..16].copy_from_slice(&7u32.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let index = Index::open_existing(&path).unwrap();
        assert_eq!(
            (index.position(0), index.position(1), index.position(2)),
            (Some(24), None, Some(80))
        );
    }

    #[test]
    fn seal_trims_to_the_entries_and_reopen_sees_them() {
        // Sealing trims the file to its entries, keeps them readable, and survives a reopen.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        let mut index = Index::create(&path, 10).unwrap();
        for i in 0..3 {
            index.set(i, 24 + 30 * i);
        }
        index.seal(3).unwrap();
        assert_eq!(file_len(&path), 36);
        let index = Index::open_existing(&path).unwrap();
        assert_eq!(index.position(2), Some(84));
        assert_eq!(index.capacity(), 3);
        assert_eq!(index.position(1), Some(54));
        let empty = dir.path().join("e.index");
        Index::create(&empty, 2).unwrap().seal(0).unwrap();
        let empty = Index::open_existing(&empty).unwrap();
        assert_eq!((empty.capacity(), empty.position(0)), (0, None));
    }

    #[test]
    fn grow_keeps_entries_and_adds_room() {
        // Growing an index keeps what it holds and allocates the new entries zeroed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        let mut index = Index::create(&path, 2).unwrap();
        index.set(0, 24);
        index.set(1, 40);
        index.grow(5).unwrap();
        assert_eq!((index.capacity(), file_len(&path)), (5, 60));
        assert_eq!((index.position(1), index.position(2)), (Some(40), None));
        index.set(4, 99);
        assert_eq!(index.position(4), Some(99));
        index.grow(3).unwrap();
        assert_eq!(index.capacity(), 5, "grow never shrinks");
    }

    #[test]
    fn an_index_grows_by_doubling_up_to_its_maximum() {
        // An index grows to twice its capacity until it holds what is needed, never past the
        // maximum unless the entries needed alone are more.
        assert_eq!(grown_capacity(100, 101, 1000), 200);
        assert_eq!(grown_capacity(100, 350, 1000), 400);
        assert_eq!(grown_capacity(600, 601, 1000), 1000, "capped at the maximum");
        assert_eq!(grown_capacity(100, 1500, 1000), 1500, "an oversized batch gets its entries");
        assert_eq!(grown_capacity(100, 50, 1000), 100, "never shrinks");
    }

    #[test]
    fn open_extends_a_shortened_index_with_zeros() {
        // Opening an index shorter than asked (shrunk by damage) extends it with invalid entries.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        let mut index = Index::create(&path, 4).unwrap();
        index.set(0, 24);
        index.set(1, 30);
        drop(index);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(12).unwrap();
        let index = Index::open(&path, 4).unwrap();
        assert_eq!((index.capacity(), file_len(&path)), (4, 48));
        assert_eq!(index.position(0), Some(24));
        assert_eq!(index.position(1), None, "a cut entry must not come back");
    }

    #[test]
    fn opening_a_sparse_index_allocates_it_before_mapping() {
        // An active index left sparse by a copy is allocated on open, so writing its entries can
        // never be a SIGBUS on a full disk: the open fails with an error instead.
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.index");
        std::fs::File::create(&path).unwrap().set_len(4096 * 12).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().blocks(), 0, "the file starts sparse");
        let index = Index::open(&path, 4096).unwrap();
        let allocated = std::fs::metadata(&path).unwrap().blocks() * 512;
        assert!(allocated >= 4096 * 12, "only {allocated} bytes allocated");
        drop(index);
    }
}
