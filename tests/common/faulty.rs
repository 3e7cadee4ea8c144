//! [`FaultyLog`]: a `MemoryLog` wrapper that injects storage errors and delays and counts calls,
//! so tests can drive the service's error mapping, batching and back-pressure.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use girok::storage::{CommitLog, Error, LogConfig, MemoryLog, Record, Result};
use tokio::sync::watch;

/// Builds the error an injected failure returns (`Error` is not `Clone`).
pub type MakeError = fn() -> Error;

/// A `MemoryLog` with fault injection. Every knob is off by default.
#[derive(Default)]
pub struct FaultyLog {
    inner: MemoryLog,
    /// Reads of this offset fail with `Error::Corrupt`.
    pub corrupt_offset: Mutex<Option<u64>>,
    /// Batches that would reach this offset (or beyond) fail with `append_error`.
    pub fail_appends_at: AtomicU64,
    /// The error failing appends return.
    pub append_error: Mutex<Option<MakeError>>,
    /// How long each append takes (a stand-in for a sync).
    pub append_delay: Mutex<Duration>,
    /// How many `append`/`append_batch` calls were made.
    pub append_calls: AtomicUsize,
    /// How many records were returned by reads.
    pub records_read: AtomicUsize,
}

impl FaultyLog {
    /// A log with no faults.
    pub fn new(config: LogConfig) -> Self {
        Self {
            inner: MemoryLog::new(config),
            fail_appends_at: AtomicU64::new(u64::MAX),
            ..Self::default()
        }
    }

    /// Appends from `offset` on fail with `make`.
    pub fn fail_appends_from(&self, offset: u64, make: MakeError) {
        *self.append_error.lock().unwrap() = Some(make);
        self.fail_appends_at.store(offset, Ordering::SeqCst);
    }

    fn check_corrupt(&self, offset: u64) -> Result<()> {
        match *self.corrupt_offset.lock().unwrap() {
            Some(bad) if bad == offset => {
                Err(Error::Corrupt { offset, detail: "checksum mismatch".into() })
            }
            _ => Ok(()),
        }
    }
}

impl CommitLog for FaultyLog {
    fn append(&self, value: Bytes) -> Result<u64> {
        self.append_batch(std::slice::from_ref(&value)).map(|r| r.start)
    }

    fn append_batch_at(&self, values: &[Bytes], clock_ms: u64) -> Result<Range<u64>> {
        self.append_calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.append_delay.lock().unwrap();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let end = self.inner.next_offset() + values.len() as u64;
        if end > self.fail_appends_at.load(Ordering::SeqCst)
            && let Some(make) = *self.append_error.lock().unwrap()
        {
            return Err(make());
        }
        self.inner.append_batch_at(values, clock_ms)
    }

    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    fn read(&self, offset: u64) -> Result<Record> {
        self.check_corrupt(offset)?;
        let record = self.inner.read(offset)?;
        self.records_read.fetch_add(1, Ordering::SeqCst);
        Ok(record)
    }

    fn read_batch(&self, offset: u64, max_records: usize, max_bytes: usize) -> Result<Vec<Record>> {
        self.check_corrupt(offset)?;
        let mut records = self.inner.read_batch(offset, max_records, max_bytes)?;
        // A corrupt record after the first ends the batch early, as the contract says.
        if let Some(bad) = *self.corrupt_offset.lock().unwrap() {
            records.retain(|r| r.offset < bad || offset > bad);
        }
        self.records_read.fetch_add(records.len(), Ordering::SeqCst);
        Ok(records)
    }

    fn lowest_offset(&self) -> u64 {
        self.inner.lowest_offset()
    }

    fn next_offset(&self) -> u64 {
        self.inner.next_offset()
    }

    fn max_record_bytes(&self) -> usize {
        self.inner.max_record_bytes()
    }

    fn truncate(&self, lowest: u64) -> Result<u64> {
        self.inner.truncate(lowest)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.subscribe()
    }

    fn close(&self) -> Result<()> {
        self.inner.close()
    }

    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }
}
