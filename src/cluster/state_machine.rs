//! The state machine of a girok cluster: the named logs themselves ([`Logs`]), changed only by
//! applying committed [`Command`]s in Raft order.
//!
//! # Offsets and idempotence
//!
//! Applying an append assigns its offsets (the log's next ones), so every node, applying the
//! same entries in the same order, holds the same records at the same offsets. The logs are
//! written without syncs of their own: durability rests on the Raft WAL, and a node that restarts
//! applies again every entry after its last checkpoint. So applying must be idempotent, and the
//! state machine keeps, beside the logs on disk, the logical state they should be in after the
//! last applied entry ([`Expected`]: for each log, the Raft index that created it and its next
//! offset). An append of `n` records expected at offset `base` compares with the log on disk:
//! records it already holds are skipped, missing ones written. A log whose Raft index differs
//! is another log of the same name (deleted and created again later): the entry was for the old
//! one, whose fate a later entry decides, and is skipped.
//!
//! # Checkpoints (snapshots)
//!
//! A snapshot is a checkpoint, not a copy of the data: every log is synced, then the logical
//! state (last applied entry, membership, each log's Raft index, offsets and settings) is written
//! crash-atomically to `checkpoint` in the state machine's directory. A restart starts from it
//! and applies the WAL's entries after it. Installing a snapshot received from the leader (a
//! follower behind the leader's purged WAL) adopts a checkpoint whose logs it must already hold
//! up to the checkpoint's offsets; fetching the records it lacks from the leader is not built yet
//! and fails the install (see the README's cluster limits).
//!
//! # Determinism
//!
//! Everything an entry's outcome depends on is replicated: the leader's clock is in the entry,
//! and nothing here reads a node's own flags (the leader checks the record size and its limit
//! on logs before it proposes). A failure of this node's own disk, or a limit of its own that
//! refuses what the leader accepted, is never an answer to a client: it fails the apply, which
//! stops this node's Raft, rather than let it diverge.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::{Stream, TryStreamExt};
use openraft::EntryPayload;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use serde::{Deserialize, Serialize};

use super::command::{Applied, Command, Refusal};
use super::types::{
    LogId, Payload, Snapshot, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig,
};
use crate::logs::{self, DEFAULT_LOG, LogMeta, LogSettings, Logs};
use crate::storage;

/// The checkpoint's file name, in the state machine's directory.
const CHECKPOINT: &str = "checkpoint";

/// What one log should be after the last applied entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// The Raft index of the entry that created it (0 for `default`, which every node has).
    pub created: u64,
    /// Its next offset.
    pub next: u64,
    /// Its lowest offset when checkpointed (informational: retention moves it).
    pub lowest: u64,
    /// When it was created (the leader's clock).
    pub created_ms: u64,
    /// Its settings.
    #[serde(with = "super::command::settings_wire")]
    pub settings: LogSettings,
}

/// The logical state of the logs after `last_applied`: a checkpoint's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last entry applied.
    pub last_applied: Option<LogId>,
    /// The membership in force.
    pub membership: StoredMembership,
    /// Every log, by name.
    pub logs: BTreeMap<String, Expected>,
    /// The ids of nodes removed from the cluster: never given to another node.
    pub retired: BTreeSet<u64>,
}

impl Checkpoint {
    /// The state before any entry: only `default`, empty.
    fn initial() -> Self {
        let default = Expected {
            created: 0,
            next: 0,
            lowest: 0,
            created_ms: 0,
            settings: LogSettings::default(),
        };
        Self {
            last_applied: None,
            membership: StoredMembership::default(),
            logs: BTreeMap::from([(DEFAULT_LOG.to_string(), default)]),
            retired: BTreeSet::new(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a checkpoint always encodes")
    }

    fn decode(bytes: &[u8]) -> io::Result<Self> {
        postcard::from_bytes(bytes).map_err(|err| invalid(format!("a checkpoint: {err}")))
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("cannot decode {what}"))
}

/// The state machine: cheap to clone (openraft takes one for building snapshots).
#[derive(Clone)]
pub struct StateMachine {
    inner: Arc<Inner>,
}

struct Inner {
    logs: Arc<Logs>,
    dir: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// The logical state after the last applied entry.
    applied: Checkpoint,
    /// The last checkpoint written or installed, served as the current snapshot.
    snapshot: Option<(SnapshotMeta, SnapshotData)>,
}

impl std::fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine").field("dir", &self.inner.dir).finish_non_exhaustive()
    }
}

