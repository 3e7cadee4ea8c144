//! [`ClusterClient`]: a client of a girok cluster, or of a single server (which `GetServers`
//! answers as a cluster of one, its own leader).
//!
//! - It starts from seed addresses (see `seeds`) and asks the first that answers for the
//!   cluster's servers (`GetServers`). A server answering `UNIMPLEMENTED` predates clusters and
//!   is taken as a single node; a server listing only itself, or giving no address, is reached
//!   at the seed that answered.
//! - Writes go to the leader; `NOT_LEADER` is followed to the leader it names, or, when it names
//!   none, to the one `GetServers` names next. Reads (`consume`, `offsets`, tails) go round-robin
//!   over every server, followers and leader alike, so they may lag the leader; a read past a
//!   follower's end is asked again at the leader, and [`ClusterLog::offsets_linearizable`]
//!   asks the leader only. What is retried, and how long, is `retry`'s.
//! - One connection per node, made on first use with the same [`Connect`] options (CA, client
//!   certificate, token, connect timeout), kept for the client's life and shared by its clones;
//!   tonic reconnects it after the node comes back.
//!
//! The client's view (servers, leader, connections) sits behind one `std` mutex, held only to
//! read or replace a field, never across an `.await`. Every section leaves the view whole, so a
//! poisoned lock is simply taken over.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tonic::Code;

use super::retry::{self, Retry, Safety, Verdict};
use super::seeds::Seeds;
use super::tail::ClusterRecords;
use super::{
    Acks, Client, ClientError, Compression, Connect, DEFAULT_LOG, LogInfo, LogSettings, Result,
};
use crate::api::v1::{
    self, AddServerRequest, GetServersRequest, OffsetsRequest, RemoveServerRequest,
};
use crate::storage::Record;

/// One server of the cluster, as the client last heard of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    /// The node's id.
    pub id: u64,
    /// Where the client reaches it, `HOST:PORT` (the seed's address for a single node that
    /// advertises none).
    pub addr: String,
    /// Whether it leads, and so serves writes.
    pub is_leader: bool,
    /// Whether it votes (else it is a learner catching up).
    pub voter: bool,
}

/// What sends a call where to go and when to give up: the [`Connect`] options every node is
/// reached with, the seeds, and the view learned from `GetServers`.
#[derive(Debug)]
struct Shared {
    /// The options for every node; only the address differs.
    template: Connect,
    seeds: Seeds,
    view: Mutex<View>,
}

/// What the client knows of the cluster; see the module doc for the lock.
#[derive(Debug, Default)]
struct View {
    /// The last `GetServers` answer; empty before the first.
    servers: Vec<ServerInfo>,
    /// The leader's `HOST:PORT`, when known: from `GetServers` or a `NOT_LEADER` hint.
    leader: Option<String>,
    /// One client per node, by `HOST:PORT`.
    clients: HashMap<String, Client>,
    /// The read round-robin's position.
    next_read: usize,
}

/// A client of a girok cluster: writes reach the leader, reads are spread over every server,
/// and failures are retried as [`Retry`] says. Cheap to clone; clones share the connections and
/// the view of the cluster. Works unchanged against a single server.
///
/// ```no_run
/// # async fn example() -> girok::client::Result<()> {
/// use girok::client::{ClusterClient, Connect};
///
/// let options = Connect::new("").token(std::env::var("GIROK_TOKEN").unwrap_or_default());
/// let cluster = ClusterClient::connect("10.0.0.1:8400,10.0.0.2:8400", options).await?;
/// let orders = cluster.log("orders");
/// let offset = orders.produce("hello").await?; // at the leader, wherever it is
/// let record = orders.consume(offset).await?; // at any server
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClusterClient {
    shared: Arc<Shared>,
    retry: Retry,
    compression: Option<Compression>,
}

impl ClusterClient {
    /// Parses `seeds` (comma-separated `http://HOST:PORT`, `https://HOST:PORT` or bare
    /// `HOST:PORT`; see the scheme rules in [`ClusterClient`]'s module) and asks them, in order,
    /// for the cluster's servers until one answers. `options` are used for every node; their
    /// address is ignored. Fails with the last seed's error when none answers, or at once with
    /// an error that is an answer (a refused token, say).
    pub async fn connect(seeds: &str, options: Connect) -> Result<Self> {
        Self::connect_with(seeds, options, Retry::default()).await
    }

