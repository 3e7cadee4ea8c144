//! [`DiskGroup`]: what the disk logs of one server share, so that a log costs little beyond its
//! own files.
//!
//! - **One cache of sealed segments' open files** (`sealed`), bounded by the group's
//!   `max_open_segments` across all its logs, so the descriptors and mappings of sealed segments
//!   do not grow with the number of logs.
//! - **At most one interval-sync thread** (`syncer`), started by the first log under
//!   [`FsyncPolicy::Interval`](super::FsyncPolicy::Interval) and syncing each such log on its own
//!   interval, so threads do not grow with the number of logs either.
//! - **One [`StorageEvents`] listener**, told of every log's syncs and appended batches
//!   ([`NoEvents`] unless [`DiskGroup::with_events`] names one).
//! - **One free-space floor** (`free_space`) on the data volume, which every member's appends
//!   check against one cached measurement.
//! - **One roll signal** (`retention`), which wakes whoever enforces retention when a member
//!   seals a segment.
//!
//! No lock on the append path is shared: each log keeps its own lock, write position and group
//! commit, so appends to different logs proceed in parallel. What appends do share is taken
//! without waiting: the free-space floor's last measurement sits in atomics (one thread at a time
//! refreshes it, the others use the previous one), and the listener is called after the log's
//! lock is released (it may take a short lock of its own, a histogram's). A log opened with
//! [`DiskLog::open`](super::DiskLog::open) has a private group of its own; logs opened with
//! [`DiskLog::open_in`](super::DiskLog::open_in) share the caller's. Each log gets an id from its
//! group that keys its cache entries and its place in the syncer's schedule.
//!
//! Every log holds a handle on its group, so the group lives until its last log and its last
//! handle are gone; then the syncer thread is stopped and joined.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use super::free_space::FreeSpace;
use super::retention::Rolls;
use super::sealed::SealedFiles;
use super::syncer::{IntervalSync, Syncer};
use crate::storage::{NoEvents, Result, StorageEvents};

/// What the disk logs of one server share: one bounded cache of sealed segments' open files and
/// at most one interval-sync thread. Cloning is cheap and shares the group.
#[derive(Clone)]
pub struct DiskGroup {
    inner: Arc<Inner>,
}

struct Inner {
    /// Told of every member's syncs and appended batches.
    events: Arc<dyn StorageEvents>,
    /// The open files of every member's sealed segments, bounded across the group.
    sealed: Arc<SealedFiles>,
    /// The most sealed segments open at once, across the group.
    max_open_segments: usize,
    /// The next member id; ids are never reused, so a gone log's entries can never be taken for
    /// a new one's.
    next_id: AtomicU64,
    /// Started by the first member under `Interval`; dropped (stopped and joined) with the group.
    syncer: OnceLock<Syncer>,
    /// Held while starting the syncer, so that two members starting at once start one thread.
    starting: Mutex<()>,
    /// The free-space floor of the members' data volume.
    free: Arc<FreeSpace>,
    /// Counts the members' rolls, for [`DiskGroup::wait_for_roll`].
    rolls: Arc<Rolls>,
}

impl DiskGroup {
    /// A group whose logs keep at most `max_open_segments` sealed segments open between them
    /// (at least one).
    pub fn new(max_open_segments: usize) -> Self {
        Self::with_events(max_open_segments, Arc::new(NoEvents))
    }

    /// [`new`](Self::new), whose logs report their syncs and appended batches to `events`.
    pub fn with_events(max_open_segments: usize, events: Arc<dyn StorageEvents>) -> Self {
        Self {
            inner: Arc::new(Inner {
                events,
                sealed: Arc::new(SealedFiles::new(max_open_segments)),
                max_open_segments: max_open_segments.max(1),
                next_id: AtomicU64::new(0),
                syncer: OnceLock::new(),
                starting: Mutex::new(()),
                free: Arc::default(),
                rolls: Arc::default(),
            }),
        }
    }

    /// How many sealed segments have their files open, across the group's logs.
    #[cfg(feature = "internals")]
    pub fn open_sealed_segments(&self) -> usize {
        self.inner.sealed.len()
    }

