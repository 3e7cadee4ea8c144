//! An in-process girok cluster on 127.0.0.1 ports: each node a real `server::run` over its own
//! data directory, with its own Raft, talking to the others over gRPC.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use girok::api::v1::log_client::LogClient;
use girok::cluster::log_store::Durability;
use girok::cluster::node::{Cluster, ClusterConfig, Start};
use girok::logs::{Logs, LogsConfig};
use girok::server::{self, ServerConfig};
use girok::storage::{DiskConfig, FsyncPolicy};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Short Raft timeouts, so tests elect quickly; still long enough for a loaded 2-core machine.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// See [`HEARTBEAT`].
pub const ELECTION: Duration = Duration::from_millis(500);
/// How long a test waits for the cluster to settle (an election, replication).
pub const SETTLE: Duration = Duration::from_secs(20);

/// One running node.
pub struct TestNode {
    pub id: u64,
    pub addr: SocketAddr,
    pub cluster: Cluster,
    pub logs: Arc<Logs>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Nodes of one cluster, each with a data directory that outlives it (for restarts).
pub struct TestCluster {
    pub nodes: BTreeMap<u64, TestNode>,
    /// Every node's address, running or not.
    pub addrs: BTreeMap<u64, SocketAddr>,
    members: BTreeMap<u64, String>,
    root: TempDir,
}

fn node_config(id: u64, start: Start, addr: SocketAddr) -> ClusterConfig {
    let mut config = ClusterConfig::new(id, start, addr.to_string(), Durability::Always);
    config.heartbeat = HEARTBEAT;
    config.election_timeout = ELECTION;
    config
}

async fn launch(id: u64, listener: TcpListener, dir: PathBuf, start: Start) -> TestNode {
    let addr = listener.local_addr().unwrap();
    let disk = DiskConfig { fsync: FsyncPolicy::Never, ..DiskConfig::default() };
    let logs = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || Logs::open(dir, disk, LogsConfig::default()))
            .await
            .unwrap()
            .unwrap()
    };
    let logs = Arc::new(logs);
    let cluster = Cluster::start(&dir, Arc::clone(&logs), node_config(id, start, addr))
        .await
        .expect("start a cluster node");
    let config = ServerConfig {
        cluster: Some(cluster.clone()),
        advertise_addr: Some(addr.to_string()),
        shutdown_grace: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let logs = Arc::clone(&logs);
        async move {
            let _ = server::run(listener, logs, config, async {
                let _ = rx.await;
            })
            .await;
        }
    });
    TestNode { id, addr, cluster, logs, shutdown: Some(tx), task: Some(task) }
}

/// Binds `addr` again after a node stopped (retrying while the port is still being released).
async fn rebind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        match socket.bind(addr).and_then(|()| socket.listen(128)) {
            Ok(listener) => return listener,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("cannot bind {addr} again: {err}"),
        }
    }
}

impl TestCluster {
    /// Starts `n` founding members, numbered 1..=n.
    pub async fn start(n: u64) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            listeners.insert(id, TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let addrs: BTreeMap<u64, SocketAddr> =
            listeners.iter().map(|(id, l)| (*id, l.local_addr().unwrap())).collect();
        let members: BTreeMap<u64, String> =
            addrs.iter().map(|(id, addr)| (*id, addr.to_string())).collect();
        let mut nodes = BTreeMap::new();
        for (id, listener) in listeners {
            let start = Start::Founder { members: members.clone() };
            let node = launch(id, listener, root.path().join(format!("node{id}")), start).await;
            nodes.insert(id, node);
        }
        Self { nodes, addrs, members, root }
    }

    /// The data directory of node `id`.
    pub fn dir(&self, id: u64) -> PathBuf {
        self.root.path().join(format!("node{id}"))
    }

    /// Waits until the running nodes agree on one leader among them; answers its id.
    pub async fn leader(&self) -> u64 {
        let deadline = Instant::now() + SETTLE;
        loop {
            let leaders: Vec<u64> =
                self.nodes.values().filter(|n| n.cluster.is_leader()).map(|n| n.id).collect();
            if let [leader] = leaders[..] {
                let agreed = self
                    .nodes
                    .values()
                    .all(|n| n.cluster.leader().map(|(id, _)| id) == Some(leader));
                if agreed {
                    return leader;
                }
            }
            assert!(Instant::now() < deadline, "no leader agreed on within {SETTLE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The ids of the running nodes other than `id`.
    pub fn others(&self, id: u64) -> Vec<u64> {
        self.nodes.keys().copied().filter(|other| *other != id).collect()
    }

    /// A raw Log client of node `id`.
    pub async fn client(&self, id: u64) -> LogClient<Channel> {
        let url = format!("http://{}", self.addrs[&id]);
        let channel =
            tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.unwrap();
        LogClient::new(channel)
    }

    /// Stops node `id` as a crash would: no leadership transfer, no checkpoint, files left as
    /// they are (its Raft and server stop; its logs are dropped unclosed).
    pub async fn crash(&mut self, id: u64) {
        let mut node = self.nodes.remove(&id).expect("a running node");
        let _ = node.cluster.raft().shutdown().await;
        if let Some(task) = node.task.take() {
            task.abort();
            let _ = task.await;
        }
        drop(node);
    }

    /// Stops node `id` gracefully (leadership handed on, checkpoint written, logs closed).
    pub async fn stop(&mut self, id: u64) {
        let mut node = self.nodes.remove(&id).expect("a running node");
        if let Some(tx) = node.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = node.task.take() {
            let _ = task.await;
        }
        node.cluster.shutdown().await;
        let logs = Arc::clone(&node.logs);
        drop(node);
        tokio::task::spawn_blocking(move || logs.close()).await.unwrap().unwrap();
    }

    /// Starts node `id` again on its data directory and address.
    pub async fn restart(&mut self, id: u64) {
        let addr = self.addrs[&id];
        let listener = rebind(addr).await;
        let start = Start::Founder { members: self.members.clone() };
        let node = launch(id, listener, self.dir(id), start).await;
        self.nodes.insert(id, node);
    }

    /// Starts a new node `id` that will join (not yet a member); answers its address.
    pub async fn start_joiner(&mut self, id: u64) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let via = self.addrs.values().next().unwrap().to_string();
        let node = launch(id, listener, self.dir(id), Start::Join { via }).await;
        self.addrs.insert(id, addr);
        self.nodes.insert(id, node);
        addr
    }

    /// Waits until every running node's log `name` holds `next` as its next offset.
    pub async fn converged(&self, name: &str, next: u64) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let all = self
                .nodes
                .values()
                .all(|node| node.logs.get(name).is_ok_and(|log| log.log().next_offset() == next));
            if all {
                return;
            }
            assert!(Instant::now() < deadline, "log {name:?} not at {next} on every node");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every record of log `name` on node `id`: (offset, timestamp, value).
    pub fn records(&self, id: u64, name: &str) -> Vec<(u64, u64, Vec<u8>)> {
        let log = self.nodes[&id].logs.get(name).unwrap();
        let (lowest, next) = (log.log().lowest_offset(), log.log().next_offset());
        if next == lowest {
            return Vec::new();
        }
        log.log()
            .read_batch(lowest, (next - lowest) as usize, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|r| (r.offset, r.timestamp_ms, r.value.to_vec()))
            .collect()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(task) = node.task.take() {
                task.abort();
            }
        }
    }
}
