//! girok's openraft type configuration, and the aliases the rest of `cluster` uses for
//! openraft's generic types. Everything openraft-specific is named here once, so an alpha
//! release that moves a type touches this file and the adapters, nothing else.

use openraft::impls::leader_id_std;
use openraft::type_config::alias;

use super::command::{Applied, Command};

openraft::declare_raft_types!(
    /// The Raft types of a girok cluster: entries carry [`Command`]s; a node is a numeric id and
    /// the address it serves gRPC on; one leader per term.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Term = u64,
        LeaderId = leader_id_std::LeaderId<u64, u64>,
);

/// A cluster member's id (`--node-id`, at least 1).
pub type NodeId = u64;
/// A member as the membership holds it: its advertised `HOST:PORT` in `addr`.
pub type Node = openraft::BasicNode;
/// A Raft log entry.
pub type Entry = alias::EntryOf<TypeConfig>;
/// What a Raft log entry carries: nothing (a leader's first entry), a membership or a [`Command`].
pub type Payload = alias::EntryPayloadOf<TypeConfig>;
/// The id of a Raft log entry: its term (the committed leader id) and index.
pub type LogId = alias::LogIdOf<TypeConfig>;
/// A vote.
pub type Vote = alias::VoteOf<TypeConfig>;
/// Membership as the state machine stores it, with the id of the entry that set it.
pub type StoredMembership = alias::StoredMembershipOf<TypeConfig>;
/// A snapshot's metadata.
pub type SnapshotMeta = alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot's data: a checkpoint of the state machine (which logs exist, their offsets and
/// settings), encoded with postcard; never the records themselves.
pub type SnapshotData = Vec<u8>;
/// A snapshot: its metadata and its checkpoint.
pub type Snapshot = alias::SnapshotOf<TypeConfig, SnapshotData>;
