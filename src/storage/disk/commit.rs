//! [`Commit`]: the disk log's commit point, its `watch`, the group-commit turn, and the failure
//! that turns the log read-only.
//!
//! The commit point is the offset below which every record is readable. It only moves forward:
//! under [`FsyncPolicy::Always`](super::FsyncPolicy::Always) after the sync that covers a write,
//! under the other policies as soon as the write is in the file. Invariant: the commit point never
//! passes the log's write position.
//!
//! Group commit: one thread at a time holds the [`SyncTurn`] and syncs everything written so far;
//! every append that sync covers is woken when the turn ends and returns without a sync of its
//! own, instead of queueing for another one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, RwLock};

use tokio::sync::watch;

use crate::storage::locks::{Locks, POISONED};
use crate::storage::{Error, Result};

/// The commit point and everything that moves it.
#[derive(Debug)]
pub(super) struct Commit {
    /// The commit point, read without a lock.
    point: AtomicU64,
    /// The commit point's sender; `None` once closed, which ends every waiter. Its own lock, so
    /// that subscribing never waits behind an append or a segment roll.
    sender: RwLock<Option<watch::Sender<u64>>>,
    /// Whether a thread holds the turn to sync: one sync runs at a time.
    syncing: Mutex<bool>,
    /// Signalled whenever a sync turn ends.
    sync_done: Condvar,
    /// Set once, by the first failed sync or poisoned lock; from then on appends fail.
    failed: OnceLock<String>,
}

impl Locks for Commit {
    fn on_poison(&self) {
        if self.failed.set(POISONED.to_string()).is_ok() {
            tracing::error!("{POISONED}; the log is read-only until reopened");
        }
    }
}

impl Commit {
    /// A commit point at `point`.
    pub(super) fn new(point: u64) -> Self {
        Self {
            point: AtomicU64::new(point),
            sender: RwLock::new(Some(watch::Sender::new(point))),
            syncing: Mutex::new(false),
            sync_done: Condvar::new(),
            failed: OnceLock::new(),
        }
    }

    /// The commit point.
    pub(super) fn point(&self) -> u64 {
        self.point.load(Ordering::Acquire)
    }

    /// Moves the commit point to `point` (never back) and wakes the readers waiting for it.
    pub(super) fn advance(&self, point: u64) {
        self.point.fetch_max(point, Ordering::AcqRel);
        let sender = self.read_locked(&self.sender);
        if let Some(sender) = sender.as_ref() {
            sender.send_if_modified(|current| {
                let moved = *current < point;
                *current = (*current).max(point);
                moved
            });
        }
    }

    /// A receiver of the commit point; once closed, one that has already ended.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        match self.read_locked(&self.sender).as_ref() {
            Some(sender) => sender.subscribe(),
            None => watch::channel(self.point()).1,
        }
    }

    /// Ends every waiter: the log is closed.
    pub(super) fn close(&self) {
        *self.write_locked(&self.sender) = None;
    }

    /// `Ok` while appends may go on; [`Error::ReadOnly`] after a failure.
    pub(super) fn check_writable(&self) -> Result<()> {
        match self.failed.get() {
            Some(why) => Err(Error::ReadOnly(why.clone())),
            None => Ok(()),
        }
    }

    /// Whether the log has failed.
    pub(super) fn has_failed(&self) -> bool {
        self.failed.get().is_some()
    }

    /// Records that `what` failed with `err`: the log is read-only from now on.
    pub(super) fn fail(&self, what: &str, err: std::io::Error) -> Error {
        tracing::error!(error = %err, "{what} failed; the log is read-only until reopened");
        let _ = self.failed.set(format!("{what} failed: {err}"));
        Error::ReadOnly(self.failed.get().cloned().unwrap_or_default())
    }

    /// Waits for the turn to sync, whatever the commit point.
    pub(super) fn turn(&self) -> SyncTurn<'_> {
        self.wait_turn(None).expect("an unconditional wait ends with the turn")
    }

    /// Makes the log durable up to `target` (group commit): returns at once if a sync already
    /// covered it (or the log failed meanwhile), otherwise takes the turn and runs `sync`, which
    /// syncs everything written so far and advances the commit point.
    pub(super) fn sync_to(&self, target: u64, sync: impl FnOnce() -> Result<()>) -> Result<()> {
        let turn = self.wait_turn(Some(target));
        if self.point() >= target {
            return Ok(());
        }
        match turn {
            Some(_turn) => sync(),
            None => self.check_writable(),
        }
    }

    /// Waits for the turn to sync. With `Some(target)`, gives up (`None`) as soon as the commit
    /// point reaches `target` or the log fails, so an append a running sync covered never waits
    /// for another one.
    fn wait_turn(&self, target: Option<u64>) -> Option<SyncTurn<'_>> {
        let mut syncing = self.locked(&self.syncing);
        loop {
            if let Some(target) = target
                && (self.point() >= target || self.has_failed())
            {
                return None;
            }
            if !*syncing {
                *syncing = true;
                return Some(SyncTurn(self));
            }
            syncing = self.recover(self.sync_done.wait(syncing));
        }
    }
}

/// The exclusive turn to sync; ending it wakes every thread waiting for one.
pub(super) struct SyncTurn<'a>(&'a Commit);

impl Drop for SyncTurn<'_> {
    fn drop(&mut self) {
        *self.0.locked(&self.0.syncing) = false;
        self.0.sync_done.notify_all();
    }
}
