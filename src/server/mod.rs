//! The gRPC server: the `log.v1.Log` service over a registry of named [`Logs`], plus `grpc.health.v1` and
//! server reflection (v1 and v1alpha), served by [`run`] with explicit HTTP/2 limits and a
//! graceful shutdown.
//!
//! | file | owns |
//! |------|------|
//! | `mod.rs` | [`run`]: the accept loop, connections, draining |
//! | `config.rs` | [`ServerConfig`], every limit with its default |
//! | `router.rs` | the Log, health and reflection services behind one hyper service |
//! | `rpc/` | the `Log` RPCs: unary ones in `mod.rs`, `produce_stream.rs`, `consume_stream.rs`, `admin.rs` (named logs) |
//! | `handle.rs` | the async door every RPC reaches the registry and storage through |
//! | `wire.rs` | messages ↔ records, request validation |
//! | `status.rs` | storage errors → statuses with rich details |
//! | `drain.rs` | the shutdown signal endless streams watch |
//! | `ready.rs` | [`Readiness`]: starting, serving, draining, for `/readyz` |
//! | `metrics/` | [`Metrics`]: the Prometheus series and their rendering |
//! | `security/` | [`Security`]: TLS, callers' subjects (certificates, tokens), the access-control list |
//!
//! Dependencies point one way: `rpc` → `handle`, `wire`, `status` → storage and the API.
//!
//! [`run`] owns the accept loop and every connection task (a `JoinSet`), which is what lets it
//! enforce the grace period: on the shutdown signal it flips health to NOT_SERVING, stops
//! accepting, tells every connection to finish (HTTP/2 GOAWAY) and every endless stream to end
//! with `UNAVAILABLE`, waits up to [`ServerConfig::shutdown_grace`], then aborts what remains.
//! It never closes the logs: the caller does that once `run` returns.

mod budget;
mod config;
mod drain;
mod handle;
mod handshake;
mod metrics;
mod ready;
mod router;
mod rpc;
mod security;
mod status;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tonic_health::ServingStatus;

pub use config::ServerConfig;
pub use metrics::Metrics;
pub use ready::{Phase, Readiness};
pub use security::{Security, SecurityError, SecurityFiles};

use crate::logs::Logs;
use budget::Budget;
use drain::Drain;
use handle::Registry;
use router::Router;
use security::Peer;

/// The health-check name of the Log service.
pub const LOG_SERVICE_NAME: &str = "log.v1.Log";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A descriptor set could not be registered with reflection.
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The retention thread could not be started.
    #[error("starting the retention thread: {0}")]
    Retention(#[from] std::io::Error),
}

/// Serves the Log service, health and reflection on `listener` until `shutdown` resolves, then
/// drains as described in the module doc. Returns once every connection is gone.
pub async fn run(
    listener: TcpListener,
    logs: Arc<Logs>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    // Applies every log's retention until the server stops.
    let retention = logs.start_retention()?;
    let (drain_tx, drain_rx) = watch::channel(false);
    let drain = Drain::new(drain_rx);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status(LOG_SERVICE_NAME, ServingStatus::Serving).await;
    let mut config = config.fitted_to(logs.max_record_bytes());
    if config.advertise_addr.is_none() {
        config.advertise_addr = listener.local_addr().ok().map(|addr| addr.to_string());
    }
    let http2 = http2_builder(&config);
    let (shutdown_grace, handshake_timeout) = (config.shutdown_grace, config.handshake_timeout);
    let connection_slots = Arc::new(Semaphore::new(config.max_connections));
    let (budget, share) = (Budget::new(config.max_buffered_bytes), config.connection_share());
    let (metrics, readiness) = (config.metrics.clone(), config.readiness.clone());
    let security = config.security.clone();
    metrics.watch_budget(budget.clone());
    let cluster = config.cluster.clone();
    let service = Router::new(
        Registry::new(logs, cluster),
        Arc::new(config),
        drain.clone(),
        health_service,
        budget.connection(share),
        metrics,
    )?;
    readiness.set(Phase::Serving);

    // Each connection holds a permit; when none is left a new connection is closed on accept.
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(slot) = Arc::clone(&connection_slots).try_acquire_owned() else {
                        tracing::warn!(%peer, "connection limit reached: closing new connection");
                        continue;
                    };
                    let service = service.for_connection(budget.connection(share), peer);
                    let (http2, drain) = (http2.clone(), drain.clone());
                    // The configuration in force now: a reload applies to later connections.
                    let tls = security.grpc_tls();
                    let needs_credentials = security.needs_credentials();
                    connections.spawn(async move {
                        // Acks and tail records are small: send them now, not after Nagle's delay.
                        let _ = tcp.set_nodelay(true);
                        let limits = Limits { handshake_timeout, needs_credentials };
                        match tls {
                            None => serve_connection(http2, tcp, service, drain, limits).await,
                            Some((tls, epoch)) => {
                                let accepted = tls_handshake(tls, epoch, tcp, peer, handshake_timeout, drain.clone());
                                if let Some((stream, identity)) = accepted.await {
                                    let service = service.with_identity(identity);
                                    serve_connection(http2, stream, service, drain, limits).await;
                                }
                            }
                        }
                        drop(slot);
                    });
                }
                Err(err) => {
                    // Usually EMFILE: back off instead of spinning on a full descriptor table.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);

    readiness.set(Phase::Draining);
    tracing::info!(connections = connections.len(), "shutting down: draining");
    health.set_service_status("", ServingStatus::NotServing).await;
    health.set_service_status(LOG_SERVICE_NAME, ServingStatus::NotServing).await;
    let _ = drain_tx.send(true);
    let drained = tokio::time::timeout(shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            grace = ?shutdown_grace,
            "grace period over: aborting the remaining connections"
        );
        connections.shutdown().await;
    }
    // Stopping the retention thread joins it, which waits for a pass in progress (its unlinks):
    // on the blocking pool, not on a worker.
    if let Some(retention) = retention {
        let _ = tokio::task::spawn_blocking(move || drop(retention)).await;
    }
    tracing::info!("server stopped");
    Ok(())
}

