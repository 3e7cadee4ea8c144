//! The shipped server under real operating-system limits: a descriptor limit far below the
//! number of segments, descriptors exhausted by idle connections during segment rolls, and
//! startup errors that name the file at fault.

mod common;

use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use common::binary::{server_command, server_command_with_nofile, spawn, wait_with_timeout};
use common::storage::{value_for, write_one_record_segments};
use girok::client::{Client, ClientError};

/// How many descriptors the server process holds.
fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
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
async fn idle_connections_cannot_take_the_descriptors_segment_rolls_need() {
    // Under a descriptor limit of 64, a flood of idle connections once took every descriptor,
    // so rolling to a new segment failed and old records read as corrupt. The server now fits
    // its connection limit to its descriptors: the idle connections past it are closed, and
    // every append (each one rolls a segment here) and every read goes on working. (A roll that
    // does meet EMFILE is pinned through the file seam in `tests/durability.rs`.)
    let dir = tempfile::tempdir().unwrap();
    let env = [("GIROK_FSYNC", "never"), ("GIROK_SEGMENT_MAX_STORE_BYTES", "64")];
    let server = spawn(server_command_with_nofile(dir.path(), 64, &env), Stdio::null());
    let mut client = Client::connect(server.url()).await.unwrap();
    for offset in 0..5 {
        assert_eq!(client.produce(value_for(offset)).await.unwrap(), offset);
    }
    let idle: Vec<TcpStream> =
        (0..80).filter_map(|_| TcpStream::connect(&server.addr).ok()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for offset in 5..30 {
        let appended = common::bounded("an append", client.produce(value_for(offset))).await;
        assert_eq!(appended.unwrap(), offset);
    }
    for offset in 0..30 {
        match client.consume(offset).await {
            Ok(record) => assert_eq!(record.value, value_for(offset)),
            Err(ClientError::RecordCorrupt { offset }) => panic!("offset {offset} read as corrupt"),
            Err(err) => panic!("read {offset}: {err}"),
        }
    }
    assert!(fds_of(server.id()) < 64, "the server is at its descriptor limit");
    drop(idle);
}

#[test]
fn a_startup_error_names_the_file_at_fault() {
    // A store that cannot be opened stops the server with a message naming its path.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/default");
    std::fs::create_dir_all(&log).unwrap();
    std::fs::write(log.join("log.json"), r#"{"created_ms": 1}"#).unwrap();
    let bad = log.join(format!("{:020}.store", 0));
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
