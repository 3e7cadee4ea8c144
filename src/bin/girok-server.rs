//! The girok server binary: parses flags (each also read from a `GIROK_*` environment variable),
//! sets up tracing, opens the data directory's logs, and hands a bound listener to
//! [`girok::server::run`]. On SIGINT or SIGTERM it drains, syncs and closes every log, and exits 0;
//! on SIGHUP it re-reads the TLS certificate and key, the token file and the ACL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use girok::admin::Admin;
use girok::logs::{Logs, LogsConfig};
use girok::server::{self, Metrics, Readiness, Security, SecurityFiles, ServerConfig};
use girok::storage::{DiskConfig, FsyncPolicy, LogConfig, Retention};
use girok::units::{parse_duration, parse_size};
use tokio::net::{TcpListener, TcpSocket};

#[path = "girok-server/cluster.rs"]
mod cluster;

/// Serves girok's named commit logs over gRPC.
///
/// Sizes take units (`128MiB`, `64KB`) or a plain byte count; durations take units (`100ms`,
/// `5s`, `7d`) or a plain number in the unit the flag names.
#[derive(Debug, Parser)]
#[command(name = "girok-server", version)]
struct Args {
    /// Address to listen on [default: 127.0.0.1:8400; a cluster node: its `--cluster` entry].
    /// Port 0 picks a free port; the bound address is printed on stdout as `listening on ADDR`.
    #[arg(long, env = "GIROK_LISTEN_ADDR")]
    addr: Option<SocketAddr>,
    /// Directory holding the logs (created if missing), relative to the working directory: one
    /// directory per log under `logs/`.
    #[arg(long, env = "GIROK_DATA_DIR", default_value = girok::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// A segment's store file rolls over past this size (a log's `segment_bytes` setting
    /// overrides it).
    #[arg(long, env = "GIROK_SEGMENT_MAX_STORE_BYTES", default_value = "128MiB", value_parser = parse_size)]
    segment_max_store_bytes: u64,
    /// A segment's index file size; the segment rolls when it is full.
    #[arg(long, env = "GIROK_SEGMENT_MAX_INDEX_BYTES", default_value = "16MiB", value_parser = parse_size)]
    segment_max_index_bytes: u64,
    /// The largest record value accepted; larger ones get INVALID_ARGUMENT.
    #[arg(long, env = "GIROK_MAX_RECORD_BYTES", default_value = "1MiB", value_parser = parse_memory_size)]
    max_record_bytes: usize,
    /// How many sealed segments may have their files open at once (one descriptor and one
    /// mapping each); reads of older segments open them as needed.
    #[arg(long, env = "GIROK_MAX_OPEN_SEGMENTS", default_value_t = DiskConfig::default().max_open_segments)]
    max_open_segments: usize,
    /// When appended records are synced to stable storage (see README, "Durability").
    #[arg(long, env = "GIROK_FSYNC", value_enum, default_value_t = Fsync::Always)]
    fsync: Fsync,
    /// Sync period under `--fsync interval`; a plain number is milliseconds.
    #[arg(long, env = "GIROK_FSYNC_INTERVAL", default_value = "100ms", value_parser = parse_millis)]
    fsync_interval: Duration,
    /// The older spelling of `--fsync-interval`, in milliseconds; still accepted.
    #[arg(long, env = "GIROK_FSYNC_INTERVAL_MS", hide = true, conflicts_with = "fsync_interval", value_parser = parse_millis)]
    fsync_interval_ms: Option<Duration>,
    /// The memory budget for records buffered in the server (ProduceStream queues, ConsumeStream
    /// batches); one connection may use a sixteenth. When spent, streams wait (back-pressure).
    #[arg(long, env = "GIROK_MAX_BUFFERED_BYTES", default_value = "256MiB", value_parser = parse_memory_size)]
    max_buffered_bytes: usize,
    /// Connections served at once; further ones are closed as they arrive.
    #[arg(long, env = "GIROK_MAX_CONNECTIONS", default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// Whether a produce to a log that does not exist creates it (`--auto-create-logs=false`
    /// turns it off: such produces get NOT_FOUND).
    #[arg(long, env = "GIROK_AUTO_CREATE_LOGS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    auto_create_logs: bool,
    /// The most logs the server holds, `default` included; creating one more gets
    /// RESOURCE_EXHAUSTED (LOG_LIMIT).
    #[arg(long, env = "GIROK_MAX_LOGS", default_value_t = LogsConfig::default().max_logs)]
    max_logs: usize,
    /// Server-wide retention by size (e.g. `1GiB`, or plain bytes): a log's sealed segments are
    /// deleted, oldest first, while it holds more. A log's own `retention_bytes` overrides it
    /// (0 there: unlimited). Unlimited unless given.
    #[arg(long, env = "GIROK_RETENTION_BYTES", value_parser = parse_size)]
    retention_bytes: Option<u64>,
    /// Server-wide retention by age (e.g. `7d`, `12h`): a sealed segment is deleted once its
    /// newest record is older, and the active segment rolls once its oldest is. A log's own
    /// `retention_ms` overrides it (0 there: unlimited). Unlimited unless given.
    #[arg(long, env = "GIROK_RETENTION_AGE", value_parser = parse_millis)]
    retention_age: Option<Duration>,
    /// Appends are refused (RESOURCE_EXHAUSTED, DISK_LOW) while the data volume has less free
    /// space than this; reads go on, and appends resume once space is freed. 0 turns it off.
    #[arg(long, env = "GIROK_MIN_FREE_DISK", default_value = "256MiB", value_parser = parse_size)]
    min_free_disk: u64,
    /// How long in-flight calls get to finish on shutdown; a plain number is seconds.
    #[arg(long, env = "GIROK_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_seconds)]
    shutdown_grace: Duration,
    /// Address of the admin HTTP listener (`/metrics`, `/healthz`, `/readyz`); off unless given.
    /// Port 0 picks a free port; the bound address is printed on stdout as
    /// `admin listening on ADDR`.
    #[arg(long, env = "GIROK_ADMIN_ADDR")]
    admin_addr: Option<SocketAddr>,
    /// How many logs (the busiest) get series of their own in `/metrics`; the others are summed
    /// under `log="_other"`.
    #[arg(long, env = "GIROK_METRICS_MAX_LOGS", default_value_t = 100)]
    metrics_max_logs: usize,
    /// Serve TLS on the gRPC port (and the admin listener) with this certificate chain: PEM,
    /// leaf first. Needs `--tls-key`. SIGHUP re-reads it.
    #[arg(long, env = "GIROK_TLS_CERT", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "GIROK_TLS_KEY", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Require client certificates that chain to these CA certificates (mutual TLS); a
    /// certificate's Common Name is the caller's subject. With `--auth-tokens`, a certificate is
    /// asked for but optional.
    #[arg(long, env = "GIROK_TLS_CLIENT_CA", value_name = "PEM")]
    tls_client_ca: Option<PathBuf>,
    /// Accept `authorization: Bearer TOKEN` from callers: a file of `TOKEN SUBJECT` lines.
    /// Refused on plaintext bound to a non-loopback address. SIGHUP re-reads it.
    #[arg(long, env = "GIROK_AUTH_TOKENS", value_name = "FILE")]
    auth_tokens: Option<PathBuf>,
    /// Per-log access control: lines `p, SUBJECT, LOG-PATTERN, ACTION` (see README, "Securing
    /// girok"). Needs `--tls-client-ca` or `--auth-tokens`. SIGHUP re-reads it.
    #[arg(long, env = "GIROK_ACL", value_name = "FILE")]
    acl: Option<PathBuf>,
    /// Log line format on stderr. The level comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "GIROK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(flatten)]
    cluster: cluster::ClusterArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Fsync {
    /// Acknowledge only after fdatasync: survives power loss.
    Always,
    /// Sync in the background every `--fsync-interval`.
    Interval,
    /// Leave write-back to the OS.
    Never,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A size that must fit in memory (`usize`).
fn parse_memory_size(text: &str) -> Result<usize, String> {
    let size = parse_size(text)?;
    usize::try_from(size).map_err(|_| format!("{text:?} is too large"))
}

fn parse_millis(text: &str) -> Result<Duration, String> {
    parse_duration(text, Duration::from_millis(1))
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    parse_duration(text, Duration::from_secs(1))
}

impl Args {
    fn disk_config(&self) -> DiskConfig {
        let interval = self.fsync_interval_ms.unwrap_or(self.fsync_interval);
        DiskConfig {
            log: LogConfig { max_record_bytes: self.max_record_bytes, ..LogConfig::default() },
            max_store_bytes: self.segment_max_store_bytes,
            max_index_bytes: self.segment_max_index_bytes,
            max_open_segments: self.max_open_segments,
            fsync: match self.fsync {
                Fsync::Always => FsyncPolicy::Always,
                Fsync::Interval => FsyncPolicy::Interval(interval),
                Fsync::Never => FsyncPolicy::Never,
            },
        }
    }

    fn logs_config(&self, metrics: &Metrics) -> LogsConfig {
        LogsConfig {
            auto_create: self.auto_create_logs,
            max_logs: self.max_logs,
            events: metrics.storage_events(),
            retention: Retention {
                max_bytes: self.retention_bytes.filter(|&bytes| bytes > 0),
                max_age_ms: self
                    .retention_age
                    .map(|age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
                    .filter(|&ms| ms > 0),
            },
            min_free_disk: self.min_free_disk,
        }
    }

    /// The TLS a cluster node uses to call the others: its own certificate as client
    /// certificate, and `--tls-client-ca` to check theirs. `None` on plaintext.
    fn raft_tls(&self) -> Result<Option<tonic::transport::ClientTlsConfig>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else { return Ok(None) };
        let Some(ca) = &self.tls_client_ca else {
            return Err("a cluster with TLS needs --tls-client-ca: nodes prove themselves to \
                        each other with their certificates (mutual TLS)"
                .into());
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
        };
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        let roots = tonic::transport::Certificate::from_pem(read(ca)?);
        Ok(Some(tonic::transport::ClientTlsConfig::new().identity(identity).ca_certificate(roots)))
    }

    fn security_files(&self) -> SecurityFiles {
        SecurityFiles {
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            tls_client_ca: self.tls_client_ca.clone(),
            auth_tokens: self.auth_tokens.clone(),
            acl: self.acl.clone(),
        }
    }

    fn server_config(&self, metrics: &Metrics, readiness: &Readiness) -> ServerConfig {
        ServerConfig {
            shutdown_grace: self.shutdown_grace,
            max_buffered_bytes: self.max_buffered_bytes,
            max_connections: self.max_connections,
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            ..ServerConfig::default()
        }
    }
}

/// Opens every log in `data_dir`, recovering each from any crash. Blocking: call it off the
/// runtime's workers.
fn open_logs(
    data_dir: PathBuf,
    disk: DiskConfig,
    config: LogsConfig,
) -> girok::logs::Result<Arc<Logs>> {
    let started = std::time::Instant::now();
    let logs = Logs::open(&data_dir, disk, config)?;
    let default = logs.get(girok::logs::DEFAULT_LOG)?;
    tracing::info!(
        data_dir = %data_dir.display(),
        logs = logs.len(),
        took = ?started.elapsed(),
        default_next_offset = default.log().next_offset(),
        "opened logs"
    );
    Ok(Arc::new(logs))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A future that resolves on the first SIGINT or SIGTERM. The handlers are installed when this
/// is called, not when the future is first polled: a signal that arrives while the log opens, or
/// right after `listening on` is printed, still shuts the server down gracefully.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing(args.log_format);
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("girok-server: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Re-reads the security files on every SIGHUP, for as long as the server runs; a file that
/// fails to load is logged and the previous one stays in force. Installed even with nothing to
/// reload, so that a stray SIGHUP never kills the server.
fn reload_on_hangup(security: Security) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            if !security.is_configured() {
                tracing::info!("SIGHUP received: no security files to reload");
                continue;
            }
            let reloading = security.clone();
            let failed = tokio::task::spawn_blocking(move || reloading.reload()).await;
            match failed.as_deref() {
                Ok([]) => {
                    tracing::info!(security = %security.describe(), "SIGHUP received: security files reloaded")
                }
                Ok(failed) => {
                    for err in failed {
                        tracing::error!("SIGHUP: {err}; the previous one stays in force");
                    }
                }
                Err(err) => tracing::error!(error = %err, "SIGHUP: reloading failed"),
            }
        }
    });
    Ok(())
}

