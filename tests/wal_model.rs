//! Crash-model test of the Raft WAL: random sequences of appends, group-commit flushes,
//! truncations, purges, clean reopens, process kills and power cuts (through the fault-injecting
//! `FaultyFiles`, which drops every write not yet synced) against a simple in-memory model. After
//! every reopen: the start is where the last purge put it; the log is a prefix of the model's;
//! everything flushed (or acknowledged by a callback) and not since truncated or purged is there;
//! nothing truncated comes back (payloads are unique, so a resurrected entry would differ).
//!
//! Cases: `GIROK_WAL_MODEL_CASES` (default 64, sized for CI: a few seconds).

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::storage::FaultyFiles;
use girok::cluster::wal::{Entry, LogId, Wal, WalConfig};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// Appends `n` entries, in a new term when `new_term`.
    Append {
        n: u64,
        new_term: bool,
    },
    /// Appends `n` entries with a durability callback (group commit), not waited for.
    AppendThen(u64),
    /// Syncs in the caller's thread.
    Flush,
    /// Queues a flush callback and waits for it.
    FlushThen,
    /// Keeps entries up to one chosen relative to the bounds.
    Truncate(u16),
    /// Purges up to an entry chosen relative to the bounds (a little past the end too).
    Purge(u16),
    Reopen,
    /// The process dies: nothing written is lost.
    Kill,
    /// The machine loses power: what was not synced is lost.
    PowerCut,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..5, proptest::bool::weighted(0.2))
            .prop_map(|(n, new_term)| Op::Append { n, new_term }),
        4 => (1u64..5).prop_map(Op::AppendThen),
        2 => Just(Op::Flush),
        2 => Just(Op::FlushThen),
        2 => any::<u16>().prop_map(Op::Truncate),
        2 => any::<u16>().prop_map(Op::Purge),
        1 => Just(Op::Reopen),
        1 => Just(Op::Kill),
        3 => Just(Op::PowerCut),
    ]
}

/// What the WAL must hold.
#[derive(Debug, Default)]
struct Model {
    start: u64,
    purged: Option<LogId>,
    /// The entries from `start`.
    entries: Vec<Entry>,
    /// Entries below this index are durable (until truncated).
    durable: u64,
    term: u64,
    /// A counter making every payload unique.
    made: u64,
    /// The next index after each truncation (or crash), in order.
    cuts: Vec<u64>,
}

impl Model {
    fn next(&self) -> u64 {
        self.start + self.entries.len() as u64
    }

    fn make(&mut self, n: u64) -> Vec<Entry> {
        let first = self.next();
        (first..first + n)
            .map(|index| {
                self.made += 1;
                Entry { index, term: self.term, payload: Bytes::from(format!("p{}", self.made)) }
            })
            .collect()
    }

    fn last(&self) -> Option<LogId> {
        self.entries.last().map(Entry::id).or(self.purged)
    }

    /// The index everything below which must survive: what was flushed, and what callbacks
    /// acknowledged, less what truncations since removed.
    fn required(&self, acks: &[(usize, u64)]) -> u64 {
        let mut required = self.durable;
        for &(epoch, end) in acks {
            let cut = self.cuts[epoch..].iter().copied().min().unwrap_or(u64::MAX);
            required = required.max(end.min(cut));
        }
        required
    }

    fn cut(&mut self, from: u64) {
        self.entries.truncate((from - self.start) as usize);
        self.durable = self.durable.min(from);
        self.cuts.push(from);
    }
}

/// Acknowledgements from durability callbacks: (the model's cut count then, the end covered).
type Acks = Arc<Mutex<Vec<(usize, u64)>>>;

fn config() -> WalConfig {
    WalConfig { segment_bytes: 120, first_index: 0 }
}

fn open(dir: &Path) -> (Wal, FaultyFiles) {
    let files = FaultyFiles::new();
    let wal = Wal::open_with(dir, config(), Arc::new(files.clone())).expect("open wal");
    (wal, files)
}

