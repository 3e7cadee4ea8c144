//! girok's openraft type configuration, and the aliases the rest of `cluster` uses for
//! openraft's generic types. Everything openraft-specific is named here once, so an alpha
//! release that moves a type touches this file and the adapters, nothing else.

use openraft::impls::leader_id_std;

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
/// The Raft handle of a girok node.
pub type Raft = openraft::Raft<TypeConfig, super::state_machine::StateMachine>;
/// A Raft log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// The id of a Raft log entry: its term (the committed leader id) and index.
pub type LogId = openraft::LogId<TypeConfig>;
/// A vote.
pub type Vote = openraft::impls::Vote<leader_id_std::LeaderId<u64, u64>>;
/// Membership as the state machine stores it, with the id of the entry that set it.
pub type StoredMembership = openraft::StoredMembership<TypeConfig>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<TypeConfig>;
