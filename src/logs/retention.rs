//! Retention for every log of a registry: one background thread that applies each log's
//! [`Retention`] after every segment roll in the data directory and at least once per
//! [`INTERVAL`].
//!
//! A pass lists the logs (the map's read lock, for a clone of each entry, never the admin
//! lock), skips deleted and damaged logs and logs that keep everything, and calls
//! [`CommitLog::enforce_retention`](crate::storage::CommitLog::enforce_retention) on each, which
//! holds that log's own lock only to take segments out of its state, never over an unlink.
//! Logs kept in memory ignore retention, so a registry without a data directory runs no thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{LogEntry, Logs};
use crate::storage::{self, DiskGroup, Retention};

/// The longest time between two passes.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The retention thread; stopped and joined on drop.
#[derive(Debug)]
pub struct RetentionTask {
    stop: Arc<AtomicBool>,
    group: DiskGroup,
    thread: Option<JoinHandle<()>>,
}

impl Drop for RetentionTask {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.group.wake_retention();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The rules for a log with `settings`-given limits over the server's `defaults`: an absent
/// setting follows the default, `0` is unlimited.
pub(super) fn rules(entry: &LogEntry, defaults: Retention) -> Retention {
    let own = |given: Option<u64>, default: Option<u64>| match given {
        Some(0) => None,
        Some(limit) => Some(limit),
        None => default,
    };
    let settings = entry.settings();
    Retention {
        max_bytes: own(settings.retention_bytes, defaults.max_bytes),
        max_age_ms: own(settings.retention_ms, defaults.max_age_ms),
    }
}

/// Starts the thread for `logs`, whose logs share `group`. It holds the registry weakly: a
/// registry dropped without stopping it ends it at the next pass.
pub(super) fn start(logs: &Arc<Logs>, group: DiskGroup) -> std::io::Result<RetentionTask> {
    let stop = Arc::new(AtomicBool::new(false));
    let (weak, thread_stop, waiter) = (Arc::downgrade(logs), Arc::clone(&stop), group.clone());
    let thread = std::thread::Builder::new()
        .name("girok-retention".into())
        .spawn(move || run(weak, waiter, thread_stop))?;
    Ok(RetentionTask { stop, group, thread: Some(thread) })
}

fn run(logs: Weak<Logs>, group: DiskGroup, stop: Arc<AtomicBool>) {
    let mut seen = 0;
    while !stop.load(Ordering::Acquire) {
        let Some(logs) = logs.upgrade() else { return };
        logs.enforce_retention();
        drop(logs);
        seen = group.wait_for_roll(seen, INTERVAL);
    }
}

impl Logs {
    /// Applies retention to every log once; returns how many segments it deleted. The
    /// retention thread calls it; tests may too.
    pub fn enforce_retention(&self) -> usize {
        let defaults = self.config.retention;
        let mut deleted = 0;
        for entry in self.list() {
            if entry.is_deleted() || entry.failure().is_some() {
                continue;
            }
            let rules = rules(&entry, defaults);
            if rules.is_unlimited() {
                continue;
            }
            match entry.log().enforce_retention(rules, storage::now_ms()) {
                Ok(done) if done.deleted_segments > 0 => {
                    deleted += done.deleted_segments;
                    entry.note_retention_deleted(done.deleted_segments as u64);
                    tracing::info!(
                        log = entry.name(),
                        segments = done.deleted_segments,
                        bytes = done.deleted_bytes,
                        lowest_offset = done.lowest,
                        "retention deleted segments"
                    );
                }
                Ok(_) | Err(storage::Error::Closed) => {}
                Err(err) => tracing::warn!(log = entry.name(), error = %err, "retention failed"),
            }
        }
        deleted
    }

    /// Starts the thread that applies retention after every roll and at least once per
    /// [`INTERVAL`], until the returned task is dropped; `None` for logs kept in memory, which
    /// ignore retention.
    pub fn start_retention(self: &Arc<Self>) -> std::io::Result<Option<RetentionTask>> {
        match self.catalog.group() {
            Some(group) => start(self, group.clone()).map(Some),
            None => Ok(None),
        }
    }
}
