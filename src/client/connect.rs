//! [`Connect`]: how to reach a girok server, built up before connecting: its address, for TLS
//! what to trust and who to be, a bearer token, and how long connecting may take.
//!
//! - `http://HOST:PORT` is plaintext; a CA or a client identity given with it is an error
//!   ("use https://"), never silently dropped.
//! - `https://HOST:PORT` is TLS (rustls, with the `ring` provider). The server's certificate is
//!   checked against the CA given, or the system's roots when none is; it must name `HOST`
//!   (a DNS name, or an IP address in its subjectAltName). A client identity (certificate and
//!   key) is presented when the server asks, as mutual TLS does.
//! - The token goes on every call, streams included, as `authorization: Bearer TOKEN` (see
//!   `transport`); it is never printed, `Debug` included.
//!
//! Files are read when [`Connect::connect`] runs, so the builder itself cannot fail; an
//! unreadable file, or one that holds no PEM item of the kind needed, fails the connect with
//! an error naming it.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use super::transport::bearer;
use super::{Client, ClientError, Result, Transport};

/// How to reach a girok server: [`Connect::new`], then what the server needs, then
/// [`Connect::connect`].
///
/// ```no_run
/// # async fn example() -> girok::client::Result<()> {
/// use girok::client::Connect;
///
/// let mut client = Connect::new("https://girok.internal:8400")
///     .ca_file("ca.pem")
///     .identity_files("alice.pem", "alice-key.pem")
///     .token(std::env::var("GIROK_TOKEN").unwrap_or_default())
///     .connect()
///     .await?;
/// client.log("orders").produce("hello").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Connect {
    addr: String,
    /// What the server's certificate must chain to; the system's roots when absent.
    ca: Option<Pem>,
    /// The certificate and key presented to a server that asks for one.
    identity: Option<(Pem, Pem)>,
    token: Option<Token>,
    /// Bounds connecting (TCP, TLS and HTTP/2 handshakes), and every reconnect.
    timeout: Option<Duration>,
}

