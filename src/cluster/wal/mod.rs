//! The Raft WAL: a segmented, checksummed log of `(index, term, payload)` entries with the
//! operations Raft needs, independent of openraft (an adapter implements its traits over it).
//!
//! # Contract
//!
//! - **Dense indexes** from a logical start ([`Wal::first_index`]): an append must continue at
//!   [`Wal::next_index`] with a term no lower than the last entry's.
//! - **Append** ([`Wal::append`]) writes the frames (to the page cache) and returns: the entries
//!   are readable at once. They are durable once a flush covering them completes:
//!   [`Wal::flush`] syncs in the caller's thread; [`Wal::flush_then`] / [`Wal::append_then`]
//!   hand a callback to the syncer thread, which completes every callback queued so far with one
//!   fdatasync (group commit). A callback is called exactly once, with `Ok` only when durable.
//! - **Truncate** ([`Wal::truncate_after`]) removes a suffix, durably before it returns, and
//!   atomically across a crash: the target is first recorded in the metadata file, then the
//!   files are cut and synced, then the record is cleared; a recovery that finds the record
//!   finishes the cut. So a crash leaves the old log or the new one, and a truncated entry never
//!   comes back.
//! - **Purge** ([`Wal::purge_upto`]) moves the logical start past an entry, durably (the new start
//!   and the purged entry's id are saved in the metadata file before any file goes); whole
//!   segments below the start are deleted, and any a crash leaves behind are deleted at open.
//!   Purging past the end empties the log, which then continues after the purged id: this is how
//!   a log starts at an arbitrary index (also [`WalConfig::first_index`] for a new WAL).
//! - **Metadata** ([`Wal::save_meta`]): vote, committed id, node and cluster id, saved
//!   crash-atomically and durably before the call returns.
//! - **Recovery** at [`Wal::open`]: a torn tail of the last segment (a frame not whole, failing
//!   its checksum, or out of sequence) is cut off; damage in a sealed segment is
//!   [`WalError::Corrupt`]. Limitation: a flipped bit in the active segment reads as a torn tail.
//! - **Failure**: after a failed write or sync every later write, flush and callback fails with
//!   [`WalError::Failed`] (what reached the disk is unknown); reopen to recover.
//!
//! # Files
//!
//! `dir/LOCK` (held while open), `dir/meta` (see `meta`), `dir/{first:020}.wal` segments (see `segment`, frames in `frame`),
//! `syncer` the group-commit thread, `error` the error type.
//!
//! # Concurrency
//!
//! One mutex guards the state (segments, bounds, metadata); every operation takes it for its
//! length, including the syncs of a truncation, purge or metadata save (rare, and Raft serialises
//! its writes anyway). Only the group-commit fdatasync runs outside it, so appends and reads go
//! on while a flush is under way; a second lock, the sync gate, keeps truncations and purges
//! (which delete files) from running during that sync. Lock order: gate, then state. A poisoned lock (a panic mid-operation) fails the WAL.

mod error;
mod frame;
mod meta;
mod segment;
mod syncer;

use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use error::{Result, WalError};
pub use frame::{Entry, LogId};
pub use meta::Meta;
pub use syncer::OnDurable;

use meta::Stored;
use segment::Segment;
use syncer::Syncer;

use crate::storage::disk::fs::{DirSyncError, FileOpener, OsFiles};

/// How a WAL is laid out.
#[derive(Clone, Debug)]
pub struct WalConfig {
    /// A segment is rolled (sealed, and a new one started) once it holds this many bytes; one
    /// append is never split, so a segment may exceed it by one batch. Default 64 MiB.
    pub segment_bytes: u64,
    /// The first index of a new WAL (ignored when the directory already holds one). Default 0,
    /// openraft's first index.
    pub first_index: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self { segment_bytes: 64 << 20, first_index: 0 }
    }
}

/// A Raft WAL in one directory. Share it behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    files: Arc<dyn FileOpener>,
    /// Shared with the syncer thread, which takes it only to find the active segment's file.
    state: Arc<Mutex<State>>,
    /// Held across every sync (grabbing the active file and syncing it) and across truncations
    /// and purges (taken before `state`), so no file is synced after it was deleted or replaced.
    gate: Arc<Mutex<()>>,
    syncer: Syncer,
    /// The directory's exclusive lock (`LOCK`), held while the WAL is open: two writers would
    /// interleave frames.
    _lock: std::fs::File,
}

