//! Test clients of a secured server: trusting a CA, presenting a client certificate, sending a
//! bearer token, each through the generated client over a tonic channel.

use std::net::SocketAddr;
use std::path::PathBuf;

use girok::api::v1::OffsetsRequest;
use girok::api::v1::log_client::LogClient;
use tonic::codegen::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use super::certs::Pki;

/// How a test client presents itself.
#[derive(Clone, Default)]
pub struct Creds {
    /// The CA it trusts; `None`: plaintext.
    pub ca: Option<PathBuf>,
    /// Its certificate and key.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Its bearer token.
    pub token: Option<String>,
}

impl Creds {
    /// Trusting `pki`'s CA, with no certificate or token.
    pub fn tls(pki: &Pki) -> Self {
        Self { ca: Some(pki.ca()), ..Self::default() }
    }

    /// Trusting `pki`'s CA, presenting a certificate of it for `cn`.
    pub fn cert(pki: &Pki, cn: &str) -> Self {
        Self { identity: Some(pki.client(cn)), ..Self::tls(pki) }
    }

    /// Trusting `pki`'s CA, sending `token`.
    pub fn token(pki: &Pki, token: &str) -> Self {
        Self { token: Some(token.to_string()), ..Self::tls(pki) }
    }
}

/// Adds `authorization: Bearer TOKEN` to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            let value = format!("Bearer {token}").parse().expect("header value");
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// The generated client, sending the token (if any).
pub type Client = LogClient<InterceptedService<Channel, Bearer>>;

/// A channel to `addr` presenting `creds`; `Err` when connecting (the handshake) fails.
pub async fn channel(addr: SocketAddr, creds: &Creds) -> Result<Channel, tonic::transport::Error> {
    let Some(ca) = &creds.ca else {
        return Endpoint::from_shared(format!("http://{addr}")).expect("url").connect().await;
    };
    let read = |path: &PathBuf| std::fs::read(path).expect("read a PEM file");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)))
        .domain_name("localhost");
    if let Some((cert, key)) = &creds.identity {
        tls = tls.identity(Identity::from_pem(read(cert), read(key)));
    }
    Endpoint::from_shared(format!("https://{addr}")).expect("url").tls_config(tls)?.connect().await
}

/// A client of `addr` presenting `creds`; panics when connecting fails.
pub async fn client(addr: SocketAddr, creds: &Creds) -> Client {
    let channel = channel(addr, creds).await.expect("connect");
    LogClient::with_interceptor(channel, Bearer(creds.token.clone()))
}

/// Whether `creds` can make a call at all: connecting and one `Offsets`. Over TLS 1.3 the server
/// checks the client's certificate after the client considers the handshake done, so a refused
/// certificate can surface on the first call instead of on connect.
pub async fn reach(addr: SocketAddr, creds: &Creds) -> Result<(), String> {
    let channel = channel(addr, creds).await.map_err(|err| format!("connect: {err:?}"))?;
    let mut client = LogClient::with_interceptor(channel, Bearer(creds.token.clone()));
    client
        .offsets(OffsetsRequest::default())
        .await
        .map(drop)
        .map_err(|status| format!("{status:?}"))
}
