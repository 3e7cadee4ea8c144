//! [`DiskConfig`]: how the disk log lays out and protects its data — segment sizes and the
//! durability policy — on top of the record rules of [`LogConfig`]. Every field documents its
//! default.

use std::time::Duration;

use super::index::INDEX_ENTRY_BYTES;
use crate::storage::{Error, LogConfig, Result};

/// The smallest `max_store_bytes` accepted.
pub(super) const MIN_STORE_BYTES: u64 = 64;

/// The size an active segment's index starts at (or `max_index_bytes`, if smaller).
const INDEX_START_BYTES: u64 = 64 * 1024;

/// When appended data is synced to stable storage.
///
/// Under every policy an append returns only once its records are in the file, so a process crash
/// (kill -9) never loses an acknowledged record. The policies differ on power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// The OS decides when to write back. A power loss can take back acknowledged records.
    Never,
    /// A background thread syncs every interval. A power loss can take back about one interval
    /// of acknowledged records.
    Interval(Duration),
    /// A record is acknowledged and becomes visible only after `fdatasync` of the data holding it;
    /// concurrent appends share one sync (group commit). Nothing acknowledged is lost on power
    /// loss. The default.
    Always,
}

/// The disk log's settings.
#[derive(Clone, Debug)]
pub struct DiskConfig {
    /// The record rules, shared with every other log.
    pub log: LogConfig,
    /// A segment's store file rolls once the next frame would take it past this size.
    /// Default 128 MiB. A record larger than this gets a segment of its own.
    /// [`DiskLog::set_max_store_bytes`](super::DiskLog::set_max_store_bytes) replaces it on an
    /// open log. Under [`FsyncPolicy::Always`] the active store is zero-filled ahead of its data
    /// in steps of its size (64 KiB to 4 MiB), never past this.
    pub max_store_bytes: u64,
    /// The most an active segment's index file grows to; the segment rolls when its index is
    /// this size and full. Rounded down to a whole number of entries. An index starts at 64 KiB
    /// (or this, if smaller) and doubles as it fills, so an idle segment holds 64 KiB, not this.
    /// Default 16 MiB (about 1.4 M records per segment).
    pub max_index_bytes: u64,
    /// The durability policy. Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
    /// How many sealed segments may have their files open at once (a store descriptor and an
    /// index mapping each); reads of others open them, closing the least recently used. The
    /// active segment holds one more descriptor. Default 64, at least 1. Used by
    /// [`DiskLog::open`](super::DiskLog::open) only: a log opened in a
    /// [`DiskGroup`](super::DiskGroup) shares the group's bound instead.
    pub max_open_segments: usize,
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            log: LogConfig::default(),
            max_store_bytes: 128 * 1024 * 1024,
            max_index_bytes: 16 * 1024 * 1024,
            fsync: FsyncPolicy::Always,
            max_open_segments: 64,
        }
    }
}

impl DiskConfig {
    /// Checks that the values can work together.
    pub fn validate(&self) -> Result<()> {
        self.log.validate()?;
        if self.max_store_bytes < MIN_STORE_BYTES {
            return Err(Error::Config(format!(
                "max_store_bytes must be at least {MIN_STORE_BYTES}"
            )));
        }
        if self.max_index_bytes < 2 * INDEX_ENTRY_BYTES {
            return Err(Error::Config(format!(
                "max_index_bytes must hold at least two index entries ({} bytes)",
                2 * INDEX_ENTRY_BYTES
            )));
        }
        if let FsyncPolicy::Interval(every) = self.fsync
            && every.is_zero()
        {
            return Err(Error::Config("the fsync interval must be positive".into()));
        }
        Ok(())
    }

    /// The most index entries a segment takes before it rolls.
    pub(super) fn max_index_entries(&self) -> u64 {
        self.max_index_bytes / INDEX_ENTRY_BYTES
    }

    /// Index entries a new active segment starts with.
    pub(super) fn start_index_entries(&self) -> u64 {
        self.max_index_bytes.min(INDEX_START_BYTES) / INDEX_ENTRY_BYTES
    }
}
