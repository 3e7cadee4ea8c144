//! [`LogConfig`]: the record rules every log keeps, on disk or in memory. Disk settings (segment
//! sizes, the durability policy) live apart, in [`DiskConfig`](super::DiskConfig).

use super::{Error, Result};

/// The rules a log applies to the records it takes. Every field documents its default.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// The largest value an append accepts; a larger one fails with
    /// [`Error::RecordTooLarge`]. The server takes its own limit from here. Default 1 MiB.
    pub max_record_bytes: usize,
    /// The offset of a new log's first record. Ignored when the log already has data.
    /// Default 0.
    pub initial_offset: u64,
}

/// The default `max_record_bytes`: 1 MiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The most records a log can ever hold below `u64::MAX`: offsets must leave room for
/// `next_offset` itself, so the last usable offset is `u64::MAX - 1`.
const LAST_OFFSET: u64 = u64::MAX - 1;

impl Default for LogConfig {
    fn default() -> Self {
        Self { max_record_bytes: DEFAULT_MAX_RECORD_BYTES, initial_offset: 0 }
    }
}

impl LogConfig {
    /// Checks that the values can work.
    pub fn validate(&self) -> Result<()> {
        if self.max_record_bytes > u32::MAX as usize {
            return Err(Error::Config("max_record_bytes must fit in 32 bits".into()));
        }
        if self.initial_offset > LAST_OFFSET {
            return Err(Error::Config(format!(
                "initial_offset must be at most {LAST_OFFSET}, so that next_offset fits in 64 bits"
            )));
        }
        Ok(())
    }

    /// Checks `values` against the record rules before anything is appended.
    pub(crate) fn check_values(&self, values: &[bytes::Bytes]) -> Result<()> {
        let max = self.max_record_bytes;
        match values.iter().find(|v| v.len() > max) {
            Some(big) => Err(Error::RecordTooLarge { size: big.len(), max }),
            None => Ok(()),
        }
    }
}
