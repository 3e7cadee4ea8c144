//! [`Registry`] and [`LogHandle`]: the one async door through which every RPC reaches the
//! named logs and their storage.
//!
//! Storage is synchronous (a sync under `--fsync=always` takes a disk flush), so appends, reads
//! and changes to the registry run on tokio's blocking pool and come back as
//! `Result<_, Status>`: no runtime worker ever waits on the disk, and no handler maps a storage
//! error itself. This is the single place where later work attaches: timing calls for metrics,
//! checking access (every lookup takes the [`Caller`]), proposing writes through Raft. It counts each log's appended and read
//! records, and names the log in the call's span.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use tonic::Status;

use super::security::{Action, Caller};
use super::status;
use crate::cluster::command::{Applied, Command};
use crate::cluster::node::Cluster;
use crate::logs::{self, LogEntry, LogSettings, Logs};
use crate::storage::{self, CommitLog, Record};

/// The registry, asynchronously. Cheap to clone.
///
/// In a cluster, every change goes through Raft: the leader proposes it as a [`Command`] and
/// answers once it is committed and applied (the state machine changes the logs); other nodes
/// refuse writes with `NOT_LEADER`, after the request's own checks and before looking the log up.
/// Reads are served from the logs as this node has applied them.
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    logs: Arc<Logs>,
    cluster: Option<Cluster>,
}

impl Registry {
    pub(crate) fn new(logs: Arc<Logs>, cluster: Option<Cluster>) -> Self {
        Self { logs, cluster }
    }

    /// The cluster this server is a node of.
    pub(crate) fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// `NOT_LEADER` unless this node may take writes (it leads, or there is no cluster).
    fn check_leader(&self) -> Result<(), Status> {
        match &self.cluster {
            Some(cluster) => cluster.check_leader().map_err(status::from_write_error),
            None => Ok(()),
        }
    }

    /// `RESOURCE_EXHAUSTED` / `LOG_LIMIT` when this (leader) node holds its limit of logs: in a
    /// cluster the leader checks before it proposes a creation (two creations proposed at once
    /// may both pass), so that applying an entry never depends on a node's own limit.
    fn check_room(&self) -> Result<(), Status> {
        let limit = self.logs.max_logs();
        if self.logs.len() >= limit {
            return Err(Status::from(logs::Error::Limit { limit }));
        }
        Ok(())
    }

    /// Proposes `command` through the cluster; answers what applying it answered, a refusal
    /// as the status a single node would give.
    async fn propose(cluster: &Cluster, command: Command) -> Result<Applied, Status> {
        match cluster.write(command).await.map_err(status::from_write_error)? {
            Applied::Refused(refusal) => Err(Status::from(logs::Error::from(refusal))),
            applied => Ok(applied),
        }
    }

