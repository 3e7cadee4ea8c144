//! [`LogService`]: the `log.v1.Log` gRPC service. The unary record RPCs live here; the two
//! streaming RPCs and the admin RPCs of named logs have their own files (`produce_stream`,
//! `consume_stream`, `admin`). Every RPC reaches the logs through the [`Registry`] and converts
//! messages through `wire`.
//!
//! When several errors apply: `UNAUTHENTICATED` (the router's), then the request's own
//! (`INVALID_ARGUMENT`), then `PERMISSION_DENIED`, then the log's (`NOT_FOUND`), then the call's
//! outcome. Every RPC passes its [`Caller`] to the registry, which checks the access-control list
//! before it looks the log up.

mod admin;
mod consume_stream;
mod produce_stream;

use std::pin::Pin;
use std::sync::Arc;

use futures_util::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::budget::Budget;
use super::config::ServerConfig;
use super::drain::Drain;
use super::handle::Registry;
use super::security::{Action, Caller};
use super::status;
use super::wire::{record_value, to_response};
use crate::api::v1::{
    AddServerRequest, AddServerResponse, ConsumeRequest, ConsumeResponse, CreateLogRequest,
    CreateLogResponse, DeleteLogRequest, DeleteLogResponse, GetServersRequest, GetServersResponse,
    ListLogsRequest, ListLogsResponse, OffsetsRequest, OffsetsResponse, ProduceRequest,
    ProduceResponse, RemoveServerRequest, RemoveServerResponse, Server, UpdateLogRequest,
    UpdateLogResponse, log_server::Log,
};

/// The id a server outside a cluster answers `GetServers` with.
const SINGLE_NODE_ID: u64 = 1;

/// A boxed response stream.
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The `Log` service. Cheap to clone: the logs and config are shared.
#[derive(Clone)]
pub(crate) struct LogService {
    registry: Registry,
    config: Arc<ServerConfig>,
    drain: Drain,
    /// For a request that arrived without its connection's budget (none does through `run`):
    /// a share of a budget of its own, so buffering stays bounded all the same.
    fallback_budget: Budget,
}

impl LogService {
    pub(crate) fn new(registry: Registry, config: Arc<ServerConfig>, drain: Drain) -> Self {
        let fallback_budget =
            Budget::new(config.max_buffered_bytes).connection(config.connection_share());
        Self { registry, config, drain, fallback_budget }
    }

    /// The memory budget of the connection `request` came on.
    fn budget<T>(&self, request: &Request<T>) -> Budget {
        request.extensions().get::<Budget>().unwrap_or(&self.fallback_budget).clone()
    }

