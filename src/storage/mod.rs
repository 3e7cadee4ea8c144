//! The storage layer: the [`CommitLog`] contract and its two implementations.
//!
//! This module deals in bytes, offsets and its own [`Error`]; it never imports tonic, the
//! generated API or the server, so it can be embedded, benchmarked and fuzzed alone.
//!
//! | file | owns |
//! |------|------|
//! | `mod.rs` | [`CommitLog`], its contract, and [`Record`] |
//! | `config.rs` | [`LogConfig`]: the record rules every log keeps |
//! | `error.rs` | [`Error`] |
//! | `events.rs` | [`StorageEvents`]: what storage reports to its embedder (syncs, batches) |
//! | `locks.rs` | the one lock-poisoning policy |
//! | `memory.rs` | [`MemoryLog`] |
//! | `retention.rs` | [`Retention`]: the rules by which a log deletes its oldest segments |
//! | `disk/` | [`DiskLog`], the [`DiskGroup`] of logs that share a server, and their files |

mod config;
pub mod disk;
pub(crate) mod error;
pub mod events;
pub(crate) mod locks;
mod memory;
mod retention;

use std::ops::Range;

use bytes::Bytes;
use tokio::sync::watch;

pub use config::{DEFAULT_MAX_RECORD_BYTES, LogConfig};
pub use disk::{DiskConfig, DiskGroup, DiskLog, FsyncPolicy};
pub use error::{Error, Result};
pub use events::{NoEvents, StorageEvents};
pub use memory::MemoryLog;
pub use retention::{Enforced, Retention};

/// One record of a log, as storage holds it and as the client hands it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's position in the log.
    pub offset: u64,
    /// Milliseconds since the Unix epoch at which the log appended the record; never decreasing
    /// within a log (see [`CommitLog`], "Time").
    pub timestamp_ms: u64,
    /// The payload; may be empty.
    pub value: Bytes,
}