/// Checks the reopened WAL against the model after a crash that may have lost unsynced writes,
/// then takes what it holds as the model.
fn check_recovered(wal: &Wal, model: &mut Model, acks: &Acks) -> Result<(), TestCaseError> {
    prop_assert_eq!(wal.first_index().unwrap(), model.start, "the purge point is durable");
    let held = wal.read(..).unwrap();
    prop_assert!(held.len() <= model.entries.len(), "more entries than written: resurrected");
    prop_assert_eq!(&held[..], &model.entries[..held.len()], "not a prefix of the model");
    let required = model.required(&acks.lock().unwrap());
    let end = model.start + held.len() as u64;
    prop_assert!(end >= required, "flushed entries lost: hold up to {}, need {}", end, required);
    model.cut(end);
    model.durable = end;
    prop_assert_eq!(wal.last().unwrap(), model.last());
    Ok(())
}

fn check_same(wal: &Wal, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(wal.first_index().unwrap(), model.start);
    prop_assert_eq!(wal.next_index().unwrap(), model.next());
    prop_assert_eq!(wal.last().unwrap(), model.last());
    prop_assert_eq!(wal.read(..).unwrap(), model.entries.clone());
    Ok(())
}

fn run(dir: &Path, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (mut wal, mut files) = open(dir);
    let mut model = Model { term: 1, ..Model::default() };
    let acks: Acks = Arc::default();
    for op in ops {
        match op {
            Op::Append { n, new_term } => {
                model.term += u64::from(new_term);
                let entries = model.make(n);
                wal.append(entries.clone()).unwrap();
                model.entries.extend(entries);
            }
            Op::AppendThen(n) => {
                let entries = model.make(n);
                let (acks, epoch, end) = (acks.clone(), model.cuts.len(), model.next() + n);
                wal.append_then(entries.clone(), move |r| {
                    if r.is_ok() {
                        acks.lock().unwrap().push((epoch, end));
                    }
                })
                .unwrap();
                model.entries.extend(entries);
            }
            Op::Flush => {
                wal.flush().unwrap();
                model.durable = model.next();
            }
            Op::FlushThen => {
                let (tx, rx) = mpsc::channel();
                wal.flush_then(move |r| tx.send(r.is_ok()).unwrap());
                prop_assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
                model.durable = model.next();
            }
            Op::Truncate(pick) => {
                let from = model.start + u64::from(pick) % (model.entries.len() as u64 + 1);
                let last_kept = from.checked_sub(1).filter(|_| from > model.start);
                wal.truncate_after(last_kept).unwrap();
                model.cut(from);
            }
            Op::Purge(pick) => {
                let index = model.start + u64::from(pick) % (model.entries.len() as u64 + 3);
                let id = match model.entries.get((index - model.start) as usize) {
                    Some(entry) => entry.id(),
                    None => LogId { index, term: model.term },
                };
                wal.purge_upto(id).unwrap();
                if index >= model.next() {
                    model.entries.clear();
                } else {
                    model.entries.drain(..=(index - model.start) as usize);
                }
                model.start = index + 1;
                model.purged = Some(id);
                model.durable = model.durable.max(model.start);
            }
            Op::Reopen => {
                wal.close().unwrap();
                (wal, files) = open(dir);
                model.durable = model.next();
                check_same(&wal, &model)?;
            }
            Op::Kill => {
                drop(wal);
                (wal, files) = open(dir);
                check_same(&wal, &model)?;
            }
            Op::PowerCut => {
                files.power_cut();
                drop(wal);
                (wal, files) = open(dir);
                check_recovered(&wal, &mut model, &acks)?;
            }
        }
        check_same(&wal, &model)?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("GIROK_WAL_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_wal_keeps_what_was_flushed_and_never_resurrects_what_was_cut(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        // Any sequence of operations and crashes leaves the WAL holding a prefix of what was
        // written that includes everything made durable, starting where the last purge left it.
        let dir = tempfile::tempdir().expect("temp dir");
        run(dir.path(), ops)?;
    }
}
