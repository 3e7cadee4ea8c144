//! Retention on disk: rolling an active segment whose oldest record is too old, and deleting
//! whole sealed segments, oldest first, without holding the log's lock over the unlinks.
//!
//! Deleting runs in two steps. Under the state lock (exclusively, for no I/O at all) the chosen
//! segments are taken out of the state: from then on `lowest_offset` and reads say they are
//! gone. After the lock is released, the group's cache stops opening them (its floor) and
//! closes what it had open, and their files are unlinked, oldest first, store before index, then
//! the directory is synced. Appends and reads of the log go on meanwhile.
//!
//! Crash safety: only a prefix of the log's segments is ever taken out, and deletions of one log
//! run one at a time (the `deleting` lock) in ascending order, so whatever a crash leaves on disk
//! is still a contiguous run of segments ending at the active one: a reopen may find segments
//! retention had already dropped (their records come back, harmlessly), never a gap. A segment
//! whose unlink fails stays on the `deleting` list, with every later one, and the next deletion
//! retries them first.
//!
//! The unlinks name files by path, so `close` takes the `deleting` lock too: it waits for the
//! unlinks in progress, and none starts after it. A log deleted (closed, its directory renamed
//! away) and created again at the same path, whose first segment has the name of one retention
//! was deleting, so never loses that segment.
//!
//! Each sealed segment's newest record time is kept in memory (`Segment::times`), learned when
//! it is written and, at open, from its last frame's header: deciding what is too old reads no
//! file.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::segment::Segment;
#[cfg(test)]
use super::segment::Times;
use super::{Shared, State, dir_sync_io};
use crate::storage::locks::Locks;
use crate::storage::{Enforced, FsyncPolicy, Result, Retention};

/// Counts a group's rolls and wakes the waiters: the retention pass runs after each roll.
#[derive(Debug, Default)]
pub(super) struct Rolls {
    /// Rolls so far. Holds a plain count, so poisoning is ignored.
    count: Mutex<u64>,
    rolled: Condvar,
}

impl Rolls {
    /// Notes a roll.
    pub(super) fn rolled(&self) {
        *self.lock() += 1;
        self.rolled.notify_all();
    }

