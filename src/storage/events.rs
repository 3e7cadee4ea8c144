//! [`StorageEvents`]: how storage tells its embedder what happened (a sync and how long it took,
//! an appended batch and its size) without importing a metrics crate. The server implements it
//! and turns events into metrics; everyone else gets [`NoEvents`].
//!
//! Events are reported on the thread that did the work, inside storage calls but with no lock of
//! the log held: an implementation must be cheap (an atomic add, a histogram's short lock), must
//! never block for long, and must not call back into the log.

use std::fmt::Debug;
use std::time::Duration;

/// A listener for storage events. Every method has a no-op default, so an implementation picks
/// what it needs.
pub trait StorageEvents: Send + Sync + Debug + 'static {
    /// An `fdatasync` of a log's active segment finished (successfully or not) after `took`.
    fn on_fsync(&self, _took: Duration) {}

    /// An append of `records` records (one batch, written at once) was accepted.
    fn on_append_batch(&self, _records: usize) {}
}

/// The listener that ignores everything: the default of a [`DiskGroup`](super::DiskGroup).
#[derive(Debug, Default)]
pub struct NoEvents;

impl StorageEvents for NoEvents {}