    /// [`ClusterClient::connect`], retrying as `retry` says from the start.
    pub async fn connect_with(seeds: &str, options: Connect, retry: Retry) -> Result<Self> {
        let seeds = Seeds::parse(seeds, options.has_tls_settings())?;
        let shared = Shared { template: options, seeds, view: Mutex::new(View::default()) };
        let client = Self { shared: Arc::new(shared), retry, compression: None };
        client.refresh(Instant::now() + client.retry.budget).await?;
        Ok(client)
    }

    /// This client retrying as `retry` says (the default: [`Retry::default`]).
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// This client asking for `compression` on every call, as
    /// [`Client::compressed`](super::Client::compressed) does.
    pub fn compressed(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// The retry settings.
    pub fn retry(&self) -> &Retry {
        &self.retry
    }

    /// A handle on the log `name`; nothing is sent.
    pub fn log(&self, name: impl Into<String>) -> ClusterLog {
        ClusterLog { cluster: self.clone(), name: name.into() }
    }

    /// Asks the cluster for its servers (the known servers first, then the seeds, until one
    /// answers), and answers them sorted by id.
    pub async fn servers(&self) -> Result<Vec<ServerInfo>> {
        let deadline = Instant::now() + self.retry.budget;
        let mut backoff = self.retry.initial_backoff;
        loop {
            match self.refresh(deadline).await {
                Ok(()) => break,
                Err(err) if retry::unreachable(&err) && Instant::now() + backoff < deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = self.retry.next_backoff(backoff);
                }
                Err(err) => return Err(err),
            }
        }
        let mut servers = self.view().servers.clone();
        servers.sort_by_key(|server| server.id);
        Ok(servers)
    }

    /// The servers as last heard of, without asking.
    pub fn known_servers(&self) -> Vec<ServerInfo> {
        self.view().servers.clone()
    }

    /// Adds the node `id`, serving at `rpc_addr` (`HOST:PORT`), to the cluster. At the leader;
    /// not repeated when its outcome is unknown (a repeat would answer `ALREADY_EXISTS`).
    pub async fn add_server(&self, id: u64, rpc_addr: impl Into<String>) -> Result<()> {
        let rpc_addr = rpc_addr.into();
        self.call(Route::Leader, Safety::Once, |mut client| {
            let request = AddServerRequest { id, rpc_addr: rpc_addr.clone() };
            async move { client.inner().add_server(request).await.map(|_| ()).map_err(Into::into) }
        })
        .await
    }

    /// Removes the node `id` from the cluster. At the leader; not repeated when its outcome is
    /// unknown (a repeat would answer `NOT_FOUND`).
    pub async fn remove_server(&self, id: u64) -> Result<()> {
        self.call(Route::Leader, Safety::Once, |mut client| async move {
            client.inner().remove_server(RemoveServerRequest { id }).await?;
            Ok(())
        })
        .await
    }

    /// [`Client::create_log`](super::Client::create_log) at the leader; not repeated when its
    /// outcome is unknown.
    pub async fn create_log(
        &self,
        name: impl Into<String>,
        settings: LogSettings,
    ) -> Result<LogInfo> {
        let name = name.into();
        self.call(Route::Leader, Safety::Once, |mut client| {
            let name = name.clone();
            async move { client.create_log(name, settings).await }
        })
        .await
    }

    /// [`Client::update_log`](super::Client::update_log) at the leader; repeated when its
    /// outcome is unknown (it does the same twice).
    pub async fn update_log(
        &self,
        name: impl Into<String>,
        settings: LogSettings,
    ) -> Result<LogInfo> {
        let name = name.into();
        self.call(Route::Leader, Safety::Idempotent, |mut client| {
            let name = name.clone();
            async move { client.update_log(name, settings).await }
        })
        .await
    }

    /// [`Client::delete_log`](super::Client::delete_log) at the leader; not repeated when its
    /// outcome is unknown (a repeat would answer `NOT_FOUND`).
    pub async fn delete_log(&self, name: impl Into<String>) -> Result<()> {
        let name = name.into();
        self.call(Route::Leader, Safety::Once, |mut client| {
            let name = name.clone();
            async move { client.delete_log(name).await }
        })
        .await
    }

