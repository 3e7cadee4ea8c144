//! Security: TLS on the gRPC port and the admin listener, who a caller is (a client
//! certificate's Common Name or a bearer token's subject), and what each caller may do to each
//! log (an access-control list). Off unless the flags turn it on: plaintext, anonymous and
//! unrestricted stays the zero-config default.
//!
//! | file | owns |
//! |------|------|
//! | `mod.rs` | [`Security`]: the files the flags name, loaded and reloaded (SIGHUP) |
//! | `files.rs` | reading the certificate, key and client CA PEM files |
//! | `tls.rs` | the rustls configurations of the two listeners |
//! | `tokens.rs` | the token file: `TOKEN SUBJECT` lines, compared in constant time |
//! | `acl.rs` | the access-control list, in casbin's CSV policy form |
//! | `caller.rs` | [`Caller`]: a request's subject, and the check every RPC makes |
//!
//! Each file a reload reads is read whole and checked before it replaces the one in force; a
//! file that fails to load leaves the previous one in force and is reported. Connections
//! already open keep the TLS configuration they were accepted with.

mod acl;
mod caller;
mod files;
mod tls;
mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tonic::Status;
use tonic::codegen::http::HeaderMap;

pub(crate) use acl::{Acl, Action};
pub(crate) use caller::{Caller, Peer};
pub(crate) use files::common_name;
use tls::{ClientCerts, TlsConfigs};
use tokens::Tokens;

/// The files the security flags name; every one is optional.
#[derive(Clone, Debug, Default)]
pub struct SecurityFiles {
    /// `--tls-cert`: the server's certificate chain (PEM), leaf first.
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`: the certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-ca`: the CA certificates client certificates must chain to (mutual TLS).
    pub tls_client_ca: Option<PathBuf>,
    /// `--auth-tokens`: lines of `TOKEN SUBJECT`.
    pub auth_tokens: Option<PathBuf>,
    /// `--acl`: the access-control list.
    pub acl: Option<PathBuf>,
}

