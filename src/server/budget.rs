//! [`Budget`]: the server's one memory budget for buffered records, shared by every
//! ProduceStream queue and every ConsumeStream read batch.
//!
//! A budget is a stack of byte semaphores, innermost first: a stream's own cap, its
//! connection's share, and the server-wide total (`--max-buffered-bytes`). A [`Reservation`]
//! holds bytes of every level at once, taken innermost first (always in the same order, so two
//! reservations never wait on each other in a cycle), and gives them back as the records it
//! covers leave the server. When a level is spent, reservations wait: a ProduceStream stops
//! reading from its client (HTTP/2 flow control then holds the client back) and a ConsumeStream
//! stops reading from the log. Nothing is dropped and no call fails for it. The connection's
//! share keeps one connection from spending what other connections need.
//!
//! Request messages are counted as they leave HTTP/2 for the server: [`BudgetedBody`] reserves
//! each gRPC message whole, from its length prefix, before handing any of its bytes on, into the
//! request's [`Intake`]; a ProduceStream moves a record's bytes from the intake to its queue, and
//! a unary call holds its intake until it answers. So every request message in the process is
//! counted, and an idle stream holds nothing.
//!
//! What the budget does not count, and what bounds it instead: the HTTP/2 buffers of each
//! connection (at most its receive window, and hyper's send buffer per stream), and the few
//! bytes of framing around each message.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A stack of byte limits. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    /// Innermost first; each with the bytes it holds in all.
    levels: Vec<(Arc<Semaphore>, usize)>,
}

impl Budget {
    /// The server-wide budget of `total` bytes.
    pub(crate) fn new(total: usize) -> Self {
        Self { levels: vec![level(total)] }
    }

    /// A budget of at most `cap` bytes inside this one (a connection's share, a stream's cap).
    pub(crate) fn within(&self, cap: usize) -> Self {
        let mut levels = Vec::with_capacity(self.levels.len() + 1);
        levels.push(level(cap));
        levels.extend(self.levels.iter().cloned());
        Self { levels }
    }

    /// The most a single reservation can hold: the smallest level.
    fn largest(&self) -> usize {
        self.levels.iter().map(|(_, total)| *total).min().unwrap_or(0)
    }

    /// Waits until `bytes` are free at every level and holds them. A request above the smallest
    /// level is clamped to it, so that one record larger than a share still gets through, alone.
    pub(crate) async fn reserve(&self, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.largest());
        let mut permits = Vec::with_capacity(self.levels.len());
        for (semaphore, _) in &self.levels {
            // `bytes` fits in u32: every level was clamped to it.
            let permit = Arc::clone(semaphore).acquire_many_owned(bytes as u32).await;
            permits.push(permit.expect("budget semaphores are never closed"));
        }
        Reservation { permits, bytes }
    }
}

impl Budget {
    /// [`reserve`](Self::reserve) as a future that owns its budget.
    async fn reserve_owned(self, bytes: usize) -> Reservation {
        self.reserve(bytes).await
    }
}

/// One level of `bytes`, clamped to what a semaphore and a single acquire can hold.
fn level(bytes: usize) -> (Arc<Semaphore>, usize) {
    let bytes = bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    (Arc::new(Semaphore::new(bytes)), bytes)
}

/// Bytes held at every level of a budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    permits: Vec<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Reservation {
    /// Takes up to `bytes` of this reservation into one of their own.
    pub(crate) fn split(&mut self, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.bytes);
        let permits = self.permits.iter_mut().filter_map(|p| p.split(bytes)).collect();
        self.bytes -= bytes;
        Reservation { permits, bytes }
    }

    /// Adds `other` (of the same budget) to this reservation.
    fn merge(&mut self, other: Reservation) {
        for (mine, theirs) in self.permits.iter_mut().zip(other.permits) {
            mine.merge(theirs);
        }
        self.bytes += other.bytes;
    }

    /// Gives back everything above `bytes`.
    pub(crate) fn shrink_to(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            return;
        }
        for permit in &mut self.permits {
            drop(permit.split(self.bytes - bytes));
        }
        self.bytes = bytes;
    }
}

/// The request bytes a body has taken in and that no record holds yet. Shared by the body and
/// the RPC (through the request's extensions); the bytes go back when both are done with it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Intake(Arc<Mutex<Option<Reservation>>>);

impl Intake {
    /// Takes up to `bytes` of what was taken in, for a record that holds them from now on.
    pub(crate) fn take(&self, bytes: usize) -> Option<Reservation> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        held.as_mut().map(|held| held.split(bytes))
    }

    fn add(&self, taken: Reservation) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match held.as_mut() {
            Some(held) => held.merge(taken),
            None => *held = Some(taken),
        }
    }
}

/// A gRPC request body whose messages are counted against a budget before any of their bytes
/// are handed on. The body follows gRPC's framing (a flag byte and a 4-byte big-endian length
/// before each message): at the start of a message it reserves the whole message, and until the
/// reservation is granted it reads no further, so the HTTP/2 stream stops being read and flow
/// control holds the client back. A message is never half counted: bytes of a message already
/// reserved flow on, so no stream waits for budget while holding an unfinished message of its own
/// (which could leave every stream waiting on every other).
pub(crate) struct BudgetedBody<B> {
    inner: B,
    budget: Budget,
    intake: Intake,
    /// Bytes received and not yet handed on.
    pending: Bytes,
    /// The reservation the next message waits for, and its length.
    reserving: Option<(usize, Reserving)>,
    /// Bytes of the current message, reserved, still to come.
    remaining: usize,
    /// The current message's prefix, as far as it has arrived.
    prefix: [u8; GRPC_PREFIX_BYTES],
    prefix_seen: usize,
}