/// An append-only sequence of records addressed by dense offsets.
///
/// # Contract
///
/// Every implementation keeps these promises, and `tests/contract.rs` checks each of them against
/// every implementation.
///
/// - **Offsets.** A new log starts at `initial_offset` (0 unless configured). Each appended record
///   gets the next offset: offsets are dense, strictly increasing and never reused, across
///   restarts and truncation too.
/// - **Commit point.** [`next_offset`](Self::next_offset) is the commit point: every offset in
///   `[lowest_offset, next_offset)` can be read, and nothing at or past it can. Under
///   [`FsyncPolicy::Always`] a record is committed only once the data holding it has been synced
///   to stable storage, so no reader ever sees a record that a power cut could take back. Under
///   the other policies a record is committed once it is in the file (the OS page cache).
/// - **Append.** [`append`](Self::append) and [`append_batch`](Self::append_batch) return only
///   once the records are committed; a process crash (kill -9) after that never loses them. A
///   batch is all-or-nothing: either every record gets consecutive offsets or none is appended,
///   and a failed append is neither acknowledged nor visible. (An append whose sync failed may
///   already be in the file and reappear after a restart: a producer that retries gets
///   at-least-once delivery.) Empty values are valid records; a value larger
///   than `max_record_bytes` is rejected with [`Error::RecordTooLarge`].
/// - **Time.** Every record is stamped with the time the log appended it, in milliseconds since
///   the Unix epoch: `max(now, the previous record's timestamp)`, so a clock stepping back never
///   reorders time within a log, across restarts too. A batch shares one timestamp.
/// - **Read.** [`read`](Self::read) of an offset outside `[lowest, next)` fails with
///   [`Error::OffsetOutOfRange`], which carries the requested offset and the current bounds. A
///   record whose bytes fail their checksum fails with [`Error::Corrupt`]: corruption is never
///   skipped and offsets are never renumbered around it.
/// - **Truncate.** [`truncate`](Self::truncate)`(lowest)` drops whole segments that lie entirely
///   below `lowest`; it never drops the active segment, so the new lowest offset may stay below
///   the one asked for.
/// - **Watch.** [`subscribe`](Self::subscribe) returns a receiver of the commit point
///   (`next_offset`). Tailing readers wait on it; a `watch` cannot lose a wake-up. The sender is
///   dropped when the log is closed or dropped, which ends every waiter.
/// - **Failure.** After a failed sync, or a lock poisoned by a panic, the log turns read-only: appends fail with
///   [`Error::ReadOnly`] until it is reopened. Reads go on working.
/// - **Close.** [`close`](Self::close) syncs and trims the files; afterwards every call fails with
///   [`Error::Closed`]. Dropping a log without closing it is a faithful crash: nothing is lost that
///   was acknowledged, and the next open repairs the tail.
pub trait CommitLog: Send + Sync + 'static {
    /// Appends one record and returns its offset once it is committed.
    fn append(&self, value: Bytes) -> Result<u64>;

    /// Appends every record of `values` atomically and returns their offsets. An empty batch
    /// appends nothing and returns an empty range at the commit point.
    fn append_batch(&self, values: &[Bytes]) -> Result<Range<u64>> {
        self.append_batch_at(values, now_ms())
    }

    /// [`append_batch`](Self::append_batch) with the clock reading `clock_ms` given: the batch is
    /// stamped `max(clock_ms, the previous record's timestamp)`. A replica applies a batch with
    /// the time its leader read, so that every copy holds the same timestamps.
    fn append_batch_at(&self, values: &[Bytes], clock_ms: u64) -> Result<Range<u64>>;

    /// Reads the committed record at `offset`.
    fn read(&self, offset: u64) -> Result<Record>;

    /// Reads up to `max_records` consecutive committed records starting at `offset`, stopping
    /// early once their values add up to `max_bytes` (at least one record is always returned when
    /// `offset` is readable). Errors as [`read`](Self::read) does for `offset`; a corrupt record
    /// after the first ends the batch early, so the next call reports it. A batch may also end
    /// early at a segment boundary: a short batch does not mean the reader has caught up, only
    /// [`next_offset`](Self::next_offset) says that.
    fn read_batch(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>>;

    /// The lowest offset still held.
    fn lowest_offset(&self) -> u64;

    /// The commit point: the offset the next record will get.
    fn next_offset(&self) -> u64;

    /// The largest value an append accepts (its [`LogConfig::max_record_bytes`]).
    fn max_record_bytes(&self) -> usize;

    /// Drops every whole segment below `lowest`, never the active one. Returns the new lowest
    /// offset.
    fn truncate(&self, lowest: u64) -> Result<u64>;

    /// A receiver of the commit point, for readers that wait for new records.
    fn subscribe(&self) -> watch::Receiver<u64>;

    /// Syncs and closes the log. Later calls fail with [`Error::Closed`].
    fn close(&self) -> Result<()>;

    /// Syncs every record written so far to stable storage, whatever the fsync policy. A log
    /// with nothing to sync (in memory) does nothing.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// The bytes of record data the log holds: its store files' written length (headers and
    /// frames, no preallocated space, no indexes). A log without files says what it counts.
    fn size_bytes(&self) -> u64;

    /// Sets the store size a segment rolls at, from the next append on. Logs without segments
    /// ignore it.
    fn set_segment_bytes(&self, _bytes: u64) -> Result<()> {
        Ok(())
    }

    /// How many segments the log holds, the active one included; a log without segments says 1.
    /// Cheap: a read lock, no I/O.
    fn segment_count(&self) -> usize {
        1
    }

    /// Applies `rules` at `now_ms` (milliseconds since the epoch): rolls the active segment
    /// once its oldest record is past the age limit, then deletes whole sealed segments, oldest
    /// first and never the active one, while the log is over the size limit or the oldest
    /// one's newest record is past the age limit. The new lowest offset shows at once; the
    /// files go after, without holding up appends or reads. Logs without segments
    /// ([`MemoryLog`]) keep everything and say so.
    fn enforce_retention(&self, _rules: Retention, _now_ms: u64) -> Result<Enforced> {
        Ok(Enforced { lowest: self.lowest_offset(), ..Enforced::default() })
    }
}

/// The timestamp of a record appended after one stamped `previous`: now in milliseconds since
/// the Unix epoch, or `previous` if the clock says earlier.
pub(crate) fn next_timestamp(previous: u64) -> u64 {
    now_ms().max(previous)
}

/// Now, in milliseconds since the Unix epoch: the clock records are stamped and aged by.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
