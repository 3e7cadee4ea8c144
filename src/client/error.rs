//! [`ClientError`]: what a call fails with. The statuses a caller is expected to act on are
//! decoded from the status's `ErrorInfo` into variants carrying its metadata: an offset out of
//! range, a corrupt record, a log that does not exist or already does, and in a cluster a node
//! that is not the leader ([`ClientError::NotLeader`], with the leader it knows of) or a write
//! whose outcome is unknown because leadership changed ([`ClientError::LeaderChanged`]). Every
//! other status, and
//! one of those without the metadata, is passed through as is; except a status that a failed
//! TLS handshake caused (a server refusing this client's certificate, or its absence, says so
//! only once the first call is under way), which becomes [`ClientError::Handshake`].
//!
//! The rest are [`Connect`](super::Connect)'s: options that cannot work, files that cannot be
//! read, and connections that could not be made.

use std::path::PathBuf;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::connect::tls_failure;
use crate::api::errors::{key, reason};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `OUT_OF_RANGE`: `offset` lies outside the committed range `[lowest_offset, next_offset)`.
    /// Below `lowest_offset`, resume from `lowest_offset`; at or past `next_offset`, wait.
    #[error("offset {offset} is out of range [{lowest_offset}, {next_offset})")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: u64,
        /// The lowest offset the log held.
        lowest_offset: u64,
        /// The log's commit point.
        next_offset: u64,
    },
    /// `DATA_LOSS`: the record at `offset` is corrupt on the server. Skipping it is the caller's
    /// decision; the server never skips it.
    #[error("the record at offset {offset} is corrupt")]
    RecordCorrupt {
        /// The damaged record's offset.
        offset: u64,
    },
    /// `NOT_FOUND`: the log named `log` does not exist, or was deleted while a stream used it.
    #[error("log {log:?} does not exist")]
    LogNotFound {
        /// The log's name.
        log: String,
    },
    /// `ALREADY_EXISTS`: a log named `log` exists already.
    #[error("log {log:?} already exists")]
    LogExists {
        /// The log's name.
        log: String,
    },
    /// `UNAVAILABLE` `NOT_LEADER`: a write, a membership change or a linearizable read reached a
    /// node that is not the cluster's leader. Nothing was done, so retrying at the leader is
    /// safe; the node names the leader it knows of, or neither field when it knows none (during
    /// an election). [`ClusterClient`](super::ClusterClient) follows the hint by itself.
    #[error("{}", not_leader(*.leader_id, .leader_addr.as_deref()))]
    NotLeader {
        /// The id of the node believed to lead.
        leader_id: Option<u64>,
        /// Its address, `HOST:PORT`.
        leader_addr: Option<String>,
    },
    /// `UNAVAILABLE` `LEADER_CHANGED`: leadership changed while the write was in flight, so it
    /// may or may not have been done. Retrying it is at-least-once: a retried produce may append
    /// its record twice. The fields name the new leader when the node knows it.
    #[error(
        "leadership changed during the call, which may or may not have taken effect{}",
        leader_suffix(*.leader_id, .leader_addr.as_deref())
    )]
    LeaderChanged {
        /// The id of the node believed to lead now.
        leader_id: Option<u64>,
        /// Its address, `HOST:PORT`.
        leader_addr: Option<String>,
    },
    /// No answer came from `addr` within `after`: the time a
    /// [`ClusterClient`](super::ClusterClient) call had left of its retry budget. The call may or
    /// may not have taken effect.
    #[error("timed out after {} waiting for an answer from {addr}", humantime::format_duration(*after))]
    CallTimeout {
        /// The node asked, as a URL.
        addr: String,
        /// The time it was given.
        after: Duration,
    },
    /// Any other status (boxed: a `Status` is large).
    #[error("{}: {}", .0.code(), .0.message())]
    Status(Box<Status>),
    /// The connection could not be made.
    #[error("connecting: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The TLS handshake failed: the server's certificate is not trusted or does not name the
    /// host, or the server refused this client's certificate (or its absence). `reason` is
    /// rustls's; `peer` the server's `HOST:PORT` when known.
    #[error(
        "TLS handshake{} failed: {reason}",
        peer.as_ref().map(|peer| format!(" with {peer}")).unwrap_or_default()
    )]
    Handshake {
        /// The server, as `HOST:PORT`; unknown when the failure surfaced in a call.
        peer: Option<String>,
        /// Why, in rustls's words, e.g. `invalid peer certificate: UnknownIssuer`.
        reason: String,
    },
    /// Connecting took longer than [`Connect::connect_timeout`](super::Connect::connect_timeout).
    #[error("timed out after {} connecting to {addr}", humantime::format_duration(*after))]
    Timeout {
        /// The address connected to.
        addr: String,
        /// The limit.
        after: Duration,
    },
    /// The address is not one the client can connect to, or does not fit the other options
    /// (a CA or client certificate with an `http://` address).
    #[error("invalid address {addr:?}: {reason}")]
    Address {
        /// The address as given.
        addr: String,
        /// What is wrong, and what to write instead.
        reason: String,
    },
    /// A PEM file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    ReadFile {
        /// Which input: `CA certificate`, `client certificate` or `client key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM input holds no item of the kind it must (no certificate in a CA file, say).
    #[error("the {what} {origin} holds no PEM {item}")]
    InvalidPem {
        /// Which input: `CA certificate`, `client certificate` or `client key`.
        what: &'static str,
        /// The file's path, or `given` for PEM given in memory.
        origin: String,
        /// What it lacks: `certificate` or `private key`.
        item: &'static str,
    },
    /// rustls refused the TLS settings (a key that does not parse or does not match its
    /// certificate, no system roots to trust, …).
    #[error("unusable TLS settings: {0}")]
    TlsSettings(String),
    /// The bearer token cannot be sent: it is empty or holds a character outside visible
    /// ASCII (it is not repeated here, so it never reaches a log).
    #[error("the token must be visible ASCII without spaces")]
    InvalidToken,
}