    /// [`Client::list_logs`](super::Client::list_logs) at the leader, so that a log just
    /// created is listed.
    pub async fn list_logs(&self) -> Result<Vec<LogInfo>> {
        self.call(Route::Leader, Safety::Read, |mut client| async move { client.list_logs().await })
            .await
    }

    /// [`ClusterLog::produce`] on [`DEFAULT_LOG`].
    pub async fn produce(&self, value: impl Into<Bytes>) -> Result<u64> {
        self.log(String::new()).produce(value).await
    }

    /// [`ClusterLog::consume`] on [`DEFAULT_LOG`].
    pub async fn consume(&self, offset: u64) -> Result<Record> {
        self.log(String::new()).consume(offset).await
    }

    /// [`ClusterLog::offsets`] on [`DEFAULT_LOG`].
    pub async fn offsets(&self) -> Result<Range<u64>> {
        self.log(String::new()).offsets().await
    }

    /// [`ClusterLog::consume_stream`] on [`DEFAULT_LOG`].
    pub async fn consume_stream(&self, offset: u64) -> Result<ClusterRecords> {
        self.log(String::new()).consume_stream(offset).await
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.shared.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `addr` (`HOST:PORT`) as a URL of the cluster's scheme.
    fn url(&self, addr: &str) -> String {
        format!("{}://{addr}", self.shared.seeds.scheme)
    }

    /// The client of the node at `addr`, connecting on first use within the connect timeout,
    /// or `left` when the options set none.
    async fn client(&self, addr: &str, left: Duration) -> Result<Client> {
        let cached = self.view().clients.get(addr).cloned();
        let client = match cached {
            Some(client) => client,
            None => {
                let options = self.shared.template.at(self.url(addr));
                let connecting = options.connect();
                let client = match options.timeout() {
                    Some(_) => connecting.await?,
                    None => tokio::time::timeout(left, connecting).await.map_err(|_| {
                        ClientError::Timeout { addr: self.url(addr), after: left }
                    })??,
                };
                // Another task may have connected meanwhile: keep the first, one per node.
                self.view().clients.entry(addr.to_owned()).or_insert(client).clone()
            }
        };
        Ok(match self.compression {
            Some(compression) => client.compressed(compression),
            None => client,
        })
    }

    /// Asks the known servers, then the seeds, for the cluster's servers until one answers, and
    /// keeps its answer. Each is given until `deadline`, and at most the connect timeout.
    async fn refresh(&self, deadline: Instant) -> Result<()> {
        let candidates: Vec<String> = {
            let view = self.view();
            let known = view.servers.iter().map(|server| &server.addr);
            let mut candidates: Vec<String> = Vec::new();
            for addr in known.chain(&self.shared.seeds.addrs) {
                if !candidates.contains(addr) {
                    candidates.push(addr.clone());
                }
            }
            candidates
        };
        let mut last = None;
        for addr in candidates {
            let left = deadline.saturating_duration_since(Instant::now());
            // One silent node must not use up the budget while others may answer.
            let bound = self.shared.template.timeout().map_or(left, |timeout| timeout.min(left));
            let asked = async {
                let mut client = self.client(&addr, left).await?;
                let asking = client.inner().get_servers(GetServersRequest {});
                match self.bounded(&addr, bound, async { Ok(asking.await) }).await? {
                    Ok(response) => Ok(Some(response.into_inner().servers)),
                    Err(status) if status.code() == Code::Unimplemented => Ok(None),
                    Err(status) => Err(ClientError::from(status)),
                }
            };
            match asked.await {
                Ok(servers) => {
                    self.adopt(&addr, servers);
                    return Ok(());
                }
                Err(err) if retry::unreachable(&err) => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::NotLeader { leader_id: None, leader_addr: None }))
    }

    /// Keeps `servers`, the answer of the node at `asked`; `None` from a server that predates
    /// clusters, which is then a single node.
    fn adopt(&self, asked: &str, servers: Option<Vec<v1::Server>>) {
        let alone =
            |id| vec![ServerInfo { id, addr: asked.to_owned(), is_leader: true, voter: true }];
        let servers = match servers {
            None => alone(1),
            Some(servers) if servers.len() == 1 && servers[0].is_leader => alone(servers[0].id),
            Some(servers) => servers
                .into_iter()
                .map(|server| ServerInfo {
                    id: server.id,
                    addr: if server.rpc_addr.is_empty() {
                        asked.to_owned()
                    } else {
                        server.rpc_addr
                    },
                    is_leader: server.is_leader,
                    voter: server.voter,
                })
                .collect(),
        };
        let mut view = self.view();
        view.leader =
            servers.iter().find(|server| server.is_leader).map(|server| server.addr.clone());
        view.servers = servers;
    }

    /// Where the next attempt of a call on `route` goes: the leader (discovered if unknown), or
    /// the next server of the read round-robin.
    async fn pick(&self, route: Route, deadline: Instant) -> Result<String> {
        if let Some(addr) = self.choose(route) {
            return Ok(addr);
        }
        self.refresh(deadline).await?;
        self.choose(route).ok_or(ClientError::NotLeader { leader_id: None, leader_addr: None })
    }

    fn choose(&self, route: Route) -> Option<String> {
        let mut view = self.view();
        match route {
            Route::Leader => view.leader.clone(),
            Route::Any if view.servers.is_empty() => None,
            Route::Any => {
                let next = view.next_read;
                view.next_read = next.wrapping_add(1);
                Some(view.servers[next % view.servers.len()].addr.clone())
            }
        }
    }

    /// Runs `attempt` at `addr` for at most `bound`; past it, [`ClientError::CallTimeout`].
    async fn bounded<T>(
        &self,
        addr: &str,
        bound: Duration,
        attempt: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(bound, attempt).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::CallTimeout { addr: self.url(addr), after: bound }),
        }
    }

    /// Runs `op` on the client of a node chosen by `route`, retrying as `retry` judges failures
    /// of a call of `safety`, within the budget.
    pub(super) async fn call<T, F, Fut>(&self, route: Route, safety: Safety, mut op: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.retry.budget;
        let mut backoff = self.retry.initial_backoff;
        // Where the last answer sent the call: a hinted leader.
        let mut next: Option<String> = None;
        // Hops made without waiting, to stop two nodes sending a call back and forth.
        let mut hops = 0;
        // A read past a follower's end goes to the leader once.
        let mut asked_leader = false;
        loop {
            let target = match next.take() {
                Some(addr) => Ok(addr),
                None if asked_leader && route == Route::Any => {
                    self.pick(Route::Leader, deadline).await
                }
                None => self.pick(route, deadline).await,
            };
            let (addr, err) = match target {
                Ok(addr) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let attempt = async {
                        let client = self.client(&addr, left).await?;
                        let left = deadline.saturating_duration_since(Instant::now());
                        self.bounded(&addr, left, op(client)).await
                    };
                    match attempt.await {
                        Ok(value) => return Ok(value),
                        Err(err) => (Some(addr), err),
                    }
                }
                Err(err) => (None, err),
            };
            let at_follower = route == Route::Any
                && !asked_leader
                && addr.is_some()
                && addr != self.view().leader;
            let verdict = match (&addr, &err) {
                // No node was asked: nothing was sent.
                (None, err) if retry::unreachable(err) => Verdict::Elsewhere,
                (None, _) => Verdict::Final,
                (Some(_), err) => retry::judge(err, safety, &self.retry, at_follower),
            };
            let mut fresh = false;
            match verdict {
                Verdict::Final => return Err(err),
                Verdict::Leader(Some(leader)) => {
                    fresh = addr.as_ref() != Some(&leader);
                    self.view().leader = Some(leader.clone());
                    next = Some(leader);
                }
                Verdict::Leader(None) if at_follower => {
                    asked_leader = true;
                    fresh = true;
                }
                Verdict::Leader(None) => self.view().leader = None,
                Verdict::Elsewhere => {
                    let mut view = self.view();
                    if addr.is_some() && addr == view.leader {
                        view.leader = None;
                    }
                }
            }
            if fresh && hops < 3 && Instant::now() < deadline {
                hops += 1;
                continue;
            }
            hops = 0;
            if Instant::now() + backoff >= deadline {
                return Err(err);
            }
            tokio::time::sleep(backoff).await;
            backoff = self.retry.next_backoff(backoff);
        }
    }
}