impl StateMachine {
    /// The state machine over `logs`, keeping its checkpoint in `dir` (created if needed). A
    /// `dir` without a checkpoint starts from the empty state: `logs` must then hold only an
    /// empty `default` (a cluster node starts on an empty data directory), or logs created by
    /// entries it will apply again.
    pub fn open(logs: Arc<Logs>, dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let applied = match std::fs::read(dir.join(CHECKPOINT)) {
            Ok(bytes) => Checkpoint::decode(&bytes)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => Checkpoint::initial(),
            Err(err) => return Err(err),
        };
        let snapshot = applied.last_applied.map(|_| {
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.membership.clone(),
            };
            (meta, applied.encode())
        });
        let state = Mutex::new(State { applied, snapshot });
        Ok(Self { inner: Arc::new(Inner { logs, dir: dir.to_path_buf(), state }) })
    }

    /// The logs this state machine changes.
    pub fn logs(&self) -> &Arc<Logs> {
        &self.inner.logs
    }

    /// The last entry applied.
    pub fn last_applied(&self) -> Option<LogId> {
        self.inner.state().applied.last_applied
    }

    /// The ids of nodes removed from the cluster, which are never reused.
    pub fn retired(&self) -> BTreeSet<u64> {
        self.inner.state().applied.retired.clone()
    }

    /// Syncs every log and writes a checkpoint of the state applied so far; answers it.
    pub fn checkpoint(&self) -> io::Result<(SnapshotMeta, SnapshotData)> {
        self.inner.checkpoint()
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one entry's payload; answers what the proposer is told.
    fn apply(&self, state: &mut State, log_id: LogId, payload: Payload) -> io::Result<Applied> {
        let applied = match payload {
            EntryPayload::Blank => Applied::Done,
            EntryPayload::Membership(membership) => {
                let now: BTreeSet<u64> = membership.nodes().map(|(id, _)| *id).collect();
                let before = state.applied.membership.nodes().map(|(id, _)| *id);
                let gone: Vec<u64> = before.filter(|id| !now.contains(id)).collect();
                state.applied.retired.extend(gone);
                state.applied.membership = StoredMembership::new(Some(log_id), membership);
                Applied::Done
            }
            EntryPayload::Normal(command) => self.apply_command(state, log_id.index, command)?,
        };
        state.applied.last_applied = Some(log_id);
        Ok(applied)
    }

    fn apply_command(
        &self,
        state: &mut State,
        index: u64,
        command: Command,
    ) -> io::Result<Applied> {
        let expected = &mut state.applied.logs;
        match command {
            Command::Append { log, incarnation, create, timestamp_ms, values } => {
                if !expected.contains_key(&log) {
                    if !create {
                        return Ok(Applied::Refused(Refusal::NotFound { log }));
                    }
                    let meta = LogMeta {
                        created_ms: timestamp_ms,
                        settings: LogSettings::default(),
                        raft_index: Some(index),
                    };
                    self.create(expected, &log, meta)?;
                }
                let want = expected.get_mut(&log).expect("the log exists or was just created");
                if incarnation.is_some_and(|created| created != want.created) {
                    // Proposed for a log deleted (and created again) since.
                    return Ok(Applied::Refused(Refusal::NotFound { log }));
                }
                let base = want.next;
                let count = values.len() as u64;
                let Some(end) = base.checked_add(count) else {
                    return Ok(Applied::Refused(Refusal::OffsetsExhausted { next: base }));
                };
                if let Some(entry) = self.incarnation(&log, want.created) {
                    let held = entry.log().next_offset();
                    if held < base {
                        return Err(io::Error::other(format!(
                            "log {log:?} holds records up to {held}, but the entry at Raft \
                             index {index} appends at {base}: records are missing"
                        )));
                    }
                    if held < end {
                        let missing = &values[(held - base) as usize..];
                        let bytes = missing.iter().map(|v| v.len() as u64).sum();
                        entry.log().append_batch_at(missing, timestamp_ms).map_err(apply_err)?;
                        entry.activity().appended(missing.len() as u64, bytes);
                    }
                }
                want.next = end;
                Ok(Applied::Appended { first: base, count })
            }
            Command::Create { log, settings, created_ms } => {
                if expected.contains_key(&log) {
                    return Ok(Applied::Refused(Refusal::Exists { log }));
                }
                let meta = LogMeta { created_ms, settings, raft_index: Some(index) };
                self.create(expected, &log, meta)?;
                Ok(Applied::Done)
            }
            Command::Update { log, settings } => {
                let Some(want) = expected.get_mut(&log) else {
                    return Ok(Applied::Refused(Refusal::NotFound { log }));
                };
                if self.incarnation(&log, want.created).is_some() {
                    self.logs.update(&log, settings).map_err(logs_err)?;
                }
                want.settings = want.settings.merged(settings);
                Ok(Applied::Done)
            }
            Command::Delete { log } => {
                if log == DEFAULT_LOG {
                    return Ok(Applied::Refused(Refusal::DefaultLog));
                }
                let Some(want) = expected.get(&log) else {
                    return Ok(Applied::Refused(Refusal::NotFound { log }));
                };
                // The disk first: a failure leaves the state as it was, so the entry is
                // applied again after a restart.
                if self.incarnation(&log, want.created).is_some() {
                    self.logs.delete(&log).map_err(logs_err)?;
                }
                expected.remove(&log);
                Ok(Applied::Done)
            }
        }
    }

    /// Creates `log` in the expected state and, unless this very log is on disk already (the
    /// entry is applied again), in storage.
    fn create(
        &self,
        expected: &mut BTreeMap<String, Expected>,
        log: &str,
        meta: LogMeta,
    ) -> io::Result<()> {
        // No limit on logs is checked here: nodes may be given different limits (or lower them
        // to fit their descriptors), and an entry must have one outcome everywhere. The leader
        // checks its limit before it proposes a creation.
        let index = meta.raft_index.unwrap_or(0);
        let on_disk = self.logs.get(log).ok();
        match on_disk {
            // This log (applied again), or one created later under the same name.
            Some(entry) if entry.raft_index().unwrap_or(0) >= index => {}
            Some(_stale) => {
                return Err(io::Error::other(format!(
                    "log {log:?} on disk predates its creation at Raft index {index}, which the \
                     state applied says it does not exist before"
                )));
            }
            None => {
                self.logs.create_with(log, meta).map_err(logs_err)?;
            }
        }
        expected.insert(
            log.to_string(),
            Expected {
                created: index,
                next: 0,
                lowest: 0,
                created_ms: meta.created_ms,
                settings: meta.settings,
            },
        );
        Ok(())
    }

    /// The log `name` on disk if it is the one created at Raft index `created`.
    fn incarnation(&self, name: &str, created: u64) -> Option<Arc<logs::LogEntry>> {
        let entry = self.logs.get(name).ok()?;
        (entry.raft_index().unwrap_or(0) == created).then_some(entry)
    }

    fn checkpoint(&self) -> io::Result<(SnapshotMeta, SnapshotData)> {
        // The logs are synced first: a checkpoint never covers records a power cut could take.
        let mut checkpoint = self.state().applied.clone();
        self.logs.sync_all().map_err(logs_err)?;
        for (name, want) in &mut checkpoint.logs {
            if let Some(entry) = self.incarnation(name, want.created) {
                want.lowest = entry.log().lowest_offset();
            }
        }
        let data = checkpoint.encode();
        write_atomically(&self.dir, CHECKPOINT, &data)?;
        let meta = SnapshotMeta {
            last_log_id: checkpoint.last_applied,
            last_membership: checkpoint.membership.clone(),
        };
        self.state().snapshot = Some((meta.clone(), data.clone()));
        Ok((meta, data))
    }
}