impl ClientError {
    /// The gRPC code this error came from, if it came from a status.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::OffsetOutOfRange { .. } => Some(Code::OutOfRange),
            Self::RecordCorrupt { .. } => Some(Code::DataLoss),
            Self::LogNotFound { .. } => Some(Code::NotFound),
            Self::LogExists { .. } => Some(Code::AlreadyExists),
            Self::NotLeader { .. } | Self::LeaderChanged { .. } => Some(Code::Unavailable),
            Self::Status(status) => Some(status.code()),
            Self::CallTimeout { .. } => Some(Code::DeadlineExceeded),
            Self::Connect(_)
            | Self::Handshake { .. }
            | Self::Timeout { .. }
            | Self::Address { .. }
            | Self::ReadFile { .. }
            | Self::InvalidPem { .. }
            | Self::TlsSettings(_)
            | Self::InvalidToken => None,
        }
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        if let Some(reason) = tls_failure(&status) {
            return Self::Handshake { peer: None, reason };
        }
        let details = status.get_error_details();
        let info = details.error_info();
        let field = |name: &str| info.and_then(|i| i.metadata.get(name)?.parse::<u64>().ok());
        let log = || info.and_then(|i| i.metadata.get(key::LOG)).cloned();
        // An empty value is as good as none (a node that knows no leader may send either).
        let text = |name: &str| {
            info.and_then(|i| i.metadata.get(name)).filter(|value| !value.is_empty()).cloned()
        };
        match (status.code(), info.map(|i| i.reason.as_str())) {
            (Code::OutOfRange, Some(reason::OFFSET_OUT_OF_RANGE)) => {
                match (field(key::OFFSET), field(key::LOWEST_OFFSET), field(key::NEXT_OFFSET)) {
                    (Some(offset), Some(lowest_offset), Some(next_offset)) => {
                        Self::OffsetOutOfRange { offset, lowest_offset, next_offset }
                    }
                    _ => Self::Status(Box::new(status)),
                }
            }
            (Code::DataLoss, Some(reason::RECORD_CORRUPT)) => match field(key::OFFSET) {
                Some(offset) => Self::RecordCorrupt { offset },
                None => Self::Status(Box::new(status)),
            },
            (Code::NotFound, Some(reason::LOG_NOT_FOUND)) => match log() {
                Some(log) => Self::LogNotFound { log },
                None => Self::Status(Box::new(status)),
            },
            (Code::AlreadyExists, Some(reason::LOG_EXISTS)) => match log() {
                Some(log) => Self::LogExists { log },
                None => Self::Status(Box::new(status)),
            },
            (Code::Unavailable, Some(reason::NOT_LEADER)) => Self::NotLeader {
                leader_id: field(key::LEADER_ID),
                leader_addr: text(key::LEADER_ADDR),
            },
            (Code::Unavailable, Some(reason::LEADER_CHANGED)) => Self::LeaderChanged {
                leader_id: field(key::LEADER_ID),
                leader_addr: text(key::LEADER_ADDR),
            },
            _ => Self::Status(Box::new(status)),
        }
    }
}