    /// Refuses the members' appends with [`Error::DiskLow`](crate::storage::Error::DiskLow)
    /// while their data volume has less than `bytes` free (0: never). Takes effect at once.
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.inner.free.set_floor(bytes);
    }

    /// The free-space floor in force (see [`set_min_free_bytes`](Self::set_min_free_bytes)).
    pub fn min_free_bytes(&self) -> u64 {
        self.inner.free.floor()
    }

    /// Waits until a member has rolled a segment since the roll count was `seen`, or `timeout`
    /// passed; returns the roll count. Whoever enforces retention waits here between passes.
    pub fn wait_for_roll(&self, seen: u64, timeout: Duration) -> u64 {
        self.inner.rolls.wait(seen, timeout)
    }

    /// Wakes every [`wait_for_roll`](Self::wait_for_roll) at once, as a roll would.
    pub fn wake_retention(&self) {
        self.inner.rolls.rolled();
    }

    /// The group's free-space floor.
    pub(super) fn free(&self) -> &Arc<FreeSpace> {
        &self.inner.free
    }

    /// The group's roll signal.
    pub(super) fn rolls(&self) -> &Arc<Rolls> {
        &self.inner.rolls
    }

    /// The group's listener, told of every member's syncs and appended batches.
    pub(super) fn events(&self) -> &Arc<dyn StorageEvents> {
        &self.inner.events
    }

    /// A new member's id, never given before: it keys the member's cache entries and its place
    /// in the syncer's schedule.
    pub(super) fn member_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The group's cache of sealed segments' open files.
    pub(super) fn sealed(&self) -> &Arc<SealedFiles> {
        &self.inner.sealed
    }

    /// Syncs member `id` every `every` on the group's syncer thread, starting the thread if this
    /// is its first such member. The thread holds `log` weakly.
    pub(super) fn sync_every(
        &self,
        id: u64,
        log: Weak<dyn IntervalSync>,
        every: Duration,
    ) -> Result<()> {
        self.syncer()?.register(id, log, every);
        Ok(())
    }

    /// Stops syncing member `id`, waiting for a sync of it in progress (see `syncer`).
    pub(super) fn stop_syncing(&self, id: u64) {
        if let Some(syncer) = self.inner.syncer.get() {
            syncer.unregister(id);
        }
    }

    fn syncer(&self) -> Result<&Syncer> {
        if let Some(syncer) = self.inner.syncer.get() {
            return Ok(syncer);
        }
        let _starting = self.inner.starting.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(syncer) = self.inner.syncer.get() {
            return Ok(syncer);
        }
        let syncer = Syncer::spawn()?;
        Ok(self.inner.syncer.get_or_init(|| syncer))
    }
}

