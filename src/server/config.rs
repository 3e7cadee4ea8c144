//! [`ServerConfig`]: the service's limits and the HTTP/2 transport settings. Every field
//! documents its default; [`ServerConfig::default`] is what `girok-server` runs with unless a flag
//! says otherwise.

use std::time::Duration;

use super::metrics::Metrics;
use super::ready::Readiness;
use super::security::Security;

/// How the server serves: record and message limits, HTTP/2 windows and limits, per-stream
/// buffering, and the shutdown grace period.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The largest gRPC message the server decodes. A message above it is rejected with
    /// `RESOURCE_EXHAUSTED` before it is decoded. [`run`](super::run) raises it to the log's
    /// record limit plus 64 KiB of framing when that is larger, so that a record just over the
    /// limit still decodes and gets the clearer `INVALID_ARGUMENT`. Default 4 MiB.
    pub max_decoding_message_size: usize,
    /// The largest gRPC message the server encodes; raised like the decode limit, so that a
    /// `ConsumeResponse` can carry the largest record. Default 4 MiB.
    pub max_encoding_message_size: usize,
    /// After the shutdown signal, how long in-flight calls get to finish before every remaining
    /// connection is dropped. Default 5 s.
    pub shutdown_grace: Duration,
    /// HTTP/2 initial stream window. Large enough that a producer streaming small records is not
    /// throttled per round trip. Default 2 MiB.
    pub initial_stream_window: u32,
    /// HTTP/2 initial connection window. h2 (≥ 0.4.19) sizes its budget of small DATA frames
    /// from it (half the window), so a generous window keeps clients that send one small frame
    /// per message clear of `GOAWAY ENHANCE_YOUR_CALM "too_many_data_frames"`. Default 16 MiB.
    pub initial_connection_window: u32,
    /// Concurrent streams a client may open on one connection (tailing consumers each hold one).
    /// Default 4,096.
    pub max_concurrent_streams: u32,
    /// Connections served at once; further ones are closed on accept. Default 1,024.
    pub max_connections: usize,
    /// The memory budget for records buffered in the server, shared by every ProduceStream
    /// queue and ConsumeStream read batch; each connection may use at most a sixteenth of it, so
    /// that a few connections that never read their answers leave room for the others.
    /// When it is spent, streams stop reading (back-pressure) until records leave; nothing is
    /// dropped and no call fails for it. Default 256 MiB.
    pub max_buffered_bytes: usize,
    /// How long a new connection may take to send the HTTP/2 preface and its first SETTINGS;
    /// one that has not by then is closed, so silent clients cannot hold connection slots.
    /// Default 10 s.
    pub handshake_timeout: Duration,
    /// Interval of HTTP/2 keepalive pings on an idle connection, so dead peers of idle tails are
    /// noticed. Default 30 s.
    pub keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed. Default 20 s.
    pub keepalive_timeout: Duration,
    /// Streams a client may open and reset before the server handles them (rapid-reset
    /// protection, CVE-2023-44487). Default 200.
    pub max_pending_accept_reset_streams: usize,
    /// Streams the server may reset for protocol errors before it closes the connection with
    /// `ENHANCE_YOUR_CALM`. Default 1,024.
    pub max_local_error_reset_streams: usize,
    /// The largest request header block accepted. Default 16 KiB.
    pub max_header_list_size: u32,
    /// Per ProduceStream: how many bytes of received, not yet appended records may be queued
    /// while a batch is being appended (back-pressure beyond it). Default 8 MiB.
    pub produce_queue_bytes: usize,
    /// Per ProduceStream: the most records appended as one batch (one sync under `always`).
    /// Default 4,096.
    pub produce_batch_records: usize,
    /// Per ProduceStream: a batch stops growing once its values reach this many bytes.
    /// Default 4 MiB.
    pub produce_batch_bytes: usize,
    /// Per ConsumeStream: the most records read from the log at once, which is also the most a
    /// stream buffers beyond the HTTP/2 send buffer. Default 256.
    pub consume_batch_records: usize,
    /// Per ConsumeStream: a read batch stops once its values reach this many bytes (at least one
    /// record is always read). Default 1 MiB.
    pub consume_batch_bytes: usize,
    /// Where the server counts calls, records and storage events. Default: metrics of their
    /// own (labelling the 100 busiest logs) that nobody reads; the binary shares them with the
    /// admin listener.
    pub metrics: Metrics,
    /// The phase `run` moves through, for `/readyz`. Default: one nobody reads.
    pub readiness: Readiness,
    /// The address `GetServers` gives for this server (`HOST:PORT`). Default: the address
    /// [`run`](super::run)'s listener is bound to.
    pub advertise_addr: Option<String>,
    /// TLS, authentication and the access-control list. Default: plaintext, anonymous,
    /// unrestricted.
    pub security: Security,
    /// The cluster this server is a node of: writes then go through its Raft, and the internal
    /// Raft service is served beside `log.v1.Log`. Default: none (a single node).
    pub cluster: Option<crate::cluster::node::Cluster>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_decoding_message_size: 4 * 1024 * 1024,
            max_encoding_message_size: 4 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(5),
            initial_stream_window: 2 * 1024 * 1024,
            initial_connection_window: 16 * 1024 * 1024,
            max_concurrent_streams: 4096,
            max_connections: 1024,
            max_buffered_bytes: 256 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_pending_accept_reset_streams: 200,
            max_local_error_reset_streams: 1024,
            max_header_list_size: 16 * 1024,
            produce_queue_bytes: 8 * 1024 * 1024,
            produce_batch_records: 4096,
            produce_batch_bytes: 4 * 1024 * 1024,
            consume_batch_records: 256,
            consume_batch_bytes: 1024 * 1024,
            metrics: Metrics::default(),
            readiness: Readiness::default(),
            advertise_addr: None,
            security: Security::plaintext(),
            cluster: None,
        }
    }
}

impl ServerConfig {
    /// The part of [`max_buffered_bytes`](Self::max_buffered_bytes) one connection may use.
    pub(crate) fn connection_share(&self) -> usize {
        (self.max_buffered_bytes / 16).max(1)
    }

    /// This config with message limits that fit records of `max_record_bytes`: both become at
    /// least the record limit plus 64 KiB of framing.
    pub(crate) fn fitted_to(mut self, max_record_bytes: usize) -> Self {
        let room = max_record_bytes.saturating_add(64 * 1024);
        self.max_decoding_message_size = self.max_decoding_message_size.max(room);
        self.max_encoding_message_size = self.max_encoding_message_size.max(room);
        self
    }
}
