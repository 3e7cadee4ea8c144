//! The shipped `girok-server` binary over a real data directory: records survive a graceful
//! restart and a kill -9, a second server on the same directory is refused, and `girok verify`
//! reads the result.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use bytes::Bytes;
use common::binary::{PROCESS_TIMEOUT, server_command, spawn_server, wait_with_timeout};
use common::bounded;
use girok::client::Client;

fn value(offset: u64) -> Bytes {
    Bytes::from(format!("record-{offset}"))
}

/// Every offset in the server's committed range holds the value written for it.
async fn assert_log_holds_its_values(url: String, at_least: u64) -> u64 {
    let mut client = Client::connect(url).await.expect("connect");
    let range = client.offsets().await.expect("offsets");
    assert_eq!(range.start, 0);
    assert!(range.end >= at_least, "log ends at {}, below the {at_least} acknowledged", range.end);
    let mut tail = client.consume_stream(0).await.expect("consume stream");
    for offset in 0..range.end {
        let record = tail.next().await.expect("record").expect("stream open");
        assert_eq!(record.offset, offset);
        assert_eq!(record.value, value(offset), "offset {offset}");
    }
    range.end
}

fn run_to_completion(mut command: Command) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    wait_with_timeout(child, PROCESS_TIMEOUT)
}

fn girok_verify(dir: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_girok"));
    command.arg("verify").arg("--data-dir").arg(dir);
    run_to_completion(command)
}

/// Kill -9 cycles per fsync mode: `GIROK_CRASH_CYCLES` (default 2, CI-sized).
fn crash_cycles() -> usize {
    std::env::var("GIROK_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9_under_every_fsync_mode() {
    // Under each --fsync mode, a server killed with SIGKILL mid-stream, again and again on the
    // same directory, loses no acknowledged record: after each restart every offset below the
    // last ack holds its value, and the log goes on densely from where it stands.
    for fsync in ["always", "interval", "never"] {
        let data = tempfile::tempdir().expect("temp dir");
        let env = [("GIROK_FSYNC", fsync), ("GIROK_SEGMENT_MAX_STORE_BYTES", "65536")];
        let mut acked = 0;
        for cycle in 0..crash_cycles() {
            let mut server = spawn_server(data.path(), &env);
            let what = format!("{fsync}, cycle {cycle}");
            acked = bounded(&what, async {
                let start = assert_log_holds_its_values(server.url(), acked).await;
                let mut client = Client::connect(server.url()).await.expect("connect");
                let values = tokio_stream::iter((start..start + 1_000_000).map(value));
                let mut acks = client.produce_stream(values).await.expect("produce stream");
                let mut next = start;
                while next < start + 3_000 {
                    assert_eq!(acks.next().await.expect("ack"), Some(next));
                    next += 1;
                }
                server.kill9();
                while let Ok(Some(offset)) = acks.next().await {
                    assert_eq!(offset, next);
                    next += 1;
                }
                next
            })
            .await;
        }
        let server = spawn_server(data.path(), &env);
        let end = bounded(fsync, assert_log_holds_its_values(server.url(), acked)).await;
        let mut client = Client::connect(server.url()).await.expect("connect");
        assert_eq!(client.produce(value(end)).await.expect("produce after restart"), end);
        drop(server);
        let verified = girok_verify(data.path());
        let report = String::from_utf8_lossy(&verified.stdout);
        assert!(verified.status.success(), "{report}");
        if fsync == "always" {
            // A crashed `always` log ends in preallocated zeros, which verify names as such.
            assert!(report.contains("preallocated space"), "{report}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_keeps_every_record_and_the_next_offset() {
    // SIGTERM syncs and closes the log; the next server on the same directory serves every
    // record and appends after them.
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = spawn_server(data.path(), &[]);
    bounded("first run", async {
        let mut client = Client::connect(server.url()).await.expect("connect");
        for offset in 0..50 {
            assert_eq!(client.produce(value(offset)).await.expect("produce"), offset);
        }
    })
    .await;
    assert!(server.terminate().success());
    let server = spawn_server(data.path(), &[]);
    bounded("second run", async {
        assert_eq!(assert_log_holds_its_values(server.url(), 50).await, 50);
        let mut client = Client::connect(server.url()).await.expect("connect");
        assert_eq!(client.produce(value(50)).await.expect("produce"), 50);
    })
    .await;
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    // The data directory is locked: a second server exits non-zero and says why.
    let data = tempfile::tempdir().expect("temp dir");
    let _first = spawn_server(data.path(), &[]);
    let second = run_to_completion(server_command(data.path(), &[]));
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("locked"), "stderr: {stderr}");
}

#[test]
fn verify_exits_non_zero_on_a_flipped_bit() {
    // `girok verify` reports a clean log as OK and a flipped bit mid-log as corruption.
    let data = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut server = spawn_server(data.path(), &[]);
    rt.block_on(bounded("produce", async {
        let mut client = Client::connect(server.url()).await.expect("connect");
        for offset in 0..20 {
            client.produce(value(offset)).await.expect("produce");
        }
    }));
    assert!(server.terminate().success());
    let clean = girok_verify(data.path());
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stdout));
    assert!(String::from_utf8_lossy(&clean.stdout).contains("20 records: OK"));

    let store = data.path().join("logs/default").join(format!("{:020}.store", 0));
    let mut bytes = std::fs::read(&store).expect("read store");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&store, bytes).expect("write store");
    let damaged = girok_verify(data.path());
    assert_eq!(damaged.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&damaged.stdout).contains("CORRUPT"));
}
