//! [`Metrics`]: every Prometheus series the server exposes, and their rendering in the text
//! format (OpenMetrics 1.0, which Prometheus scrapes as it is).
//!
//! | file | owns |
//! |------|------|
//! | `mod.rs` | [`Metrics`]: the registry, the series that live as long as the server, rendering |
//! | `grpc.rs` | the `grpc_server_*` series: one [`RpcCall`] per call, message counting bodies |
//! | `logs.rs` | the per-log series, built at scrape time; the busiest logs keep their label |
//! | `storage.rs` | the [`StorageEvents`] listener behind `girok_fsync_seconds` and `girok_append_batch_records` |
//!
//! Series that only count or observe live in one registry built once; the per-log series are
//! read from the logs at each scrape (offsets, sizes) or from counters kept per log name, so a
//! deleted log's series simply stop being listed.

mod grpc;
mod logs;
mod storage;

use std::sync::{Arc, Mutex};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::budget::Budget;
use crate::logs::Logs;
use crate::storage::StorageEvents;

pub(crate) use grpc::{RpcCall, RpcMetrics};
use logs::PerLog;

/// The server's metrics. Cheap to clone: clones share every series.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Every series that lives as long as the server; registered once, never changed after.
    registry: Registry,
    rpc: RpcMetrics,
    fsync_seconds: Histogram,
    append_batch_records: Histogram,
    buffered_bytes: Gauge,
    open_streams: Family<grpc::StreamKind, Gauge>,
    per_log: PerLog,
    /// The server-wide memory budget, once the server runs: `girok_buffered_bytes` reads it at
    /// each scrape.
    budget: Mutex<Option<Budget>>,
}

impl Metrics {
    /// Metrics that give at most `max_logs` logs (the busiest) a label of their own; the rest
    /// are summed under `log="_other"`.
    pub fn new(max_logs: usize) -> Self {
        let mut registry = Registry::default();
        let rpc = RpcMetrics::register(&mut registry);
        let fsync_seconds = Histogram::new(storage::FSYNC_BUCKETS);
        registry.register(
            "girok_fsync_seconds",
            "Time an fdatasync of a log's active segment took",
            fsync_seconds.clone(),
        );
        let append_batch_records = Histogram::new(storage::BATCH_BUCKETS);
        registry.register(
            "girok_append_batch_records",
            "Records per append written to a log at once",
            append_batch_records.clone(),
        );
        let buffered_bytes = Gauge::default();
        registry.register(
            "girok_buffered_bytes",
            "Bytes of records buffered in the server (the --max-buffered-bytes budget in use)",
            buffered_bytes.clone(),
        );
        let open_streams = Family::<grpc::StreamKind, Gauge>::default();
        registry.register(
            "girok_open_streams",
            "Streaming calls open now, by kind",
            open_streams.clone(),
        );
        let inner = Inner {
            registry,
            rpc,
            fsync_seconds,
            append_batch_records,
            buffered_bytes,
            open_streams,
            per_log: PerLog::new(max_logs),
            budget: Mutex::new(None),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The listener that storage reports syncs and appended batches to: give it to
    /// [`LogsConfig::events`](crate::logs::LogsConfig::events).
    pub fn storage_events(&self) -> Arc<dyn StorageEvents> {
        Arc::new(storage::Events {
            fsync_seconds: self.inner.fsync_seconds.clone(),
            append_batch_records: self.inner.append_batch_records.clone(),
        })
    }

    /// Every series in the text format, the per-log ones read from `logs` now (none without).
    pub fn render(&self, logs: Option<&Logs>) -> String {
        if let Some(budget) = &*self.inner.budget.lock().unwrap_or_else(|e| e.into_inner()) {
            self.inner.buffered_bytes.set(budget.in_use() as i64);
        }
        let mut out = String::new();
        // Writing to a String cannot fail, and the registries hold only well-formed series.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.inner.registry);
        if let Some(logs) = logs {
            let per_log = self.inner.per_log.registry(logs);
            let _ = prometheus_client::encoding::text::encode_registry(&mut out, &per_log);
        }
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        debug_assert!(out.ends_with("# EOF\n"));
        out
    }

    /// Reads `girok_buffered_bytes` from `budget` from now on.
    pub(crate) fn watch_budget(&self, budget: Budget) {
        *self.inner.budget.lock().unwrap_or_else(|e| e.into_inner()) = Some(budget);
    }

    /// Starts timing and counting a call to `path` from `peer`.
    pub(crate) fn start_call(&self, path: &str, peer: Option<std::net::SocketAddr>) -> RpcCall {
        RpcCall::start(&self.inner.rpc, &self.inner.open_streams, path, peer)
    }

    /// What the router adds to one call, alone (for the benches): starts a call to `path` from
    /// `peer`, passes `request` through the body that counts received messages and `response`
    /// through the one that counts sent messages and reads the status. Polling both bodies to
    /// their end finishes the call, as serving it does.
    #[cfg(feature = "internals")]
    pub fn instrument_call<B>(
        &self,
        path: &str,
        peer: Option<std::net::SocketAddr>,
        request: B,
        response: tonic::codegen::http::Response<tonic::body::Body>,
    ) -> (
        impl http_body::Body<Data = bytes::Bytes, Error = B::Error> + Unpin,
        tonic::codegen::http::Response<tonic::body::Body>,
    )
    where
        B: http_body::Body<Data = bytes::Bytes> + Unpin,
    {
        let call = self.start_call(path, peer);
        let request = call.request_body(request);
        (request, call.respond(response))
    }
}

impl Default for Metrics {
    /// Metrics that label the 100 busiest logs.
    fn default() -> Self {
        Self::new(100)
    }
}
