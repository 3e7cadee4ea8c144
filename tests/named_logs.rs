//! Named logs end to end, through the generated client against a server over a data directory:
//! isolation, auto-create, names, the admin RPCs, deletion under live streams, the log limit, the
//! order of errors, and a restart that keeps every log with its settings.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{bounded, start_registry};
use girok::api::v1::log_client::LogClient;
use girok::api::v1::{
    ConsumeRequest, CreateLogRequest, DeleteLogRequest, ListLogsRequest, LogSettings,
    OffsetsRequest, ProduceRequest, Record, UpdateLogRequest,
};
use girok::logs::{Logs, LogsConfig};
use girok::server::ServerConfig;
use girok::storage::{DiskConfig, FsyncPolicy};
use tempfile::TempDir;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A server over a registry in a temporary data directory.
struct Server {
    server: common::TestServer,
    dir: TempDir,
}

async fn serve(config: LogsConfig) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = open_registry(&dir, config);
    Server { server: start_registry(logs, ServerConfig::default()).await, dir }
}

fn open_registry(dir: &TempDir, config: LogsConfig) -> Arc<Logs> {
    let disk = DiskConfig { fsync: FsyncPolicy::Never, ..DiskConfig::default() };
    Arc::new(Logs::open(dir.path(), disk, config).expect("open registry"))
}

impl Server {
    async fn client(&self) -> LogClient<Channel> {
        LogClient::new(self.server.channel().await)
    }
}

fn produce(log: &str, value: &str) -> ProduceRequest {
    ProduceRequest {
        record: Some(Record { value: value.as_bytes().to_vec().into(), ..Record::default() }),
        log: log.into(),
    }
}

fn consume(log: &str, offset: u64) -> ConsumeRequest {
    ConsumeRequest { offset, log: log.into() }
}

async fn offsets(client: &mut LogClient<Channel>, log: &str) -> Result<(u64, u64), Status> {
    let r = client
        .offsets(OffsetsRequest { log: log.into(), ..Default::default() })
        .await?
        .into_inner();
    Ok((r.lowest_offset, r.next_offset))
}

async fn create(client: &mut LogClient<Channel>, name: &str) -> Result<(), Status> {
    let request = CreateLogRequest { name: name.into(), settings: None };
    client.create_log(request).await.map(drop)
}

/// The `ErrorInfo` reason and one metadata value of a status.
fn reason(status: &Status, key: &str) -> (String, Option<String>) {
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.domain, "girok");
    (info.reason, info.metadata.get(key).cloned())
}

/// The field of a status's one `BadRequest` violation.
fn violated_field(status: &Status) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let bad = status.get_error_details().bad_request().cloned().expect("BadRequest");
    bad.field_violations[0].field.clone()
}

fn assert_log_not_found(status: &Status, log: &str) {
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(reason(status, "log"), ("LOG_NOT_FOUND".into(), Some(log.into())));
}

#[tokio::test]
async fn logs_are_isolated_with_offsets_of_their_own() {
    // Appends to one log never show in another, and each log counts its offsets from 0.
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    bounded("isolation", async {
        for i in 0..3 {
            let offset = client.produce(produce("orders", &format!("o{i}"))).await.unwrap();
            assert_eq!(offset.into_inner().offset, i);
        }
        assert_eq!(client.produce(produce("payments", "p0")).await.unwrap().into_inner().offset, 0);
        assert_eq!(client.produce(produce("", "d0")).await.unwrap().into_inner().offset, 0);
        assert_eq!(offsets(&mut client, "orders").await.unwrap(), (0, 3));
        assert_eq!(offsets(&mut client, "payments").await.unwrap(), (0, 1));
        assert_eq!(offsets(&mut client, "").await.unwrap(), (0, 1));
        assert_eq!(offsets(&mut client, "default").await.unwrap(), (0, 1), "empty is default");
        let read = |log: &'static str, offset| consume(log, offset);
        let value = |r: tonic::Response<girok::api::v1::ConsumeResponse>| {
            String::from_utf8(r.into_inner().record.unwrap().value.to_vec()).unwrap()
        };
        assert_eq!(value(client.consume(read("orders", 0)).await.unwrap()), "o0");
        assert_eq!(value(client.consume(read("payments", 0)).await.unwrap()), "p0");
        assert_eq!(value(client.consume(read("default", 0)).await.unwrap()), "d0");
        let past = client.consume(read("payments", 1)).await.unwrap_err();
        assert_eq!(past.code(), Code::OutOfRange);

        let mut tail = client.consume_stream(read("orders", 1)).await.unwrap().into_inner();
        client.produce(produce("payments", "p1")).await.unwrap();
        client.produce(produce("orders", "o3")).await.unwrap();
        for expected in ["o1", "o2", "o3"] {
            let record = tail.message().await.unwrap().unwrap().record.unwrap();
            assert_eq!(record.value, expected.as_bytes());
        }
    })
    .await;
}

