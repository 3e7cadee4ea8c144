//! Group commit: the WAL's syncer thread, which completes durability callbacks.
//!
//! [`Wal::flush_then`](super::Wal::flush_then) queues a callback after the entries it covers
//! were written. The thread takes every callback queued so far, fdatasyncs the active segment
//! once (outside the WAL's lock, so appends go on meanwhile), and completes them all with the
//! outcome: one sync covers every append before it. A sealed segment was synced when the next
//! one was created, so syncing the active one covers everything. Dropping the syncer lets the
//! thread finish the callbacks already queued and joins it.

use std::io;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::error::WalError;

/// What a flush completes: called once, with `Ok` only when everything appended before the flush
/// was requested is durable.
pub type OnDurable = Box<dyn FnOnce(io::Result<()>) + Send>;

/// The running thread.
#[derive(Debug)]
pub(super) struct Syncer {
    queue: Option<mpsc::Sender<OnDurable>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread; `sync` makes everything written so far durable.
    pub(super) fn start(sync: impl Fn() -> io::Result<()> + Send + 'static) -> io::Result<Self> {
        let (queue, waiting) = mpsc::channel::<OnDurable>();
        let thread =
            std::thread::Builder::new().name("girok-wal-sync".into()).spawn(move || {
                while let Ok(first) = waiting.recv() {
                    let mut group = vec![first];
                    group.extend(waiting.try_iter());
                    let outcome = sync();
                    for done in group {
                        done(match &outcome {
                            Ok(()) => Ok(()),
                            Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
                        });
                    }
                }
            })?;
        Ok(Self { queue: Some(queue), thread: Some(thread) })
    }

    /// Queues `done` behind everything written so far. Once the thread is gone it is completed
    /// at once with an error.
    pub(super) fn request(&self, done: OnDurable) {
        let Some(queue) = &self.queue else {
            return done(Err(io::Error::other(WalError::Closed)));
        };
        if let Err(mpsc::SendError(done)) = queue.send(done) {
            done(Err(io::Error::other(WalError::Closed)));
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // A panic in a callback ended the thread; its callbacks are gone, nothing to add.
            let _ = thread.join();
        }
    }
}
