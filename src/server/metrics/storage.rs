//! The server's [`StorageEvents`] listener: storage's syncs and appended batches, observed into
//! `girok_fsync_seconds` and `girok_append_batch_records`.

use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;

use crate::storage::StorageEvents;

/// `girok_fsync_seconds` buckets: 100 µs to about 3 s, doubling.
pub(super) const FSYNC_BUCKETS: [f64; 16] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
    0.4096, 0.8192, 1.6384, 3.2768,
];

/// `girok_append_batch_records` buckets: 1 to 4,096 records (a ProduceStream batch's most by
/// default), doubling.
pub(super) const BATCH_BUCKETS: [f64; 13] =
    [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0];

/// Observes storage events into two histograms; each observation is a few atomic adds.
#[derive(Debug)]
pub(super) struct Events {
    pub(super) fsync_seconds: Histogram,
    pub(super) append_batch_records: Histogram,
}

impl StorageEvents for Events {
    fn on_fsync(&self, took: Duration) {
        self.fsync_seconds.observe(took.as_secs_f64());
    }

    fn on_append_batch(&self, records: usize) {
        self.append_batch_records.observe(records as f64);
    }
}
