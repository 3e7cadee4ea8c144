//! [`LogHandle`]: the one async handle through which every RPC reaches storage.
//!
//! Storage is synchronous (a sync under `--fsync=always` takes a disk flush), so appends and
//! reads run on tokio's blocking pool and come back as `Result<_, Status>`: no runtime worker
//! ever waits on the disk, and no handler maps a storage error itself. This is the single place
//! where later work attaches: finding a log by name, timing calls for metrics, proposing writes
//! through Raft.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use tonic::Status;

use super::status;
use crate::storage::{self, CommitLog, Record};

/// A cheap, cloneable handle over a log.
#[derive(Clone)]
pub(crate) struct LogHandle {
    log: Arc<dyn CommitLog>,
}

impl LogHandle {
    pub(crate) fn new(log: Arc<dyn CommitLog>) -> Self {
        Self { log }
    }

    /// Appends one record; answers its offset once it is committed.
    pub(crate) async fn append(&self, value: Bytes) -> Result<u64, Status> {
        self.blocking(move |log| log.append(value)).await
    }

    /// Appends `values` as one atomic batch; answers their offsets once committed.
    pub(crate) async fn append_batch(&self, values: Vec<Bytes>) -> Result<Range<u64>, Status> {
        let expected = values.len() as u64;
        let range = self.blocking(move |log| log.append_batch(&values)).await?;
        if range.end - range.start != expected {
            tracing::error!(?range, expected, "append_batch returned the wrong number of offsets");
            return Err(Status::internal("internal error"));
        }
        Ok(range)
    }

    /// Reads the record at `offset`.
    pub(crate) async fn read(&self, offset: u64) -> Result<Record, Status> {
        self.blocking(move |log| log.read(offset)).await
    }

    /// Reads a batch of records from `offset` (see [`CommitLog::read_batch`]).
    pub(crate) async fn read_batch(
        &self,
        offset: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, Status> {
        self.blocking(move |log| log.read_batch(offset, max_records, max_bytes)).await
    }

    /// The committed range `[lowest, next)`.
    pub(crate) async fn offsets(&self) -> Result<Range<u64>, Status> {
        self.blocking(|log| Ok(log.lowest_offset()..log.next_offset())).await
    }

    /// A receiver of the commit point, for tails. Never blocks.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.log.subscribe()
    }

    /// The largest value an append accepts.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.log.max_record_bytes()
    }

    /// Runs a synchronous storage call on the blocking pool and maps its error to a status.
    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&dyn CommitLog) -> storage::Result<T> + Send + 'static,
    {
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || f(log.as_ref()))
            .await
            .map_err(status::task_failed)?
            .map_err(Status::from)
    }
}
