//! The admin HTTP listener (HTTP/1.1; over TLS with the gRPC port's certificate when that serves
//! TLS, never asking for a client certificate): what an operator or an orchestrator asks of a
//! running server, apart from the gRPC port.
//!
//! | path | answer |
//! |------|--------|
//! | `GET /metrics` | every series of [`Metrics`], in the Prometheus text format (OpenMetrics 1.0) |
//! | `GET /healthz` | 200 while the process serves this listener |
//! | `GET /readyz` | 200 while the gRPC server serves (every log open and recovered); 503 while it starts or drains |
//! | anything else | 404 |
//!
//! [`serve`] runs until its shutdown future resolves; the binary resolves it once the gRPC
//! server has drained, so `/readyz` answers 503 throughout the drain.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::logs::Logs;
use crate::server::{Metrics, Phase, Readiness, Security};

/// The content type of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the admin endpoints read. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Admin {
    metrics: Metrics,
    readiness: Readiness,
    /// Set once the logs are open: until then `/metrics` has no per-log series.
    logs: Arc<OnceLock<Arc<Logs>>>,
    /// Serves TLS with the gRPC port's certificate when that does (no client certificate asked).
    security: Security,
}

impl Admin {
    /// Endpoints over the server's `metrics` and `readiness` (share them with its
    /// [`ServerConfig`](crate::server::ServerConfig)).
    pub fn new(metrics: Metrics, readiness: Readiness) -> Self {
        Self {
            metrics,
            readiness,
            logs: Arc::new(OnceLock::new()),
            security: Security::plaintext(),
        }
    }

    /// These endpoints served over TLS with `security`'s certificate when it has one (reloads
    /// included), without asking for a client certificate, so probes and Prometheus reach them.
    pub fn with_security(self, security: Security) -> Self {
        Self { security, ..self }
    }

    /// Adds the per-log series of `logs` to `/metrics` from now on.
    pub fn set_logs(&self, logs: Arc<Logs>) {
        let _ = self.logs.set(logs);
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET {
            return text(StatusCode::NOT_FOUND, "not found\n");
        }
        match request.uri().path() {
            "/metrics" => {
                let (metrics, logs) = (self.metrics.clone(), self.logs.get().cloned());
                // Reading every log's offsets takes their locks: off the runtime's workers.
                let rendered =
                    tokio::task::spawn_blocking(move || metrics.render(logs.as_deref())).await;
                match rendered {
                    Ok(body) => {
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        response.headers_mut().insert(
                            header::CONTENT_TYPE,
                            header::HeaderValue::from_static(METRICS_CONTENT_TYPE),
                        );
                        response
                    }
                    Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "rendering failed\n"),
                }
            }
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.readiness.phase() {
                Phase::Serving => text(StatusCode::OK, "ready\n"),
                Phase::Starting => text(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
                Phase::Draining => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
            },
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// How long a client may take to send a request's headers (and, under TLS, its handshake).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Answers the requests of one connection.
async fn serve_http1<T>(io: T, admin: Admin)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let admin = admin.clone();
        async move { Ok::<_, Infallible>(admin.answer(request).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(err) = served {
        tracing::debug!(error = %err, "admin connection ended with an error");
    }
}

/// Serves `admin` on `listener` until `shutdown` resolves; then closes every admin connection.
pub async fn serve(listener: TcpListener, admin: Admin, shutdown: impl Future<Output = ()>) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let admin = admin.clone();
                    let tls = admin.security.admin_tls();
                    connections.spawn(async move {
                        let Some(tls) = tls else { return serve_http1(tcp, admin).await };
                        let accept = tokio_rustls::TlsAcceptor::from(tls).accept(tcp);
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, accept).await {
                            Ok(Ok(stream)) => serve_http1(stream, admin).await,
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "admin TLS handshake failed");
                            }
                            Err(_) => tracing::debug!(%peer, "admin TLS handshake timed out"),
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    connections.shutdown().await;
}