/// Raises the soft limit on open files to the hard limit and logs both: the server holds a
/// descriptor per connection, and the operator's hard limit is the real bound.
/// Returns the soft limit in force.
fn raise_descriptor_limit() -> Option<u64> {
    let before = rlimit::Resource::NOFILE.get();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => {
            let hard = rlimit::Resource::NOFILE.get().map(|(_, hard)| hard).unwrap_or(soft);
            let was = before.map(|(soft, _)| soft).unwrap_or(soft);
            tracing::info!(soft = soft, hard = hard, was = was, "file descriptor limit");
            Some(soft)
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot raise the file descriptor limit");
            before.ok().map(|(soft, _)| soft)
        }
    }
}

/// Descriptors kept free of connections for the process itself: the runtime, the listener,
/// the data directory's lock, directory syncs, and headroom.
const DESCRIPTORS_RESERVED: u64 = 64;

/// The connection and log limits, lowered so that both fit the descriptor limit: every
/// connection holds a descriptor, and so does every log (its active segment). Past the limit,
/// connections would wait unanswered in the backlog, and a new log or a roll would fail.
///
/// After the reserve and the sealed-segment cache, the logs get at least half of what is left
/// (and always the ones that exist), the connections the rest; an operator who wants it split
/// otherwise lowers one of the two flags, or raises `ulimit -n`.
fn fit_descriptors(
    connections: usize,
    max_logs: usize,
    logs_now: usize,
    open_segments: usize,
    nofile: Option<u64>,
) -> (usize, usize) {
    let Some(nofile) = nofile else { return (connections, max_logs) };
    let room = nofile.saturating_sub(DESCRIPTORS_RESERVED + open_segments as u64);
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    let for_logs = logs_now.max(max_logs.min(room / 2));
    let fitted_connections = connections.min(room.saturating_sub(for_logs)).max(1);
    let fitted_logs = max_logs.min(room.saturating_sub(fitted_connections)).max(logs_now);
    if fitted_connections < connections || fitted_logs < max_logs {
        tracing::warn!(
            nofile,
            max_connections = fitted_connections,
            max_logs = fitted_logs,
            "--max-connections and --max-logs lowered to fit the file descriptor limit (each \
             connection and each log holds one); raise it with ulimit -n"
        );
    }
    (fitted_connections, fitted_logs)
}

