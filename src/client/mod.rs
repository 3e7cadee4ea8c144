//! [`Client`]: a small typed wrapper over the generated [`LogClient`].
//!
//! - `mod.rs`: [`Client`], the connection and its calls.
//! - `error`: [`ClientError`], decoding the statuses a caller is expected to act on —
//!   `OUT_OF_RANGE` and `DATA_LOSS` — from the status's `ErrorInfo`; every other status is passed
//!   through as is.
//! - `streams`: [`Acks`] and [`Records`], the answers of the two streaming calls.

use std::ops::Range;

use bytes::Bytes;
use futures_util::Stream;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

pub use crate::api::v1::log_client::LogClient;
use crate::api::v1::{self, ConsumeRequest, OffsetsRequest, ProduceRequest};
use crate::storage::Record;

mod error;
mod streams;

pub use error::{ClientError, Result};
pub use streams::{Acks, Records};

/// The largest message the client decodes: well above any server's record limit.
const MAX_DECODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// A connection to a girok server. Cheap to clone; clones share the HTTP/2 connection.
#[derive(Clone, Debug)]
pub struct Client {
    inner: LogClient<Channel>,
}

impl Client {
    /// Connects to `addr`, e.g. `http://127.0.0.1:8400`.
    pub async fn connect(addr: impl Into<String>) -> Result<Self> {
        let channel = Endpoint::from_shared(addr.into())?.connect().await?;
        Ok(Self::new(channel))
    }

    /// A client over an existing channel.
    pub fn new(channel: Channel) -> Self {
        Self { inner: LogClient::new(channel).max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE) }
    }

    /// The generated client, for calls this wrapper does not cover.
    pub fn inner(&mut self) -> &mut LogClient<Channel> {
        &mut self.inner
    }

    /// Appends one record and returns its offset.
    pub async fn produce(&mut self, value: impl Into<Bytes>) -> Result<u64> {
        let request = produce_request(value.into());
        Ok(self.inner.produce(request).await?.into_inner().offset)
    }

    /// Reads the record at `offset`.
    pub async fn consume(&mut self, offset: u64) -> Result<Record> {
        let response =
            self.inner.consume(ConsumeRequest { offset, ..Default::default() }).await?.into_inner();
        let record =
            response.record.ok_or_else(|| Status::internal("the server sent no record"))?;
        Ok(record.into())
    }

    /// The committed range `[lowest_offset, next_offset)`.
    pub async fn offsets(&mut self) -> Result<Range<u64>> {
        let response = self.inner.offsets(OffsetsRequest::default()).await?.into_inner();
        Ok(response.lowest_offset..response.next_offset)
    }

    /// Streams `values` to the server; the returned [`Acks`] yields each record's offset in
    /// order. Ending `values` half-closes the stream.
    pub async fn produce_stream<S>(&mut self, values: S) -> Result<Acks>
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        use futures_util::StreamExt;
        let requests = values.map(produce_request);
        Ok(Acks(self.inner.produce_stream(requests).await?.into_inner()))
    }

    /// Tails the log from `offset`: replay, then live records, until the server ends the stream.
    pub async fn consume_stream(&mut self, offset: u64) -> Result<Records> {
        Ok(Records(
            self.inner
                .consume_stream(ConsumeRequest { offset, ..Default::default() })
                .await?
                .into_inner(),
        ))
    }
}

fn produce_request(value: Bytes) -> ProduceRequest {
    ProduceRequest {
        record: Some(v1::Record { value, ..v1::Record::default() }),
        ..Default::default()
    }
}
