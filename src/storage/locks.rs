//! The storage layer's one lock-poisoning policy, stated once and applied wherever a log takes a
//! lock.
//!
//! A lock is poisoned when a thread panicked while holding it; whatever it guarded may be half
//! updated (a panic between writing a batch and moving the write position would let the next
//! batch reuse offsets). So a poisoned lock turns the log **read-only**, exactly as a failed sync
//! does: appends fail with [`Error::ReadOnly`](super::Error::ReadOnly) until the log is reopened,
//! and recovery on the next open rebuilds the state from the files. Reads go on, because the
//! commit point only ever moves after a write is whole, so nothing a reader can reach is half
//! written. The guard is still handed out (`into_inner`): refusing it would turn one panic into a
//! panic in every later caller.

use std::sync::{LockResult, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Why a poisoned log refuses appends.
pub(crate) const POISONED: &str = "a thread panicked while holding the log's lock";

/// Takes locks under the policy above; `on_poison` is told when a lock was found poisoned.
pub(crate) trait Locks {
    /// Called (possibly many times) for every poisoned lock taken: turns the log read-only.
    fn on_poison(&self);

    /// Locks `lock` for reading.
    fn read_locked<'a, T>(&self, lock: &'a RwLock<T>) -> RwLockReadGuard<'a, T> {
        self.recover(lock.read())
    }

    /// Locks `lock` for writing.
    fn write_locked<'a, T>(&self, lock: &'a RwLock<T>) -> RwLockWriteGuard<'a, T> {
        self.recover(lock.write())
    }

    /// Locks `lock`.
    fn locked<'a, T>(&self, lock: &'a Mutex<T>) -> MutexGuard<'a, T> {
        self.recover(lock.lock())
    }

    /// The guard of a lock result, poisoned or not.
    fn recover<G>(&self, result: LockResult<G>) -> G {
        result.unwrap_or_else(|poisoned| {
            self.on_poison();
            poisoned.into_inner()
        })
    }
}
