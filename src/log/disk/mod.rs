//! [`DiskLog`]: the [`CommitLog`] contract on disk, as a directory of segments.
//!
//! A data directory holds a `LOCK` file (held exclusively while a log is open) and, per segment,
//! `{base:020}.store` and `{base:020}.index` (see `store` and `index` for the byte layouts). The
//! last segment is active; the others are sealed and read-only.
//!
//! # Concurrency and durability
//!
//! One `RwLock` guards the segments: an append takes it exclusively for one positional write per
//! batch and its index entries; reads take it shared just long enough to locate frames, then read
//! outside it. Under [`FsyncPolicy::Always`] appends then meet in [`Shared::sync_to`]: one thread
//! at a time runs `fdatasync` on the active store for everything written so far, and every append
//! it covers returns without a sync of its own (group commit). The commit point advances only
//! after that sync. Rolling to a new segment seals (syncs) the old one first, so syncing the
//! active store always covers every earlier write. A failed sync turns the log read-only.

pub mod file;
mod index;
mod scan;
mod segment;
mod store;
mod verify;

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock, mpsc};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

pub use index::INDEX_ENTRY_BYTES;
pub use verify::{SegmentReport, VerifyReport, verify};

use self::file::{FileOpener, OsFiles, sync_dir};
use self::segment::Segment;
use self::store::{FRAME_HEADER_BYTES, decode_frame, encode_frame};
use super::{CommitLog, Error, FsyncPolicy, LogConfig, Record, Result, now_ms};

/// The segmented on-disk log. Dropping it without [`CommitLog::close`] is a faithful crash.
#[derive(Debug)]
pub struct DiskLog {
    shared: Arc<Shared>,
    /// The interval syncer thread, if any; stopped and joined on drop.
    syncer: Option<Syncer>,
}

/// The background syncer of [`FsyncPolicy::Interval`]. While it syncs it holds the shared state
/// (and with it the directory lock), so dropping a log must wait for it: otherwise a reopen right
/// after a drop can find the directory still locked.
#[derive(Debug)]
struct Syncer {
    /// Dropping this tells the thread to stop.
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Drop for DiskLog {
    /// Stops the syncer thread and waits for it. No closing work (no sync, no trim): dropping a
    /// log stays a faithful crash.
    fn drop(&mut self) {
        if let Some(Syncer { stop, thread }) = self.syncer.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    config: LogConfig,
    opener: Arc<dyn FileOpener>,
    /// Index entries per new segment.
    index_capacity: u64,
    /// The segments and the write position; see the module doc for who takes it and how long.
    state: RwLock<State>,
    /// The commit point. Written by the sync turn's holder (policy `Always`) or under the state's write lock
    /// (other policies); read without a lock.
    committed: AtomicU64,
    /// The commit point's sender; `None` once closed, which ends every waiter. Its own lock, so
    /// that subscribing never waits behind an append or a segment roll; taken after `state` when
    /// both are held.
    commit: RwLock<Option<watch::Sender<u64>>>,
    /// Whether a thread holds the turn to sync ([`SyncTurn`]): one sync runs at a time, and
    /// the appends waiting for it are woken by `sync_done` as soon as the commit point covers
    /// them, so they share it (group commit) instead of queueing for syncs of their own.
    syncing: Mutex<bool>,
    /// Signalled whenever a sync turn ends.
    sync_done: Condvar,
    /// Set once by the first failed sync; from then on appends fail.
    failed: OnceLock<String>,
    /// Holds the directory's exclusive lock until the log is closed or dropped.
    lock: File,
}

#[derive(Debug)]
struct State {
    /// Sorted by base; the last is active. Never empty.
    segments: Vec<Segment>,
    /// The offset the next written record gets; `>= committed`.
    written: u64,
    /// Reused buffer for encoding frames.
    scratch: Vec<u8>,
    /// Set by `close`.
    closed: bool,
}

impl State {
    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log always has a segment")
    }

    fn check_open(&self) -> Result<()> {
        if self.closed { Err(Error::Closed) } else { Ok(()) }
    }
}

impl DiskLog {
    /// Opens (creating if needed) the log in `dir`, recovering from any crash: torn tails are cut,
    /// lost or stale indexes rebuilt. Fails with [`Error::Locked`] when another process has it.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        Self::open_with(dir, config, Arc::new(OsFiles))
    }

