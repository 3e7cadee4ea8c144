//! The internal Raft service end to end: three real openraft nodes, each serving
//! `girok.raft.v1.Raft` through `RaftService` on `127.0.0.1:0` and calling its peers through
//! `Network`, elect a leader, replicate commands, survive a partition cut through `Faults`, and
//! refuse a stranger.
//!
//! The storage is girok's own: the WAL-backed `LogStore` and the state machine over real named
//! logs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use girok::cluster::command::Command;
use girok::cluster::log_store::{Durability, LogStore};
use girok::cluster::network::{Faults, NODE_ID_HEADER, Network, wire};
use girok::cluster::proto::Frame;
use girok::cluster::proto::raft_client::RaftClient;
use girok::cluster::service::RaftService;
use girok::cluster::state_machine::StateMachine;
use girok::cluster::types::{NodeId, TypeConfig, Vote};
use girok::logs::{Logs, LogsConfig};
use girok::storage::DiskConfig;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::raft::VoteRequest;
use openraft::{BasicNode, Config, Raft, ServerState};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// How long any one test may run.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

struct TestNode {
    id: NodeId,
    addr: SocketAddr,
    raft: Raft<TypeConfig, StateMachine>,
    _dir: TempDir,
}

/// Starts nodes `1..=n`, all sharing `faults`, each serving on its own port; initializes node 1
/// with all of them as voters.
async fn start_cluster(n: u64, faults: &Faults) -> Vec<TestNode> {
    let config = Arc::new(
        Config {
            cluster_name: "raft-network-test".into(),
            heartbeat_interval: 50,
            election_timeout_min: 300,
            election_timeout_max: 600,
            ..Config::default()
        }
        .validate()
        .unwrap(),
    );
    let mut nodes = Vec::new();
    for id in 1..=n {
        let dir = TempDir::new().unwrap();
        let logs =
            Logs::open(dir.path().join("logs"), DiskConfig::default(), LogsConfig::default());
        let sm = StateMachine::open(Arc::new(logs.unwrap()), &dir.path().join("sm")).unwrap();
        let network = Network::new(id, None, faults.clone());
        let store = LogStore::open(&dir.path().join("wal"), Durability::Always).unwrap();
        let raft = Raft::new(id, Arc::clone(&config), network, store, sm).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(RaftService::new(raft.clone()).into_server())
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        nodes.push(TestNode { id, addr, raft, _dir: dir });
    }
    let members: BTreeMap<NodeId, BasicNode> =
        nodes.iter().map(|n| (n.id, BasicNode::new(n.addr.to_string()))).collect();
    nodes[0].raft.initialize(members).await.unwrap();
    nodes
}

/// Waits until some node among `nodes` (ids not in `except`) leads, and all of those agree.
async fn leader(nodes: &[TestNode], except: &BTreeSet<NodeId>) -> NodeId {
    loop {
        let views: BTreeSet<Option<NodeId>> = nodes
            .iter()
            .filter(|n| !except.contains(&n.id))
            .map(|n| n.raft.metrics().borrow_watched().current_leader)
            .collect();
        if let [Some(leader)] = views.into_iter().collect::<Vec<_>>()[..]
            && !except.contains(&leader)
        {
            let node = nodes.iter().find(|n| n.id == leader).unwrap();
            if node.raft.metrics().borrow_watched().state == ServerState::Leader {
                return leader;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every node in `ids` has applied `index`.
async fn applied(nodes: &[TestNode], ids: &[NodeId], index: u64) {
    for node in nodes.iter().filter(|n| ids.contains(&n.id)) {
        node.raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(index), "applied")
            .await
            .unwrap_or_else(|e| panic!("node {} did not apply {index}: {e}", node.id));
    }
}

fn append(log: &str, value: &'static str) -> Command {
    Command::Append {
        log: log.into(),
        incarnation: None,
        create: true,
        timestamp_ms: 1_700_000_000_000,
        values: vec![Bytes::from_static(value.as_bytes())],
    }
}

/// Writes `command` at `node`, which leads: a leader just elected may refuse for a moment
/// (`ForwardToLeader`, e.g. with reason `LeaseExpired`, before a quorum has acknowledged it),
/// which says nothing was proposed, so it is retried.
async fn write(
    node: &TestNode,
    command: Command,
) -> openraft::raft::ClientWriteResponse<TypeConfig> {
    loop {
        match node.raft.client_write(command.clone()).await {
            Ok(written) => return written,
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(_),
            )) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(err) => panic!("writing at node {}: {err}", node.id),
        }
    }
}

fn node(nodes: &[TestNode], id: NodeId) -> &TestNode {
    nodes.iter().find(|n| n.id == id).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_replicate_and_ride_out_a_partition_of_the_leader() {
    // A cluster over the real service elects one leader and replicates to all; cutting the
    // leader off elects another among the rest, and healing lets the old one catch up.
    tokio::time::timeout(TEST_TIMEOUT, async {
        let faults = Faults::new();
        let nodes = start_cluster(3, &faults).await;
        let first = leader(&nodes, &BTreeSet::new()).await;
        let written = write(node(&nodes, first), append("orders", "a")).await;
        applied(&nodes, &[1, 2, 3], written.log_id.index).await;

        faults.isolate(first);
        let second = leader(&nodes, &BTreeSet::from([first])).await;
        assert_ne!(second, first);
        let written = write(node(&nodes, second), append("orders", "b")).await;
        let rest: Vec<NodeId> = (1..=3).filter(|&id| id != first).collect();
        applied(&nodes, &rest, written.log_id.index).await;

        faults.heal_all();
        applied(&nodes, &[1, 2, 3], written.log_id.index).await;
        for n in &nodes {
            n.raft.shutdown().await.unwrap();
        }
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_outside_the_membership_is_refused_permission() {
    // A member's Raft service refuses a vote from a node id it does not know, and from a caller
    // that names no node, but answers a member.
    tokio::time::timeout(TEST_TIMEOUT, async {
        let nodes = start_cluster(1, &Faults::new()).await;
        leader(&nodes, &BTreeSet::new()).await;
        let mut client = RaftClient::connect(format!("http://{}", nodes[0].addr)).await.unwrap();
        let body = wire::encode(&wire::VoteFrame::Vote(VoteRequest::<TypeConfig>::new(
            Vote::new(99, 9),
            None,
        )))
        .unwrap();
        let call = |sender: Option<&str>| {
            let mut request = tonic::Request::new(Frame { data: body.clone() });
            if let Some(sender) = sender {
                request.metadata_mut().insert(NODE_ID_HEADER, sender.parse().unwrap());
            }
            request
        };
        let stranger = client.vote(call(Some("9"))).await.unwrap_err();
        assert_eq!(stranger.code(), tonic::Code::PermissionDenied, "{stranger:?}");
        let anonymous = client.vote(call(None)).await.unwrap_err();
        assert_eq!(anonymous.code(), tonic::Code::PermissionDenied, "{anonymous:?}");
        let garbled = client.vote(call(Some("nine"))).await.unwrap_err();
        assert_eq!(garbled.code(), tonic::Code::InvalidArgument, "{garbled:?}");
        let member = client.vote(call(Some("1"))).await.unwrap().into_inner();
        let reply: wire::Reply<openraft::raft::VoteResponse<TypeConfig>> =
            wire::decode(&member.data).unwrap();
        assert!(reply.is_ok(), "{reply:?}");
        nodes[0].raft.shutdown().await.unwrap();
    })
    .await
    .expect("the test finished in time");
}
