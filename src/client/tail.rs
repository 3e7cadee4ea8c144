//! [`ClusterRecords`]: a tail of one log of a cluster that survives its server going away.
//!
//! It remembers the offset it must deliver next (the last delivered + 1). When the stream
//! fails as a lost node does (a connection refused or broken, the node's own `UNAVAILABLE`,
//! such as a shutdown), it opens a new one from that offset on another server, chosen as reads
//! are (round-robin), and drops any record below that offset should one be replayed. So every
//! record is delivered once, in offset order, without gaps, across any number of moves.
//!
//! It gives up, returning the last failure, when no record has come for a whole
//! [`Retry::budget`](super::Retry::budget) of failed attempts to resume, waiting between them as
//! [`Retry`](super::Retry) says. Any other failure (the log deleted, an offset below the log's
//! start) ends it at once.

use std::time::{Duration, Instant};

use super::cluster::ClusterLog;
use super::{ClientError, Records, Result, retry};
use crate::storage::Record;

/// The records of a cluster tail, from [`ClusterLog::consume_stream`].
#[derive(Debug)]
pub struct ClusterRecords {
    log: ClusterLog,
    /// The offset the next delivered record has: the last delivered + 1.
    next: u64,
    /// The open stream; `None` after it failed, until reopened.
    current: Option<Records>,
    /// Since when resuming has been failing with no record delivered; `None` while records
    /// come.
    failing_since: Option<Instant>,
    /// The wait before the next attempt to resume.
    backoff: Duration,
}

impl ClusterRecords {
    pub(super) fn new(log: ClusterLog, offset: u64) -> Self {
        let backoff = log.retry().initial_backoff;
        Self { log, next: offset, current: None, failing_since: None, backoff }
    }

    /// Opens the stream at `next` (within the budget, as any read).
    pub(super) async fn open(&mut self) -> Result<()> {
        self.current = Some(self.log.open_tail(self.next).await?);
        Ok(())
    }

    /// The offset the next record will have.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// The next record; `None` if a server ended the stream with OK.
    pub async fn next(&mut self) -> Result<Option<Record>> {
        loop {
            let records = match &mut self.current {
                Some(records) => records,
                None => {
                    if let Err(err) = self.open().await {
                        self.wait_or_give_up(err).await?;
                        continue;
                    }
                    self.current.as_mut().expect("just opened")
                }
            };
            match records.next().await {
                Ok(Some(record)) if record.offset < self.next => continue,
                Ok(Some(record)) => {
                    self.next = record.offset + 1;
                    self.failing_since = None;
                    self.backoff = self.log.retry().initial_backoff;
                    return Ok(Some(record));
                }
                Ok(None) => return Ok(None),
                Err(err) if resumable(&err) => {
                    self.current = None;
                    self.wait_or_give_up(err).await?;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Waits before the next attempt to resume, or answers `err` when the budget is spent.
    async fn wait_or_give_up(&mut self, err: ClientError) -> Result<()> {
        if !resumable(&err) {
            return Err(err);
        }
        let retry = *self.log.retry();
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        if since.elapsed() + self.backoff >= retry.budget {
            return Err(err);
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = retry.next_backoff(self.backoff);
        Ok(())
    }
}

/// Whether a tail that failed with `err` may resume elsewhere.
fn resumable(err: &ClientError) -> bool {
    retry::unreachable(err)
}