/// [`ClientError::NotLeader`] in words.
fn not_leader(id: Option<u64>, addr: Option<&str>) -> String {
    match (id, addr) {
        (None, None) => "the server is not the leader, and knows of none (an election?)".into(),
        _ => format!("the server is not the leader{}", leader_suffix(id, addr)),
    }
}

/// `; the leader is node ID at ADDR`, with what is known of the two.
fn leader_suffix(id: Option<u64>, addr: Option<&str>) -> String {
    match (id, addr) {
        (Some(id), Some(addr)) => format!("; the leader is node {id} at {addr}"),
        (Some(id), None) => format!("; the leader is node {id}"),
        (None, Some(addr)) => format!("; the leader is at {addr}"),
        (None, None) => String::new(),
    }
}

/// The client's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic::{Code, Status};
    use tonic_types::{ErrorDetails, StatusExt};

    use super::ClientError;
    use crate::api::errors::{DOMAIN, key, reason};

    fn status(code: Code, reason: &str, metadata: &[(&str, &str)]) -> Status {
        let metadata: HashMap<String, String> =
            metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let details = ErrorDetails::with_error_info(reason, DOMAIN, metadata);
        Status::with_error_details(code, "refused", details)
    }

    #[test]
    fn not_leader_carries_the_leader_hint() {
        // The hint is what a cluster client follows, so both fields must survive decoding.
        let hinted = status(
            Code::Unavailable,
            reason::NOT_LEADER,
            &[(key::LEADER_ID, "3"), (key::LEADER_ADDR, "10.0.0.3:8400")],
        );
        let err = ClientError::from(hinted);
        assert!(
            matches!(&err, ClientError::NotLeader { leader_id: Some(3), leader_addr: Some(addr) }
                if addr == "10.0.0.3:8400"),
            "{err:?}"
        );
        assert_eq!(err.code(), Some(Code::Unavailable));
        assert_eq!(
            err.to_string(),
            "the server is not the leader; the leader is node 3 at 10.0.0.3:8400"
        );
    }

    #[test]
    fn not_leader_without_metadata_knows_no_leader() {
        // During an election a follower knows no leader: empty metadata, or empty values.
        for metadata in [&[][..], &[(key::LEADER_ID, ""), (key::LEADER_ADDR, "")][..]] {
            let err = ClientError::from(status(Code::Unavailable, reason::NOT_LEADER, metadata));
            assert!(
                matches!(err, ClientError::NotLeader { leader_id: None, leader_addr: None }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn leader_changed_is_its_own_variant_and_says_the_outcome_is_unknown() {
        // A caller must tell "nothing was done" from "may have been done".
        let err = ClientError::from(status(
            Code::Unavailable,
            reason::LEADER_CHANGED,
            &[(key::LEADER_ID, "2")],
        ));
        assert!(
            matches!(err, ClientError::LeaderChanged { leader_id: Some(2), leader_addr: None }),
            "{err:?}"
        );
        assert!(err.to_string().contains("may or may not have taken effect"), "{err}");
    }

    #[test]
    fn a_cluster_reason_under_another_code_passes_through() {
        // The reason alone is not enough: the pair (code, reason) is the contract.
        let err = ClientError::from(status(Code::Internal, reason::NOT_LEADER, &[]));
        assert!(matches!(err, ClientError::Status(_)), "{err:?}");
    }
}
