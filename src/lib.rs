//! girok (기록, "record"): a durable, segmented commit log served over gRPC.
//!
//! A server holds many named logs. Producers append records to a log and get back dense offsets;
//! consumers read them by offset or tail the log live. The storage engine is synchronous, knows
//! nothing of gRPC, and can be embedded on its own, one log or a registry of named ones.
//!
//! # Embedding the log
//!
//! ```
//! use bytes::Bytes;
//! use girok::storage::{CommitLog, DiskConfig, DiskLog, Error};
//!
//! let dir = tempfile::tempdir()?;
//! let log = DiskLog::open(dir.path(), DiskConfig::default())?;
//! assert_eq!(log.append(Bytes::from_static(b"hello"))?, 0);
//! assert_eq!(log.append_batch(&[Bytes::from_static(b"a"), Bytes::new()])?, 1..3);
//! assert_eq!(log.read(0)?.value, "hello");
//! assert!(matches!(log.read(3), Err(Error::OffsetOutOfRange { offset: 3, lowest: 0, next: 3 })));
//! log.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! Dependencies point one way: the binaries → [`server`] and [`client`] → [`api`], [`logs`] →
//! [`storage`]. Storage imports nothing else of the crate, the registry nothing but storage; the
//! client never imports the server.
//!
//! - [`storage`]: the storage layer: bytes, offsets and its own [`storage::Error`].
//!   [`storage::CommitLog`] is the contract every log keeps; [`storage::MemoryLog`] keeps it in
//!   memory and [`storage::DiskLog`] on disk.
//!   - `storage::config`: [`storage::LogConfig`], the record rules every log keeps.
//!   - `storage::locks`: the one lock-poisoning policy (a poisoned lock turns a log read-only).
//!   - `storage::events`: [`storage::StorageEvents`], how storage reports syncs and appended
//!     batches to its embedder (the server's metrics) without importing a metrics crate.
//!   - `storage::retention`: [`storage::Retention`], the rules by which a log deletes its oldest
//!     segments.
//!   - `storage::disk`: the segmented on-disk log, one idea per file: `config` (segment sizes,
//!     [`storage::FsyncPolicy`]), `group` ([`storage::DiskGroup`]: the sealed-file cache and the
//!     syncer the logs of one server share), `commit` (the commit point and group commit),
//!     `syncer` (a group's interval sync thread), `sealed` (the bounded cache of sealed segments'
//!     open files), `retention` (rolling aged segments, deleting sealed ones outside the lock),
//!     `free_space` (the group's free-space floor), `dir` (the directory's lock, file names and listing), `segment`
//!     (a store + index pair), `recovery` (opening segments after a crash), `store` (checksummed
//!     frames), `index` (the memory-mapped index: the only `unsafe` in the crate), `scan` (the
//!     forward frame scan that tells a torn tail from damage in the middle), `fs` (the file seam
//!     a test backend replaces) and `verify` (the offline check behind `girok verify`).
//! - [`logs`]: named logs. [`logs::Logs`] is the registry of a server's logs: finding, creating
//!   (also on first produce), updating and deleting them; `name` (the naming rules and
//!   `default`), `settings` ([`logs::LogSettings`] and what is stored with a log), `catalog`
//!   (where logs are kept: a data directory or memory), `data_dir` (one directory per log, with
//!   crash-atomic create and delete, and the single-log layout moved into `logs/default/`), `fs`
//!   (the directory seam a test replaces), `parallel` (opening and closing many logs) and
//!   `retention` (the one thread that applies every log's retention).
//! - [`api`]: the generated gRPC types, server trait and client of package `log.v1`, and
//!   [`api::errors`], the error-detail vocabulary server and client share.
//! - [`server`]: [`server::run`] serves the `Log` service over a registry with health,
//!   reflection, explicit HTTP/2 limits and graceful shutdown; `router` puts the services
//!   together, `rpc` holds the RPCs (`admin` those of named logs), `handle` is the one async door
//!   to the registry and storage, `wire` converts messages, `status` maps errors,
//!   `drain` signals shutdown, and [`server::ServerConfig`] holds every limit.
//!   `metrics` ([`server::Metrics`]: the Prometheus series, the storage event listener) and
//!   `ready` ([`server::Readiness`]: starting, serving, draining) are what the admin listener reads.
//! - [`cluster`]: the replicated cluster on openraft (issue 11), being built: so far
//!   [`cluster::wal`], the Raft WAL storage engine (entries with terms, group-commit durability
//!   callbacks, crash-safe suffix truncation, purge with a persisted start, a crash-safe metadata
//!   file). The openraft log-storage adapter, state machine, network and membership come next.
//! - [`admin`]: the admin HTTP listener: `/metrics`, `/healthz`, `/readyz`.
//! - [`client`]: a small typed client over the generated one, decoding error details; its
//!   [`client::Connect`] options reach a server over TLS (a CA, a client certificate, a token).
//! - [`units`]: sizes (`128MiB`) and durations (`100ms`, `7d`) for flags and environment.
//! - `src/bin/girok-server.rs`: the server binary (flags → [`server::run`]).
//! - `src/bin/girok.rs`: the command-line client and `girok verify`.
//!
//! # Features
//!
//! `internals` makes the test seams public (the file seam, `DiskLog::open_with`, the store and
//! index modules, the registry's directory seam and `Logs::open_with`, and
//! `Metrics::instrument_call`, the router's per-call work alone) for the crate's own tests,
//! benches and fuzz targets. A normal build has none.

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod api;
pub mod client;
pub mod cluster;
pub mod logs;
pub mod server;
pub mod storage;
pub mod units;

pub use storage::Record;

/// The data directory the server and `girok verify` use when none is given: `data`, relative to
/// the working directory.
pub const DEFAULT_DATA_DIR: &str = "data";
