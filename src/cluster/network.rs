//! The sending half of the internal Raft service: openraft's network, over tonic.
//!
//! [`Network`] is the [`RaftNetworkFactory`] a node's `Raft` owns; it hands openraft one
//! [`PeerClient`] per target, each calling the `girok.raft.v1.Raft` service of that peer
//! ([`super::service`] is the receiving half). Both halves share the framing in [`wire`]: a
//! request is one openraft message encoded with postcard in a `Frame`; a reply is a `Frame`
//! holding `Result<Response, RaftError>` encoded the same way, so a remote openraft failure
//! travels as data and a gRPC status only ever means the transport or the frame was wrong.
//!
//! # Invariants
//! - One tonic `Channel` per peer address, shared by every client of that peer, connected
//!   lazily: building a client never waits on the network, and a peer that is down costs one
//!   failed connect per call, not a stuck task.
//! - Every call is bounded by the `RPCOption`'s hard TTL, and sends it as the gRPC deadline so
//!   the receiver gives up too.
//! - Every call names its sender in the [`NODE_ID_HEADER`] header.
//!
//! # How failures reach openraft
//!
//! | what happened | openraft error |
//! | --- | --- |
//! | the link is cut in [`Faults`] | `Unreachable` |
//! | connect refused, reset, DNS or TLS failure (`UNAVAILABLE`, or a transport/io error) | `Unreachable` |
//! | the peer refuses us (`PERMISSION_DENIED`: not a member) or has no Raft service (`UNIMPLEMENTED`) | `Unreachable` |
//! | no reply within the hard TTL (`DEADLINE_EXCEEDED`, `CANCELLED`, or our own timer) | `Timeout` |
//! | the peer's Raft answered with a `RaftError` (it is stopped, panicked or its storage failed) | `Unreachable`, wrapping a `RemoteError` naming the peer |
//! | any other status, or a reply that does not decode | `Network` |
//! | the leader closed the replication while a snapshot was in flight | `StreamingError::Closed` |
//!
//! `Unreachable` makes openraft back off the peer (with [`Config`](openraft::Config)'s backoff);
//! `Timeout` and `Network` are retried on the next heartbeat. A remote `RaftError` cannot be a
//! `RemoteError` here: openraft's network errors carry no remote error type (`RPCError<C>`'s is
//! `Infallible`), and a peer whose Raft has stopped is, to the sender, as good as down.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use openraft::RPCTypes;
use openraft::error::{
    NetworkError, RPCError, RaftError, RemoteError, ReplicationClosed, StreamingError, Timeout,
    Unreachable,
};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::proto::Frame;
use super::proto::raft_client::RaftClient;
use super::types::{Node, NodeId, Snapshot, SnapshotMeta, TypeConfig, Vote};

/// The request header naming the sending node's id, in decimal.
pub const NODE_ID_HEADER: &str = "girok-node-id";

/// The largest Raft message either side sends or accepts: an append carries batches of records.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// The least time an append carrying entries is given (see `append_entries`): a batch of
/// entries is capped at a few MiB by the log store, which loopback or a LAN carries well within.
const APPEND_TTL: Duration = Duration::from_secs(10);
/// How long a connect may take before the call fails as `Unreachable`; the RPC's hard TTL
/// bounds it too, whichever is shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The framing both halves of the internal Raft service use.
///
/// Requests are openraft's own messages, except where openraft has none that serializes
/// ([`wire::VoteFrame`] tells a vote from a pre-vote; [`wire::SnapshotFrame`] carries a whole snapshot).
/// Every reply is a [`wire::Reply`]. All of it is postcard: compact, and as versioned as girok is
/// (the nodes of a cluster must run the same version; see `api/internal/raft.proto`).
pub mod wire {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use super::{RaftError, SnapshotMeta, TypeConfig, Vote, VoteRequest};

    /// What every reply frame holds: the response, or the receiver's openraft error.
    pub type Reply<T> = Result<T, RaftError<TypeConfig>>;

