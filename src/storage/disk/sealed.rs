//! [`SealedFiles`]: a bounded cache of the open files of sealed segments, one per
//! [`DiskGroup`](super::DiskGroup), shared by every log of the group.
//!
//! A sealed segment holds no descriptor and no mapping of its own. A read opens its store and
//! maps its index through this cache, which keeps at most `capacity` segments open across all the
//! logs of the group and closes the least recently used beyond that; so neither the descriptor
//! limit nor `vm.max_map_count` is reached however many segments or logs there are. Entries are
//! keyed by the log's id in the group and the segment's base. An entry is an `Arc`: a read that
//! located frames keeps its store open until it is done, even if the cache drops the entry
//! meanwhile.
//!
//! Files are opened (and evicted ones closed) outside the cache's lock, so a slow open in one log
//! never holds up the reads of another; two readers missing the same segment at once may both open
//! it, and the second keeps the first one's entry.
//!
//! Failing to open (no descriptor free, no memory for a mapping) is an I/O error of that read,
//! which a later read retries; it is never taken for corruption. The cache's lock guards only
//! whole values, so a panic cannot leave it half updated: poisoning is ignored here, the one
//! place `storage::locks` does not apply.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::dir::{index_path, store_path};
use super::fs::{FileOpener, SegmentFile};
use super::index::Index;
use super::segment::Files;

/// The open files of one sealed segment.
#[derive(Debug)]
pub(super) struct OpenSegment {
    store: Arc<dyn SegmentFile>,
    index: Index,
}

impl OpenSegment {
    /// The files, for locating frames.
    pub(super) fn files(&self) -> Files<'_> {
        Files { store: &self.store, index: &self.index }
    }
}

/// Opens the store and maps the index of the sealed segment based at `base`.
pub(super) fn open_files(
    dir: &Path,
    base: u64,
    opener: &dyn FileOpener,
) -> std::io::Result<OpenSegment> {
    let store = Arc::from(opener.open(&store_path(dir, base), false)?);
    let index = Index::open_existing(&index_path(dir, base))?;
    Ok(OpenSegment { store, index })
}

/// The cache.
#[derive(Debug)]
pub(super) struct SealedFiles {
    capacity: usize,
    open: Mutex<Open>,
}

/// A segment of one log of the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    log: u64,
    base: u64,
}

#[derive(Debug, Default)]
struct Open {
    /// Most recently used first.
    segments: VecDeque<(Key, Arc<OpenSegment>)>,
    /// Per log, the base below which segments are never opened again: retention deleted them
    /// (so a read that raced the deletion cannot put a deleted file back in the cache and keep
    /// its space), or `u64::MAX` once the log is closed. Logs that never truncated have none.
    floors: HashMap<u64, u64>,
}

impl Open {
    fn floor(&self, log: u64) -> u64 {
        self.floors.get(&log).copied().unwrap_or(0)
    }

    /// The entry for `key`, made the most recently used.
    fn touch(&mut self, key: Key) -> Option<Arc<OpenSegment>> {
        let at = self.segments.iter().position(|(k, _)| *k == key)?;
        let entry = self.segments.remove(at).expect("found above");
        let files = Arc::clone(&entry.1);
        self.segments.push_front(entry);
        Some(files)
    }

    /// Takes out every entry of `log` below `below`, to be dropped once the lock is released.
    fn take_below(&mut self, log: u64, below: u64) -> Vec<(Key, Arc<OpenSegment>)> {
        let (taken, kept) = std::mem::take(&mut self.segments)
            .into_iter()
            .partition(|(key, _)| key.log == log && key.base < below);
        self.segments = kept;
        taken.into()
    }
}

impl SealedFiles {
    /// A cache that keeps at most `capacity` segments open (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), open: Mutex::new(Open::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open files of the sealed segment of `log` (in `dir`) based at `base`, opening them
    /// if needed; `NotFound` once retention deleted it or the log was closed.
    pub(super) fn get(
        &self,
        log: u64,
        dir: &Path,
        base: u64,
        opener: &dyn FileOpener,
    ) -> std::io::Result<Arc<OpenSegment>> {
        let key = Key { log, base };
        {
            let mut open = self.lock();
            if base < open.floor(log) {
                return Err(std::io::ErrorKind::NotFound.into());
            }
            if let Some(files) = open.touch(key) {
                return Ok(files);
            }
        }
        let files = Arc::new(open_files(dir, base, opener)?);
        let evicted = {
            let mut open = self.lock();
            if base < open.floor(log) {
                // Deleted, or the log closed, while the files were being opened.
                return Err(std::io::ErrorKind::NotFound.into());
            }
            if let Some(first) = open.touch(key) {
                return Ok(first);
            }
            open.segments.push_front((key, Arc::clone(&files)));
            let keep = self.capacity.min(open.segments.len());
            open.segments.split_off(keep)
        };
        drop(evicted);
        Ok(files)
    }

