//! [`SealedFiles`]: a bounded cache of the open files of sealed segments.
//!
//! A sealed segment holds no descriptor and no mapping of its own. A read opens its store and
//! maps its index through this cache, which keeps at most `capacity` segments open and closes
//! the least recently used beyond that; so neither the descriptor limit nor `vm.max_map_count`
//! is reached however many segments a log has. An entry is an `Arc`: a read that located frames
//! keeps its store open until it is done, even if the cache drops the entry meanwhile.
//!
//! Failing to open (no descriptor free, no memory for a mapping) is an I/O error of that read,
//! which a later read retries; it is never taken for corruption. The cache's lock guards only
//! whole `Arc`s, so a panic cannot leave it half updated: poisoning is ignored here, the one
//! place `storage::locks` does not apply.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

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

/// The cache, most recently used first.
#[derive(Debug)]
pub(super) struct SealedFiles {
    capacity: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    /// Most recently used first.
    segments: VecDeque<(u64, Arc<OpenSegment>)>,
    /// Segments below this base were deleted by retention: never opened again, so a read that
    /// raced the deletion cannot put a deleted file back in the cache and keep its space.
    floor: u64,
}

impl SealedFiles {
    /// A cache that keeps at most `capacity` segments open (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), open: Mutex::new(Open::default()) }
    }

    /// The open files of the sealed segment based at `base`, opening them if needed; `NotFound`
    /// once retention deleted it.
    pub(super) fn get(
        &self,
        dir: &Path,
        base: u64,
        opener: &dyn FileOpener,
    ) -> std::io::Result<Arc<OpenSegment>> {
        let mut guard = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if base < guard.floor {
            return Err(std::io::ErrorKind::NotFound.into());
        }
        let open = &mut guard.segments;
        if let Some(at) = open.iter().position(|(b, _)| *b == base) {
            let entry = open.remove(at).expect("found above");
            let files = Arc::clone(&entry.1);
            open.push_front(entry);
            return Ok(files);
        }
        // Opening under the lock keeps two readers from opening the same segment twice; it
        // costs two syscalls and a map, and never waits on the log's own lock.
        let files = Arc::new(open_files(dir, base, opener)?);
        open.push_front((base, Arc::clone(&files)));
        open.truncate(self.capacity);
        Ok(files)
    }

    /// Closes the files of every segment below `lowest` and never opens them again: retention
    /// is about to delete them.
    pub(super) fn evict_below(&self, lowest: u64) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.floor = open.floor.max(lowest);
        open.segments.retain(|(base, _)| *base >= lowest);
    }

    /// How many segments are open.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub(super) fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fs::OsFiles;
    use super::super::segment::Segment;
    use super::super::segment::tests::frames;
    use super::*;

    #[test]
    fn segments_below_the_retention_floor_are_never_opened_again() {
        // A read that raced retention cannot put a deleted segment's files back in the cache,
        // where they would keep the deleted file's space; it gets NotFound instead.
        let dir = tempfile::tempdir().unwrap();
        for base in [0, 10] {
            let mut segment = Segment::create(dir.path(), base, 4, &OsFiles).unwrap();
            let (buf, starts) = frames(base, &[b"x"]);
            segment.append(&buf, &starts).unwrap();
            segment.seal().unwrap();
        }
        let cache = SealedFiles::new(4);
        cache.get(dir.path(), 0, &OsFiles).unwrap();
        cache.get(dir.path(), 10, &OsFiles).unwrap();
        cache.evict_below(10);
        assert_eq!(cache.len(), 1);
        let err = cache.get(dir.path(), 0, &OsFiles).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(cache.len(), 1);
        cache.get(dir.path(), 10, &OsFiles).unwrap();
    }
}