    /// The largest record value any log accepts.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.logs.max_record_bytes()
    }

    /// The log a request's `log` field names (empty: `default`), for `caller` to read:
    /// `INVALID_ARGUMENT` for a bad name, then `PERMISSION_DENIED` unless the caller may
    /// consume it, then `NOT_FOUND` for an unknown log. A map lookup: never blocks.
    pub(crate) fn find(&self, caller: &Caller, field: &str) -> Result<LogHandle, Status> {
        let name = checked_name(caller, Action::Consume, field)?;
        self.usable(self.logs.get(name)?)
    }

    /// [`find`](Self::find) for a read that must cover every write acknowledged before it: in a
    /// cluster, served by the leader once it has applied everything committed (its read index);
    /// `NOT_LEADER` elsewhere. Outside a cluster every read is.
    pub(crate) async fn find_linearizable(
        &self,
        caller: &Caller,
        field: &str,
    ) -> Result<LogHandle, Status> {
        let name = checked_name(caller, Action::Consume, field)?;
        if let Some(cluster) = &self.cluster {
            cluster.read_barrier().await.map_err(status::from_write_error)?;
        }
        self.usable(self.logs.get(name)?)
    }

    /// [`find`](Self::find) for an append, which needs `produce`: an unknown log is created
    /// while auto-create is on.
    pub(crate) async fn find_for_append(
        &self,
        caller: &Caller,
        field: &str,
    ) -> Result<LogHandle, Status> {
        let name = checked_name(caller, Action::Produce, field)?;
        self.check_leader()?;
        if let Ok(entry) = self.logs.get(name) {
            return self.usable(entry);
        }
        if let Some(cluster) = &self.cluster {
            // Created by an empty append through Raft, so every node creates it alike.
            let create = self.logs.config().auto_create;
            self.check_room()?;
            let command = Command::Append {
                log: name.to_string(),
                incarnation: None,
                create,
                timestamp_ms: storage::now_ms(),
                values: Vec::new(),
            };
            Self::propose(cluster, command).await?;
            return self.usable(self.logs.get(name)?);
        }
        let name = name.to_string();
        self.usable(self.blocking(move |logs| logs.get_or_create(&name)).await?)
    }

    /// A handle on `entry`, or `UNAVAILABLE` when the log could not be opened.
    fn usable(&self, entry: Arc<LogEntry>) -> Result<LogHandle, Status> {
        match entry.failure() {
            Some(why) => Err(status::log_unavailable(entry.name(), why)),
            None => Ok(LogHandle { entry, cluster: self.cluster.clone() }),
        }
    }

    /// Creates a log (see [`Logs::create`]); `caller` needs `admin` on it. The name and
    /// settings are checked first, so a bad request is `INVALID_ARGUMENT` whoever sends it.
    pub(crate) async fn create(
        &self,
        caller: &Caller,
        name: String,
        settings: LogSettings,
    ) -> Result<Arc<LogEntry>, Status> {
        check_admin(caller, &name, Some(&settings))?;
        self.check_leader()?;
        if let Some(cluster) = &self.cluster {
            if self.logs.get(&name).is_err() {
                self.check_room()?;
            }
            let created_ms = storage::now_ms();
            let command = Command::Create { log: name.clone(), settings, created_ms };
            Self::propose(cluster, command).await?;
            return Ok(self.logs.get(&name)?);
        }
        self.blocking(move |logs| logs.create(&name, settings)).await
    }

    /// Replaces the settings given (see [`Logs::update`]); `caller` needs `admin` on the log.
    pub(crate) async fn update(
        &self,
        caller: &Caller,
        name: String,
        settings: LogSettings,
    ) -> Result<Arc<LogEntry>, Status> {
        check_admin(caller, &name, Some(&settings))?;
        self.check_leader()?;
        if let Some(cluster) = &self.cluster {
            Self::propose(cluster, Command::Update { log: name.clone(), settings }).await?;
            return Ok(self.logs.get(&name)?);
        }
        self.blocking(move |logs| logs.update(&name, settings)).await
    }

    /// Deletes a log (see [`Logs::delete`]); `caller` needs `admin` on it.
    pub(crate) async fn delete(&self, caller: &Caller, name: String) -> Result<(), Status> {
        check_admin(caller, &name, None)?;
        self.check_leader()?;
        if let Some(cluster) = &self.cluster {
            if name == logs::DEFAULT_LOG {
                return Err(Status::from(logs::Error::DefaultLog));
            }
            Self::propose(cluster, Command::Delete { log: name }).await?;
            return Ok(());
        }
        self.blocking(move |logs| logs.delete(&name)).await
    }

    /// Every log `caller` may consume or administer, sorted by name.
    pub(crate) fn list(&self, caller: &Caller) -> Vec<Arc<LogEntry>> {
        let mut entries = self.logs.list();
        entries.retain(|entry| caller.may_list(entry.name()));
        entries
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Logs) -> logs::Result<T> + Send + 'static,
    {
        let logs = Arc::clone(&self.logs);
        tokio::task::spawn_blocking(move || f(&logs))
            .await
            .map_err(status::task_failed)?
            .map_err(Status::from)
    }
}

/// The log name a request's `log` field gives (empty: `default`), once it is valid and `caller`
/// may do `action` on it: the checks every data RPC makes, in the contract's order.
fn checked_name<'a>(caller: &Caller, action: Action, field: &'a str) -> Result<&'a str, Status> {
    let name = logs::name::or_default(field);
    tracing::Span::current().record("log", name);
    status::check_log_name("log", name)?;
    caller.authorize(action, name)?;
    Ok(name)
}

/// The checks of an admin RPC on the log `name` (an admin RPC's `name` has no default), in the
/// contract's order: the name, then the settings, then the caller's `admin` permission.
fn check_admin(caller: &Caller, name: &str, settings: Option<&LogSettings>) -> Result<(), Status> {
    tracing::Span::current().record("log", name);
    status::check_log_name("name", name)?;
    if let Some(Err((field, why))) = settings.map(LogSettings::validate) {
        return Err(Status::from(logs::Error::InvalidSettings { field, why }));
    }
    caller.authorize(Action::Admin, name)
}

