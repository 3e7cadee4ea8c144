//! [`DiskLog`]: the [`CommitLog`] contract on disk, as a directory of segments.
//!
//! A log's directory holds, per segment, a store and an index file (see `dir` for the names,
//! `store` and `index` for the byte layouts), and a `LOCK` file when the log was opened alone
//! ([`DiskLog::open`]); a log opened in a [`DiskGroup`] ([`DiskLog::open_in`]) takes no lock, its
//! caller holds one over a parent directory. The last segment is active; the others are sealed
//! and read-only.
//!
//! An idle log costs little: its active segment holds one descriptor (its store), an index that
//! starts at 64 KiB and doubles as it fills (up to [`DiskConfig::max_index_bytes`]), and under
//! [`FsyncPolicy::Always`] zeros written ahead of its data in steps that grow with the store (64
//! KiB to 4 MiB); sealed segments hold nothing until read, through the group's one cache, and the
//! group's one thread syncs its interval logs.
//!
//! | file | owns |
//! |------|------|
//! | `mod.rs` | [`DiskLog`]: opening, appends, reads, truncation, close |
//! | `config.rs` | [`DiskConfig`], [`FsyncPolicy`] |
//! | `group.rs` | [`DiskGroup`]: the sealed-file cache and the syncer the logs of a server share |
//! | `commit.rs` | the commit point, its watch, group commit, the read-only failure |
//! | `syncer.rs` | a group's one background thread of [`FsyncPolicy::Interval`] |
//! | `dir.rs` | the directory: its lock, file names, listing, directory syncs |
//! | `segment.rs` | one store + index pair |
//! | `sealed.rs` | a group's bounded cache of sealed segments' open files |
//! | `retention.rs` | rolling aged active segments, deleting sealed ones outside the lock |
//! | `free_space.rs` | the group's free-space floor on the data volume |
//! | `recovery.rs` | opening segments after a clean stop or a crash |
//! | `store.rs`, `index.rs`, `scan.rs` | the store file, the mapped index, the forward frame scan |
//! | `fs.rs` | the narrow file seam stores are written through |
//! | `verify.rs` | the offline check behind `girok verify` |
//!
//! # Concurrency and durability
//!
//! One `RwLock` per log guards its segments (no lock on the append path is shared with other
//! logs of the group: the free-space floor is read from atomics, and events are reported after
//! the log's lock is released): an append takes it exclusively for one positional write per batch and its
//! index entries (and, now and then, growing the index or zero-filling ahead); reads take it
//! shared just long enough to locate frames, copying positions out of the index, then read
//! outside it. Under [`FsyncPolicy::Always`] appends then meet in `Commit::sync_to`: one thread
//! at a time runs `fdatasync` on the active store for everything written so far, and every append
//! it covers returns without a sync of its own (group commit). The commit point advances only
//! after that sync. Rolling to a new segment seals (syncs) the old one first, so syncing the
//! active store always covers every earlier write. A failed sync, or a lock poisoned by a panic
//! (see `storage::locks`), turns the log read-only.
//!
//! Invariants, asserted in debug builds: `written >= committed`; the segments are sorted, the
//! last is the only active one, and each ends where the next begins; `store_bytes` is the sum of
//! the segments' store sizes.

