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
//! A ProduceStream reserves each request's size once it is decoded and holds it until the
//! record is appended; a ConsumeStream reserves its read batch before reading. Reserving only
//! once a request is whole is what keeps a connection free of deadlock: a stream that waited
//! for budget with half a message received would hold HTTP/2 connection window that the other
//! streams' messages need to complete, and the budget they hold could never come back.
//!
//! What the budget does not count, and what bounds it instead: the HTTP/2 buffers of each
//! connection (at most its receive window, 16 MiB, and hyper's send buffer per stream), the
//! request each stream waiting for budget has decoded (at most one message per stream), and the
//! decode buffer tonic keeps per stream.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A stack of byte limits. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    /// Innermost first; each with the bytes it holds in all.
    levels: Arc<[(Arc<Semaphore>, usize)]>,
}

impl Budget {
    /// The server-wide budget of `total` bytes.
    pub(crate) fn new(total: usize) -> Self {
        Self { levels: Arc::new([level(total)]) }
    }

    /// A budget of at most `cap` bytes inside this one (a stream's cap).
    pub(crate) fn within(&self, cap: usize) -> Self {
        let levels: Vec<_> =
            std::iter::once(level(cap)).chain(self.levels.iter().cloned()).collect();
        Self { levels: levels.into() }
    }

    /// A connection's share of `share` bytes inside this budget.
    pub(crate) fn connection(&self, share: usize) -> Self {
        self.within(share)
    }

    /// Bytes held now at the outermost level (for the server-wide budget: across the server).
    pub(crate) fn in_use(&self) -> usize {
        self.levels
            .last()
            .map_or(0, |(semaphore, total)| total.saturating_sub(semaphore.available_permits()))
    }

    /// The most a single reservation can hold: the smallest level.
    fn largest(&self) -> usize {
        self.levels.iter().map(|(_, total)| *total).min().unwrap_or(0)
    }

    /// Waits until `bytes` are free at every level and holds them. A request above the smallest
    /// level is clamped to it, so that one record larger than a share still gets through, alone.
    pub(crate) async fn reserve(&self, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.largest());
        // The common case, every level with room, without a future per level.
        if let Some(reservation) = self.try_reserve(bytes) {
            return reservation;
        }
        let mut permits = Vec::with_capacity(self.levels.len());
        for (semaphore, _) in self.levels.iter() {
            // `bytes` fits in u32: every level was clamped to it.
            let permit = Arc::clone(semaphore).acquire_many_owned(bytes as u32).await;
            permits.push(permit.expect("budget semaphores are never closed"));
        }
        Reservation { permits, bytes }
    }
}

impl Budget {
    /// `bytes` of every level if all have them now; otherwise nothing is held.
    fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let mut permits = Vec::with_capacity(self.levels.len());
        for (semaphore, _) in self.levels.iter() {
            permits.push(Arc::clone(semaphore).try_acquire_many_owned(bytes as u32).ok()?);
        }
        Some(Reservation { permits, bytes })
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
    /// Adds `other`, a reservation of the same budget, to this one.
    pub(crate) fn merge(&mut self, other: Reservation) {
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
}
