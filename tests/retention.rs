//! Retention and the free-space floor end to end: whole sealed segments deleted by size and by
//! age (an aged active segment rolled first), per-log settings over the server's defaults, the
//! new lowest offset shown at once, a tail that retention overtakes, and appends refused with
//! DISK_LOW below `--min-free-disk` (through the shipped binary) until space is freed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::binary::spawn_server;
use common::{bounded, start_registry};
use girok::api::v1::log_client::LogClient;
use girok::api::v1::{
    ConsumeRequest, CreateLogRequest, ListLogsRequest, LogSettings, OffsetsRequest, ProduceRequest,
    Record,
};
use girok::logs::{Logs, LogsConfig};
use girok::server::ServerConfig;
use girok::storage::{DiskConfig, FsyncPolicy, Retention};
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A frame of a 16-byte value is 40 bytes; a 200-byte segment holds a 24-byte header and four.
const SEGMENT_BYTES: u64 = 200;
const FULL_SEGMENT: u64 = 24 + 4 * 40;

fn open_registry(dir: &TempDir, config: LogsConfig) -> Arc<Logs> {
    open_registry_with(dir, config, FsyncPolicy::Never)
}

fn open_registry_with(dir: &TempDir, config: LogsConfig, fsync: FsyncPolicy) -> Arc<Logs> {
    let disk = DiskConfig { fsync, ..DiskConfig::default() };
    Arc::new(Logs::open(dir.path(), disk, config).expect("open registry"))
}

/// The base offsets of the segment stores in a log's directory, sorted.
fn store_bases(dir: &std::path::Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".store")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

fn settings(retention_bytes: Option<u64>, retention_ms: Option<u64>) -> girok::logs::LogSettings {
    girok::logs::LogSettings { retention_bytes, retention_ms, segment_bytes: Some(SEGMENT_BYTES) }
}

fn produce(log: &str, value: Vec<u8>) -> ProduceRequest {
    ProduceRequest {
        record: Some(Record { value: value.into(), ..Record::default() }),
        log: log.into(),
    }
}

async fn offsets(client: &mut LogClient<Channel>, log: &str) -> (u64, u64) {
    let r = client
        .offsets(OffsetsRequest { log: log.into(), ..Default::default() })
        .await
        .expect("offsets")
        .into_inner();
    (r.lowest_offset, r.next_offset)
}

/// The `ErrorInfo` reason and one metadata value of a status.
fn reason(status: &Status, key: &str) -> (String, Option<String>) {
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    (info.reason, info.metadata.get(key).cloned())
}

