//! The cluster client against a real single-node server, which `GetServers` answers as a
//! cluster of one: discovery from seeds (bare or with a scheme, a dead one first), writes and
//! reads through it, a tail that resumes when its server restarts, membership calls refused
//! outside a cluster; and `girok servers` and a seed list from the command line.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::binary::{PROCESS_TIMEOUT, wait_with_timeout};
use common::{bounded, start_server};
use girok::api::errors::reason;
use girok::client::{ClientError, ClusterClient, Connect, LogSettings, Retry, ServerInfo};
use girok::server::{self, ServerConfig};
use girok::storage::{CommitLog, DiskLog, LogConfig, MemoryLog};
use tokio::net::TcpListener;
use tonic::Code;
use tonic_types::StatusExt;

/// A log of the in-memory implementation.
fn memory_log() -> Arc<dyn CommitLog> {
    Arc::new(MemoryLog::new(LogConfig::default()))
}

/// A cluster client seeded with `seeds`, plain options.
async fn cluster(seeds: &str) -> ClusterClient {
    ClusterClient::connect(seeds, Connect::new("")).await.expect("connect the cluster client")
}

#[tokio::test]
async fn a_single_node_answers_get_servers_with_itself_as_leader_and_voter() {
    // A cluster client must work unchanged against one server: it is the leader.
    let server = start_server(memory_log()).await;
    bounded("servers", async {
        let client = cluster(&server.url()).await;
        let servers = client.servers().await.expect("servers");
        let me = ServerInfo { id: 1, addr: server.addr.to_string(), is_leader: true, voter: true };
        assert_eq!(client.known_servers(), servers);
        assert_eq!(servers, [me]);
    })
    .await;
}

#[tokio::test]
async fn writes_and_reads_go_through_the_cluster_client() {
    // Produce, consume, both offsets, a tail, and the log admin calls, all through one client.
    let server = start_server(memory_log()).await;
    bounded("writes and reads", async {
        let client = cluster(&server.addr.to_string()).await;
        let orders = client.log("orders");
        for (expected, value) in ["a", "b", "c"].into_iter().enumerate() {
            assert_eq!(orders.produce(value).await.expect("produce"), expected as u64);
        }
        assert_eq!(&orders.consume(1).await.expect("consume").value[..], b"b");
        assert_eq!(orders.offsets().await.expect("offsets"), 0..3);
        assert_eq!(orders.offsets_linearizable().await.expect("linearizable offsets"), 0..3);
        let mut tail = orders.consume_stream(1).await.expect("tail");
        let next = tail.next().await.expect("tail").expect("a record");
        assert_eq!((next.offset, &next.value[..]), (1, &b"b"[..]));
        orders.produce("d").await.expect("produce");
        assert_eq!(tail.next().await.expect("tail").expect("a record").offset, 2);
        assert_eq!(tail.next().await.expect("tail").expect("a record").offset, 3);
        assert_eq!(tail.next_offset(), 4);

        assert_eq!(client.produce("x").await.expect("produce to default"), 0);
        assert_eq!(client.offsets().await.expect("default offsets"), 0..1);
        let settings = LogSettings { retention_bytes: Some(1 << 20), ..LogSettings::default() };
        let created = client.create_log("events", settings).await.expect("create");
        assert_eq!(created.name, "events");
        let names: Vec<String> =
            client.list_logs().await.expect("list").into_iter().map(|log| log.name).collect();
        assert_eq!(names, ["default", "events", "orders"]);
        let exists = client.create_log("events", settings).await.expect_err("a taken name");
        assert!(matches!(exists, ClientError::LogExists { .. }), "{exists:?}");
        client.delete_log("events").await.expect("delete");
        let past = orders.consume(9).await.expect_err("past the end");
        assert!(matches!(past, ClientError::OffsetOutOfRange { next_offset: 4, .. }), "{past:?}");
    })
    .await;
}