/// A cheap, cloneable handle over one log.
#[derive(Clone)]
pub(crate) struct LogHandle {
    /// The log; its entry also counts what is done to it, for the metrics.
    entry: Arc<LogEntry>,
    /// In a cluster, appends are proposed through it.
    cluster: Option<Cluster>,
}

impl LogHandle {
    /// The log's name.
    pub(crate) fn name(&self) -> &str {
        self.entry.name()
    }

    /// A receiver that turns `true` when the log is deleted.
    pub(crate) fn watch_deleted(&self) -> watch::Receiver<bool> {
        self.entry.watch_deleted()
    }

    /// `NOT_FOUND` for this log, once it has been deleted.
    pub(crate) fn deleted(&self) -> Option<Status> {
        self.entry.is_deleted().then(|| status::log_not_found(self.entry.name()))
    }

    /// Appends one record; answers its offset once it is committed.
    pub(crate) async fn append(&self, value: Bytes) -> Result<u64, Status> {
        if self.cluster.is_some() {
            return self.append_batch(vec![value]).await.map(|range| range.start);
        }
        let bytes = value.len() as u64;
        let offset = self.blocking(move |log| log.append(value)).await?;
        self.entry.activity().appended(1, bytes);
        Ok(offset)
    }

    /// Appends `values` as one atomic batch; answers their offsets once committed.
    pub(crate) async fn append_batch(&self, values: Vec<Bytes>) -> Result<Range<u64>, Status> {
        let expected = values.len() as u64;
        let range = match &self.cluster {
            Some(cluster) => self.replicate(cluster, values).await?,
            None => {
                let bytes = values.iter().map(|value| value.len() as u64).sum();
                let range = self.blocking(move |log| log.append_batch(&values)).await?;
                self.entry.activity().appended(range.end - range.start, bytes);
                range
            }
        };
        if range.end - range.start != expected {
            tracing::error!(?range, expected, "append_batch returned the wrong number of offsets");
            return Err(Status::internal("internal error"));
        }
        Ok(range)
    }

    /// Appends `values` through the cluster's Raft (the state machine counts them).
    async fn replicate(&self, cluster: &Cluster, values: Vec<Bytes>) -> Result<Range<u64>, Status> {
        if let Some(gone) = self.deleted() {
            return Err(gone);
        }
        let log = self.entry.name().to_string();
        let command = Command::Append {
            log,
            incarnation: Some(self.entry.raft_index().unwrap_or(0)),
            create: false,
            timestamp_ms: storage::now_ms(),
            values,
        };
        match Registry::propose(cluster, command).await? {
            Applied::Appended { first, count } => Ok(first..first + count),
            other => {
                tracing::error!(?other, "an append was answered with something else");
                Err(Status::internal("internal error"))
            }
        }
    }

    /// Reads the record at `offset`.
    pub(crate) async fn read(&self, offset: u64) -> Result<Record, Status> {
        let record = self.blocking(move |log| log.read(offset)).await?;
        self.entry.activity().read(1);
        Ok(record)
    }

    /// Reads a batch of records from `offset` (see [`CommitLog::read_batch`]).
    pub(crate) async fn read_batch(
        &self,
        offset: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, Status> {
        let records =
            self.blocking(move |log| log.read_batch(offset, max_records, max_bytes)).await?;
        self.entry.activity().read(records.len() as u64);
        Ok(records)
    }

    /// The committed range `[lowest, next)`.
    pub(crate) async fn offsets(&self) -> Result<Range<u64>, Status> {
        self.blocking(|log| Ok(log.lowest_offset()..log.next_offset())).await
    }

    /// A receiver of the commit point, for tails. Never blocks.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.entry.log().subscribe()
    }

    /// The largest value an append accepts.
    pub(crate) fn max_record_bytes(&self) -> usize {
        self.entry.log().max_record_bytes()
    }

    /// Runs a synchronous storage call on the blocking pool and maps its error to a status: a
    /// log closed because it was deleted is `NOT_FOUND`.
    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&dyn CommitLog) -> storage::Result<T> + Send + 'static,
    {
        let entry = Arc::clone(&self.entry);
        let outcome = tokio::task::spawn_blocking(move || f(entry.log().as_ref()))
            .await
            .map_err(status::task_failed)?;
        outcome.map_err(|err| match (err, self.deleted()) {
            (storage::Error::Closed, Some(not_found)) => not_found,
            (err, _) => Status::from(err),
        })
    }
}
