//! [`LogService`]: the `log.v1.Log` gRPC service. The unary RPCs live here; the two streaming
//! RPCs have their own files (`produce_stream`, `consume_stream`). Every RPC reaches storage
//! through [`LogHandle`] and converts messages through `wire`.

mod consume_stream;
mod produce_stream;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::budget::Budget;
use super::config::ServerConfig;
use super::drain::Drain;
use super::handle::LogHandle;
use super::status;
use super::wire::{record_value, to_response};
use crate::api::v1::{
    ConsumeRequest, ConsumeResponse, CreateLogRequest, CreateLogResponse, DeleteLogRequest,
    DeleteLogResponse, ListLogsRequest, ListLogsResponse, OffsetsRequest, OffsetsResponse,
    ProduceRequest, ProduceResponse, UpdateLogRequest, UpdateLogResponse, log_server::Log,
};

/// A boxed response stream.
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The `Log` service. Cheap to clone: the log and config are shared.
#[derive(Clone)]
pub(crate) struct LogService {
    log: LogHandle,
    config: Arc<ServerConfig>,
    drain: Drain,
    /// For a request that arrived without its connection's budget (none does through `run`):
    /// a share of a budget of its own, so buffering stays bounded all the same.
    fallback_budget: Budget,
}

impl LogService {
    pub(crate) fn new(log: LogHandle, config: Arc<ServerConfig>, drain: Drain) -> Self {
        let fallback_budget =
            Budget::new(config.max_buffered_bytes).connection(config.connection_share());
        Self { log, config, drain, fallback_budget }
    }

    /// The memory budget of the connection `request` came on.
    fn budget<T>(&self, request: &Request<T>) -> Budget {
        request.extensions().get::<Budget>().unwrap_or(&self.fallback_budget).clone()
    }

    /// New calls are refused once the server drains; calls already running finish.
    fn check_serving(&self) -> Result<(), Status> {
        if self.drain.is_draining() { Err(status::draining()) } else { Ok(()) }
    }
}

#[tonic::async_trait]
impl Log for LogService {
    async fn produce(
        &self,
        request: Request<ProduceRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        self.check_serving()?;
        let value = record_value(request.into_inner(), self.log.max_record_bytes())?;
        let offset = self.log.append(value).await?;
        Ok(Response::new(ProduceResponse { offset }))
    }

    async fn consume(
        &self,
        request: Request<ConsumeRequest>,
    ) -> Result<Response<ConsumeResponse>, Status> {
        self.check_serving()?;
        let record = self.log.read(request.into_inner().offset).await?;
        Ok(Response::new(to_response(record, self.config.max_encoding_message_size)?))
    }

    type ConsumeStreamStream = BoxStream<ConsumeResponse>;

    async fn consume_stream(
        &self,
        request: Request<ConsumeRequest>,
    ) -> Result<Response<Self::ConsumeStreamStream>, Status> {
        self.check_serving()?;
        let budget = self.budget(&request);
        let offset = request.into_inner().offset;
        let stream = consume_stream::tail(
            self.log.clone(),
            offset,
            &self.config,
            self.drain.clone(),
            budget,
        );
        Ok(Response::new(Box::pin(stream)))
    }

    type ProduceStreamStream = BoxStream<ProduceResponse>;

    async fn produce_stream(
        &self,
        request: Request<Streaming<ProduceRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        self.check_serving()?;
        let budget = self.budget(&request).within(self.config.produce_queue_bytes);
        let stream = produce_stream::pipeline(
            self.log.clone(),
            request.into_inner(),
            &self.config,
            self.drain.clone(),
            budget,
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn offsets(
        &self,
        _request: Request<OffsetsRequest>,
    ) -> Result<Response<OffsetsResponse>, Status> {
        self.check_serving()?;
        let range = self.log.offsets().await?;
        Ok(Response::new(OffsetsResponse { lowest_offset: range.start, next_offset: range.end }))
    }

    async fn create_log(
        &self,
        _request: Request<CreateLogRequest>,
    ) -> Result<Response<CreateLogResponse>, Status> {
        Err(Status::unimplemented("in progress"))
    }

    async fn delete_log(
        &self,
        _request: Request<DeleteLogRequest>,
    ) -> Result<Response<DeleteLogResponse>, Status> {
        Err(Status::unimplemented("in progress"))
    }

    async fn list_logs(
        &self,
        _request: Request<ListLogsRequest>,
    ) -> Result<Response<ListLogsResponse>, Status> {
        Err(Status::unimplemented("in progress"))
    }

    async fn update_log(
        &self,
        _request: Request<UpdateLogRequest>,
    ) -> Result<Response<UpdateLogResponse>, Status> {
        Err(Status::unimplemented("in progress"))
    }
}
