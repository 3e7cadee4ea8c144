//! The Raft WAL under disk faults: a failed sync fails every callback waiting on it and every
//! later write, and a reopen recovers what the disk really holds.

mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::storage::FaultyFiles;
use girok::cluster::wal::{Entry, Wal, WalConfig, WalError};

fn entry(index: u64) -> Entry {
    Entry { index, term: 1, payload: Bytes::from(format!("e{index}")) }
}

#[test]
fn a_failed_sync_fails_its_callbacks_and_every_later_write_until_reopened() {
    // fsyncgate: after a failed fdatasync nothing written since the last good one can be trusted.
    let dir = tempfile::tempdir().unwrap();
    let files = FaultyFiles::new();
    let wal = Wal::open_with(dir.path(), WalConfig::default(), Arc::new(files.clone())).unwrap();
    wal.append([entry(0)]).unwrap();
    wal.flush().unwrap();
    files.fail_sync(true);
    let (tx, rx) = mpsc::channel();
    wal.append_then([entry(1)], move |r| tx.send(r.is_ok()).unwrap()).unwrap();
    assert!(!rx.recv_timeout(Duration::from_secs(10)).unwrap(), "the callback reports the failure");
    assert!(matches!(wal.append([entry(2)]), Err(WalError::Failed(_))));
    assert!(matches!(wal.truncate_after(Some(0)), Err(WalError::Failed(_))));
    let (tx, rx) = mpsc::channel();
    wal.flush_then(move |r| tx.send(r.is_ok()).unwrap());
    assert!(!rx.recv_timeout(Duration::from_secs(10)).unwrap());
    files.fail_sync(false);
    drop(wal);
    let wal = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(wal.read(0..1).unwrap(), vec![entry(0)], "what was flushed is there");
    wal.append([entry(wal.next_index().unwrap())]).unwrap();
}

#[test]
fn a_power_cut_mid_truncation_leaves_the_old_or_the_new_log() {
    // The truncation is recorded in the metadata file before the files are cut: with the cut
    // lost to a power cut, recovery finishes it instead of resurrecting the suffix.
    let dir = tempfile::tempdir().unwrap();
    let files = FaultyFiles::new();
    let config = WalConfig { segment_bytes: 60, first_index: 0 };
    let wal = Wal::open_with(dir.path(), config.clone(), Arc::new(files.clone())).unwrap();
    for i in 0..10 {
        wal.append([entry(i)]).unwrap();
    }
    wal.flush().unwrap();
    // The second unlink of the truncation never happens: the process dies there.
    files.kill_at_unlink(1);
    assert!(wal.truncate_after(Some(2)).is_err());
    files.power_cut();
    drop(wal);
    let wal = Wal::open(dir.path(), config).unwrap();
    let held: Vec<u64> = wal.read(..).unwrap().iter().map(|e| e.index).collect();
    assert_eq!(held, vec![0, 1, 2]);
}