/// Resolves after `timeout` if no call on the connection has authenticated by then (`proven` is
/// still false); never when there is nothing to prove (`None`) or it was proven.
async fn unproven(proven: Option<Arc<AtomicBool>>, timeout: Duration) {
    let Some(proven) = proven else { return std::future::pending().await };
    tokio::time::sleep(timeout).await;
    if proven.load(Ordering::Relaxed) {
        std::future::pending::<()>().await;
    }
}

/// The HTTP/2 settings every connection is served with.
fn http2_builder(config: &ServerConfig) -> hyper::server::conn::http2::Builder<TokioExecutor> {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .initial_stream_window_size(config.initial_stream_window)
        .initial_connection_window_size(config.initial_connection_window)
        .max_concurrent_streams(config.max_concurrent_streams)
        .keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .max_pending_accept_reset_streams(config.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(config.max_local_error_reset_streams)
        .max_header_list_size(config.max_header_list_size);
    builder
}

/// The TLS handshake of a new connection from `peer`, bounded by `timeout` (like the HTTP/2
/// handshake after it) and by the drain; answers the encrypted stream and the client's verified
/// identity, or `None` when the handshake failed (the reason is logged at debug: scanners and
/// probes fail it all day).
async fn tls_handshake(
    tls: Arc<rustls::ServerConfig>,
    epoch: u64,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    mut drain: Drain,
) -> Option<(tokio_rustls::server::TlsStream<TcpStream>, Peer)> {
    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(tcp);
    let stream = tokio::select! {
        accepted = tokio::time::timeout(timeout, accept) => match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!(%peer, "closing a connection that did not finish its TLS handshake in time");
                return None;
            }
        },
        () = drain.wait() => return None,
    };
    // A certificate the client presented has been verified by now: the handshake fails else.
    let identity = Peer::certified(stream.get_ref().1.peer_certificates(), epoch);
    Some((stream, identity))
}

/// How long a connection may go without proving itself.
#[derive(Clone, Copy)]
struct Limits {
    /// For the TLS handshake, the HTTP/2 preface, and (where credentials are needed) the first
    /// authenticated call.
    handshake_timeout: Duration,
    /// Whether calls need credentials the connection itself does not carry (tokens).
    needs_credentials: bool,
}

/// Serves one connection until the client closes it, or until the server drains (then GOAWAY and
/// wait for its streams; `run` aborts this task when the grace period is over). Where calls need
/// credentials, a connection that has made no authenticated call within the handshake timeout is
/// closed, so clients without credentials cannot hold connection slots.
async fn serve_connection<T>(
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    tcp: T,
    service: Router,
    mut drain: Drain,
    limits: Limits,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Limits { handshake_timeout, needs_credentials } = limits;
    let proven = service.proven();
    let proven = (needs_credentials && !proven.load(Ordering::Relaxed)).then_some(proven);
    let (tcp, handshake) = handshake::Watched::new(tcp);
    let connection = http2.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = handshake.missed(handshake_timeout) => {
            tracing::debug!("closing a connection that sent no HTTP/2 handshake in time");
            return;
        }
        () = unproven(proven, handshake_timeout) => {
            tracing::debug!("closing a connection that made no authenticated call in time");
            return;
        }
        () = drain.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, "connection ended with an error");
    }
}
