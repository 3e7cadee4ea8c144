//! [`Client`]: a small typed wrapper over the generated [`LogClient`]. A server holds many named
//! logs; [`Client::log`] answers a [`NamedLog`] whose calls go to one of them, and the data calls
//! on [`Client`] itself go to [`DEFAULT_LOG`].
//!
//! - `mod.rs`: [`Client`], the connection.
//! - `connect`: [`Connect`], the options to connect with: `http://` or `https://`, the CA to
//!   trust, a client certificate for mutual TLS, a bearer token, a connect timeout.
//! - `transport`: [`Transport`], the channel every call goes through, which adds the token.
//! - `admin`: the admin calls on [`Client`]: [`Client::create_log`], [`Client::update_log`],
//!   [`Client::delete_log`] and [`Client::list_logs`], answering the generated [`LogInfo`].
//! - `named`: [`NamedLog`], the data calls (produce, consume, offsets and the two streams) on one
//!   log.
//! - `error`: [`ClientError`], decoding the statuses a caller is expected to act on (an offset
//!   out of range, a corrupt record, a missing or taken log) from the status's `ErrorInfo`; every
//!   other status is passed through as is.
//! - `streams`: [`Acks`] and [`Records`], the answers of the two streaming calls.
//! - `compression`: [`Compression`], the wire compression [`Client::compressed`] asks for.
//! - `cluster`: [`ClusterClient`], a client of a cluster (or of a single server): writes to the
//!   leader, following `NOT_LEADER`; reads spread over every server; one connection per node;
//!   [`ClusterLog`], its handle on one log.
//! - `seeds`: the seed list a [`ClusterClient`] starts from (`a:1,b:2`, with or without scheme).
//! - `retry`: [`Retry`], how long and how a [`ClusterClient`] retries, and which failures may
//!   be retried for which call.
//! - `tail`: [`ClusterRecords`], a tail that resumes on another server when its own goes away.

use std::ops::Range;

use bytes::Bytes;
use futures_util::Stream;
use tonic::transport::Channel;

pub use crate::api::v1::log_client::LogClient;
pub use crate::api::v1::{LogInfo, LogSettings};
use crate::storage::Record;

mod admin;
mod cluster;
mod compression;
mod connect;
mod error;
mod named;
mod retry;
mod seeds;
mod streams;
mod tail;
mod transport;

pub use cluster::{ClusterClient, ClusterLog, ServerInfo};
pub use compression::Compression;
pub use connect::Connect;
pub use error::{ClientError, Result};
pub use named::{DEFAULT_LOG, NamedLog};
pub use retry::Retry;
pub use streams::{Acks, Records};
pub use tail::ClusterRecords;
pub use transport::Transport;

/// The largest message the client decodes: well above any server's record limit.
const MAX_DECODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// A connection to a girok server. Cheap to clone; clones share the HTTP/2 connection.
///
/// Its data calls go to [`DEFAULT_LOG`]; [`Client::log`] reaches any other log, and the admin
/// calls create, change, delete and list them.
#[derive(Clone, Debug)]
pub struct Client {
    /// The handle the data calls go through; it names no log, which the wire reads as
    /// [`DEFAULT_LOG`] (and a server from before named logs as its only log).
    default: NamedLog,
}

impl Client {
    /// Connects to `addr`, e.g. `http://127.0.0.1:8400`, or `https://HOST:PORT` trusting the
    /// system's roots. [`Connect`] has the other options (a CA, a client certificate, a token).
    pub async fn connect(addr: impl Into<String>) -> Result<Self> {
        Connect::new(addr).connect().await
    }

    /// A client over an existing channel, sending no token.
    pub fn new(channel: Channel) -> Self {
        Self::with_transport(Transport::new(channel, None))
    }

    fn with_transport(transport: Transport) -> Self {
        let inner = LogClient::new(transport).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE);
        Self { default: NamedLog::new(inner, String::new()) }
    }

    /// This client asking for `compression` on every call: what it sends is compressed, and
    /// the server is told it may compress its answers the same way. Handles from
    /// [`Client::log`] taken afterwards share the setting.
    pub fn compressed(mut self, compression: Compression) -> Self {
        let encoding = compression.encoding();
        let inner = self.default.inner.send_compressed(encoding).accept_compressed(encoding);
        self.default.inner = inner;
        self
    }

    /// The generated client, for calls this wrapper does not cover.
    pub fn inner(&mut self) -> &mut LogClient<Transport> {
        &mut self.default.inner
    }

    /// A handle on the log `name`, sharing this client's connection. Nothing is sent: a name
    /// that is invalid or unknown fails the handle's calls. `client.log(DEFAULT_LOG)` reaches the
    /// same log as the client's own calls.
    pub fn log(&self, name: impl Into<String>) -> NamedLog {
        NamedLog::new(self.default.inner.clone(), name.into())
    }

    /// Appends one record to [`DEFAULT_LOG`] and returns its offset.
    pub async fn produce(&mut self, value: impl Into<Bytes>) -> Result<u64> {
        self.default.produce(value).await
    }

    /// Reads the record at `offset` of [`DEFAULT_LOG`].
    pub async fn consume(&mut self, offset: u64) -> Result<Record> {
        self.default.consume(offset).await
    }

    /// The committed range `[lowest_offset, next_offset)` of [`DEFAULT_LOG`].
    pub async fn offsets(&mut self) -> Result<Range<u64>> {
        self.default.offsets().await
    }

    /// Streams `values` to [`DEFAULT_LOG`]; the returned [`Acks`] yields each record's offset in
    /// order. Ending `values` half-closes the stream.
    pub async fn produce_stream<S>(&mut self, values: S) -> Result<Acks>
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        self.default.produce_stream(values).await
    }

    /// Tails [`DEFAULT_LOG`] from `offset`: replay, then live records, until the server ends the
    /// stream.
    pub async fn consume_stream(&mut self, offset: u64) -> Result<Records> {
        self.default.consume_stream(offset).await
    }
}
