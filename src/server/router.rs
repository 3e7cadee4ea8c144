//! The router: the Log, health and reflection services behind one hyper service, with tonic's
//! decode-limit status rewritten on the way out. Each connection gets its own clone, carrying
//! the connection's share of the memory budget to the RPCs in every request's extensions, and
//! its peer address and what its TLS handshake established. Each `log.v1.Log` call is
//! authenticated here, before any handler runs: an unauthenticated one is answered
//! `UNAUTHENTICATED` at once; the others carry their [`Caller`](super::security::Caller) to the
//! handler in the extensions. Every call is counted, timed and traced here (see `metrics/grpc.rs`): the
//! handler runs inside the call's span.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::body::Incoming;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{Service, http};
use tonic::service::Routes;
use tonic_health::pb::health_server::{Health, HealthServer};
use tracing::Instrument;

use super::ServerError;
use super::budget::Budget;
use super::config::ServerConfig;
use super::drain::Drain;
use super::handle::Registry;
use super::metrics::Metrics;
use super::rpc::LogService;
use super::security::{Peer, Security};
use super::status;
use crate::api::v1::log_server::LogServer;

/// The path prefix of the `log.v1.Log` service's calls.
const LOG_SERVICE_PREFIX: &str = "/log.v1.Log/";
/// The path prefix of the internal Raft service's calls between cluster nodes.
const RAFT_SERVICE_PREFIX: &str = "/girok.raft.v1.Raft/";

/// Every service the server answers, as one hyper service. Cheap to clone.
#[derive(Clone)]
pub(super) struct Router {
    routes: Routes,
    /// The connection's share of the memory budget.
    budget: Budget,
    metrics: Metrics,
    /// The connection's peer, for the calls' spans (`None` for the template router).
    peer: Option<SocketAddr>,
    /// What the connection's TLS handshake established about the client.
    identity: Peer,
    security: Security,
    /// Set once a call on the connection has authenticated.
    proven: Arc<AtomicBool>,
}

impl Router {
    /// The Log service over `registry`, with `health` and reflection (v1 and v1alpha) beside it.
    pub(super) fn new(
        registry: Registry,
        config: Arc<ServerConfig>,
        drain: Drain,
        health: HealthServer<impl Health>,
        budget: Budget,
        metrics: Metrics,
    ) -> Result<Self, ServerError> {
        let (decode, encode) = (config.max_decoding_message_size, config.max_encoding_message_size);
        let security = config.security.clone();
        let log_service = LogServer::new(LogService::new(registry, Arc::clone(&config), drain))
            .max_decoding_message_size(decode)
            .max_encoding_message_size(encode)
            // Compressed only when a client asks: plain clients (grpcurl) see no change.
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(crate::api::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        };
        let cluster = config.cluster.clone();
        let mut routes = Routes::new(log_service)
            .add_service(health)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?);
        if let Some(cluster) = cluster {
            // Raft between nodes, on the same port: the service admits members only.
            routes = routes.add_service(cluster.service().into_server());
        }
        let (identity, proven) = (Peer::default(), Arc::new(AtomicBool::new(false)));
        Ok(Self { routes, budget, metrics, peer: None, identity, security, proven })
    }

    /// The router for one connection from `peer`, whose RPCs buffer records within `budget`.
    pub(super) fn for_connection(&self, budget: Budget, peer: SocketAddr) -> Self {
        let proven = Arc::new(AtomicBool::new(false));
        Self { budget, peer: Some(peer), proven, ..self.clone() }
    }

    /// Turns true once a call on this connection has authenticated.
    pub(super) fn proven(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.proven)
    }

    /// This connection's router once its TLS handshake established `identity`.
    pub(super) fn with_identity(self, identity: Peer) -> Self {
        Self { identity, ..self }
    }
}

impl hyper::service::Service<http::Request<Incoming>> for Router {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        // The RPCs find the connection's share of the memory budget here.
        request.extensions_mut().insert(self.budget.clone());
        let call = self.metrics.start_call(request.uri().path(), self.peer);
        let span = call.span().clone();
        // The Log service's calls need a caller; health and reflection are open to anyone who
        // completed the handshake.
        if request.uri().path().starts_with(LOG_SERVICE_PREFIX) {
            match self.security.authenticate(request.headers(), &self.identity) {
                Ok(caller) => {
                    self.proven.store(true, Ordering::Relaxed);
                    request.extensions_mut().insert(caller);
                }
                Err(status) => {
                    let refused = call.respond(status.into_http());
                    return Box::pin(std::future::ready(Ok(refused)));
                }
            }
        }
        // Under TLS, Raft traffic comes only from nodes proving themselves with a certificate the
        // cluster's CA signed (nodes present theirs; a token is never enough). The service
        // itself then admits members only.
        if request.uri().path().starts_with(RAFT_SERVICE_PREFIX)
            && self.security.is_tls()
            && !self.identity.is_certified()
        {
            let status = tonic::Status::unauthenticated(
                "Raft calls between cluster nodes need a client certificate",
            );
            return Box::pin(std::future::ready(Ok(call.respond(status.into_http()))));
        }
        if request.uri().path().starts_with(RAFT_SERVICE_PREFIX) {
            // The service checks the certificate names the node the call claims to come from.
            let name = self.identity.subject.clone();
            request.extensions_mut().insert(crate::cluster::service::PeerCertificate(name));
            self.proven.store(true, Ordering::Relaxed);
        }
        let request = request.map(|body| call.request_body(body));
        // The axum router behind `Routes` is always ready, so `poll_ready` can be skipped.
        let mut routes = self.routes.clone();
        Box::pin(
            async move {
                let response = routes.call(request).await?;
                Ok(call.respond(status::rewrite_decode_limit(response)))
            }
            .instrument(span),
        )
    }
}
