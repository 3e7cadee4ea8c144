//! [`Syncer`]: the one background thread of a [`DiskGroup`](super::DiskGroup) that syncs the
//! group's logs under [`FsyncPolicy::Interval`](super::FsyncPolicy::Interval), each on its own
//! interval.
//!
//! The schedule is a min-heap of due times, so a thousand registered logs cost the thread a heap
//! operation per sync, not a scan. The thread holds each log weakly: between syncs it keeps no log
//! alive and no file open. While it syncs a log it holds that log strongly, so
//! [`Syncer::unregister`] (called when a log is closed or dropped) waits for a sync of that log in
//! progress: once it returns, the thread holds nothing of the log, whose files close (and whose
//! directory lock, for a log opened alone, is released) with its last handle. An unregistered
//! log's stale heap entry is skipped when it comes due. Dropping the syncer stops the thread and
//! joins it.
//!
//! The schedule's lock guards only whole values and no log code runs under it, so poisoning is
//! ignored; a panic in a log's sync is caught and logged, so one log cannot stop the others'
//! syncs or leave an unregistering thread waiting forever.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::storage::Result;

/// A log the syncer syncs.
pub(super) trait IntervalSync: Send + Sync {
    /// Syncs what was written since the last sync; errors are the log's to handle.
    fn interval_sync(&self);
}

/// The running thread; dropping it stops the thread and joins it.
#[derive(Debug)]
pub(super) struct Syncer {
    schedule: Arc<Schedule>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Schedule {
    due: Mutex<Due>,
    /// Signalled when the schedule changes (a log registered, the syncer stopping) and when a
    /// sync ends (for `unregister`).
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Due {
    /// The registered logs by id.
    logs: HashMap<u64, Member>,
    /// When each log is due next, earliest first; entries of unregistered logs are stale.
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The log being synced now, outside the lock.
    syncing: Option<u64>,
    stopped: bool,
}

#[derive(Debug)]
struct Member {
    log: Weak<dyn IntervalSync>,
    every: Duration,
}

impl Schedule {
    fn lock(&self) -> MutexGuard<'_, Due> {
        self.due.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Syncer {
    /// Starts the thread, with no log to sync yet.
    pub(super) fn spawn() -> Result<Self> {
        let schedule = Arc::new(Schedule::default());
        let theirs = Arc::clone(&schedule);
        let thread =
            std::thread::Builder::new().name("girok-syncer".into()).spawn(move || run(&theirs))?;
        Ok(Self { schedule, thread: Some(thread) })
    }

    /// Syncs `log` every `every` from now on, until it is unregistered or gone.
    pub(super) fn register(&self, id: u64, log: Weak<dyn IntervalSync>, every: Duration) {
        let mut due = self.schedule.lock();
        due.logs.insert(id, Member { log, every });
        due.queue.push(Reverse((Instant::now() + every, id)));
        self.schedule.changed.notify_all();
    }

    /// Stops syncing log `id`, waiting for a sync of it in progress: afterwards the thread holds
    /// nothing of it. Unregistering a log that is not registered does nothing.
    pub(super) fn unregister(&self, id: u64) {
        let mut due = self.schedule.lock();
        due.logs.remove(&id);
        while due.syncing == Some(id) {
            due = self.schedule.changed.wait(due).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// How many logs are registered.
    pub(super) fn len(&self) -> usize {
        self.schedule.lock().logs.len()
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.schedule.lock().stopped = true;
        self.schedule.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: sleeps until the earliest due log, syncs it outside the lock, schedules it again.
fn run(schedule: &Schedule) {
    let mut due = schedule.lock();
    while !due.stopped {
        let now = Instant::now();
        let Some(&Reverse((at, id))) = due.queue.peek() else {
            due = schedule.changed.wait(due).unwrap_or_else(PoisonError::into_inner);
            continue;
        };
        if at > now {
            let (guard, _) = schedule
                .changed
                .wait_timeout(due, at - now)
                .unwrap_or_else(PoisonError::into_inner);
            due = guard;
            continue;
        }
        due.queue.pop();
        let Some(member) = due.logs.get(&id) else { continue };
        let (log, every) = (member.log.clone(), member.every);
        due.syncing = Some(id);
        drop(due);
        let alive = match log.upgrade() {
            Some(log) => {
                let synced = std::panic::catch_unwind(AssertUnwindSafe(|| log.interval_sync()));
                if synced.is_err() {
                    tracing::error!("an interval sync panicked");
                }
                true
            }
            None => false,
        };
        due = schedule.lock();
        due.syncing = None;
        schedule.changed.notify_all();
        if !alive {
            due.logs.remove(&id);
        } else if due.logs.contains_key(&id) {
            due.queue.push(Reverse((Instant::now() + every, id)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts its syncs; each takes `takes`.
    #[derive(Default)]
    struct Counter {
        syncs: AtomicUsize,
        takes: Duration,
    }

    impl IntervalSync for Counter {
        fn interval_sync(&self) {
            std::thread::sleep(self.takes);
            self.syncs.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn register(syncer: &Syncer, id: u64, log: &Arc<Counter>, every: Duration) {
        let weak: Weak<dyn IntervalSync> = Arc::downgrade(log) as Weak<dyn IntervalSync>;
        syncer.register(id, weak, every);
    }

    #[test]
    fn one_thread_syncs_each_log_on_its_own_interval() {
        // Two logs on one syncer are each synced about every interval of their own.
        let syncer = Syncer::spawn().unwrap();
        let (fast, slow) = (Arc::new(Counter::default()), Arc::new(Counter::default()));
        register(&syncer, 1, &fast, Duration::from_millis(5));
        register(&syncer, 2, &slow, Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(300));
        let (fast, slow) = (fast.syncs.load(Ordering::SeqCst), slow.syncs.load(Ordering::SeqCst));
        assert!(fast >= 10, "the 5 ms log was synced {fast} times in 300 ms");
        assert!((1..=2).contains(&slow), "the 200 ms log was synced {slow} times in 300 ms");
    }

    #[test]
    fn unregistering_waits_for_a_sync_in_progress_and_a_dropped_log_is_forgotten() {
        // Once unregister returns the thread holds no reference to the log; a log dropped
        // without unregistering is dropped from the schedule when it comes due.
        let syncer = Syncer::spawn().unwrap();
        let log = Arc::new(Counter { takes: Duration::from_millis(50), ..Counter::default() });
        register(&syncer, 1, &log, Duration::from_millis(1));
        while log.syncs.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        syncer.unregister(1);
        assert_eq!(Arc::strong_count(&log), 1, "the thread still holds the log");
        let syncs = log.syncs.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(log.syncs.load(Ordering::SeqCst), syncs, "synced after unregistering");

        let dropped = Arc::new(Counter::default());
        register(&syncer, 2, &dropped, Duration::from_millis(1));
        drop(dropped);
        let start = Instant::now();
        while syncer.len() > 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "a dropped log stays scheduled");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
