//! Graceful shutdown: health flips to NOT_SERVING, tails end with UNAVAILABLE, in-flight unary
//! calls finish, and whatever remains is cut off after the grace period.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::faulty::FaultyLog;
use common::{for_each_log, start_server, start_server_with};
use girok::server::ServerConfig;
use girok::storage::LogConfig;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_tails_end_with_unavailable_well_within_the_grace_period() {
    // Five caught-up tails and an open ProduceStream end with UNAVAILABLE as soon as the server
    // drains, so `run` returns long before the 10 s grace period.
    for_each_log(|logs| async move {
        let config = ServerConfig { shutdown_grace: Duration::from_secs(10), ..Default::default() };
        let server = start_server_with(logs.open_default(), config).await;
        let mut client = server.client().await;
        client.produce("one").await.unwrap();
        let mut tails = Vec::new();
        for _ in 0..5 {
            let mut tail = server.client().await.consume_stream(0).await.unwrap();
            assert_eq!(tail.next().await.unwrap().unwrap().offset, 0);
            tails.push(tail);
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let mut acks =
            client.produce_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap();
        tx.send(Bytes::from("two")).await.unwrap();
        assert_eq!(acks.next().await.unwrap(), Some(1));
        for tail in &mut tails {
            assert_eq!(tail.next().await.unwrap().unwrap().offset, 1, "caught up");
        }

        let took = server.shutdown().await;
        assert!(took < Duration::from_secs(3), "shutdown took {took:?}");
        for mut tail in tails {
            let err = tail.next().await.unwrap_err();
            assert_eq!(err.code(), Some(Code::Unavailable), "{err:?}");
        }
        let err = acks.next().await.unwrap_err();
        assert_eq!(err.code(), Some(Code::Unavailable), "{err:?}");
        drop(tx);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_reports_not_serving_while_draining() {
    // Health answers SERVING for "" and log.v1.Log, and a watcher sees NOT_SERVING once the
    // server drains; the endless watch is then cut off at the 1 s grace period.
    let config = ServerConfig { shutdown_grace: Duration::from_secs(1), ..Default::default() };
    let server = start_server_with(Arc::new(FaultyLog::new(LogConfig::default())), config).await;
    let mut health = HealthClient::new(server.channel().await);
    common::bounded("health", async {
        for service in ["", "log.v1.Log"] {
            let request = HealthCheckRequest { service: service.into() };
            let status = health.check(request).await.unwrap().into_inner().status;
            assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
        }
        let request = HealthCheckRequest { service: "log.v1.Log".into() };
        let mut watch = health.watch(request).await.unwrap().into_inner();
        let first = watch.message().await.unwrap().unwrap().status;
        assert_eq!(first, ServingStatus::Serving as i32);

        let stopping = tokio::spawn(server.shutdown());
        let next = watch.message().await.unwrap().unwrap().status;
        assert_eq!(next, ServingStatus::NotServing as i32);
        let took = stopping.await.unwrap();
        assert!(took >= Duration::from_millis(900), "the watch was cut early: {took:?}");
        assert!(took < Duration::from_secs(4), "the grace period was not enforced: {took:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_in_flight_produce_finishes_during_the_drain() {
    // A produce whose append (a slow sync) is running when shutdown starts still gets its offset.
    let log = Arc::new(FaultyLog::new(LogConfig::default()));
    *log.append_delay.lock().unwrap() = Duration::from_millis(500);
    let mut server = start_server(log.clone()).await;
    let mut client = server.client().await;
    common::bounded("in-flight produce", async {
        let produce = tokio::spawn(async move { client.produce("slow").await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.signal_shutdown();
        assert_eq!(produce.await.unwrap().unwrap(), 0);
        server.stopped().await;
    })
    .await;
}

#[tokio::test]
async fn new_calls_after_shutdown_fail() {
    // Once `run` has returned, the listener is closed: a new produce cannot be served.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let url = server.url();
        server.shutdown().await;
        let connect = girok::client::Client::connect(url).await;
        assert!(connect.is_err(), "connected to a stopped server");
    })
    .await;
}