#[derive(Debug)]
struct State {
    /// The metadata file's content as last saved.
    stored: Stored,
    /// Sorted by first index, contiguous; the last is the one written.
    segments: Vec<Segment>,
    /// The index the next append must carry.
    next: u64,
    /// The last entry, or the last purged one when the log is empty.
    last: Option<LogId>,
    /// Why the WAL failed, once a write or sync has.
    failed: Option<String>,
}

fn dir_err(err: DirSyncError) -> WalError {
    match err {
        DirSyncError::Open(err) | DirSyncError::Sync(err) => WalError::Io(err),
    }
}

impl State {
    fn check(&self) -> Result<()> {
        match &self.failed {
            Some(why) => Err(WalError::Failed(why.clone())),
            None => Ok(()),
        }
    }

    /// Records a write's failure: from now on the WAL is failed.
    fn guard<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(err) = &result
            && self.failed.is_none()
        {
            self.failed = Some(err.to_string());
        }
        result
    }

    fn start(&self) -> u64 {
        self.stored.start
    }

    /// Asserts (in debug builds) the invariants the module doc promises: segments contiguous,
    /// covering `start..next`, and `last` the id before `next`.
    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            for pair in self.segments.windows(2) {
                debug_assert_eq!(pair[0].next(), pair[1].first, "segments contiguous");
            }
            if let (Some(oldest), Some(newest)) = (self.segments.first(), self.segments.last()) {
                debug_assert!(oldest.first <= self.start(), "the oldest segment holds the start");
                debug_assert_eq!(newest.next(), self.next, "the newest segment ends the log");
            } else {
                debug_assert_eq!(self.next, self.start(), "no segment, no entry");
            }
            debug_assert!(self.next >= self.start());
            debug_assert_eq!(self.last, self.id_before(self.next));
        }
    }

    /// Removes entries `from..` from the files (newest segment first, so a crash midway leaves
    /// a prefix) and syncs the cut.
    fn cut(&mut self, from: u64, dir: &Path, files: &dyn FileOpener) -> Result<()> {
        while let Some(last) = self.segments.last_mut() {
            if last.first >= from {
                let gone = self.segments.pop().expect("a last segment");
                files.remove_file(&gone.path)?;
            } else {
                if last.next() > from {
                    last.truncate_from(from)?;
                }
                break;
            }
        }
        files.sync_dir(dir).map_err(dir_err)?;
        self.next = from;
        self.last = self.id_before(from);
        Ok(())
    }

    /// The id of the entry before `index`: in a segment, or the purged one.
    fn id_before(&self, index: u64) -> Option<LogId> {
        if index > self.start() {
            let prev = index - 1;
            Some(LogId { index: prev, term: self.segment_of(prev).term(prev) })
        } else {
            self.stored.purged
        }
    }

    /// The segment holding `index`, which the log must hold.
    fn segment_of(&self, index: u64) -> &Segment {
        let at = self.segments.partition_point(|s| s.first <= index);
        &self.segments[at - 1]
    }
}

impl Wal {
    /// Opens the WAL in `dir` (created when missing), recovering from a crash.
    pub fn open(dir: impl AsRef<Path>, config: WalConfig) -> Result<Self> {
        Self::open_inner(dir.as_ref(), config, Arc::new(OsFiles))
    }

