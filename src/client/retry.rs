//! [`Retry`]: how a [`ClusterClient`](super::ClusterClient) retries a call, and [`judge`], what
//! a failed attempt means for the next one.
//!
//! A failed attempt is one of:
//!
//! | what came back | was anything done? | next |
//! | --- | --- | --- |
//! | `NOT_LEADER` with a hint | no | the hinted leader, at once (then backing off) |
//! | `NOT_LEADER` without a hint | no | ask `GetServers` again, after a backoff |
//! | no connection, connection refused, a node's own `UNAVAILABLE` | no | another node |
//! | `LEADER_CHANGED`, a connection lost mid-call, no answer in time | unknown | depends on the call |
//! | a read past a follower's end | no | the leader, once |
//! | anything else | — | returned to the caller |
//!
//! "Depends on the call": reads and idempotent writes (`update_log`) are retried; a produce only
//! when [`Retry::at_least_once`] says so (the record may then be appended twice); a call that
//! cannot be repeated safely (`create_log`, `delete_log`, `add_server`, `remove_server`) returns
//! the error, which the caller resolves by looking (list the logs, ask the servers).

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use tonic::{Code, Status};

use super::ClientError;

/// How a [`ClusterClient`](super::ClusterClient) retries: within a total budget per call, waiting
/// between attempts with exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// How long one call may take, every attempt and wait included; an attempt is cut off when
    /// the budget runs out ([`ClientError::CallTimeout`]). For a stream it bounds the opening,
    /// and each resumption of a tail. Default: 10 s.
    pub budget: Duration,
    /// The first wait between attempts; each later one doubles, up to `max_backoff`. Following a
    /// fresh `NOT_LEADER` hint does not wait. Default: 50 ms (so 50, 100, 200, 400, 800 ms, then
    /// 1 s each: about 12 attempts in 10 s against a cluster without a leader).
    pub initial_backoff: Duration,
    /// The longest wait between attempts. Default: 1 s.
    pub max_backoff: Duration,
    /// Whether a produce whose outcome is unknown (`LEADER_CHANGED`, a connection lost while
    /// the call was under way, no answer in time) is sent again. That is at-least-once: the
    /// record may be appended twice, under two offsets. Default: `false`, the error is returned
    /// ([`ClientError::LeaderChanged`] or the transport's status).
    pub at_least_once: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            budget: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            at_least_once: false,
        }
    }
}

impl Retry {
    /// The wait after `wait`.
    pub(super) fn next_backoff(&self, wait: Duration) -> Duration {
        wait.saturating_mul(2).min(self.max_backoff)
    }
}

/// What a call may safely repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Safety {
    /// A read: anything may be repeated.
    Read,
    /// A write that does the same when done twice (`update_log`).
    Idempotent,
    /// An append: repeating one of unknown outcome is at-least-once.
    Append,
    /// A write that answers differently when done twice (`create_log` says the log exists).
    Once,
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Return the error.
    Final,
    /// Send the call to the leader: at this address (`HOST:PORT`), or one to discover.
    Leader(Option<String>),
    /// Try another node (the leader again, for a write, once rediscovered).
    Elsewhere,
}

/// What `err`, the failure of an attempt at a call of `safety`, means for the next attempt.
/// `sent` says whether the call reached a node at all (a failure to pick one sent nothing);
/// `at_follower` whether it was a read at a node not known to lead.
pub(super) fn judge(
    err: &ClientError,
    safety: Safety,
    retry: &Retry,
    at_follower: bool,
) -> Verdict {
    let unknown = || match safety {
        Safety::Read | Safety::Idempotent => Verdict::Elsewhere,
        Safety::Append if retry.at_least_once => Verdict::Elsewhere,
        Safety::Append | Safety::Once => Verdict::Final,
    };
    match err {
        ClientError::NotLeader { leader_addr, .. } => Verdict::Leader(leader_addr.clone()),
        ClientError::LeaderChanged { .. } => unknown(),
        ClientError::Connect(_) | ClientError::Timeout { .. } => Verdict::Elsewhere,
        ClientError::CallTimeout { .. } => unknown(),
        ClientError::Status(status) if is_transport(status) => {
            if refused(status) {
                Verdict::Elsewhere
            } else {
                unknown()
            }
        }
        // girok answers UNAVAILABLE itself only before acting: shutting down, not yet a member,
        // short of descriptors.
        ClientError::Status(status) if status.code() == Code::Unavailable => Verdict::Elsewhere,
        ClientError::OffsetOutOfRange { offset, next_offset, .. }
            if at_follower && offset >= next_offset =>
        {
            // A follower that has not applied it yet; the leader has it, or it does not exist.
            Verdict::Leader(None)
        }
        _ => Verdict::Final,
    }
}

