//! [`Caller`]: who a request comes from, and what the access-control list lets them do.
//!
//! [`Security::authenticate`](super::Security::authenticate) makes one per `log.v1.Log` request
//! (the router does, before any handler runs) from the request's `authorization` header and the
//! Common Name of the client certificate its connection verified:
//!
//! | tokens configured | `authorization` header | client certificate | subject |
//! |---|---|---|---|
//! | yes | a known `Bearer` token | any | the token's (even beside a valid certificate) |
//! | yes | anything else | any | `UNAUTHENTICATED` |
//! | yes | none | verified, with a CN | the certificate's CN |
//! | yes | none | none | `UNAUTHENTICATED` |
//! | no | ignored | verified, with a CN | the certificate's CN |
//! | no | ignored | required but without a CN | `UNAUTHENTICATED` |
//! | no | ignored | none (not asked) | anonymous: allowed everything, as no ACL can be set |
//!
//! Every handler then asks [`Caller::authorize`] before it touches a log: the registry takes a
//! caller on each lookup, so no RPC can reach a log without the check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustls::pki_types::CertificateDer;
use tokio::sync::watch;
use tonic::Status;
use tonic::codegen::http::HeaderMap;

use super::Security;
use super::acl::{Acl, Action};
use super::tokens::Tokens;
use crate::server::status;

/// The subject of a request and the access-control list in force when it arrived.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// `None` only where nothing identifies clients (then there is no ACL either).
    subject: Option<Arc<str>>,
    /// `None`: every authenticated caller may do anything.
    acl: Option<Arc<Acl>>,
    /// How the caller proved its subject, to prove it again after a reload.
    proof: Proof,
    security: Security,
}

/// What a caller's subject rests on.
#[derive(Clone)]
pub(super) enum Proof {
    /// Nothing: an anonymous caller.
    Nothing,
    /// A bearer token (kept to be checked again after a reload; never shown).
    Token(Arc<[u8]>),
    /// The client certificate its connection verified.
    Certificate(Peer),
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proof::Nothing => "Nothing",
            Proof::Token(_) => "Token(..)",
            Proof::Certificate(_) => "Certificate",
        })
    }
}

impl Caller {
    pub(super) fn new(
        subject: Option<Arc<str>>,
        acl: Option<Arc<Acl>>,
        proof: Proof,
        security: Security,
    ) -> Self {
        Self { subject, acl, proof, security }
    }

    /// `Ok` when the caller may do `action` on the log `log`; otherwise `PERMISSION_DENIED`
    /// naming the subject, the action and the log.
    pub(crate) fn authorize(&self, action: Action, log: &str) -> Result<(), Status> {
        let Some(acl) = &self.acl else { return Ok(()) };
        match &self.subject {
            Some(subject) if acl.allows(subject, log, action) => Ok(()),
            subject => Err(status::permission_denied(subject.as_deref(), action, log)),
        }
    }

    /// Whether the caller may change the cluster's membership (`AddServer`, `RemoveServer`):
    /// when the ACL gives it `admin` on every log (a rule whose log pattern is `*`).
    pub(crate) fn authorize_cluster(&self) -> Result<(), Status> {
        self.authorize(Action::Admin, "*")
    }

    /// Whether `ListLogs` shows the caller the log `log`: when it may consume or administer it.
    pub(crate) fn may_list(&self, log: &str) -> bool {
        self.authorize(Action::Consume, log).is_ok() || self.authorize(Action::Admin, log).is_ok()
    }

    /// A guard for a stream that does `action` on `log` for as long as it runs: after every
    /// reload it proves the caller again and checks the new ACL (see [`Guard`]).
    pub(crate) fn guard(&self, action: Action, log: &str) -> Guard {
        let mut reloads = self.security.reloads();
        reloads.mark_unchanged();
        Guard { caller: self.clone(), action, log: log.to_string(), reloads }
    }

    /// This caller proved again under the files in force now, and authorized for `action` on
    /// `log`: `UNAUTHENTICATED` when its token or certificate is no longer accepted,
    /// `PERMISSION_DENIED` when the ACL no longer allows it.
    fn recheck(&self, action: Action, log: &str) -> Result<Caller, Status> {
        let subject = match &self.proof {
            Proof::Nothing => self.subject.clone(),
            Proof::Token(token) => Some(self.security.token_subject(token).ok_or_else(|| {
                status::unauthenticated(
                    "the bearer token is no longer valid (the server reloaded its tokens)",
                )
            })?),
            Proof::Certificate(peer) => {
                self.security.reverify(peer)?;
                peer.subject.clone()
            }
        };
        let caller = Caller { subject, acl: self.security.acl(), ..self.clone() };
        caller.authorize(action, log)?;
        Ok(caller)
    }
}

