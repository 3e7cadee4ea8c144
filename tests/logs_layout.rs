//! The data directory of named logs: a directory written by the single-log release opens as the
//! `default` log with every record and offset, and a crash at any step of moving it, of creating
//! a log or of deleting one leaves each log whole or gone. Crashes are injected through the
//! registry's directory seam ([`DirOps`]): from the chosen step on, every operation fails and does
//! nothing, and the registry is then dropped without closing (as a killed process leaves it).

mod common;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use girok::logs::fs::{DirOps, OsDirs};
use girok::logs::{LogSettings, Logs, LogsConfig};
use girok::storage::{DiskConfig, FsyncPolicy};

/// The fixture written by the single-log release: 50 records in five segments.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/single-log-v1");
const FIXTURE_RECORDS: u64 = 50;

fn disk() -> DiskConfig {
    DiskConfig { fsync: FsyncPolicy::Always, ..DiskConfig::default() }
}

/// A fresh copy of the fixture.
fn single_log_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(FIXTURE).expect("fixture") {
        let entry = entry.expect("fixture entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy fixture");
    }
    dir
}

/// Checks that `default` holds the fixture's records at their offsets.
fn assert_holds_the_fixture(logs: &Logs) {
    let log = logs.get("default").expect("default log");
    let log = log.log();
    assert_eq!(log.lowest_offset(), 0);
    assert!(log.next_offset() >= FIXTURE_RECORDS, "next offset {}", log.next_offset());
    let records = log.read_batch(0, 1000, usize::MAX).expect("read");
    let mut offset = 0;
    let mut records = records;
    while offset < FIXTURE_RECORDS {
        if records.is_empty() {
            records = log.read_batch(offset, 1000, usize::MAX).expect("read");
        }
        let record = records.remove(0);
        assert_eq!(record.offset, offset);
        assert_eq!(record.value, Bytes::from(format!("record-{offset}")));
        offset += 1;
    }
}

/// Directory operations that "crash" at step `at` (counted from when it is armed): that step
/// and every later one fail without doing anything.
#[derive(Debug)]
struct CrashAt {
    at: AtomicUsize,
    steps: AtomicUsize,
    armed: std::sync::atomic::AtomicBool,
}

