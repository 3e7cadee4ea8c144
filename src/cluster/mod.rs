//! The replicated cluster (issue 11), built on openraft: the only module that will import it.
//!
//! What is here so far:
//! - [`wal`]: the Raft WAL storage engine — a segmented log of `(index, term, payload)` entries
//!   with group-commit durability callbacks, crash-safe suffix truncation, an exact purge with a
//!   persisted logical start, and a small crash-safe metadata file (vote, committed, node and
//!   cluster identity). It knows nothing of openraft yet.
//!
//! What is coming: the adapter implementing openraft's `RaftLogStorage`/`RaftLogReader` over
//! [`wal::Wal`], the state machine over girok's named logs (offsets assigned at apply, replay
//! idempotent by offset, checkpoints as snapshots), the internal Raft gRPC service and its
//! network client, and membership (bootstrap, join, add/remove servers).

pub mod wal;
