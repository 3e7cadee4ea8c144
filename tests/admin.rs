//! The admin listener of the shipped `girok-server` (`--admin-addr 127.0.0.1:0`): health,
//! readiness through a drain, 404s, and a `/metrics` scrape parsed and checked after real
//! produces and consumes on two logs.

mod common;

use std::time::{Duration, Instant};

use common::admin::{Admin, value};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_and_readyz_answer_200_while_serving_and_other_paths_404() {
    // Once the gRPC server prints its address, the process is healthy and soon ready; unknown paths
    // and methods other than GET are not found.
    let admin = Admin::start(&[]);
    assert_eq!(admin.get("/healthz"), (200, "ok\n".to_string()));
    // `listening on` is printed just before the server starts serving: readiness follows.
    let started = Instant::now();
    while admin.get("/readyz").0 != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "never ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(admin.get("/readyz"), (200, "ready\n".to_string()));
    assert_eq!(admin.get("/nope").0, 404);
    assert_eq!(admin.get("/metrics/extra").0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_turns_503_while_the_server_drains() {
    // With an endless health watch open and a 3 s grace period, SIGTERM starts a drain that
    // lasts until the grace period ends: /readyz says 503 (draining) then, /healthz still 200.
    let mut admin = Admin::start(&[("GIROK_SHUTDOWN_GRACE", "3s")]);
    let channel = tonic::transport::Channel::from_shared(admin.server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let request = HealthCheckRequest { service: "log.v1.Log".into() };
    let mut watch = health.watch(request).await.unwrap().into_inner();
    watch.message().await.unwrap().expect("the first status");

    let kill = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(admin.server.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let readyz = loop {
        let (status, body) = admin.get("/readyz");
        if status != 200 || started.elapsed() > Duration::from_secs(2) {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(readyz, (503, "draining\n".to_string()));
    assert_eq!(admin.get("/healthz").0, 200);
    let status = tokio::task::block_in_place(|| admin.server.terminate());
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_calls_records_and_syncs_per_log() {
    // After 3 produces to `alpha`, 2 to `beta`, one consume and one read past the end of
    // `alpha`, a scrape shows each log's offsets and counters, the calls by method and code
    // (OutOfRange included), and the syncs of --fsync always.
    let admin = Admin::start(&[("GIROK_FSYNC", "always")]);
    let client = admin.client().await;
    let (mut alpha, mut beta) = (client.log("alpha"), client.log("beta"));
    for value in ["a", "bb", "ccc"] {
        alpha.produce(value).await.unwrap();
    }
    for value in ["d", "e"] {
        beta.produce(value).await.unwrap();
    }
    assert_eq!(alpha.consume(1).await.unwrap().value, "bb");
    alpha.consume(99).await.expect_err("past the end");

    let samples = tokio::task::block_in_place(|| admin.scrape());
    let of = |name: &str, labels: &[(&str, &str)]| {
        value(&samples, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
    };
    for (log, end, appended, bytes, read) in
        [("alpha", 3.0, 3.0, 6.0, 1.0), ("beta", 2.0, 2.0, 2.0, 0.0)]
    {
        let log = [("log", log)];
        assert_eq!(of("girok_log_end_offset", &log), end, "{log:?}");
        assert_eq!(of("girok_log_start_offset", &log), 0.0);
        assert_eq!(of("girok_log_segments", &log), 1.0);
        assert!(of("girok_log_size_bytes", &log) > bytes);
        assert_eq!(of("girok_append_records_total", &log), appended);
        assert_eq!(of("girok_append_bytes_total", &log), bytes);
        assert_eq!(of("girok_read_records_total", &log), read);
        assert_eq!(of("girok_retention_deleted_segments_total", &log), 0.0);
    }
    assert_eq!(of("girok_log_end_offset", &[("log", "default")]), 0.0);
    assert!(value(&samples, "girok_log_end_offset", &[("log", "_other")]).is_none());

    let produce =
        [("grpc_type", "unary"), ("grpc_service", "log.v1.Log"), ("grpc_method", "Produce")];
    let consume =
        [("grpc_type", "unary"), ("grpc_service", "log.v1.Log"), ("grpc_method", "Consume")];
    assert_eq!(of("grpc_server_started_total", &produce), 5.0);
    assert_eq!(
        of("grpc_server_handled_total", &[produce.as_slice(), &[("grpc_code", "OK")]].concat()),
        5.0
    );
    assert_eq!(of("grpc_server_msg_received_total", &produce), 5.0);
    assert_eq!(of("grpc_server_msg_sent_total", &produce), 5.0);
    assert_eq!(
        of("grpc_server_handled_total", &[consume.as_slice(), &[("grpc_code", "OK")]].concat()),
        1.0
    );
    assert_eq!(
        of(
            "grpc_server_handled_total",
            &[consume.as_slice(), &[("grpc_code", "OutOfRange")]].concat()
        ),
        1.0
    );
    assert_eq!(of("grpc_server_msg_sent_total", &consume), 1.0, "no message with an error");
    assert_eq!(of("grpc_server_handling_seconds_count", &produce), 5.0);
    assert_eq!(
        of(
            "grpc_server_handling_seconds_bucket",
            &[produce.as_slice(), &[("le", "+Inf")]].concat()
        ),
        5.0
    );

    assert!(of("girok_fsync_seconds_count", &[]) >= 5.0, "a sync per produce under always");
    assert!(of("girok_fsync_seconds_sum", &[]) > 0.0);
    assert_eq!(of("girok_append_batch_records_count", &[]), 5.0);
    assert_eq!(of("girok_append_batch_records_bucket", &[("le", "1.0")]), 5.0);
    assert_eq!(of("girok_buffered_bytes", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_max_logs_labels_the_busiest_and_sums_the_rest_under_other() {
    // With --metrics-max-logs 1, the busiest log keeps its label and the others (`quiet` with
    // one record, `default` with none) are summed under log="_other".
    let admin = Admin::start(&[("GIROK_METRICS_MAX_LOGS", "1")]);
    let client = admin.client().await;
    let (mut busy, mut quiet) = (client.log("busy"), client.log("quiet"));
    for _ in 0..4 {
        busy.produce("b").await.unwrap();
    }
    quiet.produce("q").await.unwrap();

    let samples = tokio::task::block_in_place(|| admin.scrape());
    let of = |log: &str| value(&samples, "girok_log_end_offset", &[("log", log)]);
    assert_eq!(of("busy"), Some(4.0));
    assert_eq!(of("_other"), Some(1.0));
    assert_eq!(of("quiet"), None);
    assert_eq!(of("default"), None);
    assert_eq!(value(&samples, "girok_append_records_total", &[("log", "_other")]), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_never_go_back_as_logs_get_busier_and_are_deleted() {
    // With --metrics-max-logs 1: the first log labelled keeps its label while an `_other`
    // member becomes busier, a third log comes and is deleted (its last appends still counted);
    // across the scrapes every `_total` series only grows.
    let admin = Admin::start(&[("GIROK_METRICS_MAX_LOGS", "1")]);
    let mut client = admin.client().await;
    let (mut busy, mut quiet) = (client.log("busy"), client.log("quiet"));
    let mut scrapes = Vec::new();
    let scrape = || tokio::task::block_in_place(|| admin.scrape());
    for _ in 0..4 {
        busy.produce("b").await.unwrap();
    }
    quiet.produce("q").await.unwrap();
    for _ in 0..3 {
        quiet.consume(0).await.unwrap();
    }
    scrapes.push(scrape());
    for _ in 0..10 {
        quiet.consume(0).await.unwrap();
    }
    scrapes.push(scrape());
    let mut third = client.log("third");
    third.produce("t").await.unwrap();
    scrapes.push(scrape());
    for _ in 0..3 {
        third.produce("t").await.unwrap();
    }
    client.delete_log("third").await.unwrap();
    scrapes.push(scrape());
    scrapes.push(scrape());

    let last = scrapes.last().unwrap();
    assert_eq!(value(last, "girok_log_end_offset", &[("log", "busy")]), Some(4.0));
    assert_eq!(value(last, "girok_log_end_offset", &[("log", "quiet")]), None);
    let other = [("log", "_other")];
    assert_eq!(value(last, "girok_append_records_total", &other), Some(1.0 + 4.0));
    assert_eq!(value(last, "girok_read_records_total", &other), Some(13.0));
    assert_eq!(value(last, "girok_log_end_offset", &other), Some(1.0), "quiet's, summed");
    for (i, pair) in scrapes.windows(2).enumerate() {
        for before in pair[0].iter().filter(|s| s.name.ends_with("_total")) {
            let labels: Vec<_> =
                before.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let after = value(&pair[1], &before.name, &labels);
            assert!(
                after.is_some_and(|after| after >= before.value),
                "{} {labels:?}: {} then {after:?} (scrapes {i} and {})",
                before.name,
                before.value,
                i + 1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_streams_are_gauged_by_kind_while_they_last() {
    // An open tail counts in girok_open_streams{kind="consume"} and stops counting once it ends.
    let admin = Admin::start(&[]);
    let mut client = admin.client().await;
    client.produce("x").await.unwrap();
    let mut tail = client.consume_stream(0).await.unwrap();
    assert_eq!(tail.next().await.unwrap().unwrap().offset, 0);
    let samples = tokio::task::block_in_place(|| admin.scrape());
    assert_eq!(value(&samples, "girok_open_streams", &[("kind", "consume")]), Some(1.0));
    drop(tail);
    drop(client);
    let started = Instant::now();
    loop {
        let samples = tokio::task::block_in_place(|| admin.scrape());
        if value(&samples, "girok_open_streams", &[("kind", "consume")]) == Some(0.0) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the stream still counts");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_while_the_server_has_not_started() {
    // An admin listener whose server is still starting (its logs opening) answers /readyz with
    // 503 and /metrics without per-log series, while /healthz says the process is up.
    use girok::admin::{self, Admin as Endpoints};
    use girok::server::{Metrics, Readiness};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let endpoints = Endpoints::new(Metrics::default(), Readiness::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(admin::serve(listener, endpoints, async {
        let _ = stopped.await;
    }));
    let get = |path: &'static str| {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || common::admin::http_get(&addr, path))
    };
    assert_eq!(get("/readyz").await.unwrap(), (503, "starting\n".to_string()));
    assert_eq!(get("/healthz").await.unwrap().0, 200);
    let (status, metrics) = get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("girok_fsync_seconds_count 0"), "{metrics}");
    assert!(!metrics.contains("girok_log_end_offset"), "{metrics}");
    drop(stop);
    served.await.unwrap();
}