impl CrashAt {
    fn new(at: usize) -> Arc<Self> {
        Arc::new(Self {
            at: AtomicUsize::new(at),
            steps: AtomicUsize::new(0),
            armed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Whether the step about to run is at or past the crash.
    fn crashed(&self) -> bool {
        if !self.armed.load(Ordering::SeqCst) {
            return false;
        }
        self.steps.fetch_add(1, Ordering::SeqCst) >= self.at.load(Ordering::SeqCst)
    }

    /// Whether the crash happened: some step ran at or past it.
    fn fired(&self) -> bool {
        self.steps.load(Ordering::SeqCst) > self.at.load(Ordering::SeqCst)
    }

    fn step<T>(&self, op: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        if self.crashed() { Err(io::Error::other("injected crash")) } else { op() }
    }
}

impl DirOps for CrashAt {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.step(|| OsDirs.create_dir(path))
    }
    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.step(|| OsDirs.write_file(path, bytes))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(|| OsDirs.rename(from, to))
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.step(|| OsDirs.sync_dir(path))
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.step(|| OsDirs.remove_dir_all(path))
    }
}

fn open(dir: &Path) -> Logs {
    Logs::open(dir, disk(), LogsConfig::default()).expect("open registry")
}

#[test]
fn a_single_log_data_directory_opens_as_default() {
    // Every record and offset of the single-log release is served by `default`, whose files now
    // live in logs/default/; appends go on after them, and a second open finds the same.
    let dir = single_log_dir();
    let logs = open(dir.path());
    assert_holds_the_fixture(&logs);
    assert_eq!(logs.get("default").unwrap().log().next_offset(), FIXTURE_RECORDS);
    assert!(dir.path().join("logs/default/00000000000000000044.store").exists());
    assert!(!dir.path().join("00000000000000000000.store").exists(), "moved, not copied");
    let default = logs.get("default").unwrap();
    assert_eq!(default.log().append(Bytes::from_static(b"after")).unwrap(), FIXTURE_RECORDS);
    assert_eq!(logs.list().len(), 1);
    logs.close().unwrap();
    drop(logs);
    let logs = open(dir.path());
    assert_eq!(logs.get("default").unwrap().log().next_offset(), FIXTURE_RECORDS + 1);
    assert_holds_the_fixture(&logs);
}

#[test]
fn a_crash_at_any_step_of_the_move_loses_nothing() {
    // Stopped at any step of moving the single-log layout into logs/default, the next open
    // finishes the move with every record in place.
    for at in 0.. {
        let dir = single_log_dir();
        let crash = CrashAt::new(at);
        crash.arm();
        let opened = Logs::open_with(dir.path(), disk(), LogsConfig::default(), crash.clone());
        let finished = opened.is_ok();
        drop(opened);
        let logs = open(dir.path());
        assert_holds_the_fixture(&logs);
        if !crash.fired() {
            assert!(finished && at > 5, "the move takes more than {at} steps");
            break;
        }
    }
}

#[test]
fn a_crash_at_any_step_of_create_leaves_the_log_whole_or_gone() {
    let settings = LogSettings { segment_bytes: Some(1 << 20), ..LogSettings::default() };
    for at in 0.. {
        let dir = tempfile::tempdir().expect("temp dir");
        let crash = CrashAt::new(at);
        let logs = Logs::open_with(dir.path(), disk(), LogsConfig::default(), crash.clone())
            .expect("open");
        crash.arm();
        let created = logs.create("orders", settings).is_ok();
        drop(logs);
        let logs = open(dir.path());
        match logs.get("orders") {
            Ok(orders) => {
                assert_eq!(orders.settings(), settings, "crash at step {at}");
                assert_eq!(orders.log().next_offset(), 0);
                assert_eq!(orders.log().append(Bytes::from_static(b"v")).unwrap(), 0);
            }
            Err(err) => {
                assert!(!created, "an acknowledged create was lost at step {at}: {err}");
                assert!(!dir.path().join("logs/orders").exists());
            }
        }
        let names: Vec<String> = logs.list().iter().map(|l| l.name().to_string()).collect();
        assert!(names == ["default", "orders"] || names == ["default"], "{names:?}");
        if !crash.fired() {
            assert!(created && at >= 4, "create takes more than {at} steps");
            break;
        }
    }
}

#[test]
fn a_crash_at_any_step_of_delete_leaves_the_log_whole_or_gone() {
    for at in 0.. {
        let dir = tempfile::tempdir().expect("temp dir");
        let crash = CrashAt::new(at);
        let logs = Logs::open_with(dir.path(), disk(), LogsConfig::default(), crash.clone())
            .expect("open");
        let orders = logs.create("orders", LogSettings::default()).expect("create");
        let values: Vec<Bytes> = (0..100).map(|i| Bytes::from(format!("v{i}"))).collect();
        orders.log().append_batch(&values).expect("append");
        drop(orders);
        crash.arm();
        let deleted = logs.delete("orders").is_ok();
        drop(logs);
        let logs = open(dir.path());
        match logs.get("orders") {
            Ok(orders) => {
                assert!(!deleted, "an acknowledged delete came back at step {at}");
                let log = orders.log();
                assert_eq!((log.lowest_offset(), log.next_offset()), (0, 100), "step {at}");
                assert_eq!(log.read(99).unwrap().value, "v99");
            }
            Err(_) => assert!(!dir.path().join("logs/orders").exists()),
        }
        assert!(
            std::fs::read_dir(dir.path().join(".trash")).unwrap().next().is_none(),
            "the trash is emptied on open"
        );
        if !crash.fired() {
            assert!(deleted && at >= 2, "delete takes more than {at} steps");
            break;
        }
    }
}

#[test]
fn the_real_server_serves_a_single_log_directory_as_default() {
    // The shipped binary, started on the fixture, answers every old record from `default`.
    let dir = single_log_dir();
    let server = common::binary::spawn_server(dir.path(), &[]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(common::bounded("old records", async {
        let mut client = girok::client::Client::connect(server.url()).await.expect("connect");
        assert_eq!(client.offsets().await.unwrap(), 0..FIXTURE_RECORDS);
        let record = client.consume(FIXTURE_RECORDS - 1).await.unwrap();
        assert_eq!(record.value, Bytes::from(format!("record-{}", FIXTURE_RECORDS - 1)));
        assert_eq!(client.produce("new").await.unwrap(), FIXTURE_RECORDS);
    }));
}

#[test]
fn a_log_that_cannot_be_opened_leaves_the_others_served() {
    // A damaged log is listed and can be deleted, but stops nothing else: the other logs open,
    // and one whose log.json is unreadable opens with default settings.
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let logs = open(dir.path());
        for name in ["broken", "healthy", "no-settings"] {
            let settings = LogSettings { retention_ms: Some(1), ..LogSettings::default() };
            let log = logs.create(name, settings).expect("create");
            log.log().append(Bytes::from_static(b"kept")).expect("append");
        }
        logs.close().expect("close");
    }
    let broken = dir.path().join("logs/broken/00000000000000000000.store");
    std::fs::write(&broken, b"not a girok store at all, not even its header").unwrap();
    std::fs::write(dir.path().join("logs/no-settings/log.json"), b"{").unwrap();

    let logs = open(dir.path());
    let names: Vec<String> = logs.list().iter().map(|l| l.name().to_string()).collect();
    assert_eq!(names, ["broken", "default", "healthy", "no-settings"]);
    let failed = logs.get("broken").unwrap();
    assert!(failed.failure().is_some_and(|why| why.contains("not a girok store")), "{failed:?}");
    assert_eq!(logs.get("healthy").unwrap().log().read(0).unwrap().value, "kept");
    let reset = logs.get("no-settings").unwrap();
    assert_eq!(reset.settings(), LogSettings::default());
    assert_eq!(reset.log().read(0).unwrap().value, "kept");
    logs.delete("broken").expect("a damaged log can be deleted");
    assert!(!dir.path().join("logs/broken").exists());
}

#[test]
fn a_re_created_log_gets_a_later_creation_time() {
    // Deleted and created again at once (within a millisecond, on a fast disk) or after the
    // clock stepped back, a log still gets a creation time after its predecessor's.
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = Logs::in_memory(Default::default(), LogsConfig::default());
    let mut last = 0;
    for _ in 0..50 {
        let created = logs.create("orders", LogSettings::default()).unwrap().created_ms();
        assert!(created > last, "{created} after {last}");
        last = created;
        logs.delete("orders").unwrap();
    }
    drop(dir);
}