    /// Waits until the count differs from `seen`, or `timeout` passed; returns the count.
    pub(super) fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut count = self.lock();
        while *count == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            count = self.rolled.wait_timeout(count, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        *count
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// Applies `rules` at `now_ms` (see `CommitLog::enforce_retention`).
    pub(super) fn enforce_retention(&self, rules: Retention, now_ms: u64) -> Result<Enforced> {
        let rolled = match rules.max_age_ms {
            Some(_) => self.roll_if_older(rules, now_ms)?,
            None => false,
        };
        // Most passes find nothing to do: tell under the shared lock, so that they never take
        // the exclusive one. (The deletion lock is taken before the state lock, never inside.)
        let pending = !self.deleting.lock().unwrap_or_else(PoisonError::into_inner).is_empty();
        {
            let state = self.read_locked(&self.state);
            state.check_open()?;
            if !pending && expired(&state, rules, now_ms) == 0 {
                let lowest = state.segments[0].base();
                return Ok(Enforced { rolled, lowest, ..Enforced::default() });
            }
        }
        let (deleted_segments, deleted_bytes, lowest) =
            self.drop_oldest(|state| expired(state, rules, now_ms))?;
        Ok(Enforced { rolled, deleted_segments, deleted_bytes, lowest })
    }

    /// Rolls the active segment if its oldest record is past the age limit, so that a log
    /// written slowly still ages out. Returns whether it rolled.
    fn roll_if_older(&self, rules: Retention, now_ms: u64) -> Result<bool> {
        let old = |state: &State| {
            let active = state.segments.last().expect("a log always has a segment");
            !active.is_sealed()
                && active.entries() > 0
                && active.times().is_some_and(|t| rules.too_old(t.oldest_ms, now_ms))
        };
        let store = {
            let state = self.read_locked(&self.state);
            state.check_open()?;
            if !old(&state) {
                return Ok(false);
            }
            state.segments.last().and_then(Segment::store_file).cloned()
        };
        // Sealing syncs the store under the lock: sync what is unsynced first, outside it.
        if self.config.fsync != FsyncPolicy::Always
            && let Some(store) = store
        {
            let started = Instant::now();
            let synced = store.sync_data();
            self.events.on_fsync(started.elapsed());
            if let Err(err) = synced {
                return Err(self.commit.fail("fdatasync of a segment about to be sealed", err));
            }
        }
        let mut sealing = None;
        let rolled = (|| {
            let mut state = self.write_locked(&self.state);
            state.check_open()?;
            self.commit.check_writable()?;
            if !old(&state) {
                return Ok(false);
            }
            self.roll(&mut state, 1, &mut sealing)?;
            Ok(true)
        })();
        // After the lock, as every event.
        if let Some(took) = sealing {
            self.events.on_fsync(took);
        }
        rolled
    }

    /// Takes out the `choose(state)` oldest segments (never the active one) under the state
    /// lock, then deletes their files outside it. Returns how many were taken out, the bytes
    /// they held and the new lowest offset.
    pub(super) fn drop_oldest(
        &self,
        choose: impl FnOnce(&State) -> usize,
    ) -> Result<(usize, u64, u64)> {
        // One deletion of this log at a time, so files go in ascending order (see the module
        // doc); taken before the state lock, and appends never take it.
        let mut pending = self.deleting.lock().unwrap_or_else(PoisonError::into_inner);
        let (taken, bytes, lowest) = {
            let mut state = self.write_locked(&self.state);
            state.check_open()?;
            let mut count = choose(&state).min(state.segments.len() - 1);
            // Never past the commit point: under `Always` a roll may have sealed a segment
            // whose last records still wait for their group-commit sync, and the new lowest
            // offset must stay at or below `next_offset`.
            let point = self.commit.point();
            while count > 0 && state.segments[count].base() > point {
                count -= 1;
            }
            let taken: Vec<u64> = state.segments.drain(..count).map(|s| s.base()).collect();
            let lowest = state.segments[0].base();
            let bytes =
                state.store_bytes - state.segments.iter().map(Segment::store_size).sum::<u64>();
            state.store_bytes -= bytes;
            state.debug_check(self.commit.point());
            (taken, bytes, lowest)
        };
        if taken.is_empty() && pending.is_empty() {
            return Ok((0, 0, lowest));
        }
        self.sealed.evict_below(self.id, lowest);
        pending.extend(&taken);
        #[cfg(test)]
        tests::before_unlinks(self);
        while let Some(&base) = pending.first() {
            if let Err(err) = Segment::delete(&self.dir, base, self.opener.as_ref()) {
                tracing::warn!(base, error = %err, "cannot delete a segment; retrying later");
                return Err(err.into());
            }
            pending.remove(0);
        }
        self.opener.sync_dir(&self.dir).map_err(dir_sync_io)?;
        self.free.forget();
        Ok((taken.len(), bytes, lowest))
    }
}

/// How many of the oldest segments `rules` expire at `now_ms`: sealed ones only, each while
/// the log would still be over the size limit or its newest record is past the age limit.
fn expired(state: &State, rules: Retention, now_ms: u64) -> usize {
    let sealed = state.segments.len() - 1;
    let mut bytes = state.store_bytes;
    let mut count = 0;
    while count < sealed {
        let segment = &state.segments[count];
        // A segment whose times could not be read is no newer than the next one's oldest.
        let newest = segment
            .times()
            .map(|t| t.newest_ms)
            .or_else(|| state.segments[count + 1].times().map(|t| t.oldest_ms));
        let too_old = newest.is_some_and(|ms| rules.too_old(ms, now_ms));
        if !(rules.too_large(bytes) || too_old) {
            break;
        }
        bytes -= segment.store_size();
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use bytes::Bytes;

    use super::super::dir::store_path;
    use super::super::fs::{FileOpener, OsFiles, SegmentFile};
    use super::super::{DiskConfig, DiskLog};
    use super::*;
    use crate::storage::{CommitLog, Error, now_ms};

    /// A test's look at a log between taking segments out and unlinking them.
    type Hook = Box<dyn Fn(&Shared)>;

    thread_local! {
        /// What a test runs on this thread once segments are out of the state and before their
        /// files are unlinked.
        static BEFORE_UNLINKS: RefCell<Option<Hook>> = RefCell::new(None);
    }

    pub(super) fn before_unlinks(shared: &Shared) {
        BEFORE_UNLINKS.with(|hook| {
            if let Some(hook) = hook.borrow().as_ref() {
                hook(shared);
            }
        });
    }

    /// Segments of four 16-byte records (24 + 4 * 40 = 184 bytes each).
    fn log_of_segments(dir: &std::path::Path, records: u64) -> DiskLog {
        let config =
            DiskConfig { max_store_bytes: 200, fsync: FsyncPolicy::Never, ..DiskConfig::default() };
        let log = DiskLog::open(dir, config).unwrap();
        for _ in 0..records {
            log.append(Bytes::from_static(&[7u8; 16])).unwrap();
        }
        log
    }

    #[test]
    fn size_retention_deletes_the_oldest_sealed_segments_and_never_the_active_one() {
        // Three full segments of 184 bytes over a 200-byte limit: the two oldest go, files and
        // all; the active one stays even though a limit of 1 byte would want it gone too.
        let dir = tempfile::tempdir().unwrap();
        let log = log_of_segments(dir.path(), 12);
        let rules = Retention { max_bytes: Some(200), max_age_ms: None };
        let done = log.enforce_retention(rules, now_ms()).unwrap();
        assert_eq!((done.deleted_segments, done.deleted_bytes, done.lowest), (2, 368, 8));
        assert_eq!((log.lowest_offset(), log.size_bytes()), (8, 184));
        assert!(!store_path(dir.path(), 0).exists() && !store_path(dir.path(), 4).exists());
        assert!(matches!(log.read(7), Err(Error::OffsetOutOfRange { lowest: 8, .. })));
        let tiny = Retention { max_bytes: Some(1), max_age_ms: None };
        assert_eq!(log.enforce_retention(tiny, now_ms()).unwrap().deleted_segments, 0);
        assert_eq!(log.read(8).unwrap().offset, 8);
        assert_eq!(log.append(Bytes::new()).unwrap(), 12);
    }

    #[test]
    fn age_retention_rolls_an_old_active_segment_and_deletes_it() {
        // A log written slowly has only an active segment: once its oldest record is past the
        // age it is rolled, and then deleted as a sealed one; records newer than the age stay.
        let dir = tempfile::tempdir().unwrap();
        let log = log_of_segments(dir.path(), 6);
        let newest = log.read(5).unwrap().timestamp_ms;
        let young = Retention { max_bytes: None, max_age_ms: Some(60_000) };
        let done = log.enforce_retention(young, newest + 1000).unwrap();
        assert_eq!((done.rolled, done.deleted_segments), (false, 0));
        let old = Retention { max_bytes: None, max_age_ms: Some(10) };
        let done = log.enforce_retention(old, newest + 11).unwrap();
        assert_eq!((done.rolled, done.deleted_segments, done.lowest), (true, 2, 6));
        assert_eq!((log.lowest_offset(), log.next_offset(), log.segment_count()), (6, 6, 1));
        let again = log.enforce_retention(old, newest + 11).unwrap();
        assert!(!again.rolled, "an empty active segment is never rolled");
        assert_eq!(log.append(Bytes::from_static(b"after")).unwrap(), 6);
    }

    #[test]
    fn segment_times_survive_a_reopen_without_a_scan() {
        // A reopened log knows each segment's oldest and newest record time from its first and
        // last frame headers, so age retention behaves as before the restart.
        let dir = tempfile::tempdir().unwrap();
        let log = log_of_segments(dir.path(), 6);
        let times = |log: &DiskLog| -> Vec<Option<Times>> {
            log.shared.read_locked(&log.shared.state).segments.iter().map(Segment::times).collect()
        };
        let before = times(&log);
        assert_eq!(before[0].unwrap().newest_ms, log.read(3).unwrap().timestamp_ms);
        drop(log);
        let log = DiskLog::open(dir.path(), DiskConfig::default()).unwrap();
        assert_eq!(times(&log), before);
        log.close().unwrap();
    }

    #[test]
    fn files_are_unlinked_after_the_state_lock_is_released() {
        // Once segments are out of the state, the lock is free: an append and a read of the
        // same log complete before the first file is unlinked, and already see the new lowest.
        let dir = tempfile::tempdir().unwrap();
        let log = log_of_segments(dir.path(), 12);
        let seen = std::rc::Rc::new(RefCell::new(None));
        let record = std::rc::Rc::clone(&seen);
        BEFORE_UNLINKS.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move |shared: &Shared| {
                let lock_free = shared.state.try_write().is_ok();
                let appended = shared
                    .append_batch_at(&[Bytes::from_static(b"meanwhile")], crate::storage::now_ms())
                    .unwrap();
                let lowest = shared.lowest_offset();
                let files_still_there = store_path(&shared.dir, 0).exists();
                *record.borrow_mut() = Some((lock_free, appended.start, lowest, files_still_there));
            }));
        });
        assert_eq!(log.truncate(8).unwrap(), 8);
        BEFORE_UNLINKS.with(|hook| hook.borrow_mut().take());
        assert_eq!(*seen.borrow(), Some((true, 12, 8, true)));
        assert!(!store_path(dir.path(), 0).exists(), "unlinked afterwards");
        assert_eq!(log.read(12).unwrap().value, "meanwhile");
    }

    /// Store files whose next sync, once armed, waits until the test lets it go.
    #[derive(Debug, Default)]
    struct HeldSync {
        armed: std::sync::atomic::AtomicBool,
        /// 0: no sync held; 1: a sync is waiting; 2: let go.
        held: Mutex<u8>,
        changed: Condvar,
    }

    impl HeldSync {
        fn set(&self, to: u8) {
            *self.held.lock().unwrap() = to;
            self.changed.notify_all();
        }

        fn wait_for(&self, value: u8) {
            let held = self.held.lock().unwrap();
            let (held, _) = self
                .changed
                .wait_timeout_while(held, Duration::from_secs(10), |h| *h != value)
                .unwrap();
            assert_eq!(*held, value, "never reached {value}");
        }
    }

    #[derive(Debug)]
    struct HeldFiles(std::sync::Arc<HeldSync>);

    #[derive(Debug)]
    struct HeldFile(Box<dyn SegmentFile>, std::sync::Arc<HeldSync>);

    impl FileOpener for HeldFiles {
        fn open(
            &self,
            path: &std::path::Path,
            create: bool,
        ) -> std::io::Result<Box<dyn SegmentFile>> {
            Ok(Box::new(HeldFile(OsFiles.open(path, create)?, std::sync::Arc::clone(&self.0))))
        }
    }

    impl SegmentFile for HeldFile {
        fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
            self.0.read_exact_at(buf, pos)
        }

        fn write_all_at(&self, buf: &[u8], pos: u64) -> std::io::Result<()> {
            self.0.write_all_at(buf, pos)
        }

        fn sync_data(&self) -> std::io::Result<()> {
            if self.1.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
                self.1.set(1);
                self.1.wait_for(2);
            }
            self.0.sync_data()
        }

        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.0.set_len(len)
        }

        fn size(&self) -> std::io::Result<u64> {
            self.0.size()
        }
    }

    #[test]
    fn retention_never_moves_the_lowest_offset_past_the_commit_point() {
        // Under `always`, an append fills segment 0 and waits for its sync; the next one rolls
        // and writes at 4 without being committed either. Size retention over a 1-byte limit
        // then keeps segment 0 (its successor starts past next_offset) until the sync lands.
        let dir = tempfile::tempdir().unwrap();
        let held = std::sync::Arc::new(HeldSync::default());
        let opener = std::sync::Arc::new(HeldFiles(std::sync::Arc::clone(&held)));
        let config = DiskConfig {
            max_store_bytes: 200,
            fsync: FsyncPolicy::Always,
            ..DiskConfig::default()
        };
        let group = super::super::DiskGroup::new(4);
        let log = std::sync::Arc::new(
            DiskLog::open_through(dir.path(), config, &group, super::super::Locking::Own, opener)
                .unwrap(),
        );
        let record = Bytes::from_static(&[7u8; 16]);
        for _ in 0..3 {
            log.append(record.clone()).unwrap();
        }
        held.armed.store(true, std::sync::atomic::Ordering::SeqCst);
        let append = |log: &std::sync::Arc<DiskLog>| {
            let (log, record) = (std::sync::Arc::clone(log), record.clone());
            std::thread::spawn(move || log.append(record).unwrap())
        };
        let filling = append(&log);
        held.wait_for(1);
        let rolling = append(&log);
        let start = std::time::Instant::now();
        while log.shared.read_locked(&log.shared.state).written < 5 {
            assert!(start.elapsed() < Duration::from_secs(10), "the rolling append never wrote");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!((log.segment_count(), log.next_offset()), (2, 3));
        let tiny = Retention { max_bytes: Some(1), max_age_ms: None };
        let done = log.enforce_retention(tiny, now_ms()).unwrap();
        assert_eq!((done.deleted_segments, done.lowest), (0, 0));
        assert!(log.lowest_offset() <= log.next_offset());
        held.set(2);
        assert_eq!((filling.join().unwrap(), rolling.join().unwrap()), (3, 4));
        let done = log.enforce_retention(tiny, now_ms()).unwrap();
        assert_eq!((done.deleted_segments, done.lowest), (1, 4));
        assert_eq!((log.lowest_offset(), log.next_offset()), (4, 5));
    }

    #[test]
    fn a_log_deleted_and_recreated_during_retention_keeps_the_new_logs_files() {
        // A log closed while retention is about to unlink its segments, its directory renamed
        // away and a new log created at the same path (a `DeleteLog` then a `CreateLog`): the
        // close waits for the unlinks, so they never reach the new log's first segment, which
        // has the same name as a deleted one.
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("log");
        let log = std::sync::Arc::new(log_of_segments(&path, 12));
        let (old, at) = (std::sync::Arc::clone(&log), path.clone());
        let trash = parent.path().join("trash");
        let started = std::rc::Rc::new(RefCell::new(None));
        let handle = std::rc::Rc::clone(&started);
        BEFORE_UNLINKS.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move |_: &Shared| {
                let (old, at, trash) = (old.clone(), at.clone(), trash.clone());
                let (done, finished) = std::sync::mpsc::channel();
                let again = std::thread::spawn(move || {
                    old.close().unwrap();
                    std::fs::rename(&at, &trash).unwrap();
                    let new = DiskLog::open(&at, DiskConfig::default()).unwrap();
                    new.append_batch(&vec![Bytes::from_static(b"new"); 3]).unwrap();
                    new.close().unwrap();
                    let _ = done.send(());
                });
                // Without the wait in `close`, the new log is complete well within this; with
                // it, `close` is still waiting when the unlinks go ahead.
                let _ = finished.recv_timeout(Duration::from_millis(500));
                *handle.borrow_mut() = Some(again);
            }));
        });
        let truncated = log.truncate(8);
        BEFORE_UNLINKS.with(|hook| hook.borrow_mut().take());
        assert_eq!(truncated.unwrap(), 8);
        started.borrow_mut().take().expect("the hook ran").join().unwrap();
        let new = DiskLog::open(&path, DiskConfig::default()).unwrap();
        assert_eq!(new.next_offset(), 3, "the new log's records are all there");
        assert_eq!(new.read(0).unwrap().value, "new");
        new.close().unwrap();
    }
}
