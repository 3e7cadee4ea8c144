//! Shared test helpers: the log implementations every service test runs against, a real server
//! on `127.0.0.1:0`, and a time bound for every test.
#![allow(dead_code)]

pub mod admin;
pub mod binary;
pub mod certs;
pub mod cluster;
pub mod faulty;
pub mod secure;
pub mod soak;
pub mod storage;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use girok::client::Client;
use girok::server::{self, ServerConfig, ServerError};
use girok::storage::{CommitLog, DiskLog, LogConfig, MemoryLog};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long any one test may run.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens a log of one implementation in a directory (ignored by the in-memory log).
type OpenLog = fn(&Path, LogConfig) -> Arc<dyn CommitLog>;

/// Every `CommitLog` implementation the service tests run against: one line per implementation.
const IMPLEMENTATIONS: &[(&str, OpenLog)] = &[
    ("memory", |_dir, config| Arc::new(MemoryLog::new(config))),
    ("disk", |dir, config| Arc::new(DiskLog::open(dir, config.into()).expect("open the disk log"))),
];

/// One log implementation with a fresh directory of its own.
pub struct LogFactory {
    /// The implementation's name, for failure messages.
    pub name: &'static str,
    dir: TempDir,
    open: OpenLog,
}

impl LogFactory {
    /// Opens the implementation's log in this factory's directory.
    pub fn open(&self, config: LogConfig) -> Arc<dyn CommitLog> {
        (self.open)(self.dir.path(), config)
    }

    /// Opens it with the default config.
    pub fn open_default(&self) -> Arc<dyn CommitLog> {
        self.open(LogConfig::default())
    }

    /// The log's directory, for tests that reopen it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A fresh factory for every implementation.
pub fn factories() -> Vec<LogFactory> {
    IMPLEMENTATIONS
        .iter()
        .map(|&(name, open)| LogFactory { name, dir: tempfile::tempdir().expect("temp dir"), open })
        .collect()
}

/// Runs `body` once per log implementation, each run bounded by [`TEST_TIMEOUT`].
pub async fn for_each_log<F, Fut>(body: F)
where
    F: Fn(LogFactory) -> Fut,
    Fut: Future<Output = ()>,
{
    for factory in factories() {
        let name = factory.name;
        bounded(name, body(factory)).await;
    }
}

/// Awaits `future`, failing the test if it takes longer than [`TEST_TIMEOUT`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TEST_TIMEOUT, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: timed out after {TEST_TIMEOUT:?}"),
    }
}

/// A registry serving `log` as its `default` log (others in memory).
pub fn serving(log: &Arc<dyn CommitLog>) -> Arc<girok::logs::Logs> {
    Arc::new(girok::logs::Logs::serving(Arc::clone(log), girok::logs::LogsConfig::default()))
}

/// A server running `server::run` on a port of its own.
pub struct TestServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The log it serves as `default`.
    pub log: Arc<dyn CommitLog>,
    /// Its registry of logs.
    pub logs: Arc<girok::logs::Logs>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

/// Starts a server over `log` with the default config.
pub async fn start_server(log: Arc<dyn CommitLog>) -> TestServer {
    start_server_with(log, ServerConfig::default()).await
}

/// Starts a server over `log` with `config`.
pub async fn start_server_with(log: Arc<dyn CommitLog>, config: ServerConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let logs = serving(&log);
    let task = tokio::spawn(server::run(listener, Arc::clone(&logs), config, async {
        let _ = rx.await;
    }));
    TestServer { addr, log, logs, shutdown: Some(tx), task: Some(task) }
}

/// Starts a server over a registry serving `log` as `name` (beside an empty `default` and the
/// logs `first` and `zz-last`, so that the log under test has neighbours on both sides).
pub async fn start_server_as(name: &str, log: Arc<dyn CommitLog>) -> TestServer {
    let logs = girok::logs::Logs::serving_as(name, log, girok::logs::LogsConfig::default());
    for neighbour in ["first", "zz-last"] {
        logs.create(neighbour, Default::default()).expect("create a neighbour");
    }
    start_registry(Arc::new(logs), ServerConfig::default()).await
}

/// Starts a server over the registry `logs` with `config`.
pub async fn start_registry(logs: Arc<girok::logs::Logs>, config: ServerConfig) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let log = Arc::clone(logs.get(girok::logs::DEFAULT_LOG).expect("default log").log());
    let task = tokio::spawn(server::run(listener, Arc::clone(&logs), config, async {
        let _ = rx.await;
    }));
    TestServer { addr, log, logs, shutdown: Some(tx), task: Some(task) }
}

impl TestServer {
    /// The server's URL for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A typed client on a connection of its own.
    pub async fn client(&self) -> Client {
        Client::connect(self.url()).await.expect("connect")
    }

    /// A raw channel, for the generated clients.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }

    /// Sends the shutdown signal without waiting.
    pub fn signal_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Signals shutdown and waits for `run` to return; answers how long that took.
    pub async fn shutdown(mut self) -> Duration {
        let started = Instant::now();
        self.signal_shutdown();
        let task = self.task.take().expect("server task");
        task.await.expect("server task panicked").expect("server failed");
        started.elapsed()
    }

    /// Waits for `run` to return after an earlier [`signal_shutdown`](Self::signal_shutdown).
    pub async fn stopped(mut self) {
        let task = self.task.take().expect("server task");
        task.await.expect("server task panicked").expect("server failed");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Polls `condition` every 10 ms until it holds, failing after `within`.
pub async fn eventually(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not true after {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The disk space allocated to the files under `dir` (not their lengths: holes count nothing).
pub fn allocated_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            allocated_bytes(&entry.path())
        } else {
            std::os::unix::fs::MetadataExt::blocks(&meta) * 512
        };
    }
    total
}