    /// Closes the files of every segment of `log` below `lowest` and never opens them again:
    /// retention is about to delete them.
    pub(super) fn evict_below(&self, log: u64, lowest: u64) {
        let evicted = {
            let mut open = self.lock();
            let floor = open.floors.entry(log).or_default();
            *floor = (*floor).max(lowest);
            open.take_below(log, lowest)
        };
        drop(evicted);
    }

    /// Closes every file of `log` and never opens one again: the log is closed.
    pub(super) fn close_log(&self, log: u64) {
        self.evict_below(log, u64::MAX);
    }

    /// Closes every file of `log` and forgets it: the log is gone, and its id is never used
    /// again.
    pub(super) fn forget_log(&self, log: u64) {
        let evicted = {
            let mut open = self.lock();
            open.floors.remove(&log);
            open.take_below(log, u64::MAX)
        };
        drop(evicted);
    }

    /// How many segments are open, across the logs.
    pub(super) fn len(&self) -> usize {
        self.lock().segments.len()
    }

    /// How many segments of `log` are open.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub(super) fn len_of(&self, log: u64) -> usize {
        self.lock().segments.iter().filter(|(key, _)| key.log == log).count()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fs::OsFiles;
    use super::super::segment::Segment;
    use super::super::segment::tests::frames;
    use super::*;

    /// Writes sealed segments of one record at each of `bases` in `dir`.
    fn sealed_segments(dir: &Path, bases: &[u64]) {
        for &base in bases {
            let mut segment = Segment::create(dir, base, 4, &OsFiles).unwrap();
            let (buf, starts) = frames(base, &[b"x"]);
            segment.append(&buf, &starts).unwrap();
            segment.seal().unwrap();
        }
    }

    #[test]
    fn segments_below_the_retention_floor_are_never_opened_again() {
        // A read that raced retention cannot put a deleted segment's files back in the cache,
        // where they would keep the deleted file's space; it gets NotFound instead. Another
        // log's segments at the same bases are not affected.
        let dir = tempfile::tempdir().unwrap();
        sealed_segments(dir.path(), &[0, 10]);
        let cache = SealedFiles::new(4);
        cache.get(1, dir.path(), 0, &OsFiles).unwrap();
        cache.get(1, dir.path(), 10, &OsFiles).unwrap();
        cache.get(2, dir.path(), 0, &OsFiles).unwrap();
        cache.evict_below(1, 10);
        assert_eq!((cache.len_of(1), cache.len_of(2)), (1, 1));
        let err = cache.get(1, dir.path(), 0, &OsFiles).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(cache.len(), 2);
        cache.get(1, dir.path(), 10, &OsFiles).unwrap();
        cache.get(2, dir.path(), 0, &OsFiles).unwrap();
    }

    #[test]
    fn the_bound_holds_across_logs_and_a_closed_log_keeps_nothing_open() {
        // Logs sharing a cache share its bound, the least recently used closing first; a closed
        // log's files are closed at once and never opened again.
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        for dir in &dirs {
            sealed_segments(dir.path(), &[0, 10, 20]);
        }
        let cache = SealedFiles::new(4);
        for (log, dir) in dirs.iter().enumerate() {
            for base in [0, 10, 20] {
                cache.get(log as u64, dir.path(), base, &OsFiles).unwrap();
                assert!(cache.len() <= 4);
            }
        }
        assert_eq!((cache.len_of(0), cache.len_of(1), cache.len_of(2)), (0, 1, 3));
        cache.get(1, dirs[1].path(), 20, &OsFiles).unwrap();
        cache.get(0, dirs[0].path(), 0, &OsFiles).unwrap();
        assert_eq!((cache.len_of(0), cache.len_of(1), cache.len_of(2)), (1, 1, 2));
        cache.close_log(2);
        assert_eq!(cache.len(), 2);
        let err = cache.get(2, dirs[2].path(), 0, &OsFiles).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        cache.forget_log(2);
        cache.forget_log(1);
        assert_eq!(cache.len(), 1);
    }
}
