//! Configuration of a log: segment sizes, record limits, the first offset and the durability
//! policy. Every field documents its default.

use std::time::Duration;

use super::{Error, Result};

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

/// How a log lays out and protects its data.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// A segment's store file rolls once the next frame would take it past this size.
    /// Default 128 MiB. A record larger than this gets a segment of its own.
    pub max_store_bytes: u64,
    /// A segment's index file size; it rolls when full. Rounded down to a whole number of
    /// entries. Default 16 MiB (about 1.4 M records per segment).
    pub max_index_bytes: u64,
    /// The largest value an append accepts. Default 1 MiB.
    pub max_record_bytes: usize,
    /// The offset of a new log's first record. Ignored when the log already has data.
    /// Default 0.
    pub initial_offset: u64,
    /// The durability policy. Default [`FsyncPolicy::Always`].
    pub fsync: FsyncPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_store_bytes: 128 * 1024 * 1024,
            max_index_bytes: 16 * 1024 * 1024,
            max_record_bytes: 1024 * 1024,
            initial_offset: 0,
            fsync: FsyncPolicy::Always,
        }
    }
}

impl LogConfig {
    /// Checks that the values can work together.
    pub fn validate(&self) -> Result<()> {
        if self.max_store_bytes < 64 {
            return Err(Error::Config("max_store_bytes must be at least 64".into()));
        }
        if self.max_index_bytes < 2 * super::disk::INDEX_ENTRY_BYTES {
            return Err(Error::Config(format!(
                "max_index_bytes must hold at least two index entries ({} bytes)",
                2 * super::disk::INDEX_ENTRY_BYTES
            )));
        }
        if self.max_record_bytes > u32::MAX as usize {
            return Err(Error::Config("max_record_bytes must fit in 32 bits".into()));
        }
        if let FsyncPolicy::Interval(d) = self.fsync
            && d.is_zero()
        {
            return Err(Error::Config("the fsync interval must be positive".into()));
        }
        Ok(())
    }
}
