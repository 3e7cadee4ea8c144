//! girok (기록, "record"): a durable, segmented commit log served over gRPC.
//!
//! Producers append records to an ordered log and get back dense offsets; consumers read them by
//! offset or tail the log live. The storage engine is synchronous, knows nothing of gRPC, and can
//! be embedded on its own.
//!
//! # Embedding the log
//!
//! ```
//! use bytes::Bytes;
//! use girok::log::{CommitLog, DiskLog, Error, LogConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let log = DiskLog::open(dir.path(), LogConfig::default())?;
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
//! - [`log`]: the storage layer. [`log::CommitLog`] is the contract every log keeps;
//!   [`log::DiskLog`] is the segmented on-disk log and [`log::MemoryLog`] the in-memory one.
//!   - `log::disk::file`: the narrow file seam the store writes through (positional writes, sync).
//!   - `log::disk::store`: a segment's store file of checksummed frames.
//!   - `log::disk::index`: a segment's memory-mapped index (the only `unsafe` in the crate).
//!   - `log::disk::segment`: one store + index pair, and its recovery on open.
//!   - `log::disk::scan`: the forward frame scan behind index rebuilds, torn-tail repair and
//!     verify; it tells a torn tail from damage in the middle.
//!   - `log::disk::verify`: the offline scan behind `girok verify`.
//! - [`api`]: the generated gRPC types, server trait and client of package `log.v1`.
//! - [`server`]: [`server::run`], which serves the `Log` service with health, reflection, explicit
//!   HTTP/2 limits and graceful shutdown.
//!   - `server::config`: [`server::ServerConfig`], every limit with its default.
//!   - `server::service`: the unary RPCs and the blocking-pool bridge to storage.
//!   - `server::produce_stream`: pipelined, batched appends with in-order acks.
//!   - `server::consume_stream`: replay, then live delivery on the commit-point watch.
//!   - [`server::status`]: the one storage-error-to-status mapping, with rich details.
//!   - `server::drain`: the shutdown signal endless streams watch.
//! - [`client`]: a small typed wrapper over the generated client, decoding error details.
//! - `src/bin/girok-server.rs`: the server binary (flags → [`server::run`]).
//! - `src/bin/girok.rs`: the command-line client and `girok verify`.

pub mod api;
pub mod client;
pub mod log;
pub mod server;
