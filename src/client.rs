//! [`Client`]: a small typed wrapper over the generated [`LogClient`]. It turns the statuses a
//! caller is expected to act on — `OUT_OF_RANGE` and `DATA_LOSS` — into [`ClientError`] variants
//! carrying the offsets decoded from the status's `ErrorInfo`; every other status is passed
//! through as is.

use std::ops::Range;

use bytes::Bytes;
use futures_util::Stream;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};
use tonic_types::StatusExt;

use crate::api::errors::{key, reason};
pub use crate::api::v1::log_client::LogClient;
use crate::api::v1::{self, ConsumeRequest, OffsetsRequest, ProduceRequest, ProduceResponse};
use crate::storage::Record;

/// The largest message the client decodes: well above any server's record limit.
const MAX_DECODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `OUT_OF_RANGE`: `offset` lies outside the committed range `[lowest_offset, next_offset)`.
    /// Below `lowest_offset`, resume from `lowest_offset`; at or past `next_offset`, wait.
    #[error("offset {offset} is out of range [{lowest_offset}, {next_offset})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// The lowest offset the log held.
        lowest_offset: u64,
        /// The log's commit point.
        next_offset: u64,
    },
    /// `DATA_LOSS`: the record at `offset` is corrupt on the server. Skipping it is the caller's
    /// decision; the server never skips it.
    #[error("the record at offset {offset} is corrupt")]
    RecordCorrupt {
        /// The damaged record's offset.
        offset: u64,
    },
    /// Any other status (boxed: a `Status` is large).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(Box<Status>),
    /// The connection could not be made.
    #[error("connecting: {0}")]
    Connect(#[from] tonic::transport::Error),
}

impl ClientError {
    /// The gRPC code this error came from, if it came from a status.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::OffsetOutOfRange { .. } => Some(Code::OutOfRange),
            Self::RecordCorrupt { .. } => Some(Code::DataLoss),
            Self::Status(status) => Some(status.code()),
            Self::Connect(_) => None,
        }
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        let details = status.get_error_details();
        let info = details.error_info();
        let field = |name: &str| info.and_then(|i| i.metadata.get(name)?.parse::<u64>().ok());
        match (status.code(), info.map(|i| i.reason.as_str())) {
            (Code::OutOfRange, Some(reason::OFFSET_OUT_OF_RANGE)) => {
                match (field(key::OFFSET), field(key::LOWEST_OFFSET), field(key::NEXT_OFFSET)) {
                    (Some(offset), Some(lowest_offset), Some(next_offset)) => {
                        Self::OffsetOutOfRange { offset, lowest_offset, next_offset }
                    }
                    _ => Self::Status(Box::new(status)),
                }
            }
            (Code::DataLoss, Some(reason::RECORD_CORRUPT)) => match field(key::OFFSET) {
                Some(offset) => Self::RecordCorrupt { offset },
                None => Self::Status(Box::new(status)),
            },
            _ => Self::Status(Box::new(status)),
        }
    }
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

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

/// The acks of a ProduceStream.
#[derive(Debug)]
pub struct Acks(Streaming<ProduceResponse>);

impl Acks {
    /// The next record's offset; `None` once the server has acked everything and ended with OK.
    pub async fn next(&mut self) -> Result<Option<u64>> {
        Ok(self.0.message().await?.map(|ack| ack.offset))
    }
}

/// The records of a ConsumeStream.
#[derive(Debug)]
pub struct Records(Streaming<v1::ConsumeResponse>);

impl Records {
    /// The next record; `None` if the server ended the stream with OK.
    pub async fn next(&mut self) -> Result<Option<Record>> {
        loop {
            match self.0.message().await? {
                Some(response) => {
                    if let Some(record) = response.record {
                        return Ok(Some(record.into()));
                    }
                }
                None => return Ok(None),
            }
        }
    }
}
