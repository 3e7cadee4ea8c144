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
    open: Mutex<VecDeque<(u64, Arc<OpenSegment>)>>,
}

impl SealedFiles {
    /// A cache that keeps at most `capacity` segments open (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), open: Mutex::new(VecDeque::new()) }
    }

    /// The open files of the sealed segment based at `base`, opening them if needed.
    pub(super) fn get(
        &self,
        dir: &Path,
        base: u64,
        opener: &dyn FileOpener,
    ) -> std::io::Result<Arc<OpenSegment>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
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

    /// Closes the files of the segment based at `base` (deleted by retention).
    pub(super) fn evict(&self, base: u64) {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).retain(|(b, _)| *b != base);
    }

    /// How many segments are open.
    #[cfg_attr(not(feature = "internals"), allow(dead_code))]
    pub(super) fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}
