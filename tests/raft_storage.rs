//! openraft's storage conformance suite (`openraft::testing::log::Suite`) over girok's Raft log
//! store ([`LogStore`] on the WAL).
//!
//! The suite checks a log store and a state machine together. It runs with a minimal in-memory
//! state machine written here (once per [`Durability`]), so a failure there is the log store's
//! alone, and with girok's own state machine over named logs, the pair a node runs.

use std::io;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt};
use girok::cluster::log_store::{Durability, LogStore};
use girok::cluster::state_machine::StateMachine;
use girok::cluster::types::{LogId, SnapshotData, SnapshotMeta, StoredMembership, TypeConfig};
use girok::logs::{Logs, LogsConfig};
use girok::storage::DiskConfig;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{
    EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder, StorageError,
};
use tempfile::TempDir;

type Snapshot = girok::cluster::types::Snapshot;

/// What the stand-in state machine keeps: the applied id and membership, and one snapshot.
#[derive(Default)]
struct MemoryState {
    applied: Option<LogId>,
    membership: StoredMembership,
    snapshot: Option<(SnapshotMeta, SnapshotData)>,
}

/// A state machine that applies nothing but ids and membership: enough for the suite to check
/// the log store's side.
#[derive(Clone, Default)]
struct MemoryStateMachine {
    /// Shared with the snapshot builder; never held across an `.await`.
    state: Arc<Mutex<MemoryState>>,
}

impl RaftSnapshotBuilder<TypeConfig> for MemoryStateMachine {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let mut state = self.state.lock().unwrap();
        let meta =
            SnapshotMeta { last_log_id: state.applied, last_membership: state.membership.clone() };
        state.snapshot = Some((meta.clone(), Vec::new()));
        Ok(Snapshot { meta, snapshot: Vec::new() })
    }
}

impl RaftStateMachine<TypeConfig> for MemoryStateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let state = self.state.lock().unwrap();
        Ok((state.applied, state.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            {
                let mut state = self.state.lock().unwrap();
                state.applied = Some(entry.log_id);
                if let EntryPayload::Membership(membership) = &entry.payload {
                    state.membership =
                        StoredMembership::new(Some(entry.log_id), membership.clone());
                }
            }
            if let Some(responder) = responder {
                responder.send(girok::cluster::command::Applied::Done);
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
        let mut state = self.state.lock().unwrap();
        state.applied = meta.last_log_id;
        state.membership = meta.last_membership.clone();
        state.snapshot = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let state = self.state.lock().unwrap();
        Ok(state.snapshot.clone().map(|(meta, snapshot)| Snapshot { meta, snapshot }))
    }
}

fn failed(err: io::Error) -> StorageError<TypeConfig> {
    StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, err)
}

/// Builds a log store in a fresh directory, with the stand-in state machine.
struct WithMemoryStateMachine(Durability);

impl StoreBuilder<TypeConfig, LogStore, MemoryStateMachine, TempDir> for WithMemoryStateMachine {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, MemoryStateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().map_err(failed)?;
        let store = LogStore::open(&dir.path().join("raft"), self.0).map_err(failed)?;
        Ok((dir, store, MemoryStateMachine::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_store_passes_openrafts_suite_with_every_append_synced() {
    // Durability::Always: every callback waits for the group fdatasync.
    Suite::test_all(WithMemoryStateMachine(Durability::Always)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_store_passes_openrafts_suite_with_appends_left_to_the_page_cache() {
    // Durability::Never: callbacks complete as soon as the entries are written.
    Suite::test_all(WithMemoryStateMachine(Durability::Never)).await.unwrap();
}

/// Builds a log store and girok's state machine over named logs, in a fresh directory.
struct WithGirokStateMachine(Durability);

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for WithGirokStateMachine {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().map_err(failed)?;
        let store = LogStore::open(&dir.path().join("raft"), self.0).map_err(failed)?;
        let logs =
            Logs::open(dir.path().join("data"), DiskConfig::default(), LogsConfig::default())
                .map_err(|e| failed(io::Error::other(e)))?;
        let sm = StateMachine::open(Arc::new(logs), &dir.path().join("sm")).map_err(failed)?;
        Ok((dir, store, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_store_and_girok_state_machine_pass_openrafts_suite() {
    // The pair a node runs: girok's state machine over named logs, appends synced.
    Suite::test_all(WithGirokStateMachine(Durability::Always)).await.unwrap();
}