impl Connect {
    /// Options for `addr`, `http://HOST:PORT` or `https://HOST:PORT`, with nothing else set:
    /// plaintext, or TLS trusting the system's roots; no client identity, no token, no
    /// timeout of its own.
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into(), ca: None, identity: None, token: None, timeout: None }
    }

    /// Trusts the CA certificates (PEM) in the file at `path`, and only them.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca = Some(Pem::File(path.as_ref().to_owned()));
        self
    }

    /// Trusts the CA certificates in `pem`, and only them.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(Pem::Bytes(pem.into()));
        self
    }

    /// Presents the certificate (PEM, the chain after it if any) in the file at `cert` and
    /// its private key (PEM) in the file at `key`: mutual TLS.
    pub fn identity_files(mut self, cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Self {
        let (cert, key) = (cert.as_ref().to_owned(), key.as_ref().to_owned());
        self.identity = Some((Pem::File(cert), Pem::File(key)));
        self
    }

    /// Presents the certificate in `cert` and its private key in `key`, both PEM.
    pub fn identity_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((Pem::Bytes(cert.into()), Pem::Bytes(key.into())));
        self
    }

    /// Sends `authorization: Bearer TOKEN` on every call. A token must be visible ASCII
    /// without spaces; any other fails [`Connect::connect`] with
    /// [`ClientError::InvalidToken`].
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Token(token.into()));
        self
    }

    /// Gives up connecting after `timeout` ([`ClientError::Timeout`]); reconnects after a
    /// dropped connection are bounded the same way.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// These options for another address: how a [`ClusterClient`](super::ClusterClient)
    /// reaches each node.
    pub(super) fn at(&self, addr: String) -> Self {
        Self { addr, ..self.clone() }
    }

    /// Whether a CA or a client identity was given: options that only TLS can use.
    pub(super) fn has_tls_settings(&self) -> bool {
        self.ca.is_some() || self.identity.is_some()
    }

    /// The connect timeout, if one was set.
    pub(super) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Connects, and answers a client whose calls carry the token, if any.
    pub async fn connect(&self) -> Result<Client> {
        let authorization = match &self.token {
            Some(Token(token)) => Some(bearer(token).ok_or(ClientError::InvalidToken)?),
            None => None,
        };
        let endpoint = self.endpoint()?;
        let connecting = endpoint.connect();
        let connected = match self.timeout {
            Some(limit) => tokio::time::timeout(limit, connecting)
                .await
                .map_err(|_| ClientError::Timeout { addr: self.addr.clone(), after: limit })?,
            None => connecting.await,
        };
        let channel = connected.map_err(|err| {
            let peer = endpoint.uri().authority().map(|a| a.to_string());
            if let Some(reason) = tls_failure(&err) {
                return ClientError::Handshake { peer, reason };
            }
            // The endpoint's own TCP connect timeout, which may fire before ours.
            match (self.timeout, timed_out(&err)) {
                (Some(after), true) => ClientError::Timeout { addr: self.addr.clone(), after },
                _ => ClientError::Connect(err),
            }
        })?;
        Ok(Client::with_transport(Transport::new(channel, authorization)))
    }

    /// The endpoint these options describe, files read and checked.
    fn endpoint(&self) -> Result<Endpoint> {
        let invalid = |reason: String| ClientError::Address { addr: self.addr.clone(), reason };
        if !self.addr.contains("://") {
            return Err(invalid(format!(
                "it needs a scheme: http://{0} (plaintext) or https://{0} (TLS)",
                self.addr
            )));
        }
        let mut endpoint =
            Endpoint::from_shared(self.addr.clone()).map_err(|err| invalid(root_cause(&err)))?;
        if let Some(timeout) = self.timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        match endpoint.uri().scheme_str() {
            Some("https") => {
                let tls = self.tls_config(endpoint.uri().host())?;
                endpoint.tls_config(tls).map_err(|err| ClientError::TlsSettings(root_cause(&err)))
            }
            Some("http") if self.ca.is_none() && self.identity.is_none() => Ok(endpoint),
            Some("http") => {
                Err(invalid("a CA or a client certificate needs TLS: use https://".to_string()))
            }
            _ => Err(invalid("use http:// (plaintext) or https:// (TLS)".to_string())),
        }
    }

    /// The TLS settings for a server at `host`.
    fn tls_config(&self, host: Option<&str>) -> Result<ClientTlsConfig> {
        let mut tls = ClientTlsConfig::new();
        // The server's certificate must name the host as written; tonic would take the URI's
        // host too, but keeps an IPv6 address's brackets, which no certificate names.
        if let Some(host) = host {
            tls = tls.domain_name(host.trim_start_matches('[').trim_end_matches(']'));
        }
        if let Some(timeout) = self.timeout {
            tls = tls.timeout(timeout);
        }
        tls = match &self.ca {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(ca.load(CA)?)),
            None => tls.with_native_roots(),
        };
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert.load(CERT)?, key.load(KEY)?));
        }
        Ok(tls)
    }
}

/// What a PEM input must hold, to name it in errors and check it before rustls does (rustls
/// skips what it cannot parse, so a CA file with no certificate would trust nothing, silently).
struct Kind {
    /// As errors name the input: "the CA certificate ca.pem …".
    what: &'static str,
    /// What its PEM must contain.
    marker: &'static str,
    /// As errors name what is missing.
    item: &'static str,
}

const CA: Kind =
    Kind { what: "CA certificate", marker: "-----BEGIN CERTIFICATE-----", item: "certificate" };
const CERT: Kind =
    Kind { what: "client certificate", marker: "-----BEGIN CERTIFICATE-----", item: "certificate" };
const KEY: Kind = Kind { what: "client key", marker: "PRIVATE KEY-----", item: "private key" };

/// PEM text, or the file that holds it.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Pem {
    /// The PEM text, checked to hold at least one item of `kind`.
    fn load(&self, kind: Kind) -> Result<Vec<u8>> {
        let (bytes, origin) = match self {
            Pem::File(path) => {
                // A few kilobytes, read once per connect: not worth a blocking-pool hop.
                let bytes = std::fs::read(path).map_err(|source| ClientError::ReadFile {
                    what: kind.what,
                    path: path.clone(),
                    source,
                })?;
                (bytes, path.display().to_string())
            }
            Pem::Bytes(bytes) => (bytes.clone(), "given".to_string()),
        };
        let holds = bytes.windows(kind.marker.len()).any(|w| w == kind.marker.as_bytes());
        if !holds {
            return Err(ClientError::InvalidPem { what: kind.what, origin, item: kind.item });
        }
        Ok(bytes)
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pem::File(path) => f.debug_tuple("File").field(path).finish(),
            // A key's PEM is a secret too.
            Pem::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

/// A bearer token; its `Debug` never shows it.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// rustls's words for why a handshake failed, if `err` came from one.
pub(super) fn tls_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // tokio-rustls wraps rustls's error in an io::Error, whose `source` skips it; an alert
        // the server sent after the handshake (refusing this client's certificate under TLS
        // 1.3) reaches us as rustls's words only.
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            let text = inner.to_string();
            if text.starts_with("received fatal alert: ") {
                return Some(text);
            }
        }
        next = err.source();
    }
    None
}

