//! [`Syncer`]: the background thread of [`FsyncPolicy::Interval`](super::FsyncPolicy::Interval),
//! which syncs the log every interval.
//!
//! While it syncs, the thread holds the log's shared state (and with it the data directory's
//! lock), so dropping a log stops the thread and waits for it: otherwise a reopen right after a
//! drop could find the directory still locked.

use std::sync::mpsc;
use std::time::Duration;

use crate::storage::Result;

/// A running syncer thread; dropping it stops the thread and joins it.
#[derive(Debug)]
pub(super) struct Syncer {
    /// Dropping this tells the thread to stop.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    /// Starts a thread that calls `tick` every `every` until `tick` returns `false` or the syncer
    /// is dropped.
    pub(super) fn spawn(every: Duration, tick: impl Fn() -> bool + Send + 'static) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("girok-syncer".into()).spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if !tick() {
                    break;
                }
            }
        })?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
