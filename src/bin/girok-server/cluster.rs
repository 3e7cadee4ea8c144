//! The server's cluster flags (`--node-id`, `--cluster`, `--join`, `--advertise-addr`, the Raft
//! timeouts), checked together, and the address a node listens on.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use girok::cluster::log_store::Durability;
use girok::cluster::node::{Cluster, ClusterConfig, Start, parse_members};
use girok::logs::Logs;

use super::{Fsync, parse_millis};

/// Where girok listens when `--addr` is not given and the node is not in a cluster.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:8400";

/// Flags of a cluster node. Without `--node-id`, none applies and the server runs alone.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// This node's id in a cluster (an integer ≥ 1), kept in the data directory: a later start
    /// with another id is refused. Needs `--cluster` (a founding member) or `--join`.
    #[arg(long, env = "GIROK_NODE_ID")]
    node_id: Option<u64>,
    /// The founding members, identical on every founding node: `1=HOST:PORT,2=HOST:PORT,…`. The
    /// node serves clients and Raft on its own entry's address.
    #[arg(long, env = "GIROK_CLUSTER", value_name = "ID=HOST:PORT,…", conflicts_with = "join")]
    cluster: Option<String>,
    /// Join a running cluster through this member: start on an empty data directory, then add
    /// the node with `girok cluster add` (AddServer); it serves nothing until then.
    #[arg(long, env = "GIROK_JOIN", value_name = "HOST:PORT")]
    join: Option<String>,
    /// The address other nodes and clients are given for this node, when it differs from the
    /// bound one (`HOST:PORT`).
    #[arg(long, env = "GIROK_ADVERTISE_ADDR", value_name = "HOST:PORT")]
    pub(crate) advertise_addr: Option<String>,
    /// A Raft leader's heartbeat period; a plain number is milliseconds.
    #[arg(long, env = "GIROK_RAFT_HEARTBEAT", default_value = "150ms", value_parser = parse_millis)]
    raft_heartbeat: Duration,
    /// A follower that has heard no leader for this long (randomised up to twice) stands for
    /// election; a plain number is milliseconds.
    #[arg(long, env = "GIROK_RAFT_ELECTION_TIMEOUT", default_value = "750ms", value_parser = parse_millis)]
    raft_election_timeout: Duration,
}

/// What the cluster flags decided.
pub(crate) struct Plan {
    /// The node's configuration, without its TLS (added by the caller).
    pub(crate) config: ClusterConfig,
}

impl ClusterArgs {
    /// The address to listen on and, for a cluster node, its plan; or why the flags do not fit
    /// together.
    pub(crate) fn resolve(
        &self,
        addr: Option<SocketAddr>,
        fsync: Fsync,
    ) -> Result<(SocketAddr, Option<Plan>), String> {
        let default_addr: SocketAddr = DEFAULT_ADDR.parse().expect("a valid address");
        let Some(node_id) = self.node_id else {
            if self.cluster.is_some() || self.join.is_some() {
                return Err("--cluster and --join need --node-id".into());
            }
            return Ok((addr.unwrap_or(default_addr), None));
        };
        if node_id == 0 {
            return Err("--node-id must be at least 1".into());
        }
        let durability = match fsync {
            Fsync::Always => Durability::Always,
            Fsync::Interval | Fsync::Never => Durability::Never,
        };
        let (start, bind, advertise) = match (&self.cluster, &self.join) {
            (Some(list), None) => {
                let members = parse_members(list).map_err(|err| format!("--cluster: {err}"))?;
                let own = members
                    .get(&node_id)
                    .ok_or_else(|| format!("--cluster does not list this node's id {node_id}"))?;
                let own_addr: SocketAddr = match addr {
                    Some(given) => {
                        if own.parse::<SocketAddr>().ok() != Some(given) {
                            return Err(format!(
                                "--addr {given} differs from node {node_id}'s address in \
                                 --cluster ({own})"
                            ));
                        }
                        given
                    }
                    None => resolve_addr(own)?,
                };
                let advertise = self.advertise_addr.clone().unwrap_or_else(|| own.clone());
                (Start::Founder { members }, own_addr, advertise)
            }
            (None, Some(via)) => {
                let bind = addr.unwrap_or(default_addr);
                let advertise = self.advertise_addr.clone().unwrap_or_else(|| bind.to_string());
                (Start::Join { via: via.clone() }, bind, advertise)
            }
            _ => return Err("--node-id needs --cluster (a founding member) or --join".into()),
        };
        let mut config = ClusterConfig::new(node_id, start, advertise, durability);
        config.heartbeat = self.raft_heartbeat;
        config.election_timeout = self.raft_election_timeout;
        if config.election_timeout <= config.heartbeat * 2 {
            return Err("--raft-election-timeout must be more than twice --raft-heartbeat".into());
        }
        Ok((bind, Some(Plan { config })))
    }
}

/// `HOST:PORT` as a socket address to bind (a name is resolved).
fn resolve_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .map_err(|err| format!("cannot resolve {text}: {err}"))?
        .next()
        .ok_or_else(|| format!("{text} resolves to no address"))
}

/// Starts the node's Raft over `logs`.
pub(crate) async fn start(
    plan: Plan,
    data_dir: &Path,
    logs: Arc<Logs>,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Result<Cluster, String> {
    let mut config = plan.config;
    config.tls = tls;
    Cluster::start(data_dir, logs, config).await.map_err(|err| err.to_string())
}
