//! [`NamedLog`]: one named log of a server, the handle every data call goes through. It puts its
//! log's name in each request; [`Client`](super::Client)'s own data calls go through a handle on
//! [`DEFAULT_LOG`].

use std::ops::Range;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tonic::Status;

use super::{Acks, LogClient, Records, Result, Transport};
use crate::api::v1::{self, ConsumeRequest, OffsetsRequest, ProduceRequest};
use crate::storage::Record;

/// The log a request that names none goes to; it always exists and cannot be deleted.
pub const DEFAULT_LOG: &str = "default";

/// One named log on a server, from [`Client::log`](super::Client::log): produce, consume and
/// tail that log only. Each log has its own dense offsets, starting at 0.
///
/// Cheap to clone; clones share the client's HTTP/2 connection. A log that does not exist fails
/// reads with [`ClientError::LogNotFound`](super::ClientError::LogNotFound); a produce creates it
/// while the server auto-creates logs (its default), and fails the same way otherwise.
#[derive(Clone, Debug)]
pub struct NamedLog {
    pub(super) inner: LogClient<Transport>,
    /// As sent: empty for [`DEFAULT_LOG`] reached through [`Client`](super::Client)'s own calls,
    /// which the wire reads as the same log.
    name: String,
}

impl NamedLog {
    /// A handle on the log `name` over `inner`; an empty name means [`DEFAULT_LOG`].
    pub(super) fn new(inner: LogClient<Transport>, name: String) -> Self {
        Self { inner, name }
    }

    /// The log's name.
    pub fn name(&self) -> &str {
        if self.name.is_empty() { DEFAULT_LOG } else { &self.name }
    }

    /// Appends one record to this log and returns its offset.
    pub async fn produce(&mut self, value: impl Into<Bytes>) -> Result<u64> {
        let request = produce_request(value.into(), self.name.clone());
        Ok(self.inner.produce(request).await?.into_inner().offset)
    }

    /// Reads the record at `offset` of this log.
    pub async fn consume(&mut self, offset: u64) -> Result<Record> {
        let request = ConsumeRequest { offset, log: self.name.clone() };
        let response = self.inner.consume(request).await?.into_inner();
        let record =
            response.record.ok_or_else(|| Status::internal("the server sent no record"))?;
        Ok(record.into())
    }

    /// This log's committed range `[lowest_offset, next_offset)`.
    pub async fn offsets(&mut self) -> Result<Range<u64>> {
        let request = OffsetsRequest { log: self.name.clone(), linearizable: false };
        let response = self.inner.offsets(request).await?.into_inner();
        Ok(response.lowest_offset..response.next_offset)
    }

    /// Streams `values` to this log; the returned [`Acks`] yields each record's offset in order.
    /// Ending `values` half-closes the stream.
    pub async fn produce_stream<S>(&mut self, values: S) -> Result<Acks>
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        // The first request names the stream's log; the rest may leave it empty.
        let mut log = Some(self.name.clone());
        let requests =
            values.map(move |value| produce_request(value, log.take().unwrap_or_default()));
        Ok(Acks(self.inner.produce_stream(requests).await?.into_inner()))
    }

    /// Tails this log from `offset`: replay, then live records, until the server ends the
    /// stream (with [`ClientError::LogNotFound`](super::ClientError::LogNotFound) if the log is
    /// deleted meanwhile).
    pub async fn consume_stream(&mut self, offset: u64) -> Result<Records> {
        let request = ConsumeRequest { offset, log: self.name.clone() };
        Ok(Records(self.inner.consume_stream(request).await?.into_inner()))
    }
}

fn produce_request(value: Bytes, log: String) -> ProduceRequest {
    ProduceRequest { record: Some(v1::Record { value, ..v1::Record::default() }), log }
}