    /// Who sent `request`: the router authenticated it and left its [`Caller`] in the
    /// extensions; a request that came another way is anonymous, or `UNAUTHENTICATED` wherever
    /// credentials are configured.
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        match request.extensions().get::<Caller>() {
            Some(caller) => Ok(caller.clone()),
            None => self.config.security.anonymous(),
        }
    }

    /// New calls are refused once the server drains; calls already running finish.
    fn check_serving(&self) -> Result<(), Status> {
        if self.drain.is_draining() {
            return Err(status::draining());
        }
        match self.registry.cluster() {
            // A node started with --join holds nothing until it is added.
            Some(cluster) if !cluster.is_running() => Err(status::cluster_stopped(cluster.id())),
            Some(cluster) if !cluster.is_member() => Err(status::not_a_member(cluster.id())),
            _ => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl Log for LogService {
    async fn produce(
        &self,
        request: Request<ProduceRequest>,
    ) -> Result<Response<ProduceResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        let mut request = request.into_inner();
        let log = std::mem::take(&mut request.log);
        let value = record_value(request, self.registry.max_record_bytes())?;
        let log = self.registry.find_for_append(&caller, &log).await?;
        let offset = log.append(value).await?;
        Ok(Response::new(ProduceResponse { offset }))
    }

    async fn consume(
        &self,
        request: Request<ConsumeRequest>,
    ) -> Result<Response<ConsumeResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let record = self.registry.find(&caller, &request.log)?.read(request.offset).await?;
        Ok(Response::new(to_response(record, self.config.max_encoding_message_size)?))
    }

    type ConsumeStreamStream = BoxStream<ConsumeResponse>;

    async fn consume_stream(
        &self,
        request: Request<ConsumeRequest>,
    ) -> Result<Response<Self::ConsumeStreamStream>, Status> {
        self.check_serving()?;
        let (budget, caller) = (self.budget(&request), self.caller(&request)?);
        let request = request.into_inner();
        let log = self.registry.find(&caller, &request.log)?;
        let guard = caller.guard(Action::Consume, log.name());
        let (config, drain) = (&self.config, self.drain.clone());
        let stream = consume_stream::tail(log, guard, request.offset, config, drain, budget);
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
            self.registry.clone(),
            self.caller(&request)?,
            request.into_inner(),
            &self.config,
            self.drain.clone(),
            budget,
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn offsets(
        &self,
        request: Request<OffsetsRequest>,
    ) -> Result<Response<OffsetsResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let log = if request.linearizable {
            self.registry.find_linearizable(&caller, &request.log).await?
        } else {
            self.registry.find(&caller, &request.log)?
        };
        let range = log.offsets().await?;
        Ok(Response::new(OffsetsResponse { lowest_offset: range.start, next_offset: range.end }))
    }

    async fn create_log(
        &self,
        request: Request<CreateLogRequest>,
    ) -> Result<Response<CreateLogResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        Ok(Response::new(admin::create(&self.registry, &caller, request.into_inner()).await?))
    }

    async fn delete_log(
        &self,
        request: Request<DeleteLogRequest>,
    ) -> Result<Response<DeleteLogResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        Ok(Response::new(admin::delete(&self.registry, &caller, request.into_inner()).await?))
    }

    async fn list_logs(
        &self,
        request: Request<ListLogsRequest>,
    ) -> Result<Response<ListLogsResponse>, Status> {
        self.check_serving()?;
        Ok(Response::new(admin::list(&self.registry, &self.caller(&request)?).await?))
    }

    async fn get_servers(
        &self,
        request: Request<GetServersRequest>,
    ) -> Result<Response<GetServersResponse>, Status> {
        // Any authenticated caller may discover the servers: no permission is checked.
        self.check_serving()?;
        self.caller(&request)?;
        let servers = match self.registry.cluster() {
            Some(cluster) => cluster
                .servers()
                .into_iter()
                .map(|s| Server {
                    id: s.id,
                    rpc_addr: s.addr,
                    is_leader: s.is_leader,
                    voter: s.voter,
                })
                .collect(),
            None => {
                let rpc_addr = self.config.advertise_addr.clone().unwrap_or_default();
                vec![Server { id: SINGLE_NODE_ID, rpc_addr, is_leader: true, voter: true }]
            }
        };
        Ok(Response::new(GetServersResponse { servers }))
    }

    async fn add_server(
        &self,
        request: Request<AddServerRequest>,
    ) -> Result<Response<AddServerResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        let AddServerRequest { id, rpc_addr } = request.into_inner();
        if id == 0 {
            return Err(status::bad_request("id", "node ids start at 1"));
        }
        if crate::cluster::node::parse_members(&format!("{id}={rpc_addr}")).is_err() {
            return Err(status::bad_request("rpc_addr", format!("{rpc_addr:?} is not HOST:PORT")));
        }
        caller.authorize_cluster()?;
        let cluster = self.registry.cluster().ok_or_else(status::not_a_cluster)?;
        cluster.add_server(id, rpc_addr).await.map_err(status::from_membership_error)?;
        Ok(Response::new(AddServerResponse {}))
    }

    async fn remove_server(
        &self,
        request: Request<RemoveServerRequest>,
    ) -> Result<Response<RemoveServerResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        let RemoveServerRequest { id } = request.into_inner();
        caller.authorize_cluster()?;
        let cluster = self.registry.cluster().ok_or_else(status::not_a_cluster)?;
        cluster.remove_server(id).await.map_err(status::from_membership_error)?;
        Ok(Response::new(RemoveServerResponse {}))
    }

    async fn update_log(
        &self,
        request: Request<UpdateLogRequest>,
    ) -> Result<Response<UpdateLogResponse>, Status> {
        self.check_serving()?;
        let caller = self.caller(&request)?;
        Ok(Response::new(admin::update(&self.registry, &caller, request.into_inner()).await?))
    }
}
