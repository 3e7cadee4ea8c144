//! [`LogService`]: the `log.v1.Log` gRPC service over any [`CommitLog`]. The unary RPCs live here;
//! the two streaming RPCs have their own files (`produce_stream`, `consume_stream`).
//!
//! Storage is synchronous, so every storage call goes through [`blocking`], which runs it on
//! tokio's blocking pool: a sync under `--fsync=always` never stalls a runtime worker.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::config::ServerConfig;
use super::drain::Drain;
use super::status;
use super::{consume_stream, produce_stream};
use crate::api::v1::{
    ConsumeRequest, ConsumeResponse, OffsetsRequest, OffsetsResponse, ProduceRequest,
    ProduceResponse, Record, log_server::Log,
};
use crate::log::{self, CommitLog};

/// A boxed response stream.
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The `Log` service. Cheap to clone: the log and config are shared.
#[derive(Clone)]
pub struct LogService {
    log: Arc<dyn CommitLog>,
    config: Arc<ServerConfig>,
    drain: Drain,
}

impl LogService {
    pub(crate) fn new(log: Arc<dyn CommitLog>, config: Arc<ServerConfig>, drain: Drain) -> Self {
        Self { log, config, drain }
    }

    /// New calls are refused once the server drains; calls already running finish.
    fn check_serving(&self) -> Result<(), Status> {
        if self.drain.is_draining() { Err(status::draining()) } else { Ok(()) }
    }
}

/// Runs a synchronous storage call on the blocking pool and maps its error to a status.
pub(crate) async fn blocking<T, F>(log: &Arc<dyn CommitLog>, f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce(&dyn CommitLog) -> log::Result<T> + Send + 'static,
{
    let log = Arc::clone(log);
    tokio::task::spawn_blocking(move || f(log.as_ref()))
        .await
        .map_err(status::task_failed)?
        .map_err(Status::from)
}

/// The value of a produce request, or `INVALID_ARGUMENT` when it has no record or the value is
/// above `max_record_bytes`.
pub(crate) fn record_value(
    request: ProduceRequest,
    max_record_bytes: usize,
) -> Result<Bytes, Status> {
    let record = request.record.ok_or_else(status::missing_record)?;
    if record.value.len() > max_record_bytes {
        return Err(status::record_too_large(record.value.len(), max_record_bytes));
    }
    Ok(record.value)
}

/// Framing a ConsumeResponse adds around a value, with room to spare.
const RESPONSE_OVERHEAD: usize = 64;

/// The wire form of a stored record, or `RESOURCE_EXHAUSTED` when it cannot be sent under the
/// encoding limit `max_message`.
pub(crate) fn to_response(
    record: log::Record,
    max_message: usize,
) -> Result<ConsumeResponse, Status> {
    let size = record.value.len();
    if size.saturating_add(RESPONSE_OVERHEAD) > max_message {
        return Err(status::record_too_large_to_send(record.offset, size, max_message));
    }
    Ok(ConsumeResponse { record: Some(Record { value: record.value, offset: record.offset }) })
}

#[tonic::async_trait]
impl Log for LogService {
    async fn produce(
        &self,
        request: Request<ProduceRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        self.check_serving()?;
        let value = record_value(request.into_inner(), self.config.max_record_bytes)?;
        let offset = blocking(&self.log, move |log| log.append(value)).await?;
        Ok(Response::new(ProduceResponse { offset }))
    }

    async fn consume(
        &self,
        request: Request<ConsumeRequest>,
    ) -> Result<Response<ConsumeResponse>, Status> {
        self.check_serving()?;
        let offset = request.into_inner().offset;
        let record = blocking(&self.log, move |log| log.read(offset)).await?;
        Ok(Response::new(to_response(record, self.config.max_encoding_message_size)?))
    }

    type ConsumeStreamStream = BoxStream<ConsumeResponse>;

    async fn consume_stream(
        &self,
        request: Request<ConsumeRequest>,
    ) -> Result<Response<Self::ConsumeStreamStream>, Status> {
        self.check_serving()?;
        let offset = request.into_inner().offset;
        let stream =
            consume_stream::tail(Arc::clone(&self.log), offset, &self.config, self.drain.clone());
        Ok(Response::new(Box::pin(stream)))
    }

    type ProduceStreamStream = BoxStream<ProduceResponse>;

    async fn produce_stream(
        &self,
        request: Request<Streaming<ProduceRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        self.check_serving()?;
        let stream = produce_stream::pipeline(
            Arc::clone(&self.log),
            request.into_inner(),
            &self.config,
            self.drain.clone(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn offsets(
        &self,
        _request: Request<OffsetsRequest>,
    ) -> Result<Response<OffsetsResponse>, Status> {
        self.check_serving()?;
        let (lowest_offset, next_offset) =
            blocking(&self.log, |log| Ok((log.lowest_offset(), log.next_offset()))).await?;
        Ok(Response::new(OffsetsResponse { lowest_offset, next_offset }))
    }
}