/// A storage failure while applying: this node stops applying (its Raft stops) rather than
/// answer differently from the others. A limit that refused here but not on the leader means the
/// nodes were not given the same flags.
fn apply_err(err: storage::Error) -> io::Error {
    match err {
        storage::Error::RecordTooLarge { size, max } => io::Error::other(format!(
            "a replicated record of {size} bytes is above this node's --max-record-bytes \
             ({max}): every node of a cluster needs the same --max-record-bytes"
        )),
        err => io::Error::other(err.to_string()),
    }
}

fn logs_err(err: logs::Error) -> io::Error {
    io::Error::other(err.to_string())
}

/// Writes `dir/name` so that a crash leaves the old content or the new one: a temporary file,
/// synced, renamed over, and the directory synced.
fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_data()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.inner.state();
        Ok((state.applied.last_applied, state.applied.membership.clone()))
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        let batch: Vec<EntryResponder<TypeConfig>> = entries.try_collect().await?;
        let inner = Arc::clone(&self.inner);
        let answered = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut state = inner.state();
            let mut answers = Vec::with_capacity(batch.len());
            for (entry, responder) in batch {
                let applied = inner.apply(&mut state, entry.log_id, entry.payload)?;
                answers.push((responder, applied));
            }
            Ok(answers)
        })
        .await
        .map_err(io::Error::other)??;
        for (responder, applied) in answered {
            if let Some(responder) = responder {
                responder.send(applied);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let checkpoint = Checkpoint::decode(&snapshot)?;
        let inner = Arc::clone(&self.inner);
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || inner.install(meta, checkpoint, snapshot))
            .await
            .map_err(io::Error::other)?
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let state = self.inner.state();
        Ok(state.snapshot.clone().map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let inner = Arc::clone(&self.inner);
        let (meta, snapshot) = tokio::task::spawn_blocking(move || inner.checkpoint())
            .await
            .map_err(io::Error::other)??;
        Ok(Snapshot { meta, snapshot })
    }
}