impl fmt::Debug for DiskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskGroup")
            .field("max_open_segments", &self.inner.max_open_segments)
            .field("open_sealed_segments", &self.inner.sealed.len())
            .field("interval_synced_logs", &self.inner.syncer.get().map_or(0, Syncer::len))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::{DiskConfig, DiskLog, FsyncPolicy};
    use super::*;
    use crate::storage::CommitLog;

    fn interval_synced(group: &DiskGroup) -> usize {
        group.inner.syncer.get().map_or(0, Syncer::len)
    }

    /// Tiny segments, so a few records make sealed ones.
    fn tiny(fsync: FsyncPolicy) -> DiskConfig {
        DiskConfig { max_store_bytes: 64, fsync, ..DiskConfig::default() }
    }

    /// Records the events a group's logs report.
    #[derive(Debug, Default)]
    struct Recorded {
        fsyncs: std::sync::atomic::AtomicUsize,
        batches: Mutex<Vec<usize>>,
    }

    impl StorageEvents for Recorded {
        fn on_fsync(&self, _took: Duration) {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }

        fn on_append_batch(&self, records: usize) {
            self.batches.lock().unwrap().push(records);
        }
    }

    #[test]
    fn a_groups_logs_report_each_appended_batch_and_each_sync_to_its_listener() {
        // Under `Always`, every append is a batch of its size and is synced before it returns;
        // an empty batch appends nothing and reports nothing.
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Recorded::default());
        let group = DiskGroup::with_events(4, Arc::clone(&events) as Arc<dyn StorageEvents>);
        let log = DiskLog::open_in(dir.path(), DiskConfig::default(), &group).unwrap();
        log.append(Bytes::from_static(b"one")).unwrap();
        log.append_batch(&[Bytes::from_static(b"two"), Bytes::from_static(b"three")]).unwrap();
        log.append_batch(&[]).unwrap();
        assert_eq!(*events.batches.lock().unwrap(), [1, 2]);
        assert!(events.fsyncs.load(Ordering::Relaxed) >= 2);
    }

    #[test]
    fn the_syncs_of_a_roll_are_reported_too() {
        // Under `never` no append syncs, yet a roll syncs the full store twice (outside the lock
        // first, then when sealing it), and so does age retention rolling an old active
        // segment: the listener hears of each, as of any other sync.
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Recorded::default());
        let group = DiskGroup::with_events(4, Arc::clone(&events) as Arc<dyn StorageEvents>);
        let log = DiskLog::open_in(dir.path(), tiny(FsyncPolicy::Never), &group).unwrap();
        let fsyncs = || events.fsyncs.load(Ordering::Relaxed);
        log.append(Bytes::from_static(&[1u8; 16])).unwrap();
        assert_eq!(fsyncs(), 0, "nothing synced before a roll");
        log.append(Bytes::from_static(&[1u8; 16])).unwrap();
        assert_eq!((log.segment_count(), fsyncs()), (2, 2));
        let newest = log.read(1).unwrap().timestamp_ms;
        let old = crate::storage::Retention { max_bytes: None, max_age_ms: Some(1) };
        assert!(log.enforce_retention(old, newest + 10).unwrap().rolled);
        assert_eq!(fsyncs(), 4);
    }

    /// Notes, at each event, whether its log's state lock was free.
    #[derive(Debug, Default)]
    struct Watching {
        log: OnceLock<Weak<super::super::Shared>>,
        lock_free: Mutex<Vec<bool>>,
    }

    impl Watching {
        fn note(&self) {
            if let Some(log) = self.log.get().and_then(Weak::upgrade) {
                let free = log.state.try_write().is_ok();
                self.lock_free.lock().unwrap().push(free);
            }
        }
    }

    impl StorageEvents for Watching {
        fn on_fsync(&self, _took: Duration) {
            self.note();
        }

        fn on_append_batch(&self, _records: usize) {
            self.note();
        }
    }

    #[test]
    fn events_are_reported_with_the_logs_lock_released() {
        // A listener may take a lock of its own (a histogram's): it is never called while the
        // log's lock is held, so appends of the log never wait on it, under any policy.
        for fsync in [FsyncPolicy::Always, FsyncPolicy::Never] {
            let dir = tempfile::tempdir().unwrap();
            let events = Arc::new(Watching::default());
            let group = DiskGroup::with_events(4, Arc::clone(&events) as Arc<dyn StorageEvents>);
            let log = DiskLog::open_in(dir.path(), tiny(fsync), &group).unwrap();
            events.log.set(Arc::downgrade(&log.shared)).unwrap();
            for _ in 0..6 {
                log.append_batch(&[Bytes::from_static(&[1u8; 16])]).unwrap();
            }
            let lock_free = events.lock_free.lock().unwrap().clone();
            assert!(lock_free.len() >= 6, "{fsync:?}: {lock_free:?}");
            assert!(lock_free.iter().all(|&free| free), "{fsync:?}: {lock_free:?}");
        }
    }

    #[test]
    fn a_group_syncs_its_interval_logs_on_one_syncer_until_they_close_or_drop() {
        // Interval logs of a group register with its one syncer; closing or dropping a log
        // takes it off, and the others keep being synced.
        let dir = tempfile::tempdir().unwrap();
        let group = DiskGroup::new(4);
        let interval = tiny(FsyncPolicy::Interval(Duration::from_millis(2)));
        let open = |name: &str, config: &DiskConfig| {
            DiskLog::open_in(dir.path().join(name), config.clone(), &group).unwrap()
        };
        let (a, b, c) = (open("a", &interval), open("b", &interval), open("c", &interval));
        let never = open("never", &tiny(FsyncPolicy::Never));
        assert_eq!(interval_synced(&group), 3);
        a.close().unwrap();
        drop(b);
        assert_eq!(interval_synced(&group), 1);
        c.append(Bytes::from_static(b"synced")).unwrap();
        let start = std::time::Instant::now();
        while c.shared.synced.load(Ordering::Acquire) < 1 {
            assert!(start.elapsed() < Duration::from_secs(5), "the last log is never synced");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(never);
        assert!(!dir.path().join("c").join("LOCK").exists(), "a member takes no LOCK file");
    }

    #[test]
    fn a_dropped_standalone_interval_log_reopens_at_once() {
        // Dropping a log opened alone stops its syncer before the directory lock goes, so a
        // reopen right after never finds the directory locked.
        let dir = tempfile::tempdir().unwrap();
        let config = tiny(FsyncPolicy::Interval(Duration::from_micros(100)));
        for i in 0..50 {
            let log = DiskLog::open(dir.path(), config.clone()).unwrap();
            log.append(Bytes::from_static(b"x")).unwrap();
            assert_eq!(log.next_offset(), i + 1);
            drop(log);
        }
    }

    #[test]
    fn a_closed_or_dropped_log_leaves_nothing_open_in_the_group_cache() {
        // Reads fill the shared cache with a log's sealed segments; closing the log, or
        // dropping it, closes them at once (a deleted log's space is freed promptly).
        let dir = tempfile::tempdir().unwrap();
        let group = DiskGroup::new(8);
        let logs: Vec<_> = ["a", "b"]
            .iter()
            .map(|name| {
                let log = DiskLog::open_in(dir.path().join(name), tiny(FsyncPolicy::Never), &group)
                    .unwrap();
                for _ in 0..4 {
                    log.append(Bytes::from_static(&[1u8; 16])).unwrap();
                }
                for offset in 0..4 {
                    log.read(offset).unwrap();
                }
                log
            })
            .collect();
        let [a, b]: [DiskLog; 2] = logs.try_into().unwrap();
        assert_eq!((a.open_sealed_segments(), b.open_sealed_segments()), (3, 3));
        assert_eq!(group.open_sealed_segments(), 6);
        a.close().unwrap();
        assert_eq!(group.open_sealed_segments(), 3);
        assert!(matches!(a.read(0), Err(crate::storage::Error::Closed)));
        drop(b);
        assert_eq!(group.open_sealed_segments(), 0);
    }
}
