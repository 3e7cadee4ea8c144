//! [`Cluster`]: one node of a girok cluster — its identity, its Raft, and the operations the
//! server asks of it (writes through the leader, linearizable reads, membership, discovery).
//!
//! The node's files live in `DATA_DIR/cluster/`: the Raft WAL in `wal/` (with the node id, the
//! cluster identity, the vote and the commit point in its metadata file) and the state machine's
//! checkpoint in `sm/`. The logs themselves stay in `DATA_DIR/logs/`, as on a single node.
//!
//! Errors are typed ([`ClusterError`] at start, [`WriteError`] and [`MembershipError`] after);
//! the server maps them to gRPC statuses.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ReadPolicy, ServerState};

use super::command::{Applied, Command};
use super::log_store::{Durability, LogStore};
use super::network::{Faults, Network};
use super::service::RaftService;
use super::state_machine::StateMachine;
use super::types::{Node, NodeId, TypeConfig};
use crate::logs::Logs;

/// How long `AddServer` waits for a new node to catch up before it answers that it is still
/// a learner.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// How many entries behind the leader's end a learner may be and still be made a voter.
const CATCH_UP_LAG: u64 = 16;

/// The Raft handle of a girok node.
pub type Raft = openraft::Raft<TypeConfig, StateMachine>;

/// How a node takes part in a cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This node's id (`--node-id`), at least 1.
    pub node_id: NodeId,
    /// How the node became a member: it founded the cluster, or it was added to a running one.
    pub start: Start,
    /// The address other nodes and clients reach this node at (`HOST:PORT`).
    pub advertise_addr: String,
    /// When the Raft WAL syncs (the node's `--fsync`).
    pub durability: Durability,
    /// A leader's heartbeat period. Default 150 ms.
    pub heartbeat: Duration,
    /// A follower that has heard no leader for a random time in `[election, 2 × election)`
    /// stands for election. Default 750 ms.
    pub election_timeout: Duration,
    /// The client TLS configuration for Raft traffic to other nodes, when the cluster runs TLS.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
}

/// How a node became a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// One of the founding members (`--cluster`), every one of which is given the same list.
    Founder {
        /// The founding members: id → `HOST:PORT`.
        members: BTreeMap<NodeId, String>,
    },
    /// Added later (`--join`): it serves nothing until `AddServer` has made it a member.
    Join {
        /// A member it was told to join (informational: the leader contacts the new node).
        via: String,
    },
}

impl Start {
    /// The cluster identity this start stores and checks on later starts.
    fn identity(&self) -> Bytes {
        match self {
            Start::Founder { members } => {
                let list: Vec<String> =
                    members.iter().map(|(id, addr)| format!("{id}={addr}")).collect();
                Bytes::from(format!("cluster:{}", list.join(",")))
            }
            Start::Join { .. } => Bytes::from_static(b"joined"),
        }
    }
}

impl ClusterConfig {
    /// A configuration with the default timeouts.
    pub fn new(
        node_id: NodeId,
        start: Start,
        advertise_addr: String,
        durability: Durability,
    ) -> Self {
        Self {
            node_id,
            start,
            advertise_addr,
            durability,
            heartbeat: Duration::from_millis(150),
            election_timeout: Duration::from_millis(750),
            tls: None,
        }
    }
}

/// Parses `--cluster "1=HOST:PORT,2=HOST:PORT,…"`.
pub fn parse_members(list: &str) -> Result<BTreeMap<NodeId, String>, String> {
    let mut members = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (id, addr) =
            item.split_once('=').ok_or_else(|| format!("{item:?} is not ID=HOST:PORT"))?;
        let id: NodeId = id.trim().parse().map_err(|_| format!("{id:?} is not a node id"))?;
        if id == 0 {
            return Err("node ids start at 1".into());
        }
        let addr = addr.trim();
        if addr
            .rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        {
            return Err(format!("{addr:?} is not HOST:PORT"));
        }
        if members.insert(id, addr.to_string()).is_some() {
            return Err(format!("node {id} is listed twice"));
        }
    }
    if members.is_empty() {
        return Err("the list of members is empty".into());
    }
    Ok(members)
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The data directory belongs to another node or another cluster.
    #[error("{0}")]
    Identity(String),
    /// The data directory holds logs from outside a cluster.
    #[error("{0}")]
    NotEmpty(String),
    /// Reading or writing the node's files failed.
    #[error("cluster storage in {dir}: {err}")]
    Io {
        /// The directory concerned.
        dir: PathBuf,
        /// What failed.
        err: io::Error,
    },
    /// openraft refused to start.
    #[error("starting Raft: {0}")]
    Raft(String),
}