    /// Opens the WAL writing its files through `files` (a fault-injecting test backend).
    #[cfg(feature = "internals")]
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: WalConfig,
        files: Arc<dyn FileOpener>,
    ) -> Result<Self> {
        Self::open_inner(dir.as_ref(), config, files)
    }

    fn open_inner(dir: &Path, config: WalConfig, files: Arc<dyn FileOpener>) -> Result<Self> {
        let at = |err| crate::storage::error::at(dir)(err);
        std::fs::create_dir_all(dir).map_err(at)?;
        let lock = crate::storage::disk::dir::lock(dir).map_err(|err| match err {
            crate::storage::Error::Locked(dir) => WalError::Locked(dir),
            other => WalError::Io(io::Error::other(other)),
        })?;
        let mut firsts = Vec::new();
        for item in std::fs::read_dir(dir).map_err(at)? {
            let name = item.map_err(at)?.file_name();
            if let Some(first) = name.to_str().and_then(segment::parse_name) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let stored = match Stored::load(dir)? {
            Some(stored) => stored,
            None if firsts.is_empty() => {
                let stored = Stored { start: config.first_index, ..Stored::default() };
                stored.save(dir, files.as_ref())?;
                stored
            }
            None => {
                return Err(WalError::Corrupt(format!("{}: segments but no meta", dir.display())));
            }
        };
        let start = stored.start;
        let mut segments: Vec<Segment> = Vec::new();
        for (i, &first) in firsts.iter().enumerate() {
            // Left behind by a purge a crash interrupted: every entry is below the start.
            if firsts.get(i + 1).is_some_and(|&next| next <= start) {
                files.remove_file(&dir.join(segment::file_name(first)))?;
                continue;
            }
            let segment = Segment::open(dir, first, files.as_ref(), i + 1 == firsts.len())?;
            if segment.next() <= start && segment.first < start {
                files.remove_file(&segment.path)?;
                continue;
            }
            let expected = segments.last().map_or(start, Segment::next);
            let fits = if segments.is_empty() { first <= start } else { first == expected };
            if !fits {
                return Err(WalError::Corrupt(format!(
                    "{}: starts at {first}, the log continues at {expected}",
                    segment.path.display()
                )));
            }
            segments.push(segment);
        }
        let next = segments.last().map_or(start, Segment::next);
        let mut state = State { stored, segments, next, last: None, failed: None };
        state.last = state.id_before(next);
        if let Some(from) = state.stored.truncate_from {
            state.cut(from.max(start).min(next), dir, files.as_ref())?;
            state.stored.truncate_from = None;
            state.stored.save(dir, files.as_ref())?;
        }
        state.debug_check();
        let state = Arc::new(Mutex::new(state));
        let gate = Arc::new(Mutex::new(()));
        let (shared, shared_gate) = (state.clone(), gate.clone());
        let syncer =
            Syncer::start(move || sync_active(&shared_gate, &shared).map_err(io::Error::from))?;
        Ok(Self { dir: dir.to_path_buf(), config, files, state, gate, syncer, _lock: lock })
    }

    fn gate(&self) -> Result<MutexGuard<'_, ()>> {
        self.gate.lock().map_err(|_| WalError::Failed("a panic mid-sync".into()))
    }

    fn state(&self) -> Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| WalError::Failed("a panic mid-operation".into()))
    }

    /// The first index the log holds (or would hold, when empty).
    pub fn first_index(&self) -> Result<u64> {
        Ok(self.state()?.start())
    }

    /// The index the next append must carry.
    pub fn next_index(&self) -> Result<u64> {
        Ok(self.state()?.next)
    }

    /// The last entry's id; when the log is empty, the last purged one (`None` if none).
    pub fn last(&self) -> Result<Option<LogId>> {
        Ok(self.state()?.last)
    }

    /// The last purged entry's id.
    pub fn purged(&self) -> Result<Option<LogId>> {
        Ok(self.state()?.stored.purged)
    }

    /// Appends `entries`, which must continue the log; readable on return, durable after a
    /// flush. A batch that does not continue the log ([`WalError::Gap`],
    /// [`WalError::TermRegression`]) changes nothing; an I/O error fails the WAL.
    pub fn append(&self, entries: impl IntoIterator<Item = Entry>) -> Result<()> {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            return Ok(());
        }
        let mut state = self.state()?;
        state.check()?;
        let mut last = state.last;
        for (i, entry) in entries.iter().enumerate() {
            let expected = state.next + i as u64;
            if entry.index != expected {
                return Err(WalError::Gap { expected, got: entry.index });
            }
            if let Some(prev) = last
                && entry.term < prev.term
            {
                let (index, term, last_term) = (entry.index, entry.term, prev.term);
                return Err(WalError::TermRegression { index, term, last_term });
            }
            last = Some(entry.id());
        }
        let written = self.write(&mut state, &entries);
        state.guard(written)?;
        state.next += entries.len() as u64;
        state.last = last;
        state.debug_check();
        Ok(())
    }

    fn write(&self, state: &mut State, entries: &[Entry]) -> Result<()> {
        let full = state.segments.last().map(|s| s.size() >= self.config.segment_bytes);
        if full != Some(false) {
            if full == Some(true) {
                // Sealed segments are never synced again: the syncer syncs the active one only.
                state.segments.last().expect("a segment").sync()?;
            }
            let segment = Segment::create(&self.dir, state.next, self.files.as_ref())?;
            state.segments.push(segment);
            self.files.sync_dir(&self.dir).map_err(dir_err)?;
        }
        state.segments.last_mut().expect("an active segment").append(entries)
    }

    /// Appends `entries` and queues `on_durable` for the next group sync; on an append error
    /// `on_durable` gets the error too (it is always called exactly once).
    pub fn append_then(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        on_durable: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> Result<()> {
        match self.append(entries) {
            Ok(()) => {
                self.flush_then(on_durable);
                Ok(())
            }
            Err(err) => {
                on_durable(Err(io::Error::other(err.to_string())));
                Err(err)
            }
        }
    }

    /// Calls `on_durable` from the syncer thread once everything appended so far is durable (or
    /// with the error that prevented it).
    pub fn flush_then(&self, on_durable: impl FnOnce(io::Result<()>) + Send + 'static) {
        self.syncer.request(Box::new(on_durable));
    }

    /// Makes everything appended so far durable, in the caller's thread.
    pub fn flush(&self) -> Result<()> {
        sync_active(&self.gate, &self.state)
    }

    /// Reads the entries of `range` that the log holds (`range ∩ [first, next)`), in order.
    pub fn read(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>> {
        let state = self.state()?;
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(state.start());
        let to = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        }
        .min(state.next);
        (from..to).map(|index| state.segment_of(index).read(index)).collect()
    }

    /// Removes every entry after `last_kept` (every entry from the start when `None`), durably
    /// and crash-atomically before returning. Keeping an entry already purged is an error;
    /// truncating past the end changes nothing.
    pub fn truncate_after(&self, last_kept: Option<u64>) -> Result<()> {
        let _gate = self.gate()?;
        let mut state = self.state()?;
        state.check()?;
        let start = state.start();
        let from = match last_kept {
            None => start,
            Some(index) if index + 1 < start => {
                return Err(WalError::Purged { index, first: start });
            }
            Some(index) => index + 1,
        };
        if from >= state.next {
            return Ok(());
        }
        state.stored.truncate_from = Some(from);
        let marked = state.stored.save(&self.dir, self.files.as_ref());
        state.guard(marked)?;
        let cut = state.cut(from, &self.dir, self.files.as_ref());
        state.guard(cut)?;
        state.debug_check();
        state.stored.truncate_from = None;
        let cleared = state.stored.save(&self.dir, self.files.as_ref());
        state.guard(cleared)
    }

    /// Drops entries up to and including `upto` and starts the log after it, durably before
    /// returning. `upto` may lie past the end (the log then continues at `upto.index + 1`, as
    /// after a snapshot install); a purge at or below an earlier one changes nothing.
    pub fn purge_upto(&self, upto: LogId) -> Result<()> {
        let _gate = self.gate()?;
        let mut state = self.state()?;
        state.check()?;
        if upto.index < state.start() {
            return Ok(());
        }
        debug_assert!(
            upto.index >= state.next || state.segment_of(upto.index).term(upto.index) == upto.term,
            "purging {upto:?} whose term differs from the log's"
        );
        state.stored.start = upto.index + 1;
        state.stored.purged = Some(upto);
        let saved = state.stored.save(&self.dir, self.files.as_ref());
        state.guard(saved)?;
        let start = upto.index + 1;
        if start >= state.next {
            state.next = start;
            state.last = Some(upto);
        }
        // Whole segments below the start go; a crash that leaves one is cleaned up at open.
        while let Some(oldest) = state.segments.first() {
            if oldest.next() > start {
                break;
            }
            let gone = state.segments.remove(0);
            let removed = self.files.remove_file(&gone.path).map_err(WalError::from);
            state.guard(removed)?;
        }
        state.debug_check();
        Ok(())
    }

    /// The metadata last saved.
    pub fn meta(&self) -> Result<Meta> {
        Ok(self.state()?.stored.meta.clone())
    }

    /// Saves `meta`, durably and crash-atomically, before returning.
    pub fn save_meta(&self, meta: &Meta) -> Result<()> {
        let mut state = self.state()?;
        state.check()?;
        state.stored.meta = meta.clone();
        let saved = state.stored.save(&self.dir, self.files.as_ref());
        state.guard(saved)
    }

    /// Flushes and closes the WAL, reporting a failed final sync.
    pub fn close(self) -> Result<()> {
        self.flush()
    }
}

/// Syncs the active segment, outside the state lock; a failure fails the WAL.
fn sync_active(gate: &Mutex<()>, state: &Mutex<State>) -> Result<()> {
    let _gate = gate.lock().map_err(|_| WalError::Failed("a panic mid-sync".into()))?;
    let file = {
        let state = state.lock().map_err(|_| WalError::Failed("a panic mid-operation".into()))?;
        state.check()?;
        match state.segments.last() {
            Some(segment) => segment.file(),
            None => return Ok(()),
        }
    };
    if let Err(err) = file.sync_data() {
        if let Ok(mut state) = state.lock() {
            state.failed.get_or_insert_with(|| err.to_string());
        }
        return Err(err.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
