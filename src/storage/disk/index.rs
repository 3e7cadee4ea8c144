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
//! the file is owned by the [`Index`] for the mapping's whole life; every mapped byte is backed by
//! allocated file space (allocated with `posix_fallocate` before mapping, so a full disk is an
//! error here, never a SIGBUS later); and the file is never shrunk while mapped (sealing unmaps
//! first, then trims).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

/// Bytes per index entry.
pub const INDEX_ENTRY_BYTES: u64 = 12;

/// A segment's index file, mapped into memory.
#[derive(Debug)]
pub struct Index {
    path: PathBuf,
    file: File,
    /// `None` when the file is empty (a zero-length mapping is not allowed).
    map: Option<MmapMut>,
    /// How many entries the mapped file can hold.
    capacity: u64,
}

impl Index {
    /// Opens (creating if needed) the index at `path` and makes it hold `capacity` entries,
    /// allocating real disk space for all of them before mapping.
    pub fn open(path: &Path, capacity: u64) -> io::Result<Self> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let want = capacity * INDEX_ENTRY_BYTES;
        if file.metadata()?.len() < want {
            allocate(&file, want)?;
        }
        Self::map(path, file)
    }

    /// Creates a fresh, zeroed index at `path` (replacing any file there) holding `capacity`
    /// entries, allocated before mapping.
    pub fn create(path: &Path, capacity: u64) -> io::Result<Self> {
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        allocate(&file, capacity * INDEX_ENTRY_BYTES)?;
        Self::map(path, file)
    }

    /// Opens an existing index as it is, holding as many entries as its length allows (a sealed
    /// segment's trimmed index). Fails with `NotFound` when it does not exist.
    pub fn open_existing(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Self::map(path, file)
    }

    /// Writes a fresh index holding exactly `positions` (entry `i` → `positions[i]`), synced, and
    /// opens it. Used to rebuild a sealed segment's index.
    pub fn rewrite(path: &Path, positions: &[u64]) -> io::Result<Self> {
        let mut bytes = Vec::with_capacity(positions.len() * INDEX_ENTRY_BYTES as usize);
        for (i, pos) in positions.iter().enumerate() {
            bytes.extend_from_slice(&(i as u32).to_le_bytes());
            bytes.extend_from_slice(&pos.to_le_bytes());
        }
        let file =
            OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        std::os::unix::fs::FileExt::write_all_at(&file, &bytes, 0)?;
        file.sync_all()?;
        Self::map(path, file)
    }

    fn map(path: &Path, file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let capacity = len / INDEX_ENTRY_BYTES;
        let map = if capacity == 0 {
            None
        } else {
            // SAFETY: the file is owned by this Index for as long as the mapping lives and is
            // opened read-write by us alone (the data directory is locked). Its first
            // `capacity * 12` bytes are allocated: written by `rewrite`, allocated by `allocate`,
            // or, for an existing file, part of its length (an index is never sparse: we never
            // extend one with set_len). Nothing shrinks the file while it is mapped: `seal` takes
            // the mapping apart before trimming.
            Some(unsafe {
                memmap2::MmapOptions::new()
                    .len((capacity * INDEX_ENTRY_BYTES) as usize)
                    .map_mut(&file)?
            })
        };
        Ok(Self { path: path.to_path_buf(), file, map, capacity })
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
    }

    /// Grows the file to hold at least `capacity` entries, allocating before mapping again.
    /// Growing never invalidates the old mapping's pages, and two shared mappings of one file
    /// see the same pages, so the old mapping stays in use until the new one exists: a failure
    /// (a full disk) leaves the index as it was.
    pub fn grow(&mut self, capacity: u64) -> io::Result<()> {
        if capacity <= self.capacity {
            return Ok(());
        }
        allocate(&self.file, capacity * INDEX_ENTRY_BYTES)?;
        let file = self.file.try_clone()?;
        *self = Self::map(&self.path, file)?;
        Ok(())
    }

    /// Zeroes every entry from `i` on, so stale entries past a cut tail are never trusted later.
    pub fn clear_from(&mut self, i: u64) {
        if let Some(map) = self.map.as_mut() {
            let from = (i.min(self.capacity) * INDEX_ENTRY_BYTES) as usize;
            map[from..].fill(0);
        }
    }

    /// Trims the file to its first `entries` entries and syncs it, then maps it again. The
    /// mapping is flushed and dropped before the file shrinks.
    pub fn seal(&mut self, entries: u64) -> io::Result<()> {
        if let Some(map) = &self.map {
            map.flush()?;
        }
        self.map = None;
        let trimmed =
            self.file.set_len(entries * INDEX_ENTRY_BYTES).and_then(|()| self.file.sync_all());
        // Map again whatever the outcome (trimmed, or untouched after a failed set_len), so the
        // segment stays readable even when sealing failed.
        let file = self.file.try_clone()?;
        *self = Self::map(&self.path, file)?;
        trimmed
    }
}

/// Allocates real disk space for the first `len` bytes of `file` (not a sparse hole), so that a
/// full disk fails here rather than as a SIGBUS on a mapped page.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::other("index too large"))?;
    // SAFETY: posix_fallocate only reads its integer arguments; the descriptor is valid for the
    // duration of the call because `file` is borrowed.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(rc)) }
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
        assert_eq!((index.capacity(), file_len(&path)), (3, 36));
        assert_eq!(index.position(2), Some(84));
        drop(index);
        let index = Index::open_existing(&path).unwrap();
        assert_eq!(index.capacity(), 3);
        assert_eq!(index.position(1), Some(54));
        let mut empty = Index::create(&dir.path().join("e.index"), 2).unwrap();
        empty.seal(0).unwrap();
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
}