/// Keeps a long-running stream within what the security files allow: the files can change under
/// it (SIGHUP), and a revoked token, a certificate whose CA is no longer trusted, or a withdrawn
/// grant ends the stream with `UNAUTHENTICATED` or `PERMISSION_DENIED` before it moves another
/// record.
pub(crate) struct Guard {
    caller: Caller,
    action: Action,
    log: String,
    /// Changes on every reload.
    reloads: watch::Receiver<u64>,
}

impl Guard {
    /// `Ok` unless a reload since the last check withdrew the stream's permission. Cheap when
    /// nothing was reloaded: call it before every batch.
    pub(crate) fn check(&mut self) -> Result<(), Status> {
        if !self.reloads.has_changed().unwrap_or(false) {
            return Ok(());
        }
        self.reloads.mark_unchanged();
        self.caller = self.caller.recheck(self.action, &self.log)?;
        Ok(())
    }

    /// Resolves with the status that ends the stream once a reload withdraws its permission;
    /// never otherwise. Cancel-safe.
    pub(crate) async fn revoked(&mut self) -> Status {
        loop {
            if self.reloads.changed().await.is_err() {
                return std::future::pending().await;
            }
            if let Err(status) = self.check_changed() {
                return status;
            }
        }
    }

    fn check_changed(&mut self) -> Result<(), Status> {
        self.reloads.mark_unchanged();
        self.caller = self.caller.recheck(self.action, &self.log)?;
        Ok(())
    }
}

/// What a connection's TLS handshake established about the client. Cheap to clone: clones share
/// the verification state.
#[derive(Clone, Debug, Default)]
pub(crate) struct Peer {
    /// The verified client certificate's Common Name; `None` without one (or without TLS).
    pub(crate) subject: Option<Arc<str>>,
    /// The verified certificate chain, leaf first; `None` when the client presented none.
    pub(super) chain: Option<Arc<[CertificateDer<'static>]>>,
    /// The reload the chain was last verified under: after a reload it is verified again
    /// against the client CA then in force, once, on the connection's next call.
    pub(super) verified_at: Arc<AtomicU64>,
}

impl Peer {
    /// The identity of a client that presented `chain` (leaf first), verified by the handshake
    /// of a connection accepted at reload `epoch`.
    pub(crate) fn certified(chain: Option<&[CertificateDer<'_>]>, epoch: u64) -> Self {
        let chain: Option<Arc<[CertificateDer<'static>]>> = chain
            .filter(|chain| !chain.is_empty())
            .map(|chain| chain.iter().map(|der| der.clone().into_owned()).collect());
        let subject = chain.as_ref().and_then(|chain| super::common_name(&chain[0])).map(Arc::from);
        Self { subject, chain, verified_at: Arc::new(AtomicU64::new(epoch)) }
    }

    /// Whether the client presented a certificate (verified, or the handshake would have
    /// failed).
    pub(crate) fn is_certified(&self) -> bool {
        self.chain.is_some()
    }

    /// The reload this peer's chain was last verified under.
    pub(super) fn verified_at(&self) -> u64 {
        self.verified_at.load(Ordering::Acquire)
    }

    pub(super) fn set_verified_at(&self, epoch: u64) {
        self.verified_at.store(epoch, Ordering::Release);
    }
}

/// The subject of a request, following the table in the module doc, and what it rests on.
pub(super) fn subject(
    headers: &HeaderMap,
    peer: &Peer,
    tokens: Option<&Tokens>,
) -> Result<(Option<Arc<str>>, Proof), Status> {
    let certified = || (peer.subject.clone(), Proof::Certificate(peer.clone()));
    if let Some(tokens) = tokens {
        return match headers.get("authorization") {
            Some(value) => {
                let token = bearer(value.as_bytes());
                match token.and_then(|token| Some((tokens.subject(token)?, token))) {
                    Some((subject, token)) => {
                        Ok((Some(Arc::from(subject)), Proof::Token(Arc::from(token))))
                    }
                    None => Err(status::unauthenticated("the bearer token is not valid")),
                }
            }
            None if peer.subject.is_some() => Ok(certified()),
            None if peer.is_certified() => Err(no_common_name()),
            None => Err(status::unauthenticated(
                "no credentials: send `authorization: Bearer TOKEN` or a client certificate",
            )),
        };
    }
    match (&peer.subject, peer.is_certified()) {
        (None, true) => Err(no_common_name()),
        (Some(_), _) => Ok(certified()),
        (None, false) => Ok((None, Proof::Nothing)),
    }
}

fn no_common_name() -> Status {
    status::unauthenticated("the client certificate has no Common Name to use as a subject")
}

/// The token of an `authorization: Bearer TOKEN` header (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn a_bearer_header_yields_its_token_in_any_case_of_the_scheme() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b""), None);
    }
}