    /// [`open`](Self::open), with store files opened through `opener` (a test seam).
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: LogConfig,
        opener: Arc<dyn FileOpener>,
    ) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let lock = lock_dir(&dir)?;
        let index_capacity = config.max_index_bytes / INDEX_ENTRY_BYTES;
        let segments = open_segments(&dir, &config, index_capacity, opener.as_ref())?;
        let written = segments.last().expect("at least one segment").end();
        let shared = Arc::new(Shared {
            dir,
            opener,
            index_capacity,
            state: RwLock::new(State { segments, written, scratch: Vec::new(), closed: false }),
            committed: AtomicU64::new(written),
            commit: RwLock::new(Some(watch::Sender::new(written))),
            syncing: Mutex::new(false),
            sync_done: Condvar::new(),
            failed: OnceLock::new(),
            lock,
            config,
        });
        let syncer = match shared.config.fsync {
            FsyncPolicy::Interval(every) => Some(spawn_syncer(&shared, every)?),
            _ => None,
        };
        Ok(Self { shared, syncer })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// How many segments the log has.
    pub fn segment_count(&self) -> usize {
        self.shared.read_state().segments.len()
    }

    /// Syncs everything written so far, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        let _sync = self.shared.lock_sync();
        self.shared.sync_now()
    }
}

