//! [`Drain`]: the server-wide "we are shutting down" signal that endless streams watch, so they
//! end with `UNAVAILABLE` instead of holding the server open.

use tokio::sync::watch;

/// A cheap, cloneable view of the drain flag. `run` owns the sender; it flips to `true` once on
/// the shutdown signal. A dropped sender counts as draining, so nothing outlives the server.
#[derive(Clone, Debug)]
pub(crate) struct Drain(watch::Receiver<bool>);

impl Drain {
    pub(crate) fn new(rx: watch::Receiver<bool>) -> Self {
        Self(rx)
    }

    /// Whether the server has started to drain.
    pub(crate) fn is_draining(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once the server drains. Cancel-safe.
    pub(crate) async fn wait(&mut self) {
        let _ = self.0.wait_for(|draining| *draining).await;
    }
}
