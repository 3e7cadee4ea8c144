//! [`Readiness`]: where the server is in its life, as `/readyz` reports it. Starting until
//! [`run`](super::run) serves (every log open and recovered by then), serving, then draining
//! from the shutdown signal on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// A phase of the server's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The logs are opening, or the server has not started yet.
    Starting,
    /// The server accepts calls.
    Serving,
    /// The server drains its calls and accepts no more.
    Draining,
}

/// The server's phase, shared by the server (which moves it) and the admin listener (which
/// reports it). Cheap to clone: clones share the phase.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicU8>);

impl Readiness {
    /// The phase now.
    pub fn phase(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    /// Whether the server accepts calls now.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Serving
    }

    pub(crate) fn set(&self, phase: Phase) {
        let value = match phase {
            Phase::Starting => 0,
            Phase::Serving => 1,
            Phase::Draining => 2,
        };
        self.0.store(value, Ordering::Release);
    }
}