impl Shared {
    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the turn to sync (or to close).
    fn lock_sync(&self) -> SyncTurn<'_> {
        self.sync_turn(None).expect("an unconditional wait ends with the turn")
    }

    /// Waits for the turn to sync. With `Some(target)`, gives up (`None`) as soon as the commit
    /// point reaches `target` or the log turns read-only, so an append a running sync covered
    /// never waits for another one.
    fn sync_turn(&self, target: Option<u64>) -> Option<SyncTurn<'_>> {
        let mut syncing = self.syncing.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(target) = target
                && (self.committed.load(Ordering::Acquire) >= target || self.failed.get().is_some())
            {
                return None;
            }
            if !*syncing {
                *syncing = true;
                return Some(SyncTurn(self));
            }
            syncing = self.sync_done.wait(syncing).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn check_writable(&self) -> Result<()> {
        match self.failed.get() {
            Some(why) => Err(Error::ReadOnly(why.clone())),
            None => Ok(()),
        }
    }

    /// Records a failed sync: the log is read-only from now on.
    fn fail(&self, what: &str, err: std::io::Error) -> Error {
        let why = format!("{what} failed: {err}");
        tracing::error!(error = %err, "{what} failed; the log is read-only until restarted");
        let _ = self.failed.set(why);
        Error::ReadOnly(self.failed.get().cloned().unwrap_or_default())
    }

    /// Makes the log durable up to `target` (group commit): returns at once if a sync already
    /// covered it, otherwise syncs everything written so far.
    fn sync_to(&self, target: u64) -> Result<()> {
        let turn = self.sync_turn(Some(target));
        if self.committed.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        match turn {
            Some(_turn) => self.sync_now(),
            None => self.check_writable(),
        }
    }

    /// Syncs the active store; under `Always`, publishes the new commit point. Call holding the
    /// sync turn.
    fn sync_now(&self) -> Result<()> {
        self.check_writable()?;
        let (written, file) = {
            let state = self.read_state();
            state.check_open()?;
            (state.written, state.segments.last().expect("a segment").store_file().clone())
        };
        if let Err(err) = file.sync_data() {
            return Err(self.fail("fdatasync of the active segment", err));
        }
        if self.config.fsync == FsyncPolicy::Always {
            self.committed.fetch_max(written, Ordering::AcqRel);
            self.publish(written);
        }
        Ok(())
    }

    /// Announces the commit point `point` to waiting readers (it never moves back).
    fn publish(&self, point: u64) {
        let commit = self.commit.read().unwrap_or_else(|e| e.into_inner());
        if let Some(commit) = commit.as_ref() {
            commit.send_if_modified(|current| {
                let moved = *current < point;
                *current = (*current).max(point);
                moved
            });
        }
    }

    /// Seals the active segment and starts a new one at the write position whose index holds at
    /// least `min_entries`.
    fn roll(&self, state: &mut State, min_entries: u64) -> Result<()> {
        let active = state.active();
        if !active.is_sealed()
            && let Err(err) = active.seal()
        {
            return Err(self.fail("sealing a segment", err));
        }
        let capacity = self.index_capacity.max(min_entries);
        let mut segment =
            Segment::create(&self.dir, state.written, capacity, self.opener.as_ref())?;
        prepare_active(&mut segment, &self.config);
        state.segments.push(segment);
        if let Err(err) = sync_dir(&self.dir) {
            return Err(self.fail("fsync of the data directory", err));
        }
        Ok(())
    }

    fn append_batch(&self, values: &[Bytes]) -> Result<Range<u64>> {
        let max = self.config.max_record_bytes;
        if let Some(big) = values.iter().find(|v| v.len() > max) {
            return Err(Error::RecordTooLarge { size: big.len(), max });
        }
        // Checksums of the payloads are the costly part; compute them before taking the lock.
        let crcs: Vec<u32> = values.iter().map(|v| crc32c::crc32c(v)).collect();
        let frame_bytes: u64 = values.iter().map(|v| FRAME_HEADER_BYTES + v.len() as u64).sum();
        let count = values.len() as u64;
        self.presync_before_roll(frame_bytes, count)?;

        let mut guard = self.write_state();
        let state = &mut *guard;
        state.check_open()?;
        self.check_writable()?;
        let start = state.written;
        if count == 0 {
            let point = self.committed.load(Ordering::Acquire);
            return Ok(point..point);
        }
        let active = state.active();
        if active.is_sealed() || self.must_roll(active, frame_bytes, count) {
            self.roll(state, count)?;
        }
        let mut frames = std::mem::take(&mut state.scratch);
        frames.clear();
        let mut starts = Vec::with_capacity(values.len());
        let timestamp_ms = now_ms();
        for (i, (value, crc)) in values.iter().zip(&crcs).enumerate() {
            starts.push(frames.len() as u64);
            encode_frame(&mut frames, start + i as u64, timestamp_ms, value, *crc);
        }
        let active = state.active();
        if count > active.index_room() {
            // Only an empty segment gets here (a full one was rolled): an oversized batch. Grow
            // its index in place; rolling would create a second segment at the same base.
            active.reserve(count)?;
        }
        let appended = state.active().append(&frames, &starts);
        if frames.capacity() <= 4 * 1024 * 1024 {
            state.scratch = frames;
        }
        appended?;
        state.written = start + count;
        let end = state.written;
        if self.config.fsync != FsyncPolicy::Always {
            self.committed.store(end, Ordering::Release);
            self.publish(end);
            return Ok(start..end);
        }
        drop(guard);
        self.sync_to(end)?;
        Ok(start..end)
    }

    /// Whether a batch of `count` records (`frame_bytes` on disk) must go to a new segment: the
    /// active one has records and the batch would overflow its store or its index.
    fn must_roll(&self, active: &Segment, frame_bytes: u64, count: u64) -> bool {
        active.entries() > 0
            && (active.store_size() + frame_bytes > self.config.max_store_bytes
                || count > active.index_room())
    }

    /// A batch that rolls the log seals the active segment, and sealing syncs its store while
    /// holding the log's write lock. Under `never` or `interval` that store may hold a whole
    /// segment of unsynced data, so sync it first, with no lock held: appends and reads go on
    /// meanwhile, and the sync under the lock finds little left to do. (Under `always` the
    /// store is synced already.)
    fn presync_before_roll(&self, frame_bytes: u64, count: u64) -> Result<()> {
        if self.config.fsync == FsyncPolicy::Always {
            return Ok(());
        }
        let store = {
            let state = self.read_state();
            let active = state.segments.last().expect("a log always has a segment");
            if active.is_sealed() || !self.must_roll(active, frame_bytes, count) {
                return Ok(());
            }
            active.store_file().clone()
        };
        store.sync_data().map_err(|err| self.fail("fdatasync of a segment about to be sealed", err))
    }

    fn read_batch(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let located = {
            let state = self.read_state();
            state.check_open()?;
            let next = self.committed.load(Ordering::Acquire);
            let lowest = state.segments[0].base();
            if offset < lowest || offset >= next {
                return Err(Error::OffsetOutOfRange { offset, lowest, next });
            }
            let at = state.segments.partition_point(|s| s.base() <= offset) - 1;
            state.segments[at].locate(offset, next, max_records, max_bytes)?
        };
        let end = *located.ends.last().expect("at least one frame");
        let bytes = store::read_at(located.file.as_ref(), located.pos, end - located.pos).map_err(
            |err| match err.kind() {
                std::io::ErrorKind::UnexpectedEof => Error::Corrupt {
                    offset,
                    detail: "the store file is shorter than its index says".into(),
                },
                _ => Error::from(err),
            },
        )?;
        let mut records = Vec::with_capacity(located.ends.len());
        let mut from = located.pos;
        for (i, frame_end) in located.ends.iter().enumerate() {
            let at = offset + i as u64;
            let frame =
                bytes.slice((from - located.pos) as usize..(frame_end - located.pos) as usize);
            match decode_frame(&frame, at) {
                Ok((timestamp_ms, value)) => {
                    records.push(Record { offset: at, timestamp_ms, value })
                }
                Err(detail) if records.is_empty() => {
                    return Err(Error::Corrupt { offset: at, detail });
                }
                Err(_) => break,
            }
            from = *frame_end;
        }
        Ok(records)
    }
}

impl CommitLog for DiskLog {
    fn append(&self, value: Bytes) -> Result<u64> {
        self.shared.append_batch(std::slice::from_ref(&value)).map(|r| r.start)
    }

    fn append_batch(&self, values: &[Bytes]) -> Result<Range<u64>> {
        self.shared.append_batch(values)
    }

    fn read(&self, offset: u64) -> Result<Record> {
        let mut records = self.shared.read_batch(offset, 1, 0)?;
        Ok(records.swap_remove(0))
    }