#[tokio::test]
async fn a_dead_seed_is_skipped_and_schemes_are_shared() {
    // The first seed refuses connections; the second, bare, takes the first's scheme.
    let server = start_server(memory_log()).await;
    bounded("seeds", async {
        let seeds = format!("http://127.0.0.1:1, {}", server.addr);
        let client = cluster(&seeds).await;
        assert_eq!(client.produce("a").await.expect("produce"), 0);
        let err = ClusterClient::connect("http://a:1,https://b:2", Connect::new(""))
            .await
            .expect_err("mixed schemes");
        assert!(matches!(err, ClientError::Address { .. }), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn no_reachable_seed_fails_with_the_connection_error_within_the_budget() {
    // Connecting tries each seed once; it does not wait out the budget.
    let retry = Retry { budget: Duration::from_secs(2), ..Retry::default() };
    let started = std::time::Instant::now();
    let err = ClusterClient::connect_with("127.0.0.1:1,127.0.0.1:2", Connect::new(""), retry)
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
}

#[tokio::test]
async fn membership_changes_outside_a_cluster_fail_at_once_with_not_a_cluster() {
    // FAILED_PRECONDITION is an answer, not a failure to retry.
    let server = start_server(memory_log()).await;
    bounded("membership", async {
        let client = cluster(&server.url()).await;
        for err in [
            client.add_server(2, "127.0.0.1:9").await.expect_err("not a cluster"),
            client.remove_server(2).await.expect_err("not a cluster"),
        ] {
            assert_eq!(err.code(), Some(Code::FailedPrecondition), "{err:?}");
            let ClientError::Status(status) = &err else { panic!("{err:?}") };
            let info = status.get_error_details().error_info().cloned().expect("an ErrorInfo");
            assert_eq!(info.reason, reason::NOT_A_CLUSTER);
        }
    })
    .await;
}

/// Serves the log directory `dir` on `addr` (port 0 for a new one) until `stop` fires.
async fn serve_dir(
    dir: &std::path::Path,
    addr: SocketAddr,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    // The stopped server's connection tasks may still hold the directory's lock for a moment.
    let mut tries = 0;
    let log: Arc<dyn CommitLog> = loop {
        match DiskLog::open(dir, LogConfig::default().into()) {
            Ok(log) => break Arc::new(log),
            Err(err) if tries < 250 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = err;
            }
            Err(err) => panic!("open the disk log: {err}"),
        }
    };
    let logs = common::serving(&log);
    let listener = TcpListener::bind(addr).await.expect("bind");
    let bound = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        server::run(listener, logs, ServerConfig::default(), shutdown).await.expect("serve");
    });
    (bound, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tail_resumes_after_its_server_restarts_delivering_each_record_once() {
    // The tail's server goes away mid-tail and comes back on the same address: the tail
    // resumes from the last delivered offset + 1, and the producer's connection-refused
    // attempts are retried (nothing was sent).
    let dir = tempfile::tempdir().expect("temp dir");
    bounded("tail across a restart", async {
        let (addr, stop, task) = serve_dir(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
        let client = cluster(&addr.to_string()).await;
        for value in ["a", "b", "c"] {
            client.produce(value).await.expect("produce");
        }
        let mut tail = client.consume_stream(0).await.expect("tail");
        for expected in 0..3 {
            assert_eq!(tail.next().await.expect("tail").expect("a record").offset, expected);
        }
        let _ = stop.send(());
        task.await.expect("server task");
        let (_, stop, _task) = serve_dir(dir.path(), addr).await;
        for value in ["d", "e"] {
            client.produce(value).await.expect("produce after the restart");
        }
        let delivered: Vec<(u64, Vec<u8>)> = {
            let mut delivered = Vec::new();
            for _ in 0..2 {
                let record = tail.next().await.expect("resumed tail").expect("a record");
                delivered.push((record.offset, record.value.to_vec()));
            }
            delivered
        };
        assert_eq!(delivered, [(3, b"d".to_vec()), (4, b"e".to_vec())]);
        let _ = stop.send(());
    })
    .await;
}

/// Runs `girok ARGS` with `GIROK_ADDR=addr` and no other `GIROK_*` setting.
async fn girok(addr: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_girok"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in
        ["GIROK_LOG", "GIROK_COMPRESS", "GIROK_CA", "GIROK_CERT", "GIROK_KEY", "GIROK_TOKEN"]
    {
        command.env_remove(name);
    }
    command.env("GIROK_ADDR", addr);
    let child = command.spawn().expect("spawn girok");
    tokio::task::spawn_blocking(move || wait_with_timeout(child, PROCESS_TIMEOUT))
        .await
        .expect("girok task")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn girok_servers_prints_the_node_and_a_seed_list_reaches_it() {
    // `GIROK_ADDR=a,b` with a dead first seed; `servers` as a table and as JSON lines.
    let server = start_server(memory_log()).await;
    let seeds = format!("127.0.0.1:1,{}", server.addr);
    let produced = girok(&seeds, &["produce", "a", "b"]).await;
    assert!(produced.status.success(), "{}", String::from_utf8_lossy(&produced.stderr));
    assert_eq!(stdout(&produced), "0\n1\n");
    assert_eq!(stdout(&girok(&seeds, &["consume", "1"]).await), "b\n");

    let table = girok(&seeds, &["servers"]).await;
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    let lines: Vec<Vec<String>> = stdout(&table)
        .lines()
        .map(|line| line.split_whitespace().map(String::from).collect())
        .collect();
    let addr = server.addr.to_string();
    assert_eq!(lines, [vec!["ID", "ADDRESS", "LEADER", "VOTER"], vec!["1", &addr, "yes", "yes"]]);

    let json = girok(&server.url(), &["servers", "--json"]).await;
    assert_eq!(
        stdout(&json),
        format!("{{\"id\":1,\"addr\":\"{addr}\",\"is_leader\":true,\"voter\":true}}\n")
    );

    let refused = girok(&server.url(), &["cluster", "add", "2", "127.0.0.1:9"]).await;
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("FAILED_PRECONDITION NOT_A_CLUSTER"), "{error}");
}
