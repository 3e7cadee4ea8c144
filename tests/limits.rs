//! The shipped server under real operating-system limits: a descriptor limit far below the
//! number of segments, descriptors exhausted by idle connections during segment rolls, and
//! startup errors that name the file at fault.

mod common;

use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::binary::{server_command, server_command_with_nofile, spawn, wait_with_timeout};
use common::storage::{value_for, write_one_record_segments};
use girok::client::{Client, ClientError};
use tonic::Code;

/// How many descriptors the server process holds.
fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Polls `check` every 50 ms until it returns `Some`, failing after `within`.
async fn eventually<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not true after {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_log_of_5000_segments_opens_and_serves_under_a_limit_of_1024_descriptors() {
    // Sealed segments hold no descriptor: a log with five times more segments than the
    // descriptor limit opens, replays every record, and appends, holding few descriptors.
    let segments = 5000;
    let dir = tempfile::tempdir().unwrap();
    write_one_record_segments(dir.path(), segments);
    let command = server_command_with_nofile(dir.path(), 1024, &[("GIROK_FSYNC", "never")]);
    let server = spawn(command, Stdio::null());
    let mut client = Client::connect(server.url()).await.unwrap();
    assert_eq!(client.offsets().await.unwrap(), 0..segments);
    let mut records = client.consume_stream(0).await.unwrap();
    for offset in 0..segments {
        let record = common::bounded("replay", records.next()).await.unwrap().unwrap();
        assert_eq!((record.offset, &record.value), (offset, &value_for(offset)));
    }
    drop(records);
    assert_eq!(client.produce("one more").await.unwrap(), segments);
    assert_eq!(client.consume(segments).await.unwrap().value, "one more");
    let held = fds_of(server.id());
    assert!(held < 200, "the server holds {held} descriptors for {segments} segments");
}

#[tokio::test]
async fn descriptors_exhausted_during_rolls_fail_appends_for_a_while_never_the_log() {
    // With every descriptor taken by idle connections, rolling to a new segment fails: appends
    // get UNAVAILABLE and old records can't be opened, but nothing reads as corrupt and the log
    // does not turn read-only. Once the connections go, appends and reads work again.
    let dir = tempfile::tempdir().unwrap();
    let env = [("GIROK_FSYNC", "never"), ("GIROK_SEGMENT_MAX_STORE_BYTES", "64")];
    let server = spawn(server_command_with_nofile(dir.path(), 64, &env), Stdio::null());
    let mut client = Client::connect(server.url()).await.unwrap();
    for offset in 0..5 {
        assert_eq!(client.produce(value_for(offset)).await.unwrap(), offset);
    }
    let idle: Vec<TcpStream> =
        (0..80).filter_map(|_| TcpStream::connect(&server.addr).ok()).collect();
    let failure = eventually(
        "an append fails for want of descriptors",
        Duration::from_secs(10),
        async || client.produce(value_for(99)).await.err(),
    )
    .await;
    assert_eq!(failure.code(), Some(Code::Unavailable), "{failure}");
    let next = client.offsets().await.unwrap().end;
    for offset in 0..next {
        match client.consume(offset).await {
            Ok(record) => assert_eq!(record.offset, offset),
            Err(ClientError::RecordCorrupt { offset }) => {
                panic!("healthy offset {offset} read as corrupt")
            }
            Err(err) => assert_eq!(err.code(), Some(Code::Unavailable), "{err}"),
        }
    }
    drop(idle);
    let offset = eventually("appends work again", Duration::from_secs(10), async || {
        client.produce("after").await.ok()
    })
    .await;
    for read in 0..=offset {
        let record = client.consume(read).await.unwrap();
        assert_eq!(record.offset, read);
    }
    assert_eq!(client.consume(offset).await.unwrap().value, "after");
}

#[test]
fn a_startup_error_names_the_file_at_fault() {
    // A store that cannot be opened stops the server with a message naming its path.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join(format!("{:020}.store", 0));
    std::fs::create_dir(&bad).unwrap();
    let child = server_command(dir.path(), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_with_timeout(child, Duration::from_secs(20));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&bad.display().to_string()), "no path in: {stderr}");
}

#[test]
fn the_server_raises_its_descriptor_limit_and_says_so() {
    // A soft limit below the hard one is raised at startup, and both are logged.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server_dir = dir.path().join("data");
    let server = server_command(&server_dir, &[]);
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("ulimit -S -n 256 && exec \"$0\"")
        .arg(server.get_program())
        .envs(server.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let mut server = spawn(command, Stdio::from(std::fs::File::create(&log).unwrap()));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.id())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[3], fields[4], "soft limit not raised to the hard one: {line}");
    let status = server.terminate();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status:?}: {logged}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("file descriptor limit") && logged.contains("256"), "{logged}");
}
