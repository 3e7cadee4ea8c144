//! [`FreeSpace`]: the free-space floor a [`DiskGroup`](super::DiskGroup)'s logs keep on their
//! data volume.
//!
//! While the volume has less space free than the floor, appends fail with
//! [`Error::DiskLow`]; reads go on, and appends resume by themselves once space is freed. The
//! free space is measured (`statvfs`) at most once per [`REFRESH`], not per append, and again
//! at once after retention deleted files or the floor changed. A volume that cannot be measured
//! never refuses appends: the floor is a guard, not a new way to fail.
//!
//! Every append of every log in the group checks the floor, so the check takes no lock: the last
//! measurement sits in atomics, and when it is stale one thread (the one that wins a `try_lock`)
//! measures while the others go on with the previous value.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::storage::{Error, Result};

/// How long a measurement is trusted.
pub(super) const REFRESH: Duration = Duration::from_secs(1);

/// The floor, and the last measurement of the volume.
#[derive(Debug)]
pub(super) struct FreeSpace {
    /// The bytes the volume must keep free; 0 turns the check off.
    floor: AtomicU64,
    /// When the volume was last measured, in nanoseconds since `epoch`, plus one; 0 when there
    /// is no measurement to trust (never measured, or forgotten).
    measured_at: AtomicU64,
    /// What the last measurement found free. Written before `measured_at`.
    free: AtomicU64,
    /// Held by the one thread measuring; appends only `try_lock` it, unless there is no
    /// measurement at all. Guards nothing, so poisoning is ignored.
    measuring: Mutex<()>,
    /// The origin of `measured_at`.
    epoch: Instant,
}

impl Default for FreeSpace {
    fn default() -> Self {
        Self {
            floor: AtomicU64::new(0),
            measured_at: AtomicU64::new(0),
            free: AtomicU64::new(u64::MAX),
            measuring: Mutex::new(()),
            epoch: Instant::now(),
        }
    }
}

impl FreeSpace {
    /// Sets the floor, measuring afresh at the next check.
    pub(super) fn set_floor(&self, bytes: u64) {
        self.floor.store(bytes, Ordering::Relaxed);
        self.forget();
    }

    /// The floor in force.
    pub(super) fn floor(&self) -> u64 {
        self.floor.load(Ordering::Relaxed)
    }

    /// Drops the last measurement: space was just freed.
    pub(super) fn forget(&self) {
        self.measured_at.store(0, Ordering::Release);
    }

    /// [`Error::DiskLow`] while the volume holding `dir` has less than the floor free.
    pub(super) fn check(&self, dir: &Path) -> Result<()> {
        let floor = self.floor();
        if floor == 0 {
            return Ok(());
        }
        let free = self.free(dir);
        if free < floor { Err(Error::DiskLow { free, floor }) } else { Ok(()) }
    }

    /// The bytes free as last measured, measuring first if that is stale and no other thread
    /// is measuring.
    fn free(&self, dir: &Path) -> u64 {
        let at = self.measured_at.load(Ordering::Acquire);
        if at != 0 && self.since(at) < REFRESH {
            return self.free.load(Ordering::Acquire);
        }
        let _measuring = if at == 0 {
            // Nothing to go on (space was just freed, or the floor changed): wait for a fresh
            // measurement, which is rare.
            let guard = self.measuring.lock().unwrap_or_else(PoisonError::into_inner);
            let again = self.measured_at.load(Ordering::Acquire);
            if again != 0 && self.since(again) < REFRESH {
                return self.free.load(Ordering::Acquire);
            }
            guard
        } else {
            match self.measuring.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    return self.free.load(Ordering::Acquire);
                }
            }
        };
        let seen = self.measured_at.load(Ordering::Acquire);
        let free = available(dir).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "cannot measure the data volume's free space");
            u64::MAX
        });
        self.free.store(free, Ordering::Release);
        let now = self.epoch.elapsed().as_nanos() as u64 + 1;
        // A `forget` since the measurement started wins: the next check measures again.
        let _ = self.measured_at.compare_exchange(seen, now, Ordering::AcqRel, Ordering::Relaxed);
        free
    }

    /// How long ago `at` (a `measured_at` value) was.
    fn since(&self, at: u64) -> Duration {
        self.epoch.elapsed().saturating_sub(Duration::from_nanos(at - 1))
    }
}

/// The bytes free to an unprivileged writer on the volume holding `dir`.
fn available(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_are_refused_below_the_floor_and_resume_when_it_is_lowered() {
        // No floor never refuses; an impossible floor refuses with the free space measured;
        // lowering the floor takes effect at once, not after the measurement's refresh.
        let dir = tempfile::tempdir().unwrap();
        let space = FreeSpace::default();
        space.check(dir.path()).unwrap();
        space.set_floor(u64::MAX);
        let Err(Error::DiskLow { free, floor }) = space.check(dir.path()) else {
            panic!("an impossible floor must refuse")
        };
        assert_eq!(floor, u64::MAX);
        assert!(free > 0 && free < u64::MAX);
        space.set_floor(1);
        space.check(dir.path()).unwrap();
    }

    #[test]
    fn a_measurement_is_reused_within_its_refresh() {
        // Checks within REFRESH of a measurement reuse it: no statvfs per append.
        let dir = tempfile::tempdir().unwrap();
        let space = FreeSpace::default();
        space.set_floor(1);
        space.check(dir.path()).unwrap();
        let first = space.measured_at.load(Ordering::Acquire);
        assert_ne!(first, 0);
        space.check(dir.path()).unwrap();
        assert_eq!(space.measured_at.load(Ordering::Acquire), first);
    }

    #[test]
    fn a_stale_measurement_is_used_while_another_thread_measures() {
        // While one thread measures (holds `measuring`), a check finds the measurement stale
        // and goes on with it rather than waiting: appends never queue behind a statvfs.
        let dir = tempfile::tempdir().unwrap();
        let epoch = Instant::now().checked_sub(REFRESH * 10).expect("a clock past its epoch");
        let space = std::sync::Arc::new(FreeSpace { epoch, ..FreeSpace::default() });
        space.set_floor(1000);
        space.check(dir.path()).unwrap();
        // A measurement from the epoch, long stale, that found the volume nearly full.
        space.free.store(10, Ordering::Release);
        space.measured_at.store(1, Ordering::Release);
        let measuring = space.measuring.lock().unwrap();
        let (done, checked) = std::sync::mpsc::channel();
        let checker = std::sync::Arc::clone(&space);
        let path = dir.path().to_path_buf();
        let thread = std::thread::spawn(move || done.send(checker.check(&path)).unwrap());
        let outcome = checked.recv_timeout(Duration::from_secs(10)).expect("the check waited");
        assert!(matches!(outcome, Err(Error::DiskLow { free: 10, floor: 1000 })), "{outcome:?}");
        drop(measuring);
        thread.join().unwrap();
        space.check(dir.path()).unwrap();
    }
}
