//! ConsumeStream: replay from an offset, then deliver records as the commit point advances.
//!
//! The response stream is pull-based: it reads the next batch from the log only when the HTTP/2
//! connection asks for more, so a stream buffers at most one read batch (plus h2's send buffer)
//! and a slow consumer back-pressures the reads. The batch is held within the server's memory
//! budget: reserved before the read, shrunk to what was read, and given back once its last
//! record leaves; while the budget is spent, the read waits. A log deleted under the stream ends
//! it with `NOT_FOUND`; a reload of the security files that withdraws the caller's permission
//! ends it with `UNAUTHENTICATED` or `PERMISSION_DENIED` before another record leaves. Caught up,
//! it waits on the log's commit-point
//! `watch` (no polling, no CPU while idle). The stream owns no task: when the client goes away,
//! hyper drops it and everything it holds is freed at once.

use std::collections::VecDeque;

use futures_util::Stream;
use tokio::sync::watch;
use tonic::Status;

use crate::api::v1::ConsumeResponse;
use crate::server::budget::{Budget, Reservation};
use crate::server::config::ServerConfig;
use crate::server::drain::Drain;
use crate::server::handle::LogHandle;
use crate::server::security::Guard;
use crate::server::status;
use crate::server::wire::to_response;
use crate::storage::Record;

/// The state of one tailing stream.
struct Tail {
    log: LogHandle,
    /// The commit point; subscribed before the first read, so no append can slip between a read
    /// that found nothing and the wait.
    commit: watch::Receiver<u64>,
    /// Turns `true` when the log is deleted: the stream then ends with `NOT_FOUND`.
    deleted: watch::Receiver<bool>,
    /// The next offset to read from the log.
    next: u64,
    /// Records read but not yet handed to the connection.
    buffered: VecDeque<Record>,
    /// The budget the buffered records are held in, and what they hold of it.
    budget: Budget,
    held: Option<Reservation>,
    /// The largest record the log can hold, so a read's reservation covers it.
    max_record_bytes: usize,
    drain: Drain,
    batch_records: usize,
    batch_bytes: usize,
    /// The encoding limit: a larger record ends the stream with `RESOURCE_EXHAUSTED`.
    max_message: usize,
    /// Ends the stream once a reload withdraws the caller's permission.
    guard: Guard,
    /// Set once a terminal status has been yielded.
    done: bool,
}

/// The response stream of a ConsumeStream call starting at `offset`.
pub(super) fn tail(
    log: LogHandle,
    guard: Guard,
    offset: u64,
    config: &ServerConfig,
    drain: Drain,
    budget: Budget,
) -> impl Stream<Item = Result<ConsumeResponse, Status>> + Send + 'static {
    let state = Tail {
        commit: log.subscribe(),
        deleted: log.watch_deleted(),
        max_record_bytes: log.max_record_bytes(),
        log,
        next: offset,
        buffered: VecDeque::new(),
        budget,
        held: None,
        drain,
        batch_records: config.consume_batch_records.max(1),
        batch_bytes: config.consume_batch_bytes,
        max_message: config.max_encoding_message_size,
        guard,
        done: false,
    };
    futures_util::stream::unfold(state, |mut tail| async move {
        let item = tail.next_item().await?;
        Some((item, tail))
    })
}

impl Tail {
    /// The next message of the stream, or `None` after a terminal status.
    async fn next_item(&mut self) -> Option<Result<ConsumeResponse, Status>> {
        if self.done {
            return None;
        }
        match self.next_record().await.and_then(|record| to_response(record, self.max_message)) {
            Ok(response) => Some(Ok(response)),
            Err(status) => {
                self.done = true;
                Some(Err(status))
            }
        }
    }

    async fn next_record(&mut self) -> Result<Record, Status> {
        loop {
            if self.drain.is_draining() {
                return Err(status::draining());
            }
            if let Some(not_found) = self.log.deleted() {
                return Err(not_found);
            }
            self.guard.check()?;
            if let Some(record) = self.buffered.pop_front() {
                self.release();
                return Ok(record);
            }
            let commit = *self.commit.borrow_and_update();
            // An empty batch below the commit point breaks the log's contract; waiting for the next
            // commit (rather than spinning) is the safe answer.
            if self.next < commit && self.read_batch().await? > 0 {
                continue;
            }
            tokio::select! {
                changed = self.commit.changed() => {
                    // The sender goes when the log closes: it was deleted, or the server is
                    // shutting down.
                    if changed.is_err() {
                        return Err(self.log.deleted().unwrap_or_else(status::draining));
                    }
                }
                _ = self.deleted.wait_for(|deleted| *deleted) => {}
                () = self.drain.wait() => return Err(status::draining()),
                revoked = self.guard.revoked() => return Err(revoked),
            }
        }
    }

    /// Reads the records from `next` on. Below the lowest offset (at the start, or once
    /// retention overtakes a slow reader) the read fails with `OUT_OF_RANGE`.
    /// Returns how many records it buffered.
    async fn read_batch(&mut self) -> Result<usize, Status> {
        let (offset, records, bytes) = (self.next, self.batch_records, self.batch_bytes);
        // The most a batch can hold: its byte limit, passed by up to one record.
        let most = bytes + self.max_record_bytes + records * RECORD_OVERHEAD;
        let mut held = self.budget.reserve(most).await;
        let batch = self.log.read_batch(offset, records, bytes).await?;
        if let Some(last) = batch.last() {
            self.next = last.offset + 1;
        }
        held.shrink_to(batch.iter().map(charge).sum());
        self.held = Some(held);
        let count = batch.len();
        self.buffered.extend(batch);
        Ok(count)
    }

    /// Gives back the batch's budget once its last record leaves for the connection: once per
    /// batch, not per record, because every give-back takes each level's lock.
    fn release(&mut self) {
        if self.buffered.is_empty() {
            self.held = None;
        }
    }
}

/// Per-record overhead charged against the budget, so that even empty records are bounded.
const RECORD_OVERHEAD: usize = 64;

/// What a buffered record is charged against the budget.
fn charge(record: &Record) -> usize {
    record.value.len() + RECORD_OVERHEAD
}
