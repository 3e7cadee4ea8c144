//! The vocabulary of girok's rich error details (`google.rpc.ErrorInfo`): its domain, the
//! reasons it gives and the metadata keys it fills. The server writes these and the client
//! decodes them; both name them from here, so neither depends on the other.

/// `ErrorInfo.domain` of every error girok reports.
pub const DOMAIN: &str = "girok";

/// `ErrorInfo.reason` values.
pub mod reason {
    /// `OUT_OF_RANGE`: a read outside the committed range `[lowest_offset, next_offset)`.
    pub const OFFSET_OUT_OF_RANGE: &str = "OFFSET_OUT_OF_RANGE";
    /// `DATA_LOSS`: a stored record failed its checksum.
    pub const RECORD_CORRUPT: &str = "RECORD_CORRUPT";
    /// `RESOURCE_EXHAUSTED`: the server's disk is full; retry later.
    pub const DISK_FULL: &str = "DISK_FULL";
    /// `RESOURCE_EXHAUSTED`: the data volume has less free space than `--min-free-disk`;
    /// appends resume by themselves once space is freed, reads go on.
    pub const DISK_LOW: &str = "DISK_LOW";
    /// `RESOURCE_EXHAUSTED`: a message above a size limit; never retry it as is.
    pub const MESSAGE_TOO_LARGE: &str = "MESSAGE_TOO_LARGE";
    /// `RESOURCE_EXHAUSTED`: the log has used every offset a `uint64` holds.
    pub const OFFSETS_EXHAUSTED: &str = "OFFSETS_EXHAUSTED";
    /// `NOT_FOUND`: the named log does not exist (or was deleted while a stream used it).
    pub const LOG_NOT_FOUND: &str = "LOG_NOT_FOUND";
    /// `ALREADY_EXISTS`: `CreateLog` of a name that is taken.
    pub const LOG_EXISTS: &str = "LOG_EXISTS";
    /// `FAILED_PRECONDITION`: the `default` log cannot be deleted.
    pub const DEFAULT_LOG: &str = "DEFAULT_LOG";
    /// `RESOURCE_EXHAUSTED`: the server holds `--max-logs` logs already.
    pub const LOG_LIMIT: &str = "LOG_LIMIT";
    /// `PERMISSION_DENIED`: the access-control list does not let the subject do the action on
    /// the log.
    pub const ACCESS_DENIED: &str = "ACCESS_DENIED";
    /// `UNAVAILABLE`: a write (or a membership change, or a linearizable read) reached a node
    /// that is not the cluster's leader. Nothing was done: retry at the leader, which the
    /// metadata names when it is known (`leader_id`, `leader_addr`; empty otherwise).
    pub const NOT_LEADER: &str = "NOT_LEADER";
    /// `UNAVAILABLE`: leadership changed while a write was in flight; it may or may not have
    /// been appended (a retry is at-least-once).
    pub const LEADER_CHANGED: &str = "LEADER_CHANGED";
    /// `FAILED_PRECONDITION`: a cluster RPC on a server that is not part of a cluster.
    pub const NOT_A_CLUSTER: &str = "NOT_A_CLUSTER";
    /// `ALREADY_EXISTS`: `AddServer` with an id that is, or was, a member's.
    pub const SERVER_EXISTS: &str = "SERVER_EXISTS";
    /// `NOT_FOUND`: `RemoveServer` of an id that is not a member.
    pub const SERVER_NOT_FOUND: &str = "SERVER_NOT_FOUND";
}

/// `ErrorInfo.metadata` keys; offsets are written in base 10.
pub mod key {
    /// The offset a call asked for.
    pub const OFFSET: &str = "offset";
    /// The lowest offset the log held.
    pub const LOWEST_OFFSET: &str = "lowest_offset";
    /// The log's commit point.
    pub const NEXT_OFFSET: &str = "next_offset";
    /// A limit, in bytes.
    pub const LIMIT_BYTES: &str = "limit_bytes";
    /// A log's name.
    pub const LOG: &str = "log";
    /// A limit on a count (of logs).
    pub const LIMIT: &str = "limit";
    /// The bytes free on the data volume.
    pub const FREE_BYTES: &str = "free_bytes";
    /// Who a call came from: a client certificate's Common Name or a token's subject.
    pub const SUBJECT: &str = "subject";
    /// What a call would do to a log: `produce`, `consume` or `admin`.
    pub const ACTION: &str = "action";
    /// The id of the node believed to lead the cluster.
    pub const LEADER_ID: &str = "leader_id";
    /// The address (`HOST:PORT`) of the node believed to lead the cluster.
    pub const LEADER_ADDR: &str = "leader_addr";
    /// A cluster node's id.
    pub const SERVER_ID: &str = "server_id";
}
