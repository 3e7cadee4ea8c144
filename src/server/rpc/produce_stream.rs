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
use crate::server::handle::LogHandle;
use crate::server::status;
use crate::server::wire::record_value;

/// One request taken off the wire: a value to append, or the status that ends the stream. It
/// holds its share of the queue budget until it is appended.
struct Queued {
    item: Result<Bytes, Status>,
    permit: Option<Reservation>,
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
    log: LogHandle,
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
    log: LogHandle,
    requests: Streaming<ProduceRequest>,
    config: &ServerConfig,
    drain: Drain,
    budget: Budget,
) -> impl Stream<Item = Result<ProduceResponse, Status>> + Send + 'static {
    let (tx, queue) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_requests(requests, tx, budget, log.max_record_bytes()));
    let state = Pipeline {
        log,
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
    max_record_bytes: usize,
) {
    loop {
        let request = match requests.message().await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(err) => {
                let _ = tx.send(Queued { item: Err(status::rewrite_transport(err)), permit: None });
                return;
            }
        };
        // The request's size on the wire: the message and gRPC's 5-byte prefix.
        let permit = Some(budget.reserve(prost::Message::encoded_len(&request) + 5).await);
        let item = record_value(request, max_record_bytes);
        let failed = item.is_err();
        if tx.send(Queued { item, permit }).is_err() || failed {
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
        let first = tokio::select! {
            biased;
            () = self.drain.wait() => {
                self.failure = Some(status::draining());
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
        while let Some(Queued { item, permit }) = next.take() {
            match item {
                Ok(value) => {
                    bytes += value.len();
                    values.push(value);
                    if let Some(permit) = permit {
                        match held.as_mut() {
                            Some(held) => held.merge(permit),
                            None => held = Some(permit),
                        }
                    }
                }
                Err(status) => {
                    self.failure = Some(status);
                    break;
                }
            }
            if values.len() < self.batch_records && bytes < self.batch_bytes {
                next = self.queue.try_recv().ok();
            }
        }
        if values.is_empty() {
            return;
        }
        match self.log.append_batch(values).await {
            Ok(range) => self.acks = range,
            // The batch appended nothing: its failure comes before any later request's.
            Err(status) => self.failure = Some(status),
        }
        drop(held);
    }
}
