//! [`FreeSpace`]: the free-space floor a [`DiskGroup`](super::DiskGroup)'s logs keep on their
//! data volume.
//!
//! While the volume has less space free than the floor, appends fail with
//! [`Error::DiskLow`]; reads go on, and appends resume by themselves once space is freed. The
//! free space is measured (`statvfs`) at most once per [`REFRESH`], not per append, and again
//! at once after retention deleted files or the floor changed. A volume that cannot be measured
//! never refuses appends: the floor is a guard, not a new way to fail.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::storage::{Error, Result};

/// How long a measurement is trusted.
pub(super) const REFRESH: Duration = Duration::from_secs(1);

/// The floor, and the last measurement of the volume.
#[derive(Debug, Default)]
pub(super) struct FreeSpace {
    /// The bytes the volume must keep free; 0 turns the check off.
    floor: AtomicU64,
    /// When the volume was last measured and what it had free. Holds whole values, so poisoning
    /// is ignored; held for one `statvfs` at most.
    measured: Mutex<Option<(Instant, u64)>>,
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
        *self.measured.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// [`Error::DiskLow`] while the volume holding `dir` has less than the floor free.
    pub(super) fn check(&self, dir: &Path) -> Result<()> {
        let floor = self.floor();
        if floor == 0 {
            return Ok(());
        }
        let free = {
            let mut measured = self.measured.lock().unwrap_or_else(PoisonError::into_inner);
            match *measured {
                Some((at, free)) if at.elapsed() < REFRESH => free,
                _ => {
                    let free = available(dir).unwrap_or_else(|err| {
                        tracing::warn!(error = %err, "cannot measure the data volume's free space");
                        u64::MAX
                    });
                    *measured = Some((Instant::now(), free));
                    free
                }
            }
        };
        if free < floor { Err(Error::DiskLow { free, floor }) } else { Ok(()) }
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
        let first = space.measured.lock().unwrap().unwrap();
        space.check(dir.path()).unwrap();
        assert_eq!(space.measured.lock().unwrap().unwrap().0, first.0);
    }
}