/// How many connections may wait in the kernel's accept queue: enough for a burst up to the
/// connection limit without SYN retransmits.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` with a backlog of [`LISTEN_BACKLOG`].
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let shutdown = shutdown_signal().map_err(|err| format!("cannot listen for signals: {err}"))?;
    let nofile = raise_descriptor_limit();
    // Bad security files refuse the start before anything else happens.
    let (addr, plan) = args.cluster.resolve(args.addr, args.fsync)?;
    let raft_tls = match &plan {
        Some(_) => args.raft_tls()?,
        None => None,
    };
    let security = Security::load(args.security_files())?;
    security.check_listen_addr(addr)?;
    reload_on_hangup(security.clone())
        .map_err(|err| format!("cannot listen for signals: {err}"))?;
    let (metrics, readiness) = (Metrics::new(args.metrics_max_logs), Readiness::default());
    let admin = Admin::new(metrics.clone(), readiness.clone()).with_security(security.clone());
    // Up before the logs open, so /readyz can say the server is starting.
    let (stop_admin, admin_task) = match args.admin_addr {
        Some(addr) => {
            let listener =
                bind(addr).map_err(|err| format!("cannot listen on {addr} (admin): {err}"))?;
            let local = listener.local_addr()?;
            tracing::info!(addr = %local, "serving /metrics, /healthz, /readyz");
            println!("admin listening on {local}");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(girok::admin::serve(listener, admin.clone(), async {
                let _ = stopped.await;
            }));
            (Some(stop), Some(task))
        }
        None => (None, None),
    };
    let mut disk = args.disk_config();
    if plan.is_some() {
        // A cluster node's durability is its Raft WAL's (under --fsync); the logs, rebuilt from
        // it after a crash, are written without syncs of their own.
        disk.fsync = FsyncPolicy::Never;
    }
    let (data_dir, logs_config) = (args.data_dir.clone(), args.logs_config(&metrics));
    let logs =
        tokio::task::spawn_blocking(move || open_logs(data_dir, disk, logs_config)).await??;
    admin.set_logs(Arc::clone(&logs));
    let listener = bind(addr).map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, fsync = ?args.fsync, security = %security.describe(), "serving log.v1.Log");
    println!("listening on {local}");
    let mut config = args.server_config(&metrics, &readiness);
    config.security = security;
    if let Some(plan) = plan {
        config.advertise_addr = Some(plan.config.advertise_addr.clone());
        let node = cluster::start(plan, &args.data_dir, Arc::clone(&logs), raft_tls).await?;
        config.cluster = Some(node);
    } else {
        config.advertise_addr = args.cluster.advertise_addr.clone();
    }
    let node = config.cluster.clone();
    // Every log holds its active segment's store open, besides the sealed segments' cache;
    // logs created later take from the reserve.
    let (connections, max_logs) = fit_descriptors(
        config.max_connections,
        logs.max_logs(),
        logs.len(),
        args.max_open_segments,
        nofile,
    );
    config.max_connections = connections;
    logs.limit_logs(max_logs);
    server::run(listener, Arc::clone(&logs), config, shutdown).await?;
    if let Some(node) = node {
        // Hands leadership on, stops Raft and writes a checkpoint before the logs close.
        node.shutdown().await;
    }
    // The admin listener outlives the drain (so /readyz says 503 throughout), not the server.
    drop(stop_admin);
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    // Closing syncs files: keep it (and the logs' drop) off the runtime's workers.
    tokio::task::spawn_blocking(move || logs.close()).await??;
    tracing::info!("logs synced and closed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use girok::storage::Retention;

    use super::{Args, fit_descriptors};

    #[test]
    fn retention_is_unlimited_and_the_floor_256_mib_unless_given() {
        // No flags: retention keeps everything, the floor is 256 MiB; given flags take units,
        // and 0 means unlimited (retention) or off (the floor).
        let parse = |flags: &[&str]| {
            let args = Args::try_parse_from([&["girok-server"], flags].concat()).unwrap();
            let config = args.logs_config(&girok::server::Metrics::new(1));
            (config.retention, config.min_free_disk)
        };
        assert_eq!(parse(&[]), (Retention::UNLIMITED, 256 << 20));
        let given = ["--retention-bytes", "1GiB", "--retention-age", "7d", "--min-free-disk", "0"];
        let week = Retention { max_bytes: Some(1 << 30), max_age_ms: Some(7 * 86_400_000) };
        assert_eq!(parse(&given), (week, 0));
        let zero = ["--retention-bytes", "0", "--retention-age", "0s"];
        assert_eq!(parse(&zero).0, Retention::UNLIMITED);
    }

    #[test]
    fn connections_and_logs_share_the_descriptors() {
        // Plenty: nothing changes.
        assert_eq!(fit_descriptors(1024, 10_000, 1, 64, Some(1 << 20)), (1024, 10_000));
        assert_eq!(fit_descriptors(1024, 10_000, 1, 64, None), (1024, 10_000));
        // A hard limit of 1,024: 896 after the reserve and the cache, half for logs.
        assert_eq!(fit_descriptors(1024, 10_000, 1, 64, Some(1024)), (448, 448));
        // Few logs wanted: the connections get the rest.
        assert_eq!(fit_descriptors(1024, 10, 1, 64, Some(1024)), (886, 10));
        // Logs that exist are always covered, even past max_logs.
        assert_eq!(fit_descriptors(1024, 10, 700, 64, Some(1024)), (196, 700));
    }
}
