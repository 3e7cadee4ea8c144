//! [`MemoryLog`]: the [`CommitLog`] contract kept in memory, for tests and embedding.
//!
//! Invariant: `records[i].offset == lowest + i`, and `lowest + records.len()` is the commit point
//! published on the watch. Nothing survives the process. It has no segments, so it ignores
//! [`Retention`](super::Retention) (the trait's default): it keeps everything.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::watch;

use super::disk::FRAME_HEADER_BYTES;
use super::locks::{Locks, POISONED};
use super::{CommitLog, Error, LogConfig, Record, Result};

/// An in-memory log. Truncation drops exactly the records below the offset asked for (it has no
/// segments), never past the commit point. Its [`size_bytes`](CommitLog::size_bytes) counts what
/// its records would take in a disk log's store: a 24-byte frame header plus the value, per
/// record (no store headers).
#[derive(Debug)]
pub struct MemoryLog {
    /// Appends take the write lock for the push and the watch update, so the watch never runs
    /// ahead of or behind the records; reads share the read lock.
    inner: RwLock<Inner>,
    config: LogConfig,
    /// Set when a lock was found poisoned: appends fail from then on (see `storage::locks`).
    poisoned: AtomicBool,
}

impl Locks for MemoryLog {
    fn on_poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }
}

#[derive(Debug)]
struct Inner {
    lowest: u64,
    records: VecDeque<Record>,
    /// The sum over `records` of a frame header and the value.
    bytes: u64,
    /// The last record's timestamp: the next one gets at least this.
    last_timestamp_ms: u64,
    /// The commit point's sender; `None` once closed, which ends every waiter.
    commit: Option<watch::Sender<u64>>,
}

impl Inner {
    fn next(&self) -> u64 {
        self.lowest + self.records.len() as u64
    }

    fn check_open(&self) -> Result<()> {
        if self.commit.is_none() { Err(Error::Closed) } else { Ok(()) }
    }
}

impl MemoryLog {
    /// A new, empty log starting at `config.initial_offset`.
    pub fn new(config: LogConfig) -> Self {
        let lowest = config.initial_offset;
        Self {
            inner: RwLock::new(Inner {
                lowest,
                records: VecDeque::new(),
                bytes: 0,
                last_timestamp_ms: 0,
                commit: Some(watch::Sender::new(lowest)),
            }),
            config,
            poisoned: AtomicBool::new(false),
        }
    }

    fn read_inner(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.read_locked(&self.inner)
    }

    fn write_inner(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.write_locked(&self.inner)
    }
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self::new(LogConfig::default())
    }
}

impl CommitLog for MemoryLog {
    fn append(&self, value: Bytes) -> Result<u64> {
        self.append_batch(std::slice::from_ref(&value)).map(|r| r.start)
    }

