//! Many logs in one server: 1,000 logs (`GIROK_SCALE_LOGS`) are created, written under
//! `--fsync always` and reopened, within a disk budget (under 2 GiB for 1,000 logs: an idle log
//! costs about 1 MiB at most) and one descriptor per log. The figures are printed for the notes
//! (`cargo test --test logs_scale -- --nocapture`).

mod common;

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use girok::logs::{LogSettings, Logs, LogsConfig};
use girok::storage::{DiskConfig, FsyncPolicy};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count()
}

fn open(dir: &Path, count: usize) -> Logs {
    let disk = DiskConfig { fsync: FsyncPolicy::Always, ..DiskConfig::default() };
    let config = LogsConfig { max_logs: count + 1, ..LogsConfig::default() };
    Logs::open(dir, disk, config).expect("open registry")
}

#[test]
fn a_thousand_logs_are_created_written_and_reopened_within_budget() {
    let count = knob("GIROK_SCALE_LOGS", 1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let descriptors_before = open_descriptors();
    let logs = open(dir.path(), count);
    let started = Instant::now();
    let names: Vec<String> = (0..count).map(|i| format!("log-{i:04}")).collect();
    for name in &names {
        let log = logs.create(name, LogSettings::default()).expect("create");
        let values = [Bytes::from(format!("{name}/0")), Bytes::from(format!("{name}/1"))];
        log.log().append_batch(&values).expect("append");
        log.log().append(Bytes::from(format!("{name}/2"))).expect("append");
    }
    let created = started.elapsed();
    let descriptors = open_descriptors() - descriptors_before;
    assert!(
        descriptors <= count + 1 + 16,
        "{descriptors} descriptors for {} logs: more than one each",
        count + 1
    );
    logs.close().expect("close");
    drop(logs);

    let on_disk = common::allocated_bytes(dir.path());
    let budget = (count as u64 + 1) * 1024 * 1024;
    assert!(on_disk < budget.min(2 << 30), "{} logs take {on_disk} bytes on disk", count + 1);

    let started = Instant::now();
    let logs = open(dir.path(), count);
    let reopened = started.elapsed();
    assert_eq!(logs.len(), count + 1);
    for name in &names {
        let log = logs.get(name).expect("reopened log");
        assert_eq!(log.log().next_offset(), 3, "{name}");
        assert_eq!(log.log().read(2).expect("read").value, Bytes::from(format!("{name}/2")));
    }
    let reopened_disk = common::allocated_bytes(dir.path());
    eprintln!(
        "{} logs: created and written in {created:?}, reopened in {reopened:?}; \
         {descriptors} descriptors while open; {:.1} MiB on disk after close \
         ({:.1} KiB a log), {:.1} MiB after reopen",
        count + 1,
        on_disk as f64 / (1 << 20) as f64,
        on_disk as f64 / 1024.0 / (count + 1) as f64,
        reopened_disk as f64 / (1 << 20) as f64,
    );
    // Dropped without closing, as a crash leaves them: the next open must still be quick and
    // within budget (active segments keep their preallocated space until sealed).
    drop(logs);
    let started = Instant::now();
    let logs = open(dir.path(), count);
    let recovered = started.elapsed();
    assert_eq!(logs.len(), count + 1);
    let on_disk = common::allocated_bytes(dir.path());
    assert!(on_disk < budget.min(2 << 30), "{on_disk} bytes on disk after a crash");
    eprintln!(
        "after a crash: recovered in {recovered:?}, {:.1} MiB on disk",
        on_disk as f64 / (1 << 20) as f64
    );
}