/// Why the security configuration cannot be used. Every message names the flag and the file.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The flags do not fit together.
    #[error("{0}")]
    Flags(&'static str),
    /// A certificate, key or CA file could not be used.
    #[error(transparent)]
    File(#[from] files::FileError),
    /// A file could not be read.
    #[error("reading {flag} {}: {source}", path.display())]
    Read {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The token file is malformed.
    #[error("reading --auth-tokens {}: {source}", path.display())]
    Tokens {
        /// The file.
        path: PathBuf,
        /// The line at fault, and why (never a token).
        source: tokens::TokensError,
    },
    /// The ACL is malformed.
    #[error("reading --acl {}: {source}", path.display())]
    Acl {
        /// The file.
        path: PathBuf,
        /// The line at fault, and why.
        source: acl::AclError,
    },
    /// rustls refused the configuration.
    #[error("building the TLS configuration: {0}")]
    Tls(String),
}

/// The server's security: what the flags configured, with the files' current contents. Cheap
/// to clone; clones share the contents, so a [`reload`](Self::reload) reaches every listener.
#[derive(Clone, Debug, Default)]
pub struct Security {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    files: SecurityFiles,
    tls: ArcSwapOption<TlsConfigs>,
    tokens: ArcSwapOption<Tokens>,
    acl: ArcSwapOption<Acl>,
}

impl Security {
    /// Plaintext, anonymous, unrestricted: the default.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Checks that `files` fit together and loads every one: a missing, unreadable, malformed,
    /// mismatched or expired file is an error naming it.
    pub fn load(files: SecurityFiles) -> Result<Self, SecurityError> {
        match (&files.tls_cert, &files.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(SecurityError::Flags("--tls-cert and --tls-key go together"));
            }
            (None, None) if files.tls_client_ca.is_some() => {
                return Err(SecurityError::Flags(
                    "--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS)",
                ));
            }
            _ => {}
        }
        if files.acl.is_some() && files.tls_client_ca.is_none() && files.auth_tokens.is_none() {
            return Err(SecurityError::Flags(
                "--acl needs --tls-client-ca or --auth-tokens: without them no caller has a subject",
            ));
        }
        let shared = Shared {
            tls: ArcSwapOption::new(load_tls(&files)?.map(Arc::new)),
            tokens: ArcSwapOption::new(load_tokens(&files)?.map(Arc::new)),
            acl: ArcSwapOption::new(load_acl(&files)?.map(Arc::new)),
            files,
        };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// Re-reads every configured file. Each that loads replaces the one in force; each that
    /// fails is returned (and the previous one stays). Nothing configured: nothing to do.
    pub fn reload(&self) -> Vec<SecurityError> {
        let (shared, mut failed) = (&self.shared, Vec::new());
        match load_tls(&shared.files) {
            Ok(Some(tls)) => shared.tls.store(Some(Arc::new(tls))),
            Ok(None) => {}
            Err(err) => failed.push(err),
        }
        match load_tokens(&shared.files) {
            Ok(Some(tokens)) => shared.tokens.store(Some(Arc::new(tokens))),
            Ok(None) => {}
            Err(err) => failed.push(err),
        }
        match load_acl(&shared.files) {
            Ok(Some(acl)) => shared.acl.store(Some(Arc::new(acl))),
            Ok(None) => {}
            Err(err) => failed.push(err),
        }
        failed
    }

    /// Whether the gRPC port (and the admin listener) serve TLS.
    pub fn is_tls(&self) -> bool {
        self.shared.files.tls_cert.is_some()
    }

    /// Whether any file is configured (so a reload has something to read).
    pub fn is_configured(&self) -> bool {
        let files = &self.shared.files;
        self.is_tls() || files.auth_tokens.is_some() || files.acl.is_some()
    }

    /// One line saying what is on, for the startup log.
    pub fn describe(&self) -> String {
        let files = &self.shared.files;
        let transport = match (&files.tls_cert, &files.tls_client_ca) {
            (None, _) => "plaintext",
            (Some(_), None) => "TLS",
            (Some(_), Some(_)) if files.auth_tokens.is_some() => {
                "TLS, client certificates optional"
            }
            (Some(_), Some(_)) => "mutual TLS",
        };
        let tokens = self.shared.tokens.load().as_ref().map(|tokens| tokens.len());
        let rules = self.shared.acl.load().as_ref().map(|acl| acl.rules());
        format!(
            "{transport}; {}; {}",
            tokens.map_or("no tokens".to_string(), |n| format!("{n} token(s)")),
            rules.map_or("no ACL: every caller may do anything".to_string(), |n| {
                format!("ACL of {n} rule(s)")
            }),
        )
    }

    /// Refuses tokens sent in the clear to other machines: `--auth-tokens` on plaintext bound
    /// to a non-loopback address. Warns about plaintext on such an address.
    pub fn check_listen_addr(&self, addr: SocketAddr) -> Result<(), SecurityError> {
        if self.is_tls() || addr.ip().is_loopback() {
            return Ok(());
        }
        if self.shared.files.auth_tokens.is_some() {
            return Err(SecurityError::Flags(
                "--auth-tokens on plaintext bound to a non-loopback address would send tokens in \
                 the clear: add --tls-cert and --tls-key, or listen on loopback",
            ));
        }
        tracing::warn!(%addr, "serving plaintext on a non-loopback address: anyone on the network can read and write the logs; see README, \"Securing girok\"");
        Ok(())
    }

    /// The gRPC port's TLS configuration now in force; `None` for plaintext.
    pub(crate) fn grpc_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.shared.tls.load().as_ref().map(|tls| Arc::clone(&tls.grpc))
    }

    /// The admin listener's TLS configuration now in force; `None` for plaintext.
    pub(crate) fn admin_tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.shared.tls.load().as_ref().map(|tls| Arc::clone(&tls.admin))
    }

    /// The caller of a request with `headers` on a connection that established `peer`, or
    /// `UNAUTHENTICATED` (see `caller.rs`).
    pub(crate) fn authenticate(&self, headers: &HeaderMap, peer: &Peer) -> Result<Caller, Status> {
        let tokens = self.shared.tokens.load();
        let subject = caller::subject(headers, peer, tokens.as_deref())?;
        Ok(Caller::new(subject, self.shared.acl.load_full()))
    }

    /// The caller of a request that arrived without one (only a service used outside
    /// [`run`](crate::server::run) sees such): anonymous, under the ACL in force.
    pub(crate) fn anonymous(&self) -> Caller {
        Caller::new(None, self.shared.acl.load_full())
    }
}

fn load_tls(files: &SecurityFiles) -> Result<Option<TlsConfigs>, SecurityError> {
    let (Some(cert), Some(key)) = (&files.tls_cert, &files.tls_key) else { return Ok(None) };
    let certified = files::certified_key(cert, key)?;
    let clients = match &files.tls_client_ca {
        None => ClientCerts::NotAsked,
        Some(ca) if files.auth_tokens.is_some() => ClientCerts::Optional(files::client_roots(ca)?),
        Some(ca) => ClientCerts::Required(files::client_roots(ca)?),
    };
    tls::configs(certified, &clients).map(Some).map_err(SecurityError::Tls)
}

fn load_tokens(files: &SecurityFiles) -> Result<Option<Tokens>, SecurityError> {
    let Some(path) = &files.auth_tokens else { return Ok(None) };
    let text = read("--auth-tokens", path)?;
    let tokens = Tokens::parse(&text)
        .map_err(|source| SecurityError::Tokens { path: path.clone(), source })?;
    if tokens.is_empty() {
        tracing::warn!(path = %path.display(), "--auth-tokens names no token: only client certificates authenticate");
    }
    Ok(Some(tokens))
}

fn load_acl(files: &SecurityFiles) -> Result<Option<Acl>, SecurityError> {
    let Some(path) = &files.acl else { return Ok(None) };
    let text = read("--acl", path)?;
    Acl::parse(&text).map(Some).map_err(|source| SecurityError::Acl { path: path.clone(), source })
}

fn read(flag: &'static str, path: &Path) -> Result<String, SecurityError> {
    std::fs::read_to_string(path).map_err(|source| SecurityError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}
