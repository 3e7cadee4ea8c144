//! Unit and reopen tests of the openraft log store, on real WALs in temporary directories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use openraft::storage::{IOFlushed, RaftLogReaderExt, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use openraft::{EntryPayload, Membership, RaftLogReader};

use super::*;
use crate::cluster::command::Command;
use crate::cluster::types::Node;

fn blank(term: u64, index: u64) -> Entry {
    Entry { log_id: LogId::new_term_index(term, index), payload: EntryPayload::Blank }
}

fn normal(term: u64, index: u64) -> Entry {
    let command = Command::Append {
        log: "orders".into(),
        incarnation: None,
        create: true,
        timestamp_ms: 1_700_000_000_000 + index,
        values: vec![Bytes::from_static(b"one"), Bytes::new(), Bytes::from(vec![0xff; 300])],
    };
    Entry { log_id: LogId::new_term_index(term, index), payload: EntryPayload::Normal(command) }
}

fn membership(term: u64, index: u64) -> Entry {
    let voters = BTreeSet::from([1, 2, 3]);
    let nodes: BTreeMap<u64, Node> =
        (1..=4).map(|id| (id, Node::new(format!("10.0.0.{id}:7070")))).collect();
    let membership = Membership::new(vec![voters], nodes).expect("a valid membership");
    Entry {
        log_id: LogId::new_term_index(term, index),
        payload: EntryPayload::Membership(membership),
    }
}

/// Appends and waits for openraft's callback, returning what it reported.
async fn append(store: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.map_err(|_| io::Error::other("callback dropped"))?
}

fn open(dir: &Path) -> LogStore {
    LogStore::open(dir, Durability::Always).unwrap()
}

fn ids(entries: &[Entry]) -> Vec<(u64, u64)> {
    entries.iter().map(|e| (e.log_id.leader_id.term, e.log_id.index)).collect()
}

#[tokio::test]
async fn a_reopened_store_has_the_entries_vote_committed_truncation_and_purge_it_was_given() {
    // Everything openraft writes through the store is there again after a close and reopen.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, (0..10).map(|i| blank(1 + i / 5, i)).collect()).await.unwrap();
    let vote = Vote::new_committed(2, 7);
    store.save_vote(&vote).await.unwrap();
    store.save_committed(Some(LogId::new_term_index(2, 6))).await.unwrap();
    store.truncate_after(Some(LogId::new_term_index(2, 7))).await.unwrap();
    store.purge(LogId::new_term_index(1, 2)).await.unwrap();
    store.save_identity(7, Bytes::from_static(b"cluster-a")).unwrap();
    store.close().unwrap();

    let mut store = open(dir.path());
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(LogId::new_term_index(1, 2)));
    assert_eq!(state.last_log_id, Some(LogId::new_term_index(2, 7)));
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(store.read_committed().await.unwrap(), Some(LogId::new_term_index(2, 6)));
    let entries = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(ids(&entries), vec![(1, 3), (1, 4), (2, 5), (2, 6), (2, 7)]);
    assert_eq!(store.identity().unwrap(), (7, Bytes::from_static(b"cluster-a")));
}

#[tokio::test]
async fn saving_the_vote_or_committed_keeps_the_identity_and_the_other_field() {
    // The metadata is one file saved whole: each save changes its own field only.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    assert_eq!(store.identity().unwrap(), (0, Bytes::new()), "a new store has no identity");
    assert_eq!(store.read_vote().await.unwrap(), None);
    assert_eq!(store.read_committed().await.unwrap(), None);
    store.save_identity(3, Bytes::from_static(b"c")).unwrap();
    store.save_vote(&Vote::new(5, 3)).await.unwrap();
    store.save_committed(Some(LogId::new_term_index(4, 9))).await.unwrap();
    store.save_vote(&Vote::new_committed(5, 3)).await.unwrap();
    assert_eq!(store.identity().unwrap(), (3, Bytes::from_static(b"c")));
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new_committed(5, 3)));
    assert_eq!(store.read_committed().await.unwrap(), Some(LogId::new_term_index(4, 9)));
    // A committed id is saved lazily, with the next vote or at close: after a crash the store
    // answers the last one saved, a lower bound, which is all openraft needs.
    store.save_committed(Some(LogId::new_term_index(4, 12))).await.unwrap();
    assert_eq!(store.read_committed().await.unwrap(), Some(LogId::new_term_index(4, 12)));
    drop(store);
    let mut reopened = open(dir.path());
    assert_eq!(reopened.read_committed().await.unwrap(), Some(LogId::new_term_index(4, 9)));
    reopened.save_committed(Some(LogId::new_term_index(4, 12))).await.unwrap();
    reopened.close().unwrap();
    let mut closed = open(dir.path());
    assert_eq!(closed.read_committed().await.unwrap(), Some(LogId::new_term_index(4, 12)));
}