#[tokio::test]
async fn produce_creates_an_unknown_log_only_while_auto_create_is_on() {
    // Auto-create (the default) makes a produce create its log; without it the produce, and
    // every read of an unknown log, gets NOT_FOUND with LOG_NOT_FOUND.
    let on = serve(LogsConfig::default()).await;
    let mut client = on.client().await;
    bounded("auto-create on", async {
        client.produce(produce("fresh", "v")).await.unwrap();
        assert_eq!(offsets(&mut client, "fresh").await.unwrap(), (0, 1));
        let stream = tokio_stream::iter(vec![produce("streamed", "a"), produce("", "b")]);
        let mut acks = client.produce_stream(stream).await.unwrap().into_inner();
        assert_eq!(acks.message().await.unwrap().unwrap().offset, 0);
        assert_eq!(acks.message().await.unwrap().unwrap().offset, 1);
        assert_eq!(offsets(&mut client, "streamed").await.unwrap(), (0, 2));
    })
    .await;

    let off = serve(LogsConfig { auto_create: false, ..LogsConfig::default() }).await;
    let mut client = off.client().await;
    bounded("auto-create off", async {
        assert_log_not_found(&client.produce(produce("fresh", "v")).await.unwrap_err(), "fresh");
        let stream = tokio_stream::iter(vec![produce("fresh", "v")]);
        let mut acks = client.produce_stream(stream).await.unwrap().into_inner();
        assert_log_not_found(&acks.message().await.unwrap_err(), "fresh");
        assert_log_not_found(&client.consume(consume("fresh", 0)).await.unwrap_err(), "fresh");
        let tail = client.consume_stream(consume("fresh", 0)).await;
        let status = match tail {
            Err(status) => status,
            Ok(stream) => stream.into_inner().message().await.unwrap_err(),
        };
        assert_log_not_found(&status, "fresh");
        assert_log_not_found(&offsets(&mut client, "fresh").await.unwrap_err(), "fresh");
        assert_eq!(client.produce(produce("", "to default")).await.unwrap().into_inner().offset, 0);
        create(&mut client, "made").await.unwrap();
        client.produce(produce("made", "v")).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_name_other_is_reserved_for_the_metrics() {
    // `_other` names the metrics' sum of unlabelled logs: neither a produce nor a CreateLog can
    // make a log of that name, and the reason says why; `_others` is an ordinary name.
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    bounded("reserved name", async {
        let status = create(&mut client, "_other").await.unwrap_err();
        assert_eq!(violated_field(&status), "name");
        assert!(status.message().contains("reserved for the metrics"), "{status:?}");
        let status = client.produce(produce("_other", "v")).await.unwrap_err();
        assert_eq!(violated_field(&status), "log");
        assert!(status.message().contains("reserved for the metrics"), "{status:?}");
        create(&mut client, "_others").await.unwrap();
        let names: Vec<String> = client
            .list_logs(ListLogsRequest {})
            .await
            .unwrap()
            .into_inner()
            .logs
            .into_iter()
            .map(|log| log.name)
            .collect();
        assert_eq!(names, ["_others", "default"]);
    })
    .await;
}

#[tokio::test]
async fn invalid_names_are_invalid_arguments_on_the_field_that_holds_them() {
    // A bad `log` is a BadRequest violation on `log`; a bad or empty admin `name` one on `name`.
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    let long = "x".repeat(201);
    bounded("invalid names", async {
        for bad in [".", "..", "a/b", "sp ace", "ünï", long.as_str()] {
            let status = client.produce(produce(bad, "v")).await.unwrap_err();
            assert_eq!(violated_field(&status), "log", "{bad:?}");
            let status = client.consume(consume(bad, 0)).await.unwrap_err();
            assert_eq!(violated_field(&status), "log", "{bad:?}");
            let status = offsets(&mut client, bad).await.unwrap_err();
            assert_eq!(violated_field(&status), "log", "{bad:?}");
            let status = create(&mut client, bad).await.unwrap_err();
            assert_eq!(violated_field(&status), "name", "{bad:?}");
        }
        let status = create(&mut client, "").await.unwrap_err();
        assert_eq!(violated_field(&status), "name");
        let delete = client.delete_log(DeleteLogRequest { name: String::new() }).await;
        assert_eq!(violated_field(&delete.unwrap_err()), "name");
        let update = UpdateLogRequest { name: String::new(), settings: None };
        assert_eq!(violated_field(&client.update_log(update).await.unwrap_err()), "name");
        // 200 characters of the alphabet, dots included, make a valid name.
        let longest = format!("a.{}", "-_9Z".repeat(49) + "..");
        assert_eq!(longest.len(), 200);
        create(&mut client, &longest).await.unwrap();
        client.produce(produce(&longest, "v")).await.unwrap();
        let names: Vec<String> = list(&mut client).await.into_iter().map(|l| l.name).collect();
        assert!(names.contains(&longest), "{names:?}");
    })
    .await;
}

async fn list(client: &mut LogClient<Channel>) -> Vec<girok::api::v1::LogInfo> {
    client.list_logs(ListLogsRequest {}).await.unwrap().into_inner().logs
}

#[tokio::test]
async fn admin_calls_create_list_update_and_delete_logs() {
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    bounded("admin round trip", async {
        let settings = LogSettings { retention_bytes: Some(1 << 20), ..LogSettings::default() };
        let request = CreateLogRequest { name: "orders".into(), settings: Some(settings) };
        let created = client.create_log(request).await.unwrap().into_inner().log.unwrap();
        assert_eq!(
            (created.name.as_str(), created.lowest_offset, created.next_offset),
            ("orders", 0, 0)
        );
        assert_eq!(created.settings, Some(settings), "absent settings stay absent");
        assert!(created.created_ms > 1_600_000_000_000, "{}", created.created_ms);

        let again = create(&mut client, "orders").await.unwrap_err();
        assert_eq!(again.code(), Code::AlreadyExists);
        assert_eq!(reason(&again, "log"), ("LOG_EXISTS".into(), Some("orders".into())));

        for value in ["a", "bb", "ccc"] {
            client.produce(produce("orders", value)).await.unwrap();
        }
        create(&mut client, "Zeta").await.unwrap();
        create(&mut client, "alpha").await.unwrap();
        let logs = list(&mut client).await;
        let names: Vec<&str> = logs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Zeta", "alpha", "default", "orders"], "sorted by bytes");
        let orders = logs.iter().find(|l| l.name == "orders").unwrap();
        assert_eq!((orders.lowest_offset, orders.next_offset), (0, 3));
        assert!(orders.size_bytes >= 6, "record bytes held: {}", orders.size_bytes);
        assert_eq!(logs[0].settings, Some(LogSettings::default()), "nothing given, nothing stored");

        let change = LogSettings { retention_ms: Some(60_000), ..LogSettings::default() };
        let update = UpdateLogRequest { name: "orders".into(), settings: Some(change) };
        let updated = client.update_log(update).await.unwrap().into_inner().log.unwrap();
        let merged = LogSettings {
            retention_bytes: Some(1 << 20),
            retention_ms: Some(60_000),
            segment_bytes: None,
        };
        assert_eq!(updated.settings, Some(merged), "present replaced, absent kept");
        assert_eq!(updated.created_ms, created.created_ms);

        client.delete_log(DeleteLogRequest { name: "orders".into() }).await.unwrap();
        let names: Vec<String> = list(&mut client).await.into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["Zeta", "alpha", "default"]);
        assert!(!server.dir.path().join("logs/orders").exists(), "its files are gone");
        assert_log_not_found(&offsets(&mut client, "orders").await.unwrap_err(), "orders");
        let gone = client.delete_log(DeleteLogRequest { name: "orders".into() }).await;
        assert_log_not_found(&gone.unwrap_err(), "orders");
        let update = UpdateLogRequest { name: "orders".into(), settings: None };
        assert_log_not_found(&client.update_log(update).await.unwrap_err(), "orders");

        let default = client.delete_log(DeleteLogRequest { name: "default".into() }).await;
        let default = default.unwrap_err();
        assert_eq!(default.code(), Code::FailedPrecondition);
        assert_eq!(reason(&default, "log").0, "DEFAULT_LOG");

        // A re-created log starts again at 0, with a later creation time.
        let request = CreateLogRequest { name: "orders".into(), settings: None };
        let reborn = client.create_log(request).await.unwrap().into_inner().log.unwrap();
        assert_eq!((reborn.next_offset, reborn.settings), (0, Some(LogSettings::default())));
        assert!(reborn.created_ms >= created.created_ms);
        assert_eq!(client.produce(produce("orders", "new")).await.unwrap().into_inner().offset, 0);
    })
    .await;
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused() {
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    bounded("bad settings", async {
        let tiny = LogSettings { segment_bytes: Some(1), ..LogSettings::default() };
        let request = CreateLogRequest { name: "tiny".into(), settings: Some(tiny) };
        let status = client.create_log(request).await.unwrap_err();
        assert_eq!(violated_field(&status), "settings.segment_bytes");
        let request = UpdateLogRequest { name: "missing".into(), settings: Some(tiny) };
        let status = client.update_log(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "the request's error comes first");
    })
    .await;
}

#[tokio::test]
async fn the_log_limit_counts_default_and_auto_created_logs() {
    let server = serve(LogsConfig { max_logs: 3, ..LogsConfig::default() }).await;
    let mut client = server.client().await;
    bounded("log limit", async {
        create(&mut client, "one").await.unwrap();
        client.produce(produce("two", "auto-created")).await.unwrap();
        let over = create(&mut client, "three").await.unwrap_err();
        assert_eq!(over.code(), Code::ResourceExhausted);
        assert_eq!(reason(&over, "limit"), ("LOG_LIMIT".into(), Some("3".into())));
        let auto = client.produce(produce("three", "v")).await.unwrap_err();
        assert_eq!(reason(&auto, "limit").0, "LOG_LIMIT");
        client.delete_log(DeleteLogRequest { name: "one".into() }).await.unwrap();
        create(&mut client, "three").await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn deleting_a_log_ends_its_tails_and_producers_with_not_found() {
    // A live tail, an idle ProduceStream and a busy one on the log all end with NOT_FOUND; the
    // neighbours go on.
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    bounded("delete under streams", async {
        client.produce(produce("doomed", "first")).await.unwrap();
        client.produce(produce("kept", "first")).await.unwrap();
        let mut tail = client.consume_stream(consume("doomed", 0)).await.unwrap().into_inner();
        assert!(tail.message().await.unwrap().is_some());
        let mut kept_tail = client.consume_stream(consume("kept", 0)).await.unwrap().into_inner();
        assert!(kept_tail.message().await.unwrap().is_some());

        let (idle_tx, idle_rx) = tokio::sync::mpsc::channel(1);
        idle_tx.send(produce("doomed", "second")).await.unwrap();
        let idle = tokio_stream::wrappers::ReceiverStream::new(idle_rx);
        let mut idle_acks = client.produce_stream(idle).await.unwrap().into_inner();
        assert_eq!(idle_acks.message().await.unwrap().unwrap().offset, 1);

        let busy = {
            let mut client = server.client().await;
            tokio::spawn(async move {
                let values = tokio_stream::iter((0..).map(|i| produce("", &format!("{i}"))));
                let first = tokio_stream::once(produce("doomed", "start"));
                let stream = tokio_stream::StreamExt::chain(first, values);
                let mut acks = client.produce_stream(stream).await?.into_inner();
                loop {
                    if acks.message().await?.is_none() {
                        return Ok::<(), Status>(());
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.delete_log(DeleteLogRequest { name: "doomed".into() }).await.unwrap();

        let ended = loop {
            match tail.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the tail ended without a status"),
                Err(status) => break status,
            }
        };
        assert_log_not_found(&ended, "doomed");
        assert_log_not_found(&idle_acks.message().await.unwrap_err(), "doomed");
        assert_log_not_found(&busy.await.unwrap().unwrap_err(), "doomed");
        drop(idle_tx);
        client.produce(produce("kept", "second")).await.unwrap();
        let record = kept_tail.message().await.unwrap().unwrap().record.unwrap();
        assert_eq!(record.value, "second".as_bytes());
    })
    .await;
}

#[tokio::test]
async fn a_produce_stream_stays_on_the_log_of_its_first_request() {
    // Later requests may leave `log` empty or repeat it; one naming another log ends the stream
    // with INVALID_ARGUMENT after the earlier records are acknowledged.
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    bounded("one log per stream", async {
        let requests = vec![
            produce("orders", "a"),
            produce("", "b"),
            produce("orders", "c"),
            produce("payments", "d"),
            produce("orders", "e"),
        ];
        let mut acks =
            client.produce_stream(tokio_stream::iter(requests)).await.unwrap().into_inner();
        for expected in 0..3 {
            assert_eq!(acks.message().await.unwrap().unwrap().offset, expected);
        }
        let status = acks.message().await.unwrap_err();
        assert_eq!(violated_field(&status), "log");
        assert_eq!(offsets(&mut client, "orders").await.unwrap(), (0, 3));
        assert_log_not_found(&offsets(&mut client, "payments").await.unwrap_err(), "payments");
        assert_eq!(offsets(&mut client, "default").await.unwrap(), (0, 0));
    })
    .await;
}

#[tokio::test]
async fn the_request_error_comes_before_the_log_error() {
    // INVALID_ARGUMENT (the request), then NOT_FOUND (the log), then the call's own outcome.
    let server = serve(LogsConfig { auto_create: false, ..LogsConfig::default() }).await;
    let mut client = server.client().await;
    bounded("error order", async {
        let no_record = ProduceRequest { record: None, log: "missing".into() };
        let status = client.produce(no_record).await.unwrap_err();
        assert_eq!(violated_field(&status), "record");
        let status = client.consume(consume("missing", 99)).await.unwrap_err();
        assert_log_not_found(&status, "missing");
        let status = client.consume(consume("default", 99)).await.unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange);
    })
    .await;
}

#[tokio::test]
async fn a_restart_keeps_every_log_with_its_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings =
        LogSettings { segment_bytes: Some(4096), retention_ms: Some(0), ..LogSettings::default() };
    let before = {
        let server =
            start_registry(open_registry(&dir, LogsConfig::default()), ServerConfig::default())
                .await;
        let mut client = LogClient::new(server.channel().await);
        let before = bounded("first run", async {
            let request = CreateLogRequest { name: "orders".into(), settings: Some(settings) };
            client.create_log(request).await.unwrap();
            for i in 0..100 {
                client.produce(produce("orders", &format!("{i:0>100}"))).await.unwrap();
            }
            client.produce(produce("auto", "v")).await.unwrap();
            create(&mut client, "deleted").await.unwrap();
            client.delete_log(DeleteLogRequest { name: "deleted".into() }).await.unwrap();
            list(&mut client).await
        })
        .await;
        let logs = Arc::clone(&server.logs);
        server.shutdown().await;
        logs.close().unwrap();
        before
    };
    let server =
        start_registry(open_registry(&dir, LogsConfig::default()), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    bounded("second run", async {
        let after = list(&mut client).await;
        assert_eq!(after, before);
        let names: Vec<&str> = after.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["auto", "default", "orders"]);
        let orders = after.iter().find(|l| l.name == "orders").unwrap();
        assert_eq!((orders.next_offset, orders.settings), (100, Some(settings)));
        assert_eq!(
            client.produce(produce("orders", "more")).await.unwrap().into_inner().offset,
            100
        );
    })
    .await;
}

#[tokio::test]
async fn the_binary_takes_its_log_flags() {
    // `--auto-create-logs=false` and `--max-logs` reach the registry of the shipped server.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = common::binary::server_command(dir.path(), &[]);
    command.args(["--auto-create-logs=false", "--max-logs", "2"]);
    let server = common::binary::spawn(command, std::process::Stdio::null());
    let mut client = LogClient::connect(server.url()).await.expect("connect");
    bounded("flags", async {
        assert_log_not_found(&client.produce(produce("fresh", "v")).await.unwrap_err(), "fresh");
        create(&mut client, "one").await.unwrap();
        let over = create(&mut client, "two").await.unwrap_err();
        assert_eq!(reason(&over, "limit"), ("LOG_LIMIT".into(), Some("2".into())));
    })
    .await;
    let env = [("GIROK_AUTO_CREATE_LOGS", "true")];
    drop(server);
    let server = common::binary::spawn_server(dir.path(), &env);
    let mut client = LogClient::connect(server.url()).await.expect("connect");
    bounded("env", async {
        client.produce(produce("fresh", "v")).await.unwrap();
        let names: Vec<String> = list(&mut client).await.into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["default", "fresh", "one"], "kept across the restart");
    })
    .await;
}

#[tokio::test]
async fn a_log_that_could_not_be_opened_is_unavailable_but_listed_and_deletable() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let logs = open_registry(&dir, LogsConfig::default());
        logs.create("broken", Default::default()).unwrap().log().append("v".into()).unwrap();
        logs.close().unwrap();
    }
    std::fs::write(
        dir.path().join("logs/broken/00000000000000000000.store"),
        b"garbage, and more than a header of it",
    )
    .unwrap();
    let server =
        start_registry(open_registry(&dir, LogsConfig::default()), ServerConfig::default()).await;
    let mut client = LogClient::new(server.channel().await);
    bounded("a broken log", async {
        for status in [
            client.produce(produce("broken", "v")).await.unwrap_err(),
            client.consume(consume("broken", 0)).await.unwrap_err(),
            offsets(&mut client, "broken").await.unwrap_err(),
        ] {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(!status.message().contains('/'), "no paths to clients: {status:?}");
        }
        let names: Vec<String> = list(&mut client).await.into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["broken", "default"]);
        client.delete_log(DeleteLogRequest { name: "broken".into() }).await.unwrap();
        assert_eq!(client.produce(produce("broken", "anew")).await.unwrap().into_inner().offset, 0);
    })
    .await;
}

#[tokio::test]
async fn an_updated_segment_size_takes_effect_at_once() {
    // UpdateLog's segment_bytes applies to the very next appends, without a restart: records
    // that fitted one segment now roll a new one each.
    let server = serve(LogsConfig::default()).await;
    let mut client = server.client().await;
    let stores = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("logs/orders"))
            .unwrap()
            .filter(|entry| {
                entry.as_ref().unwrap().path().extension().is_some_and(|e| e == "store")
            })
            .count()
    };
    bounded("segment_bytes update", async {
        for _ in 0..5 {
            client.produce(produce("orders", &"x".repeat(100))).await.unwrap();
        }
        assert_eq!(stores(server.dir.path()), 1);
        let small = LogSettings { segment_bytes: Some(64), ..LogSettings::default() };
        let update = UpdateLogRequest { name: "orders".into(), settings: Some(small) };
        client.update_log(update).await.unwrap();
        for _ in 0..3 {
            client.produce(produce("orders", &"x".repeat(100))).await.unwrap();
        }
        assert_eq!(stores(server.dir.path()), 4, "one segment per record once rolled at 64 bytes");
    })
    .await;
}
