//! ProduceStream: pipelined appends with one ack per record, in request order.
//!
//! A reader task drains the request stream into a queue bounded in bytes, so HTTP/2 frames keep
//! being read and their window refunded while a batch syncs. The bound is the server's memory
//! budget, within the stream's own cap: each request holds a reservation of its size from when
//! it is decoded until its record is appended (see `server::budget`). The
//! response stream appends whatever has queued as one `append_batch` (one sync under `always`),
//! then yields one ack per record. It is pull-based: acks the client does not read stop the
//! appends, which fill the queue, which stops the reads — back-pressure end to end.
//!
//! The stream's log is the one its first request names (empty: `default`), found or
//! auto-created before anything is queued; later requests may leave `log` empty or repeat that
//! name, and one naming another log is an invalid request. A log deleted under the stream ends
//! it with `NOT_FOUND`, idle or not.
//!
//! Errors: an invalid request ends the stream after the records before it are appended and acked;
//! a failed batch appends nothing (all-or-nothing), so the stream ends with the status right after
//! the acks of the earlier batches. Half-close: the rest is appended and acked, then OK.
//! Drain: the stream ends with `UNAVAILABLE` between batches; everything appended is acked first.

use std::ops::Range;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use crate::api::v1::{ProduceRequest, ProduceResponse};
use crate::server::budget::{Budget, Reservation};
use crate::server::config::ServerConfig;
use crate::server::drain::Drain;
use crate::server::handle::{LogHandle, Registry};
use crate::server::security::Caller;
use crate::server::status;
use crate::server::wire::record_value;

/// What the reader passes on, in request order.
enum Queued {
    /// The stream's log, found from the first request; before any record.
    Log(LogHandle),
    /// A value to append, holding its share of the queue budget until it is appended.
    Record(Bytes, Reservation),
    /// The status that ends the stream.
    Failed(Status),
}

/// Aborts the reader task when the response stream is dropped (the client went away).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The state of one ProduceStream call.
struct Pipeline {
    /// Known once the first request has been read.
    log: Option<LogHandle>,
    /// Turns `true` when `log` is deleted.
    deleted: Option<tokio::sync::watch::Receiver<bool>>,
    queue: mpsc::UnboundedReceiver<Queued>,
    /// Offsets appended but not yet acked.
    acks: Range<u64>,
    /// The status to end with once `acks` is empty.
    failure: Option<Status>,
    drain: Drain,
    batch_records: usize,
    batch_bytes: usize,
    done: bool,
    _reader: AbortOnDrop,
}

/// The response stream of a ProduceStream call over `requests`.
pub(super) fn pipeline(
    registry: Registry,
    caller: Caller,
    requests: Streaming<ProduceRequest>,
    config: &ServerConfig,
    drain: Drain,
    budget: Budget,
) -> impl Stream<Item = Result<ProduceResponse, Status>> + Send + 'static {
    let (tx, queue) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_requests(requests, tx, budget, registry, caller));
    let state = Pipeline {
        log: None,
        deleted: None,
        queue,
        acks: 0..0,
        failure: None,
        drain,
        batch_records: config.produce_batch_records.max(1),
        batch_bytes: config.produce_batch_bytes,
        done: false,
        _reader: AbortOnDrop(reader),
    };
    futures_util::stream::unfold(state, |mut pipeline| async move {
        let item = pipeline.next_item().await?;
        Some((item, pipeline))
    })
}

/// The reader task: moves requests into the queue as fast as the budget allows: each decoded
/// request waits for a reservation of its size before it is queued, and the reader reads no
/// further meanwhile (so HTTP/2 flow control holds the client back). Ends after the first error
/// (pushed as the last item) or at the client's half-close (the queue closes).
async fn read_requests(
    mut requests: Streaming<ProduceRequest>,
    tx: mpsc::UnboundedSender<Queued>,
    budget: Budget,
    registry: Registry,
    caller: Caller,
) {
    let max_record_bytes = registry.max_record_bytes();
    let mut log: Option<String> = None;
    loop {
        let mut request = match requests.message().await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(err) => {
                let _ = tx.send(Queued::Failed(status::rewrite_transport(err)));
                return;
            }
        };
        // The request's size on the wire: the message and gRPC's 5-byte prefix.
        let permit = budget.reserve(prost::Message::encoded_len(&request) + 5).await;
        let named = std::mem::take(&mut request.log);
        let item = record_value(request, max_record_bytes).and_then(|value| match &log {
            Some(name) if !named.is_empty() && named != *name => Err(status::bad_request(
                "log",
                format!("this stream appends to {name:?}; a request named {named:?}"),
            )),
            _ => Ok(value),
        });
        let value = match item {
            Ok(value) => value,
            Err(status) => {
                let _ = tx.send(Queued::Failed(status));
                return;
            }
        };
        if log.is_none() {
            match registry.find_for_append(&caller, &named).await {
                Ok(handle) => {
                    log = Some(handle.name().to_string());
                    if tx.send(Queued::Log(handle)).is_err() {
                        return;
                    }
                }
                Err(status) => {
                    let _ = tx.send(Queued::Failed(status));
                    return;
                }
            }
        }
        if tx.send(Queued::Record(value, permit)).is_err() {
            return;
        }
    }
}

impl Pipeline {
    /// The next ack, the terminal status, or `None` once the stream is over.
    async fn next_item(&mut self) -> Option<Result<ProduceResponse, Status>> {
        loop {
            if let Some(offset) = self.acks.next() {
                return Some(Ok(ProduceResponse { offset }));
            }
            if let Some(status) = self.failure.take() {
                self.done = true;
                return Some(Err(status));
            }
            if self.done {
                return None;
            }
            self.append_next_batch().await;
        }
    }

    /// Waits for at least one queued request, appends everything queued as one batch, and sets
    /// `acks`, `failure` or `done`.
    async fn append_next_batch(&mut self) {
        let deleted = async {
            match self.deleted.as_mut() {
                Some(deleted) => drop(deleted.wait_for(|deleted| *deleted).await),
                None => std::future::pending().await,
            }
        };
        let first = tokio::select! {
            biased;
            () = self.drain.wait() => {
                self.failure = Some(status::draining());
                return;
            }
            () = deleted => {
                self.failure = self.log.as_ref().and_then(LogHandle::deleted);
                return;
            }
            first = self.queue.recv() => first,
        };
        let Some(first) = first else {
            self.done = true;
            return;
        };
        let mut values = Vec::new();
        // One reservation for the whole batch: giving it back takes each level's lock once.
        let mut held: Option<Reservation> = None;
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(queued) = next.take() {
            match queued {
                Queued::Log(log) => {
                    self.deleted = Some(log.watch_deleted());
                    self.log = Some(log);
                }
                Queued::Record(value, permit) => {
                    bytes += value.len();
                    values.push(value);
                    match held.as_mut() {
                        Some(held) => held.merge(permit),
                        None => held = Some(permit),
                    }
                }
                Queued::Failed(status) => {
                    self.failure = Some(status);
                    break;
                }
            }
            if values.len() < self.batch_records && bytes < self.batch_bytes {
                next = self.queue.try_recv().ok();
            }
        }
        let Some(log) = self.log.as_ref().filter(|_| !values.is_empty()) else { return };
        match log.append_batch(values).await {
            Ok(range) => self.acks = range,
            // The batch appended nothing: its failure comes before any later request's.
            Err(status) => self.failure = Some(status),
        }
        drop(held);
    }
}