/// Why a write was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// This node is not the leader; nothing was proposed. The leader, when known.
    NotLeader {
        /// Its id.
        leader_id: Option<NodeId>,
        /// Its address.
        leader_addr: Option<String>,
    },
    /// Leadership changed while the write was in flight: it may or may not be applied.
    LeaderChanged {
        /// The new leader's id, when known.
        leader_id: Option<NodeId>,
        /// Its address.
        leader_addr: Option<String>,
    },
    /// The node's Raft has stopped (a storage failure, or shutdown).
    Stopped(String),
}

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipError {
    /// See [`WriteError`].
    Write(WriteError),
    /// `AddServer` of an id that is or was a member's.
    Exists(NodeId),
    /// `RemoveServer` of an id that is not a member.
    NotFound(NodeId),
    /// The change cannot be made now (another one is in progress, or it would leave no voter).
    Refused(String),
    /// The new node was added as a learner but has not caught up in time; retry to finish.
    CatchingUp(String),
}

/// One server as discovery reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// Its node id.
    pub id: NodeId,
    /// Its advertised `HOST:PORT`.
    pub addr: String,
    /// Whether this node believes it leads.
    pub is_leader: bool,
    /// Whether it votes.
    pub voter: bool,
}

/// A running cluster node. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    id: NodeId,
    raft: Raft,
    state_machine: StateMachine,
    faults: Faults,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("id", &self.id).finish_non_exhaustive()
    }
}

fn io_at(dir: &Path) -> impl FnOnce(io::Error) -> ClusterError + '_ {
    move |err| ClusterError::Io { dir: dir.to_path_buf(), err }
}

impl Cluster {
    /// Starts this node's Raft over `logs` (opened from `data_dir`), checking and recording its
    /// identity, and founding the cluster on a first start of a founding member.
    pub async fn start(
        data_dir: &Path,
        logs: Arc<Logs>,
        config: ClusterConfig,
    ) -> Result<Self, ClusterError> {
        let dir = data_dir.join("cluster");
        let (wal_dir, sm_dir) = (dir.join("wal"), dir.join("sm"));
        let durability = config.durability;
        let opened = {
            let wal_dir = wal_dir.clone();
            tokio::task::spawn_blocking(move || LogStore::open(&wal_dir, durability))
                .await
                .map_err(|err| ClusterError::Raft(err.to_string()))?
        };
        let store = opened.map_err(io_at(&wal_dir))?;
        let (stored_id, stored_cluster) = store.identity().map_err(io_at(&wal_dir))?;
        let identity = config.start.identity();
        let first_start = stored_id == 0;
        if first_start {
            check_empty(&logs)?;
            store.save_identity(config.node_id, identity.clone()).map_err(io_at(&wal_dir))?;
        } else {
            check_identity(&config, stored_id, &stored_cluster, &identity)?;
        }
        let state_machine =
            StateMachine::open(Arc::clone(&logs), &sm_dir).map_err(io_at(&sm_dir))?;
        let faults = Faults::default();
        let network = Network::new(config.node_id, config.tls.clone(), faults.clone());
        let raft_config = raft_config(&config).map_err(ClusterError::Raft)?;
        let raft = Raft::new(config.node_id, raft_config, network, store, state_machine.clone())
            .await
            .map_err(|err| ClusterError::Raft(err.to_string()))?;
        let initialized =
            raft.is_initialized().await.map_err(|err| ClusterError::Raft(err.to_string()))?;
        if let (false, Start::Founder { members }) = (initialized, &config.start) {
            let nodes: BTreeMap<NodeId, Node> =
                members.iter().map(|(id, addr)| (*id, BasicNode { addr: addr.clone() })).collect();
            // Every founder initializes with the same membership: the same first entry on all.
            // Another founder's first entry may have reached this one meanwhile; then openraft
            // refuses, which is as good.
            match raft.initialize(nodes).await {
                Ok(()) => tracing::info!("cluster initialized"),
                Err(RaftError::APIError(err)) => {
                    tracing::info!(error = %err, "already initialized")
                }
                Err(RaftError::Fatal(err)) => return Err(ClusterError::Raft(err.to_string())),
            }
            // Serve once the membership is in force here, not before (a moment, at most).
            let mut metrics = raft.metrics();
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while metrics.borrow_watched().membership_config.get_node(&config.node_id).is_none()
                {
                    if metrics.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        }
        tracing::info!(node_id = config.node_id, start = ?config.start, "cluster node started");
        Ok(Self { id: config.node_id, raft, state_machine, faults })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The Raft handle (for tests and the internal service).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The seam through which tests cut this node's links to others.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The internal Raft gRPC service other nodes call.
    pub fn service(&self) -> RaftService<StateMachine> {
        RaftService::new(self.raft.clone())
    }

    /// The node this one believes leads, with its address.
    pub fn leader(&self) -> Option<(NodeId, Option<String>)> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let leader = metrics.current_leader?;
        let addr = metrics.membership_config.get_node(&leader).map(|node| node.addr.clone());
        Some((leader, addr))
    }

    /// Whether this node leads now.
    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics.state == ServerState::Leader && metrics.current_leader == Some(self.id)
    }

