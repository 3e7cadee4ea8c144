//! The server's rustls configurations, built from the certificate, key and client CA the flags
//! name: one for the gRPC port (ALPN `h2`, client certificates as the mode says) and one for the
//! admin listener (ALPN `http/1.1`, no client certificate asked, so probes and Prometheus reach
//! it). Both use the `ring` provider, never the process-wide default.
//!
//! A reload builds new configurations and swaps them in: connections accepted afterwards use
//! them, connections already open keep the ones they were accepted with.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

/// Which client certificates the gRPC port asks for.
#[derive(Clone, Debug)]
pub(crate) enum ClientCerts {
    /// None: anyone who trusts the server may connect.
    NotAsked,
    /// Every client must present one that chains to these roots (mutual TLS).
    Required(Arc<RootCertStore>),
    /// Asked for and verified against these roots when presented, but a client may connect
    /// without one (it must then present a token).
    Optional(Arc<RootCertStore>),
}

/// The two listeners' configurations, built together from one certificate.
#[derive(Debug)]
pub(crate) struct TlsConfigs {
    pub(crate) grpc: Arc<rustls::ServerConfig>,
    pub(crate) admin: Arc<rustls::ServerConfig>,
}

/// Builds both configurations around `key` (the certificate chain and its private key).
pub(crate) fn configs(key: Arc<CertifiedKey>, clients: &ClientCerts) -> Result<TlsConfigs, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = Arc::new(Fixed(key));
    let versions = |provider: &Arc<CryptoProvider>| {
        rustls::ServerConfig::builder_with_provider(Arc::clone(provider))
            .with_safe_default_protocol_versions()
            .map_err(|err| format!("TLS versions: {err}"))
    };
    let mut grpc = match clients {
        ClientCerts::NotAsked => versions(&provider)?.with_no_client_auth(),
        ClientCerts::Required(roots) | ClientCerts::Optional(roots) => {
            let builder = WebPkiClientVerifier::builder_with_provider(
                Arc::clone(roots),
                Arc::clone(&provider),
            );
            let builder = match clients {
                ClientCerts::Optional(_) => builder.allow_unauthenticated(),
                _ => builder,
            };
            let verifier = builder.build().map_err(|err| format!("client CA: {err}"))?;
            versions(&provider)?.with_client_cert_verifier(verifier)
        }
    }
    .with_cert_resolver(resolver.clone());
    grpc.alpn_protocols = vec![b"h2".to_vec()];
    let mut admin = versions(&provider)?.with_no_client_auth().with_cert_resolver(resolver);
    admin.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConfigs { grpc: Arc::new(grpc), admin: Arc::new(admin) })
}

/// Answers every handshake with the one certificate it holds.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