    fn append_batch_at(&self, values: &[Bytes], clock_ms: u64) -> Result<Range<u64>> {
        self.config.check_values(values)?;
        let mut inner = self.write_inner();
        inner.check_open()?;
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::ReadOnly(POISONED.to_string()));
        }
        let start = inner.next();
        let end = start
            .checked_add(values.len() as u64)
            .ok_or(Error::OffsetsExhausted { next: start })?;
        let timestamp_ms = clock_ms.max(inner.last_timestamp_ms);
        for (i, value) in values.iter().enumerate() {
            let offset = start + i as u64;
            inner.records.push_back(Record { offset, timestamp_ms, value: value.clone() });
            inner.bytes += frame_bytes(value);
        }
        if !values.is_empty() {
            inner.last_timestamp_ms = timestamp_ms;
        }
        debug_assert_eq!(inner.next(), end);
        if end != start
            && let Some(commit) = &inner.commit
        {
            commit.send_replace(end);
        }
        Ok(start..end)
    }

    fn read(&self, offset: u64) -> Result<Record> {
        let inner = self.read_inner();
        inner.check_open()?;
        match offset.checked_sub(inner.lowest).and_then(|i| inner.records.get(i as usize)) {
            Some(record) => Ok(record.clone()),
            None => {
                Err(Error::OffsetOutOfRange { offset, lowest: inner.lowest, next: inner.next() })
            }
        }
    }

    fn read_batch(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        let inner = self.read_inner();
        inner.check_open()?;
        let start = match offset.checked_sub(inner.lowest) {
            Some(i) if (i as usize) < inner.records.len() => i as usize,
            _ => {
                let (lowest, next) = (inner.lowest, inner.next());
                return Err(Error::OffsetOutOfRange { offset, lowest, next });
            }
        };
        let mut bytes = 0;
        let mut out = Vec::new();
        for record in inner.records.iter().skip(start) {
            if !out.is_empty() && (out.len() >= max_records || bytes >= max_bytes) {
                break;
            }
            bytes += record.value.len();
            out.push(record.clone());
        }
        Ok(out)
    }

    fn lowest_offset(&self) -> u64 {
        self.read_inner().lowest
    }

    fn next_offset(&self) -> u64 {
        self.read_inner().next()
    }

    fn max_record_bytes(&self) -> usize {
        self.config.max_record_bytes
    }

    fn truncate(&self, lowest: u64) -> Result<u64> {
        let mut inner = self.write_inner();
        inner.check_open()?;
        let target = lowest.min(inner.next());
        while inner.lowest < target {
            if let Some(record) = inner.records.pop_front() {
                inner.bytes -= frame_bytes(&record.value);
            }
            inner.lowest += 1;
        }
        Ok(inner.lowest)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        let inner = self.read_inner();
        match &inner.commit {
            Some(commit) => commit.subscribe(),
            None => watch::channel(inner.next()).1,
        }
    }

    fn close(&self) -> Result<()> {
        let mut inner = self.write_inner();
        inner.check_open()?;
        inner.commit = None;
        Ok(())
    }

    fn size_bytes(&self) -> u64 {
        self.read_inner().bytes
    }
}

/// What a record of `value` takes in a disk log's store.
fn frame_bytes(value: &Bytes) -> u64 {
    FRAME_HEADER_BYTES + value.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(n: u64) -> MemoryLog {
        let log = MemoryLog::new(LogConfig { initial_offset: 3, ..LogConfig::default() });
        for i in 0..n {
            log.append(Bytes::from(vec![i as u8; 10])).unwrap();
        }
        log
    }

    #[test]
    fn read_batch_stops_once_values_reach_max_bytes() {
        // The byte limit counts values and is reached by the last record returned, never before.
        let log = log_with(6);
        let lens = |max_bytes| log.read_batch(3, 100, max_bytes).unwrap().len();
        assert_eq!(
            (lens(0), lens(10), lens(11), lens(25), lens(30), lens(1000)),
            (1, 1, 2, 3, 3, 6)
        );
        assert_eq!(log.read_batch(5, 2, usize::MAX).unwrap().len(), 2);
    }

    #[test]
    fn truncate_is_exact_and_bounded_by_next() {
        // Truncation drops exactly the records below the offset, never past the commit point.
        let log = log_with(5);
        assert_eq!(log.truncate(2).unwrap(), 3, "below lowest changes nothing");
        assert_eq!(log.truncate(5).unwrap(), 5);
        assert_eq!(log.read(5).unwrap().offset, 5);
        assert_eq!(log.truncate(100).unwrap(), 8);
        assert_eq!((log.lowest_offset(), log.next_offset()), (8, 8));
        assert_eq!(log.append(Bytes::new()).unwrap(), 8);
    }

    #[test]
    fn a_closed_log_refuses_everything() {
        // After close, every operation fails with Closed and bounds stay readable.
        let log = log_with(2);
        log.close().unwrap();
        assert!(matches!(log.append(Bytes::new()), Err(Error::Closed)));
        assert!(matches!(log.read(3), Err(Error::Closed)));
        assert!(matches!(log.close(), Err(Error::Closed)));
        assert_eq!(log.next_offset(), 5);
    }

    #[test]
    fn a_lock_poisoned_by_a_panic_turns_the_log_read_only() {
        // A panic while the lock is held refuses appends from then on; reads go on.
        let log = std::sync::Arc::new(log_with(2));
        let poisoner = std::sync::Arc::clone(&log);
        let panicked = std::thread::spawn(move || {
            let _inner = poisoner.inner.write().unwrap();
            panic!("a bug while appending");
        })
        .join();
        assert!(panicked.is_err());
        assert!(matches!(log.append(Bytes::new()), Err(Error::ReadOnly(_))));
        assert_eq!(log.read(3).unwrap().offset, 3);
    }
}