    fn read_batch(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        self.shared.read_batch(offset, max_records, max_bytes)
    }

    fn lowest_offset(&self) -> u64 {
        self.shared.read_state().segments[0].base()
    }

    fn next_offset(&self) -> u64 {
        self.shared.committed.load(Ordering::Acquire)
    }

    fn truncate(&self, lowest: u64) -> Result<u64> {
        let shared = &self.shared;
        let mut state = shared.write_state();
        state.check_open()?;
        let bound = lowest.min(shared.committed.load(Ordering::Acquire));
        let mut removed = 0;
        while state.segments.len() > 1 && state.segments[0].end() <= bound {
            let segment = state.segments.remove(0);
            segment.delete(&shared.dir)?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&shared.dir)?;
        }
        Ok(state.segments[0].base())
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        let commit = self.shared.commit.read().unwrap_or_else(|e| e.into_inner());
        match commit.as_ref() {
            Some(commit) => commit.subscribe(),
            None => watch::channel(self.next_offset()).1,
        }
    }

    fn close(&self) -> Result<()> {
        let shared = &self.shared;
        let _sync = shared.lock_sync();
        let mut state = shared.write_state();
        state.check_open()?;
        let outcome = (|| {
            if shared.failed.get().is_none() {
                let active = state.active();
                active.store_file().sync_data()?;
                active.seal()?;
                sync_dir(&shared.dir)?;
            }
            Ok::<_, std::io::Error>(())
        })();
        state.closed = true;
        *shared.commit.write().unwrap_or_else(|e| e.into_inner()) = None;
        let _ = shared.lock.unlock();
        outcome.map_err(|err| shared.fail("closing the log", err))
    }
}

/// The exclusive turn to sync; ending it wakes every thread waiting in [`Shared::sync_turn`].
struct SyncTurn<'a>(&'a Shared);

impl Drop for SyncTurn<'_> {
    fn drop(&mut self) {
        *self.0.syncing.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.0.sync_done.notify_all();
    }
}

/// Takes the data directory's exclusive lock.
fn lock_dir(dir: &Path) -> Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join("LOCK"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(err)) => Err(err.into()),
    }
}

/// The base offsets of the segments in `dir`, sorted, and deletes index files with no store.
fn segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let (stores, indexes) = segment::list_bases(dir)?;
    for base in indexes.into_iter().filter(|b| stores.binary_search(b).is_err()) {
        std::fs::remove_file(segment::index_path(dir, base))?;
    }
    Ok(stores)
}

/// Opens every segment of `dir`, or creates the first one at the configured initial offset.
fn open_segments(
    dir: &Path,
    config: &LogConfig,
    index_capacity: u64,
    opener: &dyn FileOpener,
) -> Result<Vec<Segment>> {
    let bases = segment_bases(dir)?;
    let Some((&last, sealed)) = bases.split_last() else {
        let mut first = Segment::create(dir, config.initial_offset, index_capacity, opener)?;
        prepare_active(&mut first, config);
        sync_dir(dir)?;
        return Ok(vec![first]);
    };
    let mut segments = Vec::with_capacity(bases.len());
    for (i, &base) in sealed.iter().enumerate() {
        segments.push(Segment::open_sealed(dir, base, bases[i + 1], opener)?);
    }
    let mut active = Segment::open_active(dir, last, index_capacity, opener)?;
    prepare_active(&mut active, config);
    segments.push(active);
    sync_dir(dir)?;
    Ok(segments)
}

/// How far ahead of its data an active store is zero-filled under [`FsyncPolicy::Always`].
const PREALLOCATE_BYTES: u64 = 4 * 1024 * 1024;

/// Readies the segment appends go to: under `Always`, where every append waits for a sync,
/// its store is zero-filled ahead so that those syncs are data-only flushes.
fn prepare_active(segment: &mut Segment, config: &LogConfig) {
    if config.fsync == FsyncPolicy::Always {
        segment.preallocate(PREALLOCATE_BYTES, config.max_store_bytes);
    }
}

/// Starts the background thread that syncs every `every` under [`FsyncPolicy::Interval`]. It
/// stops when the returned syncer's sender is dropped.
fn spawn_syncer(shared: &Arc<Shared>, every: Duration) -> Result<Syncer> {
    let (stop, stopped) = mpsc::channel::<()>();
    let weak = Arc::downgrade(shared);
    let thread = std::thread::Builder::new().name("girok-syncer".into()).spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            let Some(shared) = weak.upgrade() else { break };
            let _sync = shared.lock_sync();
            match shared.sync_now() {
                Ok(()) | Err(Error::Closed) | Err(Error::ReadOnly(_)) => {}
                Err(err) => tracing::warn!(error = %err, "interval sync failed"),
            }
        }
    })?;
    Ok(Syncer { stop, thread })
}
