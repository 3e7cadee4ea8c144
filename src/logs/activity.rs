//! [`Activity`]: what has been done to one log since it was opened — records and bytes
//! appended, records read, segments deleted by retention. Plain atomics kept on the log's entry,
//! so counting costs no lookup and no lock shared between logs; the metrics read them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one log's activity since it was opened.
#[derive(Debug, Default)]
pub struct Activity {
    append_records: AtomicU64,
    append_bytes: AtomicU64,
    read_records: AtomicU64,
    retention_deleted_segments: AtomicU64,
}

impl Activity {
    /// Counts `records` appended, `bytes` of values in all.
    pub fn appended(&self, records: u64, bytes: u64) {
        self.append_records.fetch_add(records, Ordering::Relaxed);
        self.append_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts `records` read.
    pub fn read(&self, records: u64) {
        self.read_records.fetch_add(records, Ordering::Relaxed);
    }

    /// Counts `segments` deleted by retention.
    pub fn retention_deleted(&self, segments: u64) {
        self.retention_deleted_segments.fetch_add(segments, Ordering::Relaxed);
    }

    /// Records appended so far.
    pub fn append_records(&self) -> u64 {
        self.append_records.load(Ordering::Relaxed)
    }

    /// Bytes of values appended so far.
    pub fn append_bytes(&self) -> u64 {
        self.append_bytes.load(Ordering::Relaxed)
    }

    /// Records read so far.
    pub fn read_records(&self) -> u64 {
        self.read_records.load(Ordering::Relaxed)
    }

    /// Segments deleted by retention so far.
    pub fn retention_deleted_segments(&self) -> u64 {
        self.retention_deleted_segments.load(Ordering::Relaxed)
    }
}