    /// The body of a `Vote` call.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub enum VoteFrame {
        /// RequestVote: the receiver may grant and persist its vote.
        Vote(VoteRequest<TypeConfig>),
        /// Pre-vote: would the receiver grant it? Changes nothing on the receiver.
        PreVote(VoteRequest<TypeConfig>),
    }

    /// The body of a `Snapshot` call: the sender's vote and the whole snapshot.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SnapshotFrame {
        /// The leader's vote, checked by the receiver before it installs anything.
        pub vote: Vote,
        /// The snapshot's metadata.
        pub meta: SnapshotMeta,
        /// The state machine's checkpoint.
        pub data: Vec<u8>,
    }

    /// Encodes one message for a frame.
    pub fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes, postcard::Error> {
        postcard::to_stdvec(value).map(bytes::Bytes::from)
    }

    /// Decodes one message from a frame.
    pub fn decode<T: DeserializeOwned>(data: &[u8]) -> Result<T, postcard::Error> {
        postcard::from_bytes(data)
    }
}

/// The links a test has cut: the seam the partition tests use.
///
/// Every [`Network`] of a test cluster shares one `Faults`; before node `from` sends to node
/// `to`, its network asks [`Faults::is_cut`] and fails the call with `Unreachable` if so. A
/// link is one direction: cutting `a → b` stops `a`'s requests to `b` (and so the replies to
/// them), while `b` can still call `a`. In production nothing is ever cut, and the check is one
/// atomic load.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<FaultsInner>,
}

#[derive(Debug, Default)]
struct FaultsInner {
    /// Whether anything is cut: the fast path, so an uncut cluster never takes the lock.
    any: AtomicBool,
    /// Why a lock: tests cut and heal from their own task while every node's replication tasks
    /// read; a read lock per send is cheap, and it is never held across an await.
    cut: RwLock<Cut>,
}

#[derive(Debug, Default)]
struct Cut {
    /// Nodes cut off from everyone, both ways.
    isolated: HashSet<NodeId>,
    /// Single directed links `from → to`.
    links: HashSet<(NodeId, NodeId)>,
}

impl Faults {
    /// No link cut.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cuts every link to and from `node`.
    pub fn isolate(&self, node: NodeId) {
        self.write().isolated.insert(node);
        self.inner.any.store(true, Ordering::Release);
    }

    /// Cuts the link `from → to` (only that direction).
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.write().links.insert((from, to));
        self.inner.any.store(true, Ordering::Release);
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_both(&self, a: NodeId, b: NodeId) {
        self.cut(a, b);
        self.cut(b, a);
    }

    /// Heals the link `from → to`, and `from`'s or `to`'s isolation.
    pub fn heal(&self, from: NodeId, to: NodeId) {
        let mut cut = self.write();
        cut.links.remove(&(from, to));
        cut.isolated.remove(&from);
        cut.isolated.remove(&to);
        self.inner.any.store(!cut.is_empty(), Ordering::Release);
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        let mut cut = self.write();
        *cut = Cut::default();
        self.inner.any.store(false, Ordering::Release);
    }