impl Inner {
    /// Adopts a checkpoint from the leader. The logs it names must be here, each the same log
    /// (created at the same Raft index) holding at least the checkpoint's offsets; logs it does
    /// not name are deleted.
    fn install(
        &self,
        meta: SnapshotMeta,
        checkpoint: Checkpoint,
        data: SnapshotData,
    ) -> io::Result<()> {
        for (name, want) in &checkpoint.logs {
            let held = self.incarnation(name, want.created).map(|entry| entry.log().next_offset());
            if held.unwrap_or(0) < want.next {
                return Err(io::Error::other(format!(
                    "the leader's snapshot needs records of log {name:?} up to offset {} that \
                     this node does not hold; catching up a node from a snapshot is not \
                     supported yet: start it on an empty data directory and add it again",
                    want.next
                )));
            }
            if held.is_none() {
                let meta = LogMeta {
                    created_ms: want.created_ms,
                    settings: want.settings,
                    raft_index: Some(want.created),
                };
                if self.logs.get(name).is_ok() {
                    self.logs.delete(name).map_err(logs_err)?;
                }
                self.logs.create_with(name, meta).map_err(logs_err)?;
            }
        }
        for entry in self.logs.list() {
            if !checkpoint.logs.contains_key(entry.name()) {
                self.logs.delete(entry.name()).map_err(logs_err)?;
            }
        }
        self.logs.sync_all().map_err(logs_err)?;
        write_atomically(&self.dir, CHECKPOINT, &data)?;
        let mut state = self.state();
        state.applied = checkpoint;
        state.snapshot = Some((meta, data));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::logs::LogsConfig;
    use crate::storage::DiskConfig;

    fn open(dir: &Path) -> StateMachine {
        let logs = Logs::open(dir.join("logs"), DiskConfig::default(), LogsConfig::default());
        StateMachine::open(Arc::new(logs.unwrap()), &dir.join("sm")).unwrap()
    }

    fn append(log: &str, values: &[&'static str]) -> Command {
        Command::Append {
            log: log.into(),
            incarnation: None,
            create: true,
            timestamp_ms: 1_000,
            values: values.iter().map(|v| Bytes::from_static(v.as_bytes())).collect(),
        }
    }

    /// Applies `commands` as the entries at Raft indexes `first..`; answers what they answered.
    fn apply(sm: &StateMachine, first: u64, commands: Vec<Command>) -> Vec<Applied> {
        let mut state = sm.inner.state();
        (first..)
            .zip(commands)
            .map(|(index, command)| {
                let id = LogId::new_term_index(1, index);
                sm.inner.apply(&mut state, id, EntryPayload::Normal(command)).unwrap()
            })
            .collect()
    }

    fn values(sm: &StateMachine, log: &str) -> Vec<Bytes> {
        let log = sm.logs().get(log).unwrap();
        let next = log.log().next_offset();
        log.log()
            .read_batch(0, next as usize, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|r| r.value)
            .collect()
    }

    fn history() -> Vec<Command> {
        vec![
            append("orders", &["a", "b"]),
            append("orders", &["c"]),
            Command::Delete { log: "orders".into() },
            Command::Create {
                log: "orders".into(),
                settings: LogSettings::default(),
                created_ms: 2_000,
            },
            append("orders", &["x"]),
            append("default", &["d"]),
        ]
    }

    #[test]
    fn appends_get_the_next_offsets_and_refusals_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let sm = open(dir.path());
        let answers = apply(
            &sm,
            1,
            vec![
                append("orders", &["a", "b"]),
                append("orders", &["c"]),
                Command::Create {
                    log: "orders".into(),
                    settings: LogSettings::default(),
                    created_ms: 0,
                },
                Command::Delete { log: "default".into() },
                Command::Append {
                    log: "nope".into(),
                    incarnation: None,
                    create: false,
                    timestamp_ms: 0,
                    values: vec![],
                },
            ],
        );
        assert_eq!(
            answers,
            vec![
                Applied::Appended { first: 0, count: 2 },
                Applied::Appended { first: 2, count: 1 },
                Applied::Refused(Refusal::Exists { log: "orders".into() }),
                Applied::Refused(Refusal::DefaultLog),
                Applied::Refused(Refusal::NotFound { log: "nope".into() }),
            ]
        );
        assert_eq!(values(&sm, "orders"), ["a", "b", "c"]);
        let record = sm.logs().get("orders").unwrap().log().read(0).unwrap();
        assert_eq!(record.timestamp_ms, 1_000, "records carry the leader's clock");
        assert!(sm.logs().get("nope").is_err());
    }

    #[test]
    fn applying_entries_again_after_a_restart_changes_nothing() {
        // A node that crashed after applying entries (its logs hold them) but before any
        // checkpoint applies every entry again: it must end where it was, with no record twice,
        // and the log deleted and created again holding only its own records.
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        let answers = apply(&first, 1, history());
        first.logs().close().unwrap();
        drop(first);
        let again = open(dir.path());
        assert_eq!(apply(&again, 1, history()), answers, "the same answers the second time");
        assert_eq!(values(&again, "orders"), ["x"]);
        assert_eq!(values(&again, "default"), ["d"]);
        assert_eq!(again.logs().get("orders").unwrap().raft_index(), Some(4));
    }

    #[test]
    fn a_partly_applied_batch_is_completed_not_duplicated() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        apply(&first, 1, vec![append("orders", &["a"])]);
        // As if the node stopped after writing the first record of the next batch.
        let entry = first.logs().get("orders").unwrap();
        entry.log().append_batch_at(&[Bytes::from_static(b"b")], 1_000).unwrap();
        first.logs().close().unwrap();
        drop((first, entry));
        let again = open(dir.path());
        let answers =
            apply(&again, 1, vec![append("orders", &["a"]), append("orders", &["b", "c"])]);
        assert_eq!(answers[1], Applied::Appended { first: 1, count: 2 });
        assert_eq!(values(&again, "orders"), ["a", "b", "c"]);
    }

    #[test]
    fn a_restart_resumes_from_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(dir.path());
        apply(&first, 1, history()[..2].to_vec());
        let (meta, _) = first.checkpoint().unwrap();
        assert_eq!(meta.last_log_id, Some(LogId::new_term_index(1, 2)));
        apply(&first, 3, history()[2..].to_vec());
        first.logs().close().unwrap();
        drop(first);
        let again = open(dir.path());
        assert_eq!(again.last_applied(), Some(LogId::new_term_index(1, 2)));
        apply(&again, 3, history()[2..].to_vec());
        assert_eq!(values(&again, "orders"), ["x"]);
        assert_eq!(values(&again, "default"), ["d"]);
    }
}