/// A reservation being waited for.
type Reserving = Pin<Box<dyn Future<Output = Reservation> + Send>>;

/// gRPC's message prefix: a compression flag and a big-endian u32 length.
const GRPC_PREFIX_BYTES: usize = 5;

impl<B> BudgetedBody<B> {
    /// `inner`, each message counted against `budget` into `intake`.
    pub(crate) fn new(inner: B, budget: Budget, intake: Intake) -> Self {
        Self {
            inner,
            budget,
            intake,
            pending: Bytes::new(),
            reserving: None,
            remaining: 0,
            prefix: [0; GRPC_PREFIX_BYTES],
            prefix_seen: 0,
        }
    }

    /// Takes from `pending` what can be handed on now: up to the start of a message that has
    /// not been reserved yet, whose reservation it then starts.
    fn next_chunk(&mut self) -> Bytes {
        let mut at = 0;
        while at < self.pending.len() {
            if self.remaining > 0 {
                let n = self.remaining.min(self.pending.len() - at);
                self.remaining -= n;
                at += n;
                continue;
            }
            let n = (GRPC_PREFIX_BYTES - self.prefix_seen).min(self.pending.len() - at);
            self.prefix[self.prefix_seen..self.prefix_seen + n]
                .copy_from_slice(&self.pending[at..at + n]);
            self.prefix_seen += n;
            at += n;
            if self.prefix_seen == GRPC_PREFIX_BYTES {
                self.prefix_seen = 0;
                let length = u32::from_be_bytes(self.prefix[1..].try_into().expect("4 bytes"));
                if length > 0 {
                    let length = length as usize;
                    let reserve = Box::pin(self.budget.clone().reserve_owned(length));
                    self.reserving = Some((length, reserve));
                    break;
                }
            }
        }
        self.pending.split_to(at)
    }
}

impl<B> Body for BudgetedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        loop {
            if let Some((length, reserving)) = this.reserving.as_mut() {
                let reservation = std::task::ready!(reserving.as_mut().poll(cx));
                this.remaining = *length;
                this.reserving = None;
                this.intake.add(reservation);
            }
            if !this.pending.is_empty() {
                let chunk = this.next_chunk();
                if !chunk.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                continue;
            }
            match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.reserving.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_spent_level_makes_reservations_wait_until_bytes_come_back() {
        // The smallest level rules: a reservation waits while it is spent and goes through as
        // soon as another shrinks or drops; a request above it is clamped, never stuck.
        let server = Budget::new(100);
        let connection = server.within(40);
        let mut first = connection.reserve(30).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), connection.reserve(20)).await;
        assert!(waiting.is_err(), "the connection's share was spent");
        first.shrink_to(20);
        let second = tokio::time::timeout(Duration::from_secs(5), connection.reserve(20)).await;
        assert!(second.is_ok(), "shrinking gave bytes back");
        let other = server.within(40);
        let _ = tokio::time::timeout(Duration::from_secs(5), other.reserve(40)).await.unwrap();
        drop((first, second));
        let huge = tokio::time::timeout(Duration::from_secs(5), connection.reserve(1000)).await;
        assert_eq!(huge.unwrap().bytes, 40, "clamped to the smallest level");
    }

    #[tokio::test]
    async fn every_level_is_charged() {
        // A reservation through a connection's share also spends the server's total.
        let server = Budget::new(50);
        let (a, b) = (server.within(40), server.within(40));
        let held = a.reserve(40).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), b.reserve(20)).await;
        assert!(waiting.is_err(), "only 10 bytes of the total were left");
        drop(held);
        assert!(tokio::time::timeout(Duration::from_secs(5), b.reserve(20)).await.is_ok());
    }

    /// A body of `messages` framed as gRPC, split into `chunk`-byte frames.
    fn framed(messages: &[usize], chunk: usize) -> Vec<Bytes> {
        let mut wire = Vec::new();
        for &len in messages {
            wire.push(0u8);
            wire.extend_from_slice(&(len as u32).to_be_bytes());
            wire.extend(std::iter::repeat_n(7u8, len));
        }
        wire.chunks(chunk).map(Bytes::copy_from_slice).collect()
    }

    /// Reads `body` to the end.
    async fn drain_body<B: Body<Data = Bytes> + Unpin>(mut body: B) -> usize
    where
        B::Error: std::fmt::Debug,
    {
        let mut bytes = 0;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            bytes += frame.unwrap().into_data().map_or(0, |d| d.len());
        }
        bytes
    }

    #[tokio::test]
    async fn a_body_reserves_each_message_whole_before_handing_it_on() {
        // Messages split across frames arrive whole and in order, each reserved into the intake;
        // a message the budget cannot hold yet waits, and goes on once the intake gives back.
        let frames = framed(&[10, 0, 30, 20], 7);
        let total: usize = frames.iter().map(Bytes::len).sum();
        let inner = http_body_util::StreamBody::new(futures_util::stream::iter(
            frames.into_iter().map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b))),
        ));
        let budget = Budget::new(50);
        let intake = Intake::default();
        let body = BudgetedBody::new(inner, budget.clone(), intake.clone());
        let reading = tokio::spawn(drain_body(body));
        // 10 + 30 fit; the 20-byte message waits for bytes to come back.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!reading.is_finished(), "the last message was handed on unreserved");
        let first = intake.take(10).expect("the first message is in the intake");
        drop(first);
        let read = tokio::time::timeout(Duration::from_secs(5), reading).await.unwrap().unwrap();
        assert_eq!(read, total);
        assert_eq!(intake.take(usize::MAX).map(|r| r.bytes), Some(50), "30 + 20 still held");
    }
}