    /// Whether `from`'s requests to `to` are dropped.
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        if !self.inner.any.load(Ordering::Acquire) {
            return false;
        }
        let cut = self.read();
        cut.isolated.contains(&from)
            || cut.isolated.contains(&to)
            || cut.links.contains(&(from, to))
    }

    // Lock poisoning: the sets are valid after any panic (each update is one insert or remove),
    // so a poisoned lock is used as is.
    fn read(&self) -> RwLockReadGuard<'_, Cut> {
        self.inner.cut.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Cut> {
        self.inner.cut.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Cut {
    fn is_empty(&self) -> bool {
        self.isolated.is_empty() && self.links.is_empty()
    }
}

/// A node's Raft network: makes the client openraft uses to reach each peer.
#[derive(Clone)]
pub struct Network {
    /// This node: named in every request, and in timeouts.
    id: NodeId,
    /// `Some` when the cluster runs TLS: peers are dialled with `https://`, and this node
    /// presents the certificate configured here as its client certificate.
    tls: Option<ClientTlsConfig>,
    faults: Faults,
    /// One channel per peer address. Why a lock: `new_client` runs on openraft's tasks, one
    /// per peer; the critical section is a map lookup or insert (`connect_lazy` does no I/O),
    /// never an await. Poisoning: the map is valid after any panic, so it is used as is.
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl Network {
    /// The network of node `id`: plaintext when `tls` is `None`; `faults` is the test seam
    /// (pass `Faults::new()` in production).
    pub fn new(id: NodeId, tls: Option<ClientTlsConfig>, faults: Faults) -> Self {
        Self { id, tls, faults, channels: Arc::default() }
    }

    /// The client for `target`, served at `node.addr`.
    pub fn client(&self, target: NodeId, node: &Node) -> PeerClient {
        PeerClient {
            from: self.id,
            target,
            channel: self.channel(&node.addr),
            faults: self.faults.clone(),
        }
    }

    /// The shared channel to `addr` (`HOST:PORT`), created on first use. An address that is no
    /// URI gets a channel whose every call fails as `Unreachable`.
    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut channels = self.channels();
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| format!("bad peer address {addr:?}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| format!("TLS for peer {addr:?}: {e}"))?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(addr.to_owned(), channel.clone());
        Ok(channel)
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        self.client(target, node)
    }
}

/// What openraft uses to call one peer.
pub struct PeerClient {
    from: NodeId,
    target: NodeId,
    /// The shared channel, or why there is none (an address that does not parse).
    channel: Result<Channel, String>,
    faults: Faults,
}

impl PeerClient {
    /// Sends `body` to the `rpc` method and decodes the reply, within `ttl`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        rpc: RPCTypes,
        body: bytes::Bytes,
        ttl: Duration,
    ) -> Result<T, RPCError<TypeConfig>> {
        if self.faults.is_cut(self.from, self.target) {
            return Err(Unreachable::from_string(format!(
                "link {} -> {} is cut",
                self.from, self.target
            ))
            .into());
        }
        let channel = match &self.channel {
            Ok(channel) => channel.clone(),
            Err(why) => return Err(Unreachable::from_string(why).into()),
        };
        let mut client = RaftClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let mut request = tonic::Request::new(Frame { data: body });
        request.set_timeout(ttl);
        request.metadata_mut().insert(NODE_ID_HEADER, MetadataValue::from(self.from));
        let send = async move {
            match rpc {
                RPCTypes::AppendEntries => client.append(request).await,
                RPCTypes::Vote => client.vote(request).await,
                RPCTypes::InstallSnapshot => client.snapshot(request).await,
                RPCTypes::TransferLeader => client.transfer_leader(request).await,
            }
        };
        let timeout = || Timeout { action: rpc, id: self.from, target: self.target, timeout: ttl };
        let reply = match tokio::time::timeout(ttl, send).await {
            Err(_elapsed) => return Err(timeout().into()),
            Ok(Err(status)) => return Err(status_to_rpc_error(&status, timeout)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        let reply: wire::Reply<T> = wire::decode(&reply.data).map_err(|e| {
            NetworkError::from_string(format!("undecodable {rpc} reply from {}: {e}", self.target))
        })?;
        reply.map_err(|e| {
            Unreachable::new(&RemoteError::<TypeConfig, _>::new(self.target, e)).into()
        })
    }
}

/// Maps a failed call's status (see the table in the module doc).
fn status_to_rpc_error(
    status: &Status,
    timeout: impl FnOnce() -> Timeout<TypeConfig>,
) -> RPCError<TypeConfig> {
    match status.code() {
        Code::DeadlineExceeded | Code::Cancelled => timeout().into(),
        Code::Unavailable | Code::PermissionDenied | Code::Unimplemented => {
            Unreachable::new(status).into()
        }
        _ if is_transport_failure(status) => Unreachable::new(status).into(),
        _ => NetworkError::new(status).into(),
    }
}

/// Whether a status came from the connection rather than the peer's handler.
fn is_transport_failure(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

fn encode<T: serde::Serialize>(
    rpc: RPCTypes,
    value: &T,
) -> Result<bytes::Bytes, NetworkError<TypeConfig>> {
    wire::encode(value).map_err(|e| NetworkError::from_string(format!("encoding {rpc}: {e}")))
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let carries_entries = !rpc.entries.is_empty();
        let body = encode(RPCTypes::AppendEntries, &rpc)?;
        // openraft gives every append the heartbeat interval as its TTL; an append carrying
        // megabytes of records to a node catching up needs longer, or it times out and is sent
        // again, identically, forever. Heartbeats (no entries) keep the short TTL.
        let ttl =
            if carries_entries { option.hard_ttl().max(APPEND_TTL) } else { option.hard_ttl() };
        self.call(RPCTypes::AppendEntries, body, ttl).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let body = encode(RPCTypes::Vote, &wire::VoteFrame::Vote(rpc))?;
        self.call(RPCTypes::Vote, body, option.hard_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let body = encode(RPCTypes::Vote, &wire::VoteFrame::PreVote(rpc))?;
        self.call(RPCTypes::Vote, body, option.hard_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let frame = wire::SnapshotFrame { vote, meta: snapshot.meta, data: snapshot.snapshot };
        let body = encode(RPCTypes::InstallSnapshot, &frame)?;
        tokio::select! {
            closed = cancel => Err(closed.into()),
            reply = self.call(RPCTypes::InstallSnapshot, body, option.hard_ttl()) => {
                Ok(reply?)
            }
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let body = encode(RPCTypes::TransferLeader, &req)?;
        self.call(RPCTypes::TransferLeader, body, option.hard_ttl()).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::SocketAddr;
    use std::time::Instant;

    use bytes::Bytes;
    use openraft::error::{Fatal, RPCError, RaftError, StreamingError};
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderError,
        TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
    };
    use openraft::testing::log_id;
    use openraft::{BasicNode, EntryPayload, Membership, StoredMembership};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use tokio::net::TcpListener;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::{Request, Response, Status};

    use super::wire::{self, Reply, SnapshotFrame, VoteFrame};
    use super::*;
    use crate::cluster::command::Command;
    use crate::cluster::proto::raft_server::{self, RaftServer};
    use crate::cluster::types::{Entry, SnapshotMeta};

    const OPTION_TTL: Duration = Duration::from_secs(2);

    /// Encodes, decodes and re-encodes `value`, checking both encodings are the same bytes.
    fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> T {
        let first = wire::encode(value).expect("encode");
        let decoded: T = wire::decode(&first).expect("decode");
        assert_eq!(wire::encode(&decoded).expect("re-encode"), first);
        decoded
    }

    fn vote() -> Vote {
        Vote::new_committed(3, 1)
    }

    fn membership() -> Membership<NodeId, Node> {
        Membership::new_with_defaults(vec![BTreeSet::from([1, 2, 3])], [4])
    }

    fn entries() -> Vec<Entry> {
        vec![
            Entry { log_id: log_id::<TypeConfig>(3, 1, 10), payload: EntryPayload::Blank },
            Entry {
                log_id: log_id::<TypeConfig>(3, 1, 11),
                payload: EntryPayload::Normal(Command::Append {
                    log: "orders".into(),
                    incarnation: None,
                    create: true,
                    timestamp_ms: 1_700_000_000_000,
                    values: vec![Bytes::from_static(b"a"), Bytes::new(), Bytes::from(vec![7; 300])],
                }),
            },
            Entry {
                log_id: log_id::<TypeConfig>(3, 1, 12),
                payload: EntryPayload::Membership(membership()),
            },
        ]
    }

    #[test]
    fn an_append_request_survives_the_framing_with_every_kind_of_entry() {
        let request = AppendEntriesRequest::<TypeConfig> {
            vote: vote(),
            prev_log_id: Some(log_id::<TypeConfig>(2, 2, 9)),
            entries: entries(),
            leader_commit: Some(log_id::<TypeConfig>(2, 2, 8)),
        };
        let back = round_trip(&request);
        assert_eq!(back.vote, request.vote);
        assert_eq!(back.prev_log_id, request.prev_log_id);
        assert_eq!(back.entries, request.entries);
        assert_eq!(back.leader_commit, request.leader_commit);
    }

    #[test]
    fn every_append_reply_survives_the_framing() {
        let replies: Vec<Reply<AppendEntriesResponse<TypeConfig>>> = vec![
            Ok(AppendEntriesResponse::Success),
            Ok(AppendEntriesResponse::PartialSuccess(Some(log_id::<TypeConfig>(3, 1, 11)))),
            Ok(AppendEntriesResponse::PartialSuccess(None)),
            Ok(AppendEntriesResponse::Conflict),
            Ok(AppendEntriesResponse::HigherVote(Vote::new(4, 2))),
            Err(RaftError::Fatal(Fatal::Stopped)),
            Err(RaftError::Fatal(Fatal::Panicked)),
        ];
        for reply in &replies {
            assert_eq!(&round_trip(reply), reply);
        }
    }

    #[test]
    fn a_vote_and_a_pre_vote_stay_apart_through_the_framing() {
        let request =
            VoteRequest::<TypeConfig>::new(Vote::new(4, 2), Some(log_id::<TypeConfig>(3, 1, 12)));
        for frame in [VoteFrame::Vote(request.clone()), VoteFrame::PreVote(request)] {
            assert_eq!(round_trip(&frame), frame);
        }
        let replies: [Reply<VoteResponse<TypeConfig>>; 3] = [
            Ok(VoteResponse::new(Vote::new(4, 2), None, true)),
            Ok(VoteResponse::new(vote(), Some(log_id::<TypeConfig>(3, 1, 12)), false)),
            Err(RaftError::Fatal(Fatal::Stopped)),
        ];
        for reply in &replies {
            assert_eq!(&round_trip(reply), reply);
        }
    }

    #[test]
    fn a_snapshot_and_its_reply_survive_the_framing() {
        let frame = SnapshotFrame {
            vote: vote(),
            meta: SnapshotMeta {
                last_log_id: Some(log_id::<TypeConfig>(3, 1, 12)),
                last_membership: StoredMembership::new(
                    Some(log_id::<TypeConfig>(3, 1, 12)),
                    membership(),
                ),
            },
            data: vec![1, 2, 3, 0, 255],
        };
        assert_eq!(round_trip(&frame), frame);
        let reply: Reply<SnapshotResponse<TypeConfig>> = Ok(SnapshotResponse::new(vote()));
        assert_eq!(round_trip(&reply), reply);
    }

    #[test]
    fn a_leadership_transfer_and_its_replies_survive_the_framing() {
        let request = TransferLeaderRequest::<TypeConfig>::new(
            vote(),
            2,
            Some(log_id::<TypeConfig>(3, 1, 12)),
        );
        assert_eq!(round_trip(&request), request);
        let replies: Vec<Reply<TransferLeaderResponse<TypeConfig>>> = vec![
            Ok(Ok(())),
            Ok(Err(TransferLeaderError::VoteChanged { expected: vote(), actual: Vote::new(4, 2) })),
            Ok(Err(TransferLeaderError::LogNotFlushed {
                expected: Some(log_id::<TypeConfig>(3, 1, 12)),
                actual: None,
            })),
            Err(RaftError::Fatal(Fatal::Stopped)),
        ];
        for reply in &replies {
            assert_eq!(&round_trip(reply), reply);
        }
    }

    /// How the stub peer answers every call.
    #[derive(Clone, Copy)]
    enum Answer {
        /// Grants votes (refuses pre-votes, so a test can tell them apart), accepts appends.
        Serve,
        /// Answers with a stopped Raft.
        Stopped,
        /// Refuses the sender.
        Deny,
        /// Never answers in time.
        Hang,
        /// Answers with bytes that are no reply.
        Garbage,
    }

    /// A peer speaking the internal Raft service with canned answers, recording who called.
    #[derive(Clone)]
    struct Stub {
        answer: Answer,
        senders: Arc<Mutex<Vec<String>>>,
    }

    impl Stub {
        async fn answer<T: Serialize>(
            &self,
            request: &Request<Frame>,
            ok: impl FnOnce() -> T,
        ) -> Result<Response<Frame>, Status> {
            let sender = request
                .metadata()
                .get(NODE_ID_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            self.senders.lock().unwrap().push(sender);
            let data = match self.answer {
                Answer::Serve => wire::encode(&Reply::Ok(ok())).unwrap(),
                Answer::Stopped => {
                    wire::encode(&Reply::<T>::Err(RaftError::Fatal(Fatal::Stopped))).unwrap()
                }
                Answer::Deny => return Err(Status::permission_denied("not a member")),
                Answer::Hang => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return Err(Status::internal("woke up"));
                }
                Answer::Garbage => Bytes::from_static(&[0xff; 3]),
            };
            Ok(Response::new(Frame { data }))
        }
    }

    #[tonic::async_trait]
    impl raft_server::Raft for Stub {
        async fn append(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
            self.answer(&request, || AppendEntriesResponse::<TypeConfig>::Success).await
        }

        async fn vote(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
            let frame: VoteFrame = wire::decode(&request.get_ref().data).unwrap();
            let (req, granted) = match frame {
                VoteFrame::Vote(req) => (req, true),
                VoteFrame::PreVote(req) => (req, false),
            };
            self.answer(&request, || VoteResponse::<TypeConfig>::new(req.vote, None, granted)).await
        }

        async fn snapshot(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
            let frame: SnapshotFrame = wire::decode(&request.get_ref().data).unwrap();
            self.answer(&request, || SnapshotResponse::<TypeConfig>::new(frame.vote)).await
        }

        async fn transfer_leader(
            &self,
            request: Request<Frame>,
        ) -> Result<Response<Frame>, Status> {
            self.answer(&request, || -> TransferLeaderResponse<TypeConfig> { Ok(()) }).await
        }
    }

    /// Starts a stub peer on `127.0.0.1:0`; it serves until the test's runtime ends.
    async fn start_stub(answer: Answer) -> (SocketAddr, Stub) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stub = Stub { answer, senders: Arc::default() };
        let server = RaftServer::new(stub.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(server)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (addr, stub)
    }

    fn client_of(network: &Network, target: NodeId, addr: SocketAddr) -> PeerClient {
        network.client(target, &BasicNode::new(addr.to_string()))
    }

    fn option() -> RPCOption {
        RPCOption::new(OPTION_TTL)
    }

    fn vote_request() -> VoteRequest<TypeConfig> {
        VoteRequest::new(Vote::new(4, 1), None)
    }

    #[tokio::test]
    async fn a_served_call_returns_the_peers_answer_and_names_the_sender() {
        let (addr, stub) = start_stub(Answer::Serve).await;
        let mut client = client_of(&Network::new(1, None, Faults::new()), 2, addr);
        let granted = RaftNetworkV2::vote(&mut client, vote_request(), option()).await.unwrap();
        assert!(granted.vote_granted);
        let pre = RaftNetworkV2::pre_vote(&mut client, vote_request(), option()).await.unwrap();
        assert!(!pre.vote_granted, "the stub refuses pre-votes: the frame must say which it is");
        let append = AppendEntriesRequest {
            vote: vote(),
            prev_log_id: None,
            entries: entries(),
            leader_commit: None,
        };
        let appended = RaftNetworkV2::append_entries(&mut client, append, option()).await.unwrap();
        assert_eq!(appended, AppendEntriesResponse::Success);
        let snapshot = Snapshot { meta: SnapshotMeta::default(), snapshot: vec![9; 1024] };
        let installed =
            client.full_snapshot(vote(), snapshot, std::future::pending(), option()).await.unwrap();
        assert_eq!(installed.vote, vote());
        let transfer = TransferLeaderRequest::new(vote(), 2, None);
        let transferred = client.transfer_leader(transfer, option()).await.unwrap();
        assert_eq!(transferred, Ok(()));
        assert_eq!(*stub.senders.lock().unwrap(), vec!["1"; 5]);
    }

    #[tokio::test]
    async fn a_cut_link_is_unreachable_at_once_and_works_again_when_healed() {
        let (addr, stub) = start_stub(Answer::Serve).await;
        let faults = Faults::new();
        let network = Network::new(1, None, faults.clone());
        let mut client = client_of(&network, 2, addr);

        faults.cut(1, 2);
        let started = Instant::now();
        let err = RaftNetworkV2::vote(&mut client, vote_request(), option()).await.unwrap_err();
        assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(stub.senders.lock().unwrap().is_empty(), "a cut link sends nothing");
        assert!(!faults.is_cut(2, 1), "a cut is one direction");

        faults.heal_all();
        let granted = RaftNetworkV2::vote(&mut client, vote_request(), option()).await.unwrap();
        assert!(granted.vote_granted);

        faults.isolate(2);
        assert!(faults.is_cut(1, 2) && faults.is_cut(2, 1) && !faults.is_cut(1, 3));
        let err = RaftNetworkV2::vote(&mut client, vote_request(), option()).await.unwrap_err();
        assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
        faults.heal(1, 2);
        assert!(!faults.is_cut(2, 1), "healing a node's link ends its isolation");
        RaftNetworkV2::vote(&mut client, vote_request(), option()).await.unwrap();
    }

    #[tokio::test]
    async fn a_peer_that_refuses_connections_is_unreachable_quickly() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut client = client_of(&Network::new(1, None, Faults::new()), 2, addr);
        let started = Instant::now();
        let err = RaftNetworkV2::vote(&mut client, vote_request(), option()).await.unwrap_err();
        assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
        assert!(started.elapsed() < OPTION_TTL);
        let snapshot = Snapshot { meta: SnapshotMeta::default(), snapshot: Vec::new() };
        let err = client
            .full_snapshot(vote(), snapshot, std::future::pending(), option())
            .await
            .unwrap_err();
        assert!(matches!(err, StreamingError::Unreachable(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_peer_that_never_answers_times_out_at_the_hard_ttl() {
        let (addr, _stub) = start_stub(Answer::Hang).await;
        let mut client = client_of(&Network::new(1, None, Faults::new()), 2, addr);
        let ttl = Duration::from_millis(300);
        let started = Instant::now();
        let err = RaftNetworkV2::vote(&mut client, vote_request(), RPCOption::new(ttl))
            .await
            .unwrap_err();
        match err {
            RPCError::Timeout(t) => {
                assert_eq!((t.id, t.target, t.timeout), (1, 2, ttl));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(started.elapsed() < ttl * 3);
    }

    #[tokio::test]
    async fn a_closed_replication_abandons_a_snapshot_in_flight() {
        let (addr, _stub) = start_stub(Answer::Hang).await;
        let mut client = client_of(&Network::new(1, None, Faults::new()), 2, addr);
        let snapshot = Snapshot { meta: SnapshotMeta::default(), snapshot: Vec::new() };
        let cancel = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            ReplicationClosed::new("leader stepped down")
        };
        let err = client.full_snapshot(vote(), snapshot, cancel, option()).await.unwrap_err();
        assert!(matches!(err, StreamingError::Closed(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_stopped_or_refusing_peer_is_unreachable_and_a_garbled_reply_is_a_network_error() {
        for (answer, unreachable) in
            [(Answer::Stopped, true), (Answer::Deny, true), (Answer::Garbage, false)]
        {
            let (addr, _stub) = start_stub(answer).await;
            let mut client = client_of(&Network::new(1, None, Faults::new()), 2, addr);
            let err = RaftNetworkV2::vote(&mut client, vote_request(), option()).await.unwrap_err();
            if unreachable {
                assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
            } else {
                assert!(matches!(err, RPCError::Network(_)), "{err:?}");
            }
        }
    }

    #[tokio::test]
    async fn clients_of_one_address_share_one_channel_and_a_bad_address_is_unreachable() {
        let network = Network::new(1, None, Faults::new());
        network.client(2, &BasicNode::new("127.0.0.1:1"));
        network.client(3, &BasicNode::new("127.0.0.1:1"));
        assert_eq!(network.channels().len(), 1);
        let mut bad = network.client(4, &BasicNode::new("not an address"));
        let err = RaftNetworkV2::vote(&mut bad, vote_request(), option()).await.unwrap_err();
        assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
    }
}