/// Whether `err` says only that a node could not be reached or answer, so that another node,
/// or the same one later, may do better.
pub(super) fn unreachable(err: &ClientError) -> bool {
    match err {
        ClientError::Connect(_)
        | ClientError::Timeout { .. }
        | ClientError::CallTimeout { .. }
        | ClientError::NotLeader { .. }
        | ClientError::LeaderChanged { .. } => true,
        ClientError::Status(status) => is_transport(status) || status.code() == Code::Unavailable,
        _ => false,
    }
}

/// Whether `status` is the client's own account of a failed connection or stream rather than an
/// answer from a server (a server's status carries no source).
fn is_transport(status: &Status) -> bool {
    status.source().is_some()
        && matches!(
            status.code(),
            Code::Unavailable | Code::Cancelled | Code::Unknown | Code::Internal
        )
}

/// Whether the connection was refused: nothing was sent.
fn refused(status: &Status) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = status.source();
    while let Some(err) = next {
        if err.downcast_ref::<io::Error>().map(io::Error::kind)
            == Some(io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::{Code, Status};

    use super::{Retry, Safety, Verdict, judge};
    use crate::client::ClientError;

    fn not_leader(addr: Option<&str>) -> ClientError {
        ClientError::NotLeader { leader_id: addr.map(|_| 2), leader_addr: addr.map(String::from) }
    }

    #[test]
    fn not_leader_sends_any_call_to_the_leader() {
        // Nothing was done, so even a call that must not be repeated follows the hint.
        for safety in [Safety::Read, Safety::Idempotent, Safety::Append, Safety::Once] {
            let retry = Retry::default();
            assert_eq!(
                judge(&not_leader(Some("b:2")), safety, &retry, false),
                Verdict::Leader(Some("b:2".into()))
            );
            assert_eq!(judge(&not_leader(None), safety, &retry, false), Verdict::Leader(None));
        }
    }

    #[test]
    fn leader_changed_is_retried_only_where_repeating_is_safe_or_asked_for() {
        let err = ClientError::LeaderChanged { leader_id: None, leader_addr: None };
        let retry = Retry::default();
        assert_eq!(judge(&err, Safety::Idempotent, &retry, false), Verdict::Elsewhere);
        assert_eq!(judge(&err, Safety::Append, &retry, false), Verdict::Final);
        assert_eq!(judge(&err, Safety::Once, &retry, false), Verdict::Final);
        let at_least_once = Retry { at_least_once: true, ..Retry::default() };
        assert_eq!(judge(&err, Safety::Append, &at_least_once, false), Verdict::Elsewhere);
        assert_eq!(judge(&err, Safety::Once, &at_least_once, false), Verdict::Final);
    }

    #[test]
    fn a_nodes_own_unavailable_is_retried_elsewhere_and_other_statuses_are_final() {
        // A server says UNAVAILABLE only before acting; PERMISSION_DENIED is an answer.
        let retry = Retry::default();
        let unavailable = ClientError::from(Status::unavailable("shutting down"));
        assert_eq!(judge(&unavailable, Safety::Once, &retry, false), Verdict::Elsewhere);
        let denied = ClientError::from(Status::new(Code::PermissionDenied, "no"));
        assert_eq!(judge(&denied, Safety::Read, &retry, false), Verdict::Final);
    }

    #[test]
    fn a_read_past_a_followers_end_asks_the_leader() {
        // A follower may lag: the record may exist at the leader. Below the start it cannot.
        let past = ClientError::OffsetOutOfRange { offset: 5, lowest_offset: 0, next_offset: 5 };
        let retry = Retry::default();
        assert_eq!(judge(&past, Safety::Read, &retry, true), Verdict::Leader(None));
        assert_eq!(judge(&past, Safety::Read, &retry, false), Verdict::Final);
        let below = ClientError::OffsetOutOfRange { offset: 1, lowest_offset: 3, next_offset: 5 };
        assert_eq!(judge(&below, Safety::Read, &retry, true), Verdict::Final);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let retry = Retry::default();
        let waits: Vec<Duration> = std::iter::successors(Some(retry.initial_backoff), |wait| {
            Some(retry.next_backoff(*wait))
        })
        .take(7)
        .collect();
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1000, 1000]);
    }
}
