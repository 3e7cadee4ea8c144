//! The receiving half of the internal Raft service: `girok.raft.v1.Raft` over a node's
//! [`openraft::Raft`].
//!
//! Each handler decodes the frame ([`super::network::wire`]), hands the message to the Raft
//! handle and encodes its answer, `Ok` or the `RaftError`, as the reply frame. A gRPC status
//! means the call itself was wrong: `INVALID_ARGUMENT` for a frame that does not decode or a
//! bad sender header, `PERMISSION_DENIED` for a sender that is not a member.
//!
//! # Who may call
//!
//! The sender names itself in the [`NODE_ID_HEADER`] header. A receiver that knows its
//! membership (voters and learners alike) refuses a sender outside it, so a removed node or a
//! node of another cluster cannot disrupt this one with votes. Without TLS this checks the
//! identity a peer *claims*, not one it proves. Under TLS the router admits Raft calls only with
//! a verified client certificate, and here its Common Name must be the sender's
//! ([`node_common_name`]: `girok-node-ID`), so a certificate proves one node and no user
//! certificate of the same CA speaks for any. Two cases let a non-member through, because refusing them would break
//! Raft rather than protect it:
//! - the receiver knows no membership yet (a node waiting to be added or initialized);
//! - an `Append` or `Snapshot` from a leader whose committed vote is at least the receiver's
//!   own: a lagging receiver may not yet have the membership that made the sender a member,
//!   and only that leader's entries can bring it.

use std::sync::Arc;

use openraft::Raft;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::RaftError;
use openraft::storage::RaftStateMachine;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::network::{MAX_MESSAGE_SIZE, NODE_ID_HEADER, wire};
use super::proto::Frame;
use super::proto::raft_server::{self, RaftServer};
use super::types::{NodeId, Snapshot, TypeConfig, Vote};

/// The internal Raft service of one node.
pub struct RaftService<SM>
where
    SM: RaftStateMachine<TypeConfig>,
{
    raft: Raft<TypeConfig, SM>,
}

impl<SM> RaftService<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    /// The service answering for `raft`.
    pub fn new(raft: Raft<TypeConfig, SM>) -> Self {
        Self { raft }
    }

    /// The tonic service, accepting and sending messages up to
    /// [`super::network::MAX_MESSAGE_SIZE`].
    pub fn into_server(self) -> RaftServer<Self> {
        RaftServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Refuses the call unless its sender may make it (see the module doc). `leader_vote` is
    /// the vote an `Append` or `Snapshot` carries; `None` for the other calls.
    fn admit<T>(&self, request: &Request<T>, leader_vote: Option<&Vote>) -> Result<(), Status> {
        let sender = sender(request)?;
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.membership_config.membership();
        if membership.nodes().next().is_none() {
            return Ok(());
        }
        let Some(sender) = sender else {
            return Err(Status::permission_denied(format!(
                "a Raft call must name its sender in {NODE_ID_HEADER}"
            )));
        };
        if membership.get_node(&sender).is_some() {
            return Ok(());
        }
        if let Some(vote) = leader_vote
            && vote.committed
            && *vote >= metrics.vote
        {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "node {sender} is not a member of node {}'s cluster",
            metrics.id
        )))
    }
}

/// Under TLS, refuses a call whose certificate does not name the node it claims to come from
/// (before anything of the call is decoded). On plaintext nothing is proven: `admit` checks the
/// claim against the membership.
fn prove<T>(request: &Request<T>) -> Result<(), Status> {
    let Some(PeerCertificate(Some(name))) = request.extensions().get::<PeerCertificate>() else {
        return Ok(());
    };
    let Some(sender) = sender(request)? else {
        return Err(Status::permission_denied(format!(
            "a Raft call must name its sender in {NODE_ID_HEADER}"
        )));
    };
    if **name != node_common_name(sender) {
        return Err(Status::permission_denied(format!(
            "a certificate for {name:?} cannot speak for node {sender}: a node's certificate \
             has the Common Name {:?}",
            node_common_name(sender)
        )));
    }
    Ok(())
}

/// What the server's TLS handshake proved about a Raft call's sender: the Common Name of its
/// verified client certificate (`None` on plaintext). The router puts it in every Raft call's
/// extensions.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Option<Arc<str>>);

/// The Common Name a node's certificate must carry under TLS: `girok-node-ID`. A certificate
/// proves only the node it names, so a user's certificate from the same CA cannot make Raft
/// calls.
pub fn node_common_name(id: NodeId) -> String {
    format!("girok-node-{id}")
}

/// The sender a request names, if any.
fn sender<T>(request: &Request<T>) -> Result<Option<NodeId>, Status> {
    let Some(value) = request.metadata().get(NODE_ID_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| Status::invalid_argument(format!("{NODE_ID_HEADER} is not a node id")))
}

fn decode<T: serde::de::DeserializeOwned>(frame: &Frame) -> Result<T, Status> {
    wire::decode(&frame.data)
        .map_err(|e| Status::invalid_argument(format!("undecodable Raft frame: {e}")))
}

fn reply<T: Serialize>(reply: wire::Reply<T>) -> Result<Response<Frame>, Status> {
    let data = wire::encode(&reply)
        .map_err(|e| Status::internal(format!("encoding a Raft reply: {e}")))?;
    Ok(Response::new(Frame { data }))
}

#[tonic::async_trait]
impl<SM> raft_server::Raft for RaftService<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    async fn append(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        prove(&request)?;
        let rpc: openraft::raft::AppendEntriesRequest<TypeConfig> = decode(request.get_ref())?;
        self.admit(&request, Some(&rpc.vote))?;
        reply(self.raft.append_entries(rpc).await)
    }

    async fn vote(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        prove(&request)?;
        let frame: wire::VoteFrame = decode(request.get_ref())?;
        self.admit(&request, None)?;
        reply(match frame {
            wire::VoteFrame::Vote(rpc) => self.raft.vote(rpc).await,
            wire::VoteFrame::PreVote(rpc) => self.raft.pre_vote(rpc).await,
        })
    }

    async fn snapshot(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        prove(&request)?;
        let frame: wire::SnapshotFrame = decode(request.get_ref())?;
        self.admit(&request, Some(&frame.vote))?;
        let snapshot = Snapshot { meta: frame.meta, snapshot: frame.data };
        reply(self.raft.install_full_snapshot(frame.vote, snapshot).await.map_err(RaftError::Fatal))
    }

    async fn transfer_leader(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        prove(&request)?;
        let rpc: openraft::raft::TransferLeaderRequest<TypeConfig> = decode(request.get_ref())?;
        self.admit(&request, None)?;
        reply(self.raft.handle_transfer_leader(rpc).await.map_err(RaftError::Fatal))
    }
}