#[tokio::test]
async fn blank_normal_and_membership_entries_round_trip_through_the_wal() {
    // Each payload kind reads back equal, with its log id, before and after a reopen.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let written = vec![membership(0, 0), blank(1, 1), normal(1, 2), membership(2, 3), normal(2, 4)];
    append(&mut store, written.clone()).await.unwrap();
    assert_eq!(store.try_get_log_entries(0..5).await.unwrap(), written);
    store.close().unwrap();
    let mut store = open(dir.path());
    assert_eq!(store.try_get_log_entries(0..=4).await.unwrap(), written);
    assert_eq!(
        store.get_log_reader().await.try_get_log_entry(2).await.unwrap(),
        Some(written[2].clone())
    );
}

#[tokio::test]
async fn an_always_append_reports_ok_once_durable_and_survives_a_reopen() {
    // With Always the callback waits for the group sync; what it acknowledged is there after.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    let (tx, rx) = TypeConfig::oneshot();
    store.append(vec![blank(1, 0), blank(1, 1)], IOFlushed::signal(tx)).await.unwrap();
    assert_eq!(store.try_get_log_entries(..).await.unwrap().len(), 2, "readable on return");
    rx.await.unwrap().unwrap();
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(ids(&store.try_get_log_entries(..).await.unwrap()), vec![(1, 0), (1, 1)]);
}

#[tokio::test]
async fn a_never_append_reports_ok_at_once() {
    // With Never the callback is complete when append returns.
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::open(dir.path(), Durability::Never).unwrap();
    assert_eq!(store.durability(), Durability::Never);
    let (tx, mut rx) = TypeConfig::oneshot();
    store.append(vec![blank(1, 0)], IOFlushed::signal(tx)).await.unwrap();
    rx.try_recv().expect("completed before append returned").unwrap();
}

#[tokio::test]
async fn a_read_of_a_purged_range_returns_only_the_entries_the_log_still_holds() {
    // openraft tolerates entries missing at a range's start when purged: they are left out.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, (0..10).map(|i| blank(1, i)).collect()).await.unwrap();
    store.purge(LogId::new_term_index(1, 4)).await.unwrap();
    let mut reader = store.get_log_reader().await;
    assert_eq!(ids(&reader.try_get_log_entries(0..8).await.unwrap()), vec![(1, 5), (1, 6), (1, 7)]);
    assert!(reader.try_get_log_entries(0..5).await.unwrap().is_empty(), "all purged");
    assert_eq!(reader.try_get_log_entry(4).await.unwrap(), None);
    assert_eq!(reader.try_get_log_entry(5).await.unwrap().map(|e| e.log_id.index), Some(5));
    assert_eq!(ids(&reader.limited_get_log_entries(5, 7).await.unwrap()), vec![(1, 5), (1, 6)]);
    assert!(reader.try_get_log_entries(10..20).await.unwrap().is_empty(), "past the end");
}

#[tokio::test]
async fn purging_past_the_end_empties_the_log_which_continues_after_the_purged_id() {
    // As after a snapshot install: the purged id is both the last purged and the last id.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, (0..3).map(|i| blank(1, i)).collect()).await.unwrap();
    store.purge(LogId::new_term_index(3, 20)).await.unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(LogId::new_term_index(3, 20)));
    assert_eq!(state.last_log_id, Some(LogId::new_term_index(3, 20)));
    append(&mut store, vec![blank(3, 21)]).await.unwrap();
    assert_eq!(ids(&store.try_get_log_entries(..).await.unwrap()), vec![(3, 21)]);
}

#[tokio::test]
async fn an_append_past_the_end_starts_an_empty_log_there_but_fails_on_a_log_with_entries() {
    // The dense WAL accepts a start past the end only when it holds nothing (see the module doc).
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, vec![blank(2, 5), blank(2, 6)]).await.unwrap();
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(LogId::new_term_index(2, 4)));
    assert_eq!(state.last_log_id, Some(LogId::new_term_index(2, 6)));
    let gap = append(&mut store, vec![blank(2, 9)]).await;
    assert!(gap.is_err(), "a hole after entries is refused: {gap:?}");
    assert_eq!(ids(&store.try_get_log_entries(..).await.unwrap()), vec![(2, 5), (2, 6)]);
}

#[tokio::test]
async fn truncating_removes_the_suffix_and_a_new_term_can_overwrite_it() {
    // Truncate after an id, then append a conflicting suffix from a later term.
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    append(&mut store, (0..6).map(|i| blank(1, i)).collect()).await.unwrap();
    store.truncate_after(Some(LogId::new_term_index(1, 2))).await.unwrap();
    append(&mut store, vec![blank(3, 3)]).await.unwrap();
    assert_eq!(
        ids(&store.try_get_log_entries(..).await.unwrap()),
        vec![(1, 0), (1, 1), (1, 2), (3, 3)]
    );
    store.truncate_after(None).await.unwrap();
    assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    assert_eq!(store.get_log_state().await.unwrap().last_log_id, None);
}
