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

use tonic::Status;
use tonic::codegen::http::HeaderMap;

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
}

impl Caller {
    pub(super) fn new(subject: Option<Arc<str>>, acl: Option<Arc<Acl>>) -> Self {
        Self { subject, acl }
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

    /// Whether `ListLogs` shows the caller the log `log`: when it may consume or administer it.
    pub(crate) fn may_list(&self, log: &str) -> bool {
        self.authorize(Action::Consume, log).is_ok() || self.authorize(Action::Admin, log).is_ok()
    }
}

/// What a connection's TLS handshake established about the client.
#[derive(Clone, Debug, Default)]
pub(crate) struct Peer {
    /// The verified client certificate's Common Name; `None` without one (or without TLS).
    pub(crate) subject: Option<Arc<str>>,
    /// Whether the client presented a certificate that was verified (it may lack a CN).
    pub(crate) certified: bool,
}

/// The subject of a request, following the table in the module doc.
pub(super) fn subject(
    headers: &HeaderMap,
    peer: &Peer,
    tokens: Option<&Tokens>,
) -> Result<Option<Arc<str>>, Status> {
    if let Some(tokens) = tokens {
        return match headers.get("authorization") {
            Some(value) => match bearer(value.as_bytes()).and_then(|token| tokens.subject(token)) {
                Some(subject) => Ok(Some(Arc::from(subject))),
                None => Err(status::unauthenticated("the bearer token is not valid")),
            },
            None if peer.subject.is_some() => Ok(peer.subject.clone()),
            None if peer.certified => Err(no_common_name()),
            None => Err(status::unauthenticated(
                "no credentials: send `authorization: Bearer TOKEN` or a client certificate",
            )),
        };
    }
    match (&peer.subject, peer.certified) {
        (None, true) => Err(no_common_name()),
        (subject, _) => Ok(subject.clone()),
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