    /// Whether this node's Raft runs (it stops for good after a storage failure).
    pub fn is_running(&self) -> bool {
        self.raft.metrics().borrow_watched().running_state.is_ok()
    }

    /// Whether this node is in the membership (a joining node is not, until it is added).
    pub fn is_member(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        metrics.membership_config.get_node(&self.id).is_some()
    }

    /// `Ok` on the leader; [`WriteError::NotLeader`] elsewhere.
    pub fn check_leader(&self) -> Result<(), WriteError> {
        if self.is_leader() { Ok(()) } else { Err(self.not_leader()) }
    }

    fn not_leader(&self) -> WriteError {
        let (leader_id, leader_addr) = match self.leader() {
            Some((id, addr)) if id != self.id => (Some(id), addr),
            _ => (None, None),
        };
        WriteError::NotLeader { leader_id, leader_addr }
    }

    /// Proposes `command` and answers what applying it on the leader answered.
    pub async fn write(&self, command: Command) -> Result<Applied, WriteError> {
        match self.raft.client_write(command).await {
            Ok(response) => Ok(response.data),
            Err(err) => Err(self.write_error(err)),
        }
    }

    fn write_error(&self, err: RaftError<TypeConfig, ClientWriteError<TypeConfig>>) -> WriteError {
        match err {
            RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
                let leader_addr = forward.leader_node.map(|node| node.addr);
                WriteError::NotLeader {
                    leader_id: forward.leader_id.filter(|id| *id != self.id),
                    leader_addr,
                }
            }
            RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward)) => {
                let leader_addr = forward.leader_node.map(|node| node.addr);
                WriteError::LeaderChanged { leader_id: forward.leader_id, leader_addr }
            }
            RaftError::APIError(other) => WriteError::Stopped(other.to_string()),
            RaftError::Fatal(fatal) => WriteError::Stopped(fatal.to_string()),
        }
    }

    /// Returns once this node has applied every entry committed before the call: on the
    /// leader, through its read index (confirmed by a quorum). Elsewhere
    /// [`WriteError::NotLeader`].
    pub async fn read_barrier(&self) -> Result<(), WriteError> {
        self.check_leader()?;
        match self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(_)) => Err(self.not_leader()),
            Err(RaftError::Fatal(fatal)) => Err(WriteError::Stopped(fatal.to_string())),
        }
    }

    /// Every member, leader first-class: id, address, leadership, vote.
    pub fn servers(&self) -> Vec<ServerInfo> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| ServerInfo {
                id: *id,
                addr: node.addr.clone(),
                is_leader: metrics.current_leader == Some(*id),
                voter: voters.contains(id),
            })
            .collect()
    }

    /// Adds node `id` at `addr`: as a learner until it has caught up, then as a voter. A learner
    /// still catching up when [`CATCH_UP_TIMEOUT`] passes is left a learner
    /// ([`MembershipError::CatchingUp`]); calling again with the same id and address resumes.
    pub async fn add_server(&self, id: NodeId, addr: String) -> Result<(), MembershipError> {
        self.check_leader().map_err(MembershipError::Write)?;
        match self.servers().into_iter().find(|server| server.id == id) {
            // A learner added by an earlier call that did not finish: resume.
            Some(server) if !server.voter && server.addr == addr => {}
            Some(_) => return Err(MembershipError::Exists(id)),
            None if self.state_machine.retired().contains(&id) => {
                return Err(MembershipError::Exists(id));
            }
            None => {
                self.raft
                    .add_learner(id, BasicNode { addr }, false)
                    .await
                    .map_err(|err| self.membership_error(err))?;
            }
        }
        self.caught_up(id).await?;
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|err| self.membership_error(err))?;
        Ok(())
    }

    /// Waits until learner `id` has replicated this leader's log up to a few entries behind its
    /// end, for at most [`CATCH_UP_TIMEOUT`].
    async fn caught_up(&self, id: NodeId) -> Result<(), MembershipError> {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + CATCH_UP_TIMEOUT;
        loop {
            let (last, matched) = {
                let now = metrics.borrow_watched();
                let matched = now.replication.as_ref().and_then(|r| r.get(&id).cloned().flatten());
                (now.last_log_index.unwrap_or(0), matched.map(|m| m.index))
            };
            if matched.is_some_and(|at| at + CATCH_UP_LAG >= last) {
                return Ok(());
            }
            self.check_leader().map_err(MembershipError::Write)?;
            let changed = tokio::time::timeout_at(deadline, metrics.changed()).await;
            match changed {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(MembershipError::Write(WriteError::Stopped("Raft stopped".into())));
                }
                Err(_) => {
                    return Err(MembershipError::CatchingUp(format!(
                        "node {id} is a learner still catching up (at entry {} of {last}); call \
                         AddServer again with the same id and address to finish adding it",
                        matched.map_or("none".to_string(), |at| at.to_string())
                    )));
                }
            }
        }
    }

    /// Removes node `id` from the cluster (it stops voting and receiving entries).
    pub async fn remove_server(&self, id: NodeId) -> Result<(), MembershipError> {
        self.check_leader().map_err(MembershipError::Write)?;
        let servers = self.servers();
        let Some(server) = servers.iter().find(|server| server.id == id) else {
            return Err(MembershipError::NotFound(id));
        };
        let change = if server.voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(|err| self.membership_error(err))?;
        Ok(())
    }

    fn membership_error(
        &self,
        err: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> MembershipError {
        match err {
            RaftError::APIError(ClientWriteError::ChangeMembershipError(err)) => {
                MembershipError::Refused(err.to_string())
            }
            other => MembershipError::Write(self.write_error(other)),
        }
    }

    /// Leaves the cluster gracefully: a leader hands leadership to the most up-to-date voter
    /// first (so the others need not wait out an election timeout), then Raft stops and the state
    /// machine writes a checkpoint.
    pub async fn shutdown(&self) {
        if self.is_leader() {
            // The voter that has replicated the most, so that it can take over at once.
            let voters: BTreeSet<NodeId> = self
                .servers()
                .into_iter()
                .filter(|server| server.voter && server.id != self.id)
                .map(|server| server.id)
                .collect();
            let target = {
                let metrics = self.raft.metrics();
                let metrics = metrics.borrow_watched();
                let matched = |id: &NodeId| {
                    metrics.replication.as_ref().and_then(|r| r.get(id).cloned().flatten())
                };
                voters.iter().copied().max_by_key(|id| matched(id).map(|m| m.index))
            };
            if let Some(target) = target {
                if let Err(err) = self.raft.trigger().transfer_leader(target).await {
                    tracing::debug!(error = %err, "transferring leadership on shutdown");
                }
                // Give the transfer a moment to reach the target.
                let mut metrics = self.raft.metrics();
                let _ = tokio::time::timeout(Duration::from_millis(500), async {
                    while metrics.borrow_watched().current_leader == Some(self.id) {
                        if metrics.changed().await.is_err() {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        let failed = !self.is_running();
        if let Err(err) = self.raft.shutdown().await {
            tracing::warn!(error = %err, "stopping Raft");
        }
        if failed {
            // The state applied may be partway through a failed entry: no checkpoint of it.
            tracing::warn!("Raft had stopped after a failure: no checkpoint written");
            return;
        }
        let state_machine = self.state_machine.clone();
        match tokio::task::spawn_blocking(move || state_machine.checkpoint()).await {
            Ok(Ok(_)) => tracing::info!("cluster checkpoint written"),
            Ok(Err(err)) => tracing::warn!(error = %err, "writing the checkpoint at shutdown"),
            Err(err) => tracing::warn!(error = %err, "writing the checkpoint at shutdown"),
        }
    }
}

fn raft_config(config: &ClusterConfig) -> Result<Arc<openraft::Config>, String> {
    let election = config.election_timeout.as_millis() as u64;
    let raft = openraft::Config {
        cluster_name: "girok".into(),
        heartbeat_interval: config.heartbeat.as_millis() as u64,
        election_timeout_min: election,
        election_timeout_max: election * 2,
        // A checkpoint every 10,000 entries, so a restart applies at most that many again.
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(10_000),
        // The WAL is never purged: a node catching up from a snapshot would need the records
        // themselves, which are not transferred yet (see `state_machine`), so every node that
        // joins or returns catches up from the WAL. The cost is disk: the WAL holds every batch.
        max_in_snapshot_log_to_keep: u64::MAX,
        enable_pre_vote: Some(true),
        ..openraft::Config::default()
    };
    raft.validate().map(Arc::new).map_err(|err| err.to_string())
}

/// A first start refuses a data directory holding records: a cluster node starts empty, and
/// every log it holds comes from the cluster.
fn check_empty(logs: &Logs) -> Result<(), ClusterError> {
    let held: Vec<String> = logs
        .list()
        .into_iter()
        .filter(|entry| entry.name() != crate::logs::DEFAULT_LOG || entry.log().next_offset() > 0)
        .map(|entry| entry.name().to_string())
        .collect();
    if held.is_empty() {
        return Ok(());
    }
    Err(ClusterError::NotEmpty(format!(
        "the data directory holds logs from a single-node server ({}); a cluster node starts on \
         an empty data directory and receives every log from the cluster",
        held.join(", ")
    )))
}

fn check_identity(
    config: &ClusterConfig,
    stored_id: NodeId,
    stored_cluster: &Bytes,
    identity: &Bytes,
) -> Result<(), ClusterError> {
    if stored_id != config.node_id {
        return Err(ClusterError::Identity(format!(
            "the data directory belongs to node {stored_id}, not node {}: start it with \
             --node-id {stored_id}, or give this node an empty data directory",
            config.node_id
        )));
    }
    let joined = stored_cluster.as_ref() == b"joined";
    match (&config.start, joined) {
        (Start::Join { .. }, true) => Ok(()),
        (Start::Founder { .. }, false) if stored_cluster == identity => Ok(()),
        // A node that joined may restart with either flag: its membership is in its WAL.
        (Start::Founder { .. }, true) => Ok(()),
        (Start::Join { .. }, false) => Ok(()),
        (Start::Founder { .. }, false) => Err(ClusterError::Identity(format!(
            "the data directory belongs to another cluster ({}), not the one --cluster names \
             ({}): every node must be given the same --cluster list it was founded with",
            String::from_utf8_lossy(stored_cluster).trim_start_matches("cluster:"),
            String::from_utf8_lossy(identity).trim_start_matches("cluster:"),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_list_is_parsed_and_checked() {
        let members = parse_members("1=127.0.0.1:8401, 2=127.0.0.1:8402,3=localhost:8403").unwrap();
        assert_eq!(members.len(), 3);
        assert_eq!(members[&3], "localhost:8403");
        for bad in ["", "1", "0=a:1", "1=a", "1=a:1,1=b:2", "x=a:1", "1=:80", "1=a:port"] {
            assert!(parse_members(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_cluster_identity_is_the_member_list_in_id_order() {
        let a = Start::Founder { members: parse_members("2=b:2,1=a:1").unwrap() };
        let b = Start::Founder { members: parse_members("1=a:1,2=b:2").unwrap() };
        assert_eq!(a.identity(), b.identity());
        assert_eq!(a.identity(), Bytes::from_static(b"cluster:1=a:1,2=b:2"));
    }
}