/// Whether a timeout (tokio's, or an I/O error saying so) is among `err`'s causes.
fn timed_out(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        let io_timeout = err.downcast_ref::<io::Error>().map(io::Error::kind);
        if err.is::<tokio::time::error::Elapsed>() || io_timeout == Some(io::ErrorKind::TimedOut) {
            return true;
        }
        next = err.source();
    }
    false
}

/// The innermost cause of `err`: tonic's own words are only "transport error".
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut err = err;
    while let Some(source) = err.source() {
        err = source;
    }
    err.to_string()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Connect;
    use crate::client::ClientError;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";

    async fn connect(options: Connect) -> ClientError {
        options.connect().await.expect_err("connecting should fail")
    }

    #[tokio::test]
    async fn tls_settings_with_a_plaintext_address_say_use_https() {
        // A CA or an identity with http:// would otherwise be dropped and the call sent in the
        // clear.
        for options in [
            Connect::new("http://127.0.0.1:1").ca_pem(CERT),
            Connect::new("http://127.0.0.1:1").identity_pem(CERT, KEY),
        ] {
            let err = connect(options).await;
            assert!(matches!(err, ClientError::Address { .. }), "{err:?}");
            assert!(err.to_string().ends_with("use https://"), "{err}");
        }
    }

    #[tokio::test]
    async fn an_address_without_a_scheme_is_refused_with_both_spellings() {
        let err = connect(Connect::new("127.0.0.1:8400")).await;
        assert_eq!(
            err.to_string(),
            "invalid address \"127.0.0.1:8400\": it needs a scheme: http://127.0.0.1:8400 \
             (plaintext) or https://127.0.0.1:8400 (TLS)"
        );
    }

    #[tokio::test]
    async fn an_unreadable_file_is_named() {
        let err = connect(Connect::new("https://127.0.0.1:1").ca_file("/no/such/ca.pem")).await;
        assert!(matches!(err, ClientError::ReadFile { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.starts_with("cannot read the CA certificate /no/such/ca.pem: "), "{text}");
    }

    #[tokio::test]
    async fn a_file_without_the_pem_item_it_needs_is_named() {
        // rustls skips what it cannot parse: a CA file of garbage would silently trust nothing.
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca, key) = (dir.path().join("ca.pem"), dir.path().join("key.pem"));
        std::fs::write(&ca, "not a certificate").expect("write");
        std::fs::write(&key, CERT).expect("write");
        let err = connect(Connect::new("https://127.0.0.1:1").ca_file(&ca)).await;
        assert_eq!(
            err.to_string(),
            format!("the CA certificate {} holds no PEM certificate", ca.display())
        );
        let options = Connect::new("https://127.0.0.1:1").identity_files(&ca, &key);
        let err = connect(options.clone()).await;
        assert!(err.to_string().starts_with("the client certificate"), "{err}");
        std::fs::write(&ca, CERT).expect("write");
        let err = connect(options).await;
        assert_eq!(
            err.to_string(),
            format!("the client key {} holds no PEM private key", key.display())
        );
    }

    #[tokio::test]
    async fn a_token_never_shows_in_debug_output_or_errors() {
        let options = Connect::new("http://127.0.0.1:1")
            .token("line\nbreak-s3cret")
            .identity_pem(CERT, KEY)
            .connect_timeout(Duration::from_secs(1));
        let printed = format!("{options:?}");
        assert!(!printed.contains("s3cret") && !printed.contains("PRIVATE"), "{printed}");
        let err = connect(options).await;
        assert!(matches!(err, ClientError::InvalidToken), "{err:?}");
        assert!(!format!("{err} {err:?}").contains("s3cret"));
    }
}