#[tokio::test(flavor = "multi_thread")]
async fn size_retention_drops_the_oldest_sealed_segments_and_offsets_and_list_logs_show_it_at_once()
{
    // Five full segments (920 bytes) over a 400-byte limit: the three oldest go, the active one
    // never; Offsets and ListLogs report the new lowest offset, and a read below it is
    // OUT_OF_RANGE with lowest_offset in its details.
    let dir = tempfile::tempdir().unwrap();
    let logs = open_registry(&dir, LogsConfig::default());
    let server = start_registry(Arc::clone(&logs), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    let request = CreateLogRequest {
        name: "sized".into(),
        settings: Some(LogSettings {
            retention_bytes: Some(400),
            segment_bytes: Some(SEGMENT_BYTES),
            ..LogSettings::default()
        }),
    };
    client.create_log(request).await.unwrap();
    for _ in 0..20 {
        client.produce(produce("sized", vec![7; 16])).await.unwrap();
    }
    logs.enforce_retention();
    assert_eq!(offsets(&mut client, "sized").await, (12, 20));
    let counted = logs.get("sized").unwrap().activity().retention_deleted_segments();
    assert_eq!(counted, 3, "girok_retention_deleted_segments_total counts them");
    let listed = client.list_logs(ListLogsRequest {}).await.unwrap().into_inner().logs;
    let sized = listed.iter().find(|l| l.name == "sized").unwrap();
    assert_eq!((sized.lowest_offset, sized.size_bytes), (12, 2 * FULL_SEGMENT));
    let below = client.consume(ConsumeRequest { offset: 11, log: "sized".into() }).await;
    let status = below.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(reason(&status, "lowest_offset"), ("OFFSET_OUT_OF_RANGE".into(), Some("12".into())));
    let kept = client.consume(ConsumeRequest { offset: 12, log: "sized".into() }).await.unwrap();
    assert_eq!(kept.into_inner().record.unwrap().offset, 12);
}

#[test]
fn a_log_setting_overrides_the_server_default_and_zero_is_unlimited() {
    // The server keeps 200 bytes per log; a log without a retention setting follows it, one
    // with its own limit keeps that many, and one with 0 keeps everything.
    let dir = tempfile::tempdir().unwrap();
    let default = Retention { max_bytes: Some(200), max_age_ms: None };
    let logs = open_registry(&dir, LogsConfig { retention: default, ..LogsConfig::default() });
    for (name, own) in [("follows", None), ("own", Some(2 * FULL_SEGMENT)), ("unlimited", Some(0))]
    {
        let entry = logs.create(name, settings(own, None)).unwrap();
        for _ in 0..12 {
            entry.log().append(Bytes::from_static(&[1; 16])).unwrap();
        }
    }
    logs.enforce_retention();
    let lowest = |name: &str| logs.get(name).unwrap().log().lowest_offset();
    assert_eq!((lowest("follows"), lowest("own"), lowest("unlimited")), (8, 4, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn age_retention_empties_a_slowly_written_log_by_itself() {
    // Three records, then nothing: the server's own retention thread rolls the active segment
    // once its oldest record is past 300 ms and deletes it, within a few seconds.
    let dir = tempfile::tempdir().unwrap();
    let logs = open_registry(&dir, LogsConfig::default());
    logs.create("aged", settings(None, Some(300))).unwrap();
    let server = start_registry(Arc::clone(&logs), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    for _ in 0..3 {
        client.produce(produce("aged", vec![2; 16])).await.unwrap();
    }
    let start = Instant::now();
    while offsets(&mut client, "aged").await != (3, 3) {
        assert!(start.elapsed() < Duration::from_secs(10), "age retention never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(200), "deleted before its age");
    assert_eq!(client.produce(produce("aged", vec![3; 16])).await.unwrap().into_inner().offset, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn age_retention_rolls_an_active_segment_under_fsync_always_and_appends_go_on_in_a_fresh_one()
{
    // Under --fsync always (the active store zero-filled ahead of its data), three records and
    // then nothing: the retention thread rolls the active segment once its oldest record is past
    // 300 ms and deletes it; the lowest offset moves to 3, the next appends land in a new segment
    // based at 3 and read back, and so does all of it after a reopen.
    let dir = tempfile::tempdir().unwrap();
    let logs = open_registry_with(&dir, LogsConfig::default(), FsyncPolicy::Always);
    logs.create("aged", settings(None, Some(300))).unwrap();
    let log_dir = dir.path().join("logs/aged");
    let server = start_registry(Arc::clone(&logs), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    for value in 0..3u8 {
        client.produce(produce("aged", vec![value; 16])).await.unwrap();
    }
    assert_eq!(store_bases(&log_dir), [0]);
    let start = Instant::now();
    while offsets(&mut client, "aged").await != (3, 3) {
        assert!(start.elapsed() < Duration::from_secs(4), "age retention never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(200), "deleted before its age");
    assert_eq!(store_bases(&log_dir), [3], "the old segment's files are gone");
    let status = client.consume(ConsumeRequest { offset: 2, log: "aged".into() }).await;
    assert_eq!(status.unwrap_err().code(), Code::OutOfRange);
    for value in 3..6u8 {
        let offset = client.produce(produce("aged", vec![value; 16])).await.unwrap();
        assert_eq!(offset.into_inner().offset, u64::from(value));
    }
    assert_eq!(logs.get("aged").unwrap().log().segment_count(), 1);
    for offset in 3..6 {
        let read = client.consume(ConsumeRequest { offset, log: "aged".into() }).await.unwrap();
        assert_eq!(read.into_inner().record.unwrap().value, vec![offset as u8; 16]);
    }
    drop((client, server));
    logs.close().unwrap();
    drop(logs);
    let logs = open_registry_with(&dir, LogsConfig::default(), FsyncPolicy::Always);
    let log = logs.get("aged").unwrap();
    assert_eq!((log.log().lowest_offset(), log.log().next_offset()), (3, 6));
    assert_eq!(log.log().read(5).unwrap().value, vec![5u8; 16]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_that_retention_overtakes_ends_out_of_range_with_the_new_lowest() {
    // A consumer far behind (its stream held back by flow control) loses the records retention
    // deletes: its stream ends OUT_OF_RANGE with the lowest offset to resume at.
    let dir = tempfile::tempdir().unwrap();
    let logs = open_registry(&dir, LogsConfig::default());
    let big = 64 * 1024;
    let segment = 24 + 3 * (24 + big);
    let own = girok::logs::LogSettings { segment_bytes: Some(segment), ..Default::default() };
    let entry = logs.create("tailed", own).unwrap();
    for _ in 0..60 {
        entry.log().append(Bytes::from(vec![9u8; big as usize])).unwrap();
    }
    let server = start_registry(Arc::clone(&logs), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    let request = ConsumeRequest { offset: 0, log: "tailed".into() };
    let mut stream = client.consume_stream(request).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().record.unwrap().offset, 0);
    let limit = girok::logs::LogSettings { retention_bytes: Some(segment), ..Default::default() };
    logs.update("tailed", limit).unwrap();
    logs.enforce_retention();
    let lowest = entry.log().lowest_offset();
    assert!(lowest > 50, "retention kept from {lowest}");
    let mut next = 1;
    let status = bounded("the overtaken tail's end", async {
        loop {
            match stream.message().await {
                Ok(Some(response)) => {
                    assert_eq!(response.record.unwrap().offset, next, "records skipped");
                    next += 1;
                }
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert!(next < lowest, "the tail was not overtaken: it read up to {next}");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(reason(&status, "lowest_offset").1, Some(lowest.to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_below_the_floor_are_refused_and_resume_once_it_is_lowered() {
    // In process: with the floor above the volume's free space a produce is RESOURCE_EXHAUSTED
    // (DISK_LOW) saying why, reads go on, and the very next produce after the floor is lowered
    // succeeds.
    let dir = tempfile::tempdir().unwrap();
    let logs = open_registry(&dir, LogsConfig::default());
    let server = start_registry(Arc::clone(&logs), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    client.produce(produce("", b"before".to_vec())).await.unwrap();
    logs.set_min_free_disk(u64::MAX / 2);
    let status = client.produce(produce("", b"refused".to_vec())).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status, "limit_bytes").0, "DISK_LOW");
    assert!(status.message().contains("below --min-free-disk"), "{}", status.message());
    let read = client.consume(ConsumeRequest { offset: 0, log: String::new() }).await.unwrap();
    assert_eq!(&read.into_inner().record.unwrap().value[..], b"before");
    logs.set_min_free_disk(1);
    assert_eq!(
        client.produce(produce("", b"after".to_vec())).await.unwrap().into_inner().offset,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_refuses_appends_below_min_free_disk_and_takes_them_again_when_lowered() {
    // girok-server with --min-free-disk far above any volume: produces get DISK_LOW, reads go
    // on; restarted with the floor lowered, produces are taken again.
    let data = tempfile::tempdir().unwrap();
    let start = |floor: &'static str| {
        let env = [("GIROK_FSYNC", "never"), ("GIROK_MIN_FREE_DISK", floor)];
        tokio::task::block_in_place(|| spawn_server(data.path(), &env))
    };
    let server = start("0");
    let mut client = LogClient::connect(server.url()).await.unwrap();
    client.produce(produce("", b"kept".to_vec())).await.unwrap();
    drop((client, server));

    let server = start("1000TB");
    let mut client = LogClient::connect(server.url()).await.unwrap();
    let status = client.produce(produce("", b"refused".to_vec())).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    let (why, floor) = reason(&status, "limit_bytes");
    assert_eq!((why.as_str(), floor), ("DISK_LOW", Some("1000000000000000".into())));
    let read = client.consume(ConsumeRequest { offset: 0, log: String::new() }).await.unwrap();
    assert_eq!(&read.into_inner().record.unwrap().value[..], b"kept");
    drop((client, server));

    let server = start("1MiB");
    let mut client = LogClient::connect(server.url()).await.unwrap();
    assert_eq!(
        client.produce(produce("", b"after".to_vec())).await.unwrap().into_inner().offset,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_applies_size_retention_by_itself_after_a_roll() {
    // No explicit pass: the retention thread wakes on the roll that sealed the fifth segment
    // and deletes down to the limit, well within its once-a-second schedule.
    let dir = tempfile::tempdir().unwrap();
    let logs = open_registry(&dir, LogsConfig::default());
    logs.create("rolled", settings(Some(400), None)).unwrap();
    let server = start_registry(Arc::clone(&logs), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    for _ in 0..21 {
        client.produce(produce("rolled", vec![5; 16])).await.unwrap();
    }
    let start = Instant::now();
    while offsets(&mut client, "rolled").await.0 < 16 {
        assert!(start.elapsed() < Duration::from_secs(5), "size retention never ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(offsets(&mut client, "rolled").await, (16, 21));
}