/// Declares a module public with the `internals` feature (for tests, benches and fuzzing) and
/// private to the crate without it, so a normal build exposes no test seam (the Raft WAL in
/// `cluster::wal` writes through the same file seam, hence `pub(crate)`).
macro_rules! internal_mod {
    ($(#[$attr:meta])* $name:ident) => {
        #[cfg(feature = "internals")]
        $(#[$attr])*
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        #[allow(unreachable_pub, dead_code)]
        $(#[$attr])*
        pub(crate) mod $name;
    };
}

mod commit;
mod config;
pub(crate) mod dir;
mod free_space;
internal_mod!(fs);
mod group;
internal_mod!(
    #[allow(unsafe_code)]
    index
);
mod recovery;
mod retention;
mod scan;
mod sealed;
mod segment;
internal_mod!(store);
mod syncer;
mod verify;

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use bytes::Bytes;
use tokio::sync::watch;

pub use config::{DiskConfig, FsyncPolicy};
pub use group::DiskGroup;
pub use verify::{SegmentReport, VerifyReport, verify};

use self::commit::Commit;
use self::config::MIN_STORE_BYTES;
use self::free_space::FreeSpace;
use self::fs::{DirSyncError, FileOpener, OsFiles};
use self::index::grown_capacity;
use self::retention::Rolls;
use self::sealed::SealedFiles;
use self::segment::{Located, Segment};
pub(crate) use self::store::FRAME_HEADER_BYTES;
use self::store::{decode_frame, encode_frame};
use self::syncer::IntervalSync;
use super::locks::Locks;
use super::{
    CommitLog, Enforced, Error, LogConfig, Record, Result, Retention, StorageEvents, now_ms,
};

/// The segmented on-disk log. Dropping it without [`CommitLog::close`] is a faithful crash.
#[derive(Debug)]
pub struct DiskLog {
    /// The group whose sealed-file cache and syncer the log uses. Declared first: a log opened
    /// alone holds the only handle on its private group, so dropping it stops and joins the
    /// syncer thread before the shared state (and the directory lock) goes.
    group: DiskGroup,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// The log's id in its group: the key of its entries in the group's cache and syncer.
    id: u64,
    dir: PathBuf,
    config: DiskConfig,
    opener: Arc<dyn FileOpener>,
    /// The group's listener, told of each sync and appended batch.
    events: Arc<dyn StorageEvents>,
    /// The store size a segment rolls at: `config.max_store_bytes` until
    /// [`DiskLog::set_max_store_bytes`] replaces it. Appends read it without a lock.
    max_store_bytes: AtomicU64,
    /// The segments and the write position; see the module doc for who takes it and how long.
    state: RwLock<State>,
    /// The commit point and group commit. Taken after `state` when both are held.
    commit: Commit,
    /// The group's cache of sealed segments' open files, for reads. Its lock is taken after
    /// `state` is released.
    sealed: Arc<SealedFiles>,
    /// The group's free-space floor, checked before every append.
    free: Arc<FreeSpace>,
    /// The group's roll signal, raised after every roll.
    rolls: Arc<Rolls>,
    /// Bases of segments taken out of the state whose files are still to be unlinked, oldest
    /// first; held over the unlinks so that deletions run one at a time (see `retention`), and
    /// by `close`, so that no unlink by path outlives the log. Taken before `state` (and before
    /// the sync turn); appends never take it.
    deleting: Mutex<Vec<u64>>,
    /// The write position the last successful sync covered: the interval syncer skips a log
    /// with nothing new, so idle logs cost it no `fdatasync`.
    synced: AtomicU64,
    /// Holds the directory's exclusive lock until the log is closed or dropped; `None` when the
    /// log was opened in a group whose owner holds a lock over it.
    lock: Option<File>,
}

#[derive(Debug)]
struct State {
    /// Sorted by base; the last is active. Never empty.
    segments: Vec<Segment>,
    /// The offset the next written record gets; `>= committed`.
    written: u64,
    /// The sum of the segments' store sizes (headers and frames): [`CommitLog::size_bytes`].
    store_bytes: u64,
    /// The timestamp of the last record written: the next one gets at least this.
    last_timestamp_ms: u64,
    /// Set when the directory could not be synced after a segment was created because it
    /// could not be opened (no descriptor free): nothing is appended until a sync succeeds.
    dir_unsynced: bool,
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

    /// The invariants of the module doc, in debug builds.
    fn debug_check(&self, committed: u64) {
        debug_assert!(self.written >= committed, "commit point {committed} past {}", self.written);
        debug_assert!(
            self.segments.windows(2).all(|w| w[0].is_sealed() && w[0].end() == w[1].base()),
            "segments out of order, or an active segment before the last"
        );
        debug_assert_eq!(self.segments.last().map(Segment::end), Some(self.written));
        debug_assert_eq!(
            self.store_bytes,
            self.segments.iter().map(Segment::store_size).sum::<u64>()
        );
    }
}

impl Locks for Shared {
    fn on_poison(&self) {
        self.commit.on_poison();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // A deleted log's files must not stay open in the group's cache.
        self.sealed.forget_log(self.id);
    }
}

impl Drop for DiskLog {
    fn drop(&mut self) {
        // Afterwards the syncer holds nothing of this log: its files close with `shared`.
        self.group.stop_syncing(self.shared.id);
    }
}

impl DiskLog {
    /// Opens (creating if needed) the log in `dir`, recovering from any crash: torn tails are cut,
    /// lost or stale indexes rebuilt. Fails with [`Error::Locked`] when another process has it.
    /// The log has a [`DiskGroup`] of its own, bounded by `config.max_open_segments`.
    pub fn open(dir: impl AsRef<Path>, config: DiskConfig) -> Result<Self> {
        let group = DiskGroup::new(config.max_open_segments);
        Self::open_through(dir.as_ref(), config, &group, Locking::Own, Arc::new(OsFiles))
    }

    /// Opens (creating if needed) the log in `dir` as [`open`](Self::open) does, as a member of
    /// `group`: it uses the group's cache of sealed segments (whose bound replaces
    /// `config.max_open_segments`) and its interval syncer. It takes no `LOCK` file: the caller
    /// holds a lock over a parent directory, so no other process opens the log, and must not
    /// open the same directory twice at once (nothing here can tell).
    pub fn open_in(dir: impl AsRef<Path>, config: DiskConfig, group: &DiskGroup) -> Result<Self> {
        Self::open_through(dir.as_ref(), config, group, Locking::Parent, Arc::new(OsFiles))
    }

    /// [`open`](Self::open), with store files opened through `opener`: the seam a test backend
    /// uses to inject faults or drop unsynced writes.
    #[cfg(feature = "internals")]
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: DiskConfig,
        opener: Arc<dyn FileOpener>,
    ) -> Result<Self> {
        let group = DiskGroup::new(config.max_open_segments);
        Self::open_through(dir.as_ref(), config, &group, Locking::Own, opener)
    }

    /// [`open_in`](Self::open_in), with store files opened through `opener` (see
    /// [`open_with`](Self::open_with)).
    #[cfg(feature = "internals")]
    pub fn open_in_with(
        dir: impl AsRef<Path>,
        config: DiskConfig,
        group: &DiskGroup,
        opener: Arc<dyn FileOpener>,
    ) -> Result<Self> {
        Self::open_through(dir.as_ref(), config, group, Locking::Parent, opener)
    }

    fn open_through(
        dir: &Path,
        config: DiskConfig,
        group: &DiskGroup,
        locking: Locking,
        opener: Arc<dyn FileOpener>,
    ) -> Result<Self> {
        config.validate()?;
        let dir = dir.to_path_buf();
        dir::create(&dir, opener.as_ref())?;
        let lock = match locking {
            Locking::Own => Some(dir::lock(&dir)?),
            Locking::Parent => None,
        };
        let segments = open_segments(&dir, &config, opener.as_ref())?;
        let written = segments.last().expect("at least one segment").end();
        let store_bytes = segments.iter().map(Segment::store_size).sum();
        let shared = Arc::new(Shared {
            id: group.member_id(),
            dir,
            opener,
            events: Arc::clone(group.events()),
            max_store_bytes: AtomicU64::new(config.max_store_bytes),
            state: RwLock::new(State {
                segments,
                written,
                store_bytes,
                last_timestamp_ms: 0,
                dir_unsynced: false,
                closed: false,
            }),
            commit: Commit::new(written),
            sealed: Arc::clone(group.sealed()),
            free: Arc::clone(group.free()),
            rolls: Arc::clone(group.rolls()),
            deleting: Mutex::new(Vec::new()),
            // Recovery left everything it found durable.
            synced: AtomicU64::new(written),
            lock,
            config,
        });
        let last_timestamp_ms = shared.last_timestamp_ms();
        shared.write_locked(&shared.state).last_timestamp_ms = last_timestamp_ms;
        if let FsyncPolicy::Interval(every) = shared.config.fsync {
            let weak = Arc::downgrade(&shared);
            group.sync_every(shared.id, weak, every)?;
        }
        Ok(Self { group: group.clone(), shared })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// How many segments the log has.
    pub fn segment_count(&self) -> usize {
        self.shared.read_locked(&self.shared.state).segments.len()
    }

    /// How many sealed segments of this log have their files open.
    #[cfg(feature = "internals")]
    pub fn open_sealed_segments(&self) -> usize {
        self.shared.sealed.len_of(self.shared.id)
    }

    /// Replaces the store size a segment rolls at ([`DiskConfig::max_store_bytes`]): the next
    /// append's roll decision uses it. Fails with [`Error::Config`] below 64 bytes.
    pub fn set_max_store_bytes(&self, bytes: u64) -> Result<()> {
        if bytes < MIN_STORE_BYTES {
            return Err(Error::Config(format!(
                "max_store_bytes must be at least {MIN_STORE_BYTES}"
            )));
        }
        self.shared.read_locked(&self.shared.state).check_open()?;
        self.shared.max_store_bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs everything written so far, whatever the policy.
    pub fn sync(&self) -> Result<()> {
        let _turn = self.shared.commit.turn();
        self.shared.sync_now()
    }
}

impl Shared {
    /// The timestamp of the last record held, so that the next one never goes back in time
    /// across a restart; 0 when the log is empty or that record cannot be read.
    fn last_timestamp_ms(&self) -> u64 {
        let next = self.commit.point();
        match next.checked_sub(1) {
            Some(last) => self.read_batch(last, 1, 0).map_or(0, |r| r[0].timestamp_ms),
            None => 0,
        }
    }

    /// Syncs the active store; under `Always`, advances the commit point over what it covered.
    /// Call holding the sync turn.
    fn sync_now(&self) -> Result<()> {
        self.commit.check_writable()?;
        let (written, file) = {
            let state = self.read_locked(&self.state);
            state.check_open()?;
            let active = state.segments.last().expect("a segment");
            match active.store_file() {
                Some(file) => (state.written, Arc::clone(file)),
                None => {
                    // Sealed by a roll whose new segment could not be created: sealing synced
                    // everything written, so it is all durable, and committed under `Always`.
                    if self.config.fsync == FsyncPolicy::Always {
                        self.commit.advance(state.written);
                    }
                    self.synced.fetch_max(state.written, Ordering::Release);
                    return Ok(());
                }
            }
        };
        let started = std::time::Instant::now();
        let synced = file.sync_data();
        self.events.on_fsync(started.elapsed());
        if let Err(err) = synced {
            return Err(self.commit.fail("fdatasync of the active segment", err));
        }
        if self.config.fsync == FsyncPolicy::Always {
            self.commit.advance(written);
        }
        self.synced.fetch_max(written, Ordering::Release);
        Ok(())
    }

    /// Seals the active segment and starts a new one at the write position whose index holds at
    /// least `min_entries`. Sealing syncs the store: how long that took goes to `sealing`, for
    /// the caller to report once it has released the state lock.
    fn roll(
        &self,
        state: &mut State,
        min_entries: u64,
        sealing: &mut Option<std::time::Duration>,
    ) -> Result<()> {
        let active = state.active();
        if !active.is_sealed() {
            let started = std::time::Instant::now();
            let sealed = active.seal();
            *sealing = Some(started.elapsed());
            if let Err(err) = sealed {
                return Err(self.commit.fail("sealing a segment", err));
            }
        }
        let start = self.config.start_index_entries();
        let capacity = grown_capacity(start, min_entries, self.config.max_index_entries());
        let segment = Segment::create(&self.dir, state.written, capacity, self.opener.as_ref())?;
        state.store_bytes += segment.store_size();
        state.segments.push(segment);
        state.dir_unsynced = true;
        self.rolls.rolled();
        self.sync_dir(state)
    }

    /// Syncs the data directory after a segment was created. A directory that could not be
    /// opened was not synced and nothing about it is uncertain: the append fails, and the next
    /// one tries again before anything lands in the new segment. A failed `fsync` is a failed
    /// sync: the log turns read-only.
    fn sync_dir(&self, state: &mut State) -> Result<()> {
        match self.opener.sync_dir(&self.dir) {
            Ok(()) => {
                state.dir_unsynced = false;
                Ok(())
            }
            Err(DirSyncError::Open(err)) => {
                tracing::warn!(error = %err, "cannot open the data directory to sync it; retrying");
                Err(err.into())
            }
            Err(DirSyncError::Sync(err)) => {
                Err(self.commit.fail("fsync of the data directory", err))
            }
        }
    }

    fn append_batch_at(&self, values: &[Bytes], clock_ms: u64) -> Result<Range<u64>> {
        self.config.log.check_values(values)?;
        self.free.check(&self.dir)?;
        // Checksums of the payloads are the costly part; compute them before taking the lock.
        let crcs: Vec<u32> = values.iter().map(|v| crc32c::crc32c(v)).collect();
        let frame_bytes: u64 = values.iter().map(|v| FRAME_HEADER_BYTES + v.len() as u64).sum();
        let count = values.len() as u64;
        self.presync_before_roll(frame_bytes, count)?;
        let mut sealing = None;
        let appended = self.append_locked(values, clock_ms, &crcs, frame_bytes, &mut sealing);
        if let Some(took) = sealing {
            self.events.on_fsync(took);
        }
        let (range, must_sync) = appended?;
        if !range.is_empty() {
            self.events.on_append_batch(values.len());
        }
        if must_sync {
            self.commit.sync_to(range.end, || self.sync_now())?;
        }
        Ok(range)
    }

    /// The part of [`append_batch`](Self::append_batch) under the state lock: writes the batch
    /// (rolling first if it must), and answers its offsets and whether it still waits for a
    /// sync. A roll's seal time goes to `sealing`.
    fn append_locked(
        &self,
        values: &[Bytes],
        clock_ms: u64,
        crcs: &[u32],
        frame_bytes: u64,
        sealing: &mut Option<std::time::Duration>,
    ) -> Result<(Range<u64>, bool)> {
        let count = values.len() as u64;
        let mut guard = self.write_locked(&self.state);
        let state = &mut *guard;
        state.check_open()?;
        self.commit.check_writable()?;
        let start = state.written;
        if count == 0 {
            let point = self.commit.point();
            return Ok((point..point, false));
        }
        if state.dir_unsynced {
            self.sync_dir(state)?;
        }
        let end = start.checked_add(count).ok_or(Error::OffsetsExhausted { next: start })?;
        let active = state.active();
        if active.is_sealed() || self.must_roll(active, frame_bytes, count) {
            self.roll(state, count, sealing)?;
        }
        // A full index was rolled above unless it was below its maximum (it grows by doubling)
        // or the segment is empty (an oversized batch: rolling would create a second segment at
        // the same base). Growing maps the index anew, which the write lock makes safe: readers
        // locate frames under the read lock and keep no reference into the mapping.
        state.active().make_index_room(count, self.config.max_index_entries())?;
        let mut frames = take_scratch();
        let mut starts = Vec::with_capacity(values.len());
        let timestamp_ms = clock_ms.max(state.last_timestamp_ms);
        for (i, (value, crc)) in values.iter().zip(crcs).enumerate() {
            starts.push(frames.len() as u64);
            encode_frame(&mut frames, start + i as u64, timestamp_ms, value, *crc);
        }
        let frames_len = frames.len() as u64;
        let appended = state.active().append(&frames, &starts);
        give_back_scratch(frames);
        appended?;
        state.active().stamped(timestamp_ms);
        if self.config.fsync == FsyncPolicy::Always {
            // Every append waits for a sync here: zeros ahead keep those syncs data-only.
            state.active().fill_ahead(self.max_store_bytes());
        }
        state.written = end;
        state.store_bytes += frames_len;
        state.last_timestamp_ms = timestamp_ms;
        state.debug_check(self.commit.point());
        let always = self.config.fsync == FsyncPolicy::Always;
        if !always {
            self.commit.advance(end);
        }
        // Events go out after the lock: the listener may take a lock of its own (a histogram's).
        Ok((start..end, always))
    }

    /// The store size a segment rolls at.
    fn max_store_bytes(&self) -> u64 {
        self.max_store_bytes.load(Ordering::Relaxed)
    }

    /// Whether a batch of `count` records (`frame_bytes` on disk) must go to a new segment: the
    /// active one has records and the batch would overflow its store or its index.
    fn must_roll(&self, active: &Segment, frame_bytes: u64, count: u64) -> bool {
        let max_entries = self.config.max_index_entries().max(active.index_capacity());
        active.entries() > 0
            && (active.store_size() + frame_bytes > self.max_store_bytes()
                || active.entries() + count > max_entries)
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
            let state = self.read_locked(&self.state);
            let active = state.segments.last().expect("a log always has a segment");
            match active.store_file() {
                Some(file) if self.must_roll(active, frame_bytes, count) => Arc::clone(file),
                _ => return Ok(()),
            }
        };
        let started = std::time::Instant::now();
        let synced = store.sync_data();
        self.events.on_fsync(started.elapsed());
        synced.map_err(|err| self.commit.fail("fdatasync of a segment about to be sealed", err))
    }

    /// Finds the frames of up to `max_records` records from `offset`: in the active segment
    /// under the state lock; in a sealed one after releasing it, through the cache of open files
    /// (opening them is I/O that must not hold up appends).
    fn locate(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Located> {
        let (span, next) = {
            let state = self.read_locked(&self.state);
            state.check_open()?;
            let next = self.commit.point();
            let lowest = state.segments[0].base();
            if offset < lowest || offset >= next {
                return Err(Error::OffsetOutOfRange { offset, lowest, next });
            }
            let at = state.segments.partition_point(|s| s.base() <= offset) - 1;
            let segment = &state.segments[at];
            if let Some(files) = segment.files() {
                return segment.span().locate(files, offset, next, max_records, max_bytes);
            }
            (segment.span(), next)
        };
        span.check_present(offset)?;
        let open = match self.sealed.get(self.id, &self.dir, span.base, self.opener.as_ref()) {
            Ok(open) => open,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                // The log was closed, or retention deleted the segment, since the bounds were
                // checked.
                self.read_locked(&self.state).check_open()?;
                let (lowest, next) = (self.lowest_offset(), self.commit.point());
                if offset < lowest {
                    return Err(Error::OffsetOutOfRange { offset, lowest, next });
                }
                return Err(err.into());
            }
            Err(err) => return Err(err.into()),
        };
        span.locate(open.files(), offset, next, max_records, max_bytes)
    }

    fn lowest_offset(&self) -> u64 {
        self.read_locked(&self.state).segments[0].base()
    }

    fn read_batch(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let located = self.locate(offset, max_records, max_bytes)?;
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
        self.shared.append_batch_at(std::slice::from_ref(&value), now_ms()).map(|r| r.start)
    }

    fn append_batch_at(&self, values: &[Bytes], clock_ms: u64) -> Result<Range<u64>> {
        self.shared.append_batch_at(values, clock_ms)
    }

    fn sync(&self) -> Result<()> {
        DiskLog::sync(self)
    }

    fn segment_count(&self) -> usize {
        DiskLog::segment_count(self)
    }

    fn read(&self, offset: u64) -> Result<Record> {
        let mut records = self.shared.read_batch(offset, 1, 0)?;
        Ok(records.swap_remove(0))
    }

    fn read_batch(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        self.shared.read_batch(offset, max_records, max_bytes)
    }

    fn lowest_offset(&self) -> u64 {
        self.shared.lowest_offset()
    }

    fn next_offset(&self) -> u64 {
        self.shared.commit.point()
    }

    fn max_record_bytes(&self) -> usize {
        self.shared.config.log.max_record_bytes
    }

    /// Takes the segments out under the lock and unlinks their files after releasing it (see
    /// `retention`).
    fn truncate(&self, lowest: u64) -> Result<u64> {
        let bound = lowest.min(self.shared.commit.point());
        let choose = |state: &State| {
            state.segments.iter().position(|s| s.end() > bound).unwrap_or(state.segments.len())
        };
        Ok(self.shared.drop_oldest(choose)?.2)
    }

    fn enforce_retention(&self, rules: Retention, now_ms: u64) -> Result<Enforced> {
        self.shared.enforce_retention(rules, now_ms)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.commit.subscribe()
    }

    /// The sum of the segments' store sizes, kept as appends, rolls and truncation change them:
    /// headers and frames up to the write position (records written and not yet committed
    /// included), no zeros written ahead, no indexes.
    fn size_bytes(&self) -> u64 {
        self.shared.read_locked(&self.shared.state).store_bytes
    }

    fn set_segment_bytes(&self, bytes: u64) -> Result<()> {
        self.set_max_store_bytes(bytes)
    }

    fn close(&self) -> Result<()> {
        let shared = &self.shared;
        // Waits for a retention unlink in progress, which names files by path: once `close`
        // returns, the directory may be renamed away and a new log created at its path, whose
        // files a late unlink would delete. Taken before the state lock, as everywhere.
        let _deleting = shared.deleting.lock().unwrap_or_else(PoisonError::into_inner);
        // Before taking the sync turn: a sync of this log in progress on the syncer holds it.
        self.group.stop_syncing(shared.id);
        let _turn = shared.commit.turn();
        let mut state = shared.write_locked(&shared.state);
        state.check_open()?;
        let outcome = (|| {
            if !shared.commit.has_failed() {
                state.active().seal()?;
                shared.opener.sync_dir(&shared.dir).map_err(dir_sync_io)?;
            }
            Ok::<_, std::io::Error>(())
        })();
        state.closed = true;
        shared.commit.close();
        shared.sealed.close_log(shared.id);
        if let Some(lock) = &shared.lock {
            let _ = lock.unlock();
        }
        outcome.map_err(|err| shared.commit.fail("closing the log", err))
    }
}

/// The largest encoding buffer a thread keeps between appends.
const SCRATCH_KEPT_BYTES: usize = 4 * 1024 * 1024;

thread_local! {
    /// The buffer appends encode frames into, one per thread rather than one per log: a server
    /// of thousands of logs would otherwise keep a batch's worth of memory for each log that
    /// ever took one. Appends run on a bounded pool of threads.
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// This thread's encoding buffer, empty.
fn take_scratch() -> Vec<u8> {
    let mut buffer = SCRATCH.take();
    buffer.clear();
    buffer
}

/// Keeps `buffer` for this thread's next append, unless it grew past [`SCRATCH_KEPT_BYTES`].
fn give_back_scratch(buffer: Vec<u8>) {
    if buffer.capacity() <= SCRATCH_KEPT_BYTES {
        SCRATCH.set(buffer);
    }
}

/// The `io::Error` of a failed directory sync, whichever step failed.
fn dir_sync_io(err: DirSyncError) -> std::io::Error {
    match err {
        DirSyncError::Open(err) | DirSyncError::Sync(err) => err,
    }
}

/// Opens every segment of `dir`, or creates the first one at the configured initial offset.
fn open_segments(dir: &Path, config: &DiskConfig, opener: &dyn FileOpener) -> Result<Vec<Segment>> {
    let bases = dir::segment_bases(dir)?;
    let (start, max) = (config.start_index_entries(), config.max_index_entries());
    let Some((&last, sealed)) = bases.split_last() else {
        let first = Segment::create(dir, config.log.initial_offset, start, opener)?;
        opener.sync_dir(dir).map_err(dir_sync_io)?;
        return Ok(vec![first]);
    };
    let mut segments = Vec::with_capacity(bases.len());
    for (i, &base) in sealed.iter().enumerate() {
        segments.push(recovery::open_sealed(dir, base, bases[i + 1], opener)?);
    }
    segments.push(recovery::open_active(dir, last, (start, max), opener)?);
    opener.sync_dir(dir).map_err(dir_sync_io)?;
    Ok(segments)
}

/// Who keeps other processes out of a log's directory.
#[derive(Clone, Copy)]
enum Locking {
    /// The log: it holds the directory's `LOCK` file.
    Own,
    /// The caller, with a lock over a parent directory.
    Parent,
}

/// The tick of [`FsyncPolicy::Interval`], run by the group's syncer thread.
impl IntervalSync for Shared {
    fn interval_sync(&self) {
        let written = self.read_locked(&self.state).written;
        if written <= self.synced.load(Ordering::Acquire) {
            return;
        }
        let _turn = self.commit.turn();
        match self.sync_now() {
            Ok(()) | Err(Error::Closed) | Err(Error::ReadOnly(_)) => {}
            Err(err) => tracing::warn!(error = %err, "interval sync failed"),
        }
    }
}

/// A [`LogConfig`] is all a disk log needs beyond its [`DiskConfig`] defaults.
impl From<LogConfig> for DiskConfig {
    fn from(log: LogConfig) -> Self {
        Self { log, ..Self::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::dir::{index_path, store_path};
    use super::*;

    #[test]
    fn a_log_rolls_exactly_at_the_store_and_index_limits() {
        // A store never grows past max_store_bytes (unless one record alone does), and an index
        // never holds more entries than max_index_bytes allows.
        let dir = tempfile::tempdir().unwrap();
        // Frames of 24 + 16 = 40 bytes: header 24 + 4 frames = 184 <= 200 < 224.
        let config = DiskConfig {
            max_store_bytes: 200,
            max_index_bytes: 1 << 20,
            fsync: FsyncPolicy::Never,
            ..DiskConfig::default()
        };
        let log = DiskLog::open(dir.path(), config).unwrap();
        for _ in 0..12 {
            log.append(bytes::Bytes::from_static(&[7u8; 16])).unwrap();
        }
        assert_eq!(log.shared.read_locked(&log.shared.state).segments.len(), 3);
        for base in [0, 4, 8] {
            let len = std::fs::metadata(store_path(dir.path(), base)).unwrap().len();
            assert_eq!(len, 184, "segment {base}");
        }
        drop(log);

        let dir = tempfile::tempdir().unwrap();
        let config = DiskConfig {
            max_index_bytes: 3 * 12,
            fsync: FsyncPolicy::Never,
            ..DiskConfig::default()
        };
        let log = DiskLog::open(dir.path(), config).unwrap();
        for _ in 0..7 {
            log.append(bytes::Bytes::new()).unwrap();
        }
        assert_eq!(log.shared.read_locked(&log.shared.state).segments.len(), 3);
        let batch = vec![bytes::Bytes::new(); 3];
        assert_eq!(log.append_batch(&batch).unwrap(), 7..10);
        assert_eq!(
            log.shared.read_locked(&log.shared.state).segments.len(),
            4,
            "a batch that does not fit starts a new segment"
        );
        log.close().unwrap();
        let sealed = std::fs::metadata(index_path(dir.path(), 0)).unwrap().len();
        assert_eq!(sealed, 36, "a sealed index is trimmed to its entries");
    }

    #[test]
    fn an_active_index_starts_small_and_doubles_up_to_its_maximum_before_the_segment_rolls() {
        // A new segment's index holds 64 KiB of entries, doubles as they fill, and the segment
        // rolls only once the index is at max_index_bytes and full; a reopen does not grow it.
        let dir = tempfile::tempdir().unwrap();
        let start = 64 * 1024 / 12;
        let config = DiskConfig {
            max_index_bytes: 4 * start * 12,
            fsync: FsyncPolicy::Never,
            ..DiskConfig::default()
        };
        let index_len = |base| std::fs::metadata(index_path(dir.path(), base)).unwrap().len();
        let log = DiskLog::open(dir.path(), config.clone()).unwrap();
        log.append(Bytes::new()).unwrap();
        assert_eq!(index_len(0), start * 12);
        let batch = vec![Bytes::new(); 1000];
        while log.next_offset() + 1000 <= start + 1 {
            log.append_batch(&batch).unwrap();
        }
        assert_eq!(index_len(0), start * 12, "full, not yet grown");
        log.append_batch(&batch).unwrap();
        assert_eq!(index_len(0), 2 * start * 12, "grown by doubling");
        drop(log);
        let log = DiskLog::open(dir.path(), config.clone()).unwrap();
        assert_eq!(index_len(0), 2 * start * 12, "a reopen keeps the index's size");
        let tail = vec![Bytes::new(); (4 * start - log.next_offset()) as usize];
        log.append_batch(&tail).unwrap();
        assert_eq!((log.segment_count(), index_len(0)), (1, 4 * start * 12));
        log.append(Bytes::new()).unwrap();
        assert_eq!(log.segment_count(), 2, "rolled once full at its maximum");
        assert_eq!(index_len(4 * start), start * 12, "the new segment starts small");
        drop(log);

        // A lost active index is rebuilt at the size its records need, not at the maximum.
        std::fs::remove_file(index_path(dir.path(), 4 * start)).unwrap();
        let log = DiskLog::open(dir.path(), config).unwrap();
        assert_eq!(index_len(4 * start), start * 12);
        assert_eq!(log.read(4 * start).unwrap().offset, 4 * start);
        log.close().unwrap();
    }

    #[test]
    fn size_bytes_is_the_stores_written_length_through_rolls_truncation_and_reopen() {
        // size_bytes is the sum of the store files' data (headers and frames, no zeros ahead):
        // right after appends, a roll, a truncation, a crash and a clean reopen.
        let dir = tempfile::tempdir().unwrap();
        let config = DiskConfig { max_store_bytes: 200, ..DiskConfig::default() };
        let stores = || -> u64 {
            let (bases, _) = dir::list_bases(dir.path()).unwrap();
            let data = |base| {
                let bytes = std::fs::read(store_path(dir.path(), base)).unwrap();
                bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count()
            };
            bases.into_iter().map(|base| data(base) as u64).sum()
        };
        let log = DiskLog::open(dir.path(), config.clone()).unwrap();
        assert_eq!(log.size_bytes(), 24, "a store header");
        log.append(Bytes::from_static(&[7u8; 16])).unwrap();
        assert_eq!(log.size_bytes(), 24 + 40);
        for _ in 0..9 {
            log.append(Bytes::from_static(&[7u8; 16])).unwrap();
        }
        assert_eq!(log.segment_count(), 3, "four frames of 40 bytes fill a 200-byte store");
        assert_eq!(log.size_bytes(), 3 * 24 + 10 * 40);
        assert_eq!(log.size_bytes(), stores());
        assert_eq!(log.truncate(8).unwrap(), 8);
        assert_eq!(log.size_bytes(), 24 + 2 * 40);
        assert_eq!(log.size_bytes(), stores());
        drop(log);
        let log = DiskLog::open(dir.path(), config.clone()).unwrap();
        assert_eq!(log.size_bytes(), 24 + 2 * 40, "after a crash");
        log.close().unwrap();
        let log = DiskLog::open(dir.path(), config).unwrap();
        assert_eq!(log.size_bytes(), 24 + 2 * 40, "after a clean stop");
        log.close().unwrap();
    }

    #[test]
    fn set_max_store_bytes_rolls_the_very_next_append_that_would_pass_it() {
        // A smaller roll size applies from the next append on; one below 64 bytes is refused.
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path(), DiskConfig::default()).unwrap();
        for _ in 0..3 {
            log.append(Bytes::from_static(&[1u8; 16])).unwrap();
        }
        assert!(matches!(log.set_max_store_bytes(63), Err(Error::Config(_))));
        assert_eq!(log.segment_count(), 1);
        log.set_segment_bytes(24 + 4 * 40).unwrap();
        log.append(Bytes::from_static(&[1u8; 16])).unwrap();
        assert_eq!(log.segment_count(), 1, "24 + 4 * 40 bytes still fit");
        log.append(Bytes::from_static(&[1u8; 16])).unwrap();
        assert_eq!(log.segment_count(), 2, "the fifth frame would not");
        assert_eq!(log.read(4).unwrap().offset, 4);
        log.set_max_store_bytes(1 << 20).unwrap();
        log.append_batch(&vec![Bytes::from_static(&[1u8; 16]); 10]).unwrap();
        assert_eq!(log.segment_count(), 2, "a larger size lets the segment grow again");
        log.close().unwrap();
        assert!(matches!(log.set_max_store_bytes(1 << 20), Err(Error::Closed)));
    }

    #[test]
    fn time_never_goes_back_across_a_restart() {
        // A log whose last record was stamped ahead of this clock (a clock stepped back since)
        // stamps new records with that time, not an earlier one.
        let dir = tempfile::tempdir().unwrap();
        let ahead = crate::storage::now_ms() + 86_400_000;
        let mut segment = Segment::create(dir.path(), 0, 8, &OsFiles).unwrap();
        let mut frames = Vec::new();
        encode_frame(&mut frames, 0, ahead, b"from the future", crc32c::crc32c(b"from the future"));
        segment.append(&frames, &[0]).unwrap();
        drop(segment);
        let log = DiskLog::open(dir.path(), DiskConfig::default()).unwrap();
        assert_eq!(log.read(0).unwrap().timestamp_ms, ahead);
        assert_eq!(log.append(Bytes::from_static(b"now")).unwrap(), 1);
        assert_eq!(log.read(1).unwrap().timestamp_ms, ahead);
        log.close().unwrap();
    }

    #[test]
    fn a_lock_poisoned_by_a_panic_turns_the_log_read_only() {
        // A panic while the state lock is held may leave it half updated: appends are refused
        // from then on, reads go on, and a reopen recovers from the files.
        let dir = tempfile::tempdir().unwrap();
        let log = DiskLog::open(dir.path(), DiskConfig::default()).unwrap();
        log.append(Bytes::from_static(b"before")).unwrap();
        let shared = Arc::clone(&log.shared);
        let panicked = std::thread::spawn(move || {
            let _state = shared.state.write().unwrap();
            panic!("a bug while appending");
        })
        .join();
        assert!(panicked.is_err());
        assert!(matches!(log.append(Bytes::new()), Err(Error::ReadOnly(_))));
        assert_eq!(log.read(0).unwrap().value, "before");
        drop(log);
        let log = DiskLog::open(dir.path(), DiskConfig::default()).unwrap();
        assert_eq!(log.append(Bytes::from_static(b"after")).unwrap(), 1);
        log.close().unwrap();
    }
}