/// Where a call goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// The leader: writes, membership changes, linearizable reads.
    Leader,
    /// Any server, round-robin: reads.
    Any,
}

/// One named log of a cluster, from [`ClusterClient::log`]: the calls of
/// [`NamedLog`](super::NamedLog), routed and retried by the cluster client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClusterLog {
    cluster: ClusterClient,
    /// As sent: empty for [`DEFAULT_LOG`] through [`ClusterClient`]'s own calls.
    name: String,
}

impl ClusterLog {
    /// The log's name.
    pub fn name(&self) -> &str {
        if self.name.is_empty() { DEFAULT_LOG } else { &self.name }
    }

    /// Appends one record at the leader and returns its offset. When the outcome is unknown
    /// (`LEADER_CHANGED`, a connection lost mid-call) it is sent again only under
    /// [`Retry::at_least_once`], and may then be appended twice.
    pub async fn produce(&self, value: impl Into<Bytes>) -> Result<u64> {
        let value = value.into();
        self.cluster
            .call(Route::Leader, Safety::Append, |client| {
                let (mut log, value) = (client.log(self.name.clone()), value.clone());
                async move { log.produce(value).await }
            })
            .await
    }

    /// Reads the record at `offset` from any server; one that has not applied it yet hands the
    /// read to the leader.
    pub async fn consume(&self, offset: u64) -> Result<Record> {
        self.cluster
            .call(Route::Any, Safety::Read, |client| {
                let mut log = client.log(self.name.clone());
                async move { log.consume(offset).await }
            })
            .await
    }

    /// The committed range `[lowest_offset, next_offset)` as any server has applied it: a
    /// follower's may lag the leader's.
    pub async fn offsets(&self) -> Result<Range<u64>> {
        self.cluster
            .call(Route::Any, Safety::Read, |client| {
                let mut log = client.log(self.name.clone());
                async move { log.offsets().await }
            })
            .await
    }

    /// The committed range as the leader knows it: it covers every record acknowledged before
    /// the call began.
    pub async fn offsets_linearizable(&self) -> Result<Range<u64>> {
        self.cluster
            .call(Route::Leader, Safety::Read, |mut client| {
                let request = OffsetsRequest { log: self.name.clone(), linearizable: true };
                async move {
                    let response = client.inner().offsets(request).await?.into_inner();
                    Ok(response.lowest_offset..response.next_offset)
                }
            })
            .await
    }

    /// Streams `values` to the leader (discovered first, within the budget); the [`Acks`]
    /// yield each record's offset in order. The stream is not moved once values flow: if it
    /// fails (the leader crashed, `NOT_LEADER`), resend from the last acknowledged value + 1, at
    /// least once.
    pub async fn produce_stream<S>(&self, values: S) -> Result<Acks>
    where
        S: Stream<Item = Bytes> + Send + 'static,
    {
        let leader = self
            .cluster
            .call(Route::Leader, Safety::Read, |client| async move { Ok(client) })
            .await?;
        let opened = leader.log(self.name.clone()).produce_stream(values).await;
        if let Err(ClientError::NotLeader { leader_addr, .. }) = &opened {
            self.cluster.view().leader = leader_addr.clone();
        }
        opened
    }

    /// Tails this log from `offset` at any server: replay, then live records. When that server
    /// goes away the tail resumes on another from the last delivered offset + 1, so every
    /// record is delivered once, in order (see [`ClusterRecords`]).
    pub async fn consume_stream(&self, offset: u64) -> Result<ClusterRecords> {
        let mut records = ClusterRecords::new(self.clone(), offset);
        records.open().await?;
        Ok(records)
    }

    /// Opens a plain tail from `offset` at any server.
    pub(super) async fn open_tail(&self, offset: u64) -> Result<super::Records> {
        self.cluster
            .call(Route::Any, Safety::Read, |client| {
                let mut log = client.log(self.name.clone());
                async move { log.consume_stream(offset).await }
            })
            .await
    }

    /// The retry settings of the cluster client.
    pub(super) fn retry(&self) -> &Retry {
        &self.cluster.retry
    }
}
