//! The shipped `girok-server` binary as a child process: started on a free loopback port, killed
//! on drop, so no test leaves a process behind.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long the server may take to start or to exit.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `girok-server`; killed (SIGKILL) on drop.
pub struct ServerProcess {
    child: Child,
    /// The bound address, as `127.0.0.1:PORT`.
    pub addr: String,
    /// The admin listener's address, when started with one (`admin listening on ADDR`).
    pub admin_addr: Option<String>,
}

/// Starts `girok-server` on `127.0.0.1:0` over `data_dir`, with `env` as extra `GIROK_*`
/// settings, and waits for its `listening on ADDR` line.
pub fn spawn_server(data_dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
    spawn(server_command(data_dir, env), Stdio::null())
}

/// Starts `command` (a `girok-server` command) with its stderr sent to `stderr`, and waits for
/// its `listening on ADDR` line.
pub fn spawn(mut command: Command, stderr: Stdio) -> ServerProcess {
    let mut child =
        command.stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn girok-server");
    let (address, admin) = listening_addresses(&mut child);
    let mut server = ServerProcess { child, addr: String::new(), admin_addr: None };
    server.addr = address.recv_timeout(PROCESS_TIMEOUT).expect("girok-server printed no address");
    // The admin line comes first, so it has been read by now.
    server.admin_addr = admin.try_recv().ok();
    server
}

/// Watches a spawned `girok-server`'s piped stdout for its `listening on ADDR` line; the
/// receiver gets the address. Callers keep the child in a struct that kills it on drop before
/// waiting, so a server that never prints is not left behind.
pub fn listening_address(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    listening_addresses(child).0
}

/// [`listening_address`], and a receiver of the `admin listening on ADDR` line's address. Only
/// a line that starts with `listening on ` is the gRPC address.
pub fn listening_addresses(
    child: &mut Child,
) -> (std::sync::mpsc::Receiver<String>, std::sync::mpsc::Receiver<String>) {
    let stdout = child.stdout.take().expect("the server's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let (admin_tx, admin_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.to_string());
            } else if let Some(addr) = line.strip_prefix("admin listening on ") {
                let _ = admin_tx.send(addr.to_string());
            }
        }
    });
    (rx, admin_rx)
}

/// [`server_command`] run under a shell that first sets the open-file limit (soft and hard) to
/// `nofile`, so the server cannot raise it.
pub fn server_command_with_nofile(data_dir: &Path, nofile: u64, env: &[(&str, &str)]) -> Command {
    let server = server_command(data_dir, env);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\""))
        .arg(server.get_program())
        .envs(server.get_envs().filter_map(|(k, v)| Some((k, v?))));
    command
}

/// The `girok-server` command over `data_dir` on `127.0.0.1:0`, not yet started.
pub fn server_command(data_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_girok-server"));
    command
        .env("GIROK_LISTEN_ADDR", "127.0.0.1:0")
        .env("GIROK_DATA_DIR", data_dir)
        .env("GIROK_SHUTDOWN_GRACE", "2s")
        .env("GIROK_LOG_FORMAT", "json");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

impl ServerProcess {
    /// The server's URL for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs the server (a crash) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let term = Command::new("kill").arg("-TERM").arg(self.id().to_string()).status();
        assert!(term.expect("kill").success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < PROCESS_TIMEOUT, "girok-server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Collects a child's output, killing it (SIGKILL) and failing once `limit` has passed.
pub fn wait_with_timeout(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("collect output"),
        Err(_) => {
            // The output thread owns the child, so it is not reaped yet: the pid is still ours.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("process {pid} did not finish within {limit:?}");
        }
    }
}

/// The shipped `girok-server` on a data directory of its own, which outlives it (the server is
/// killed first, as fields drop in order).
pub struct Served {
    /// The server.
    pub server: ServerProcess,
    /// Its data directory.
    pub data: tempfile::TempDir,
}

impl Served {
    /// Starts one, blocking briefly while it starts (so call it from a multi-threaded runtime,
    /// or outside one).
    pub fn start() -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let start = || spawn_server(data.path(), &[]);
        let server = match tokio::runtime::Handle::try_current() {
            Ok(_) => tokio::task::block_in_place(start),
            Err(_) => start(),
        };
        Self { server, data }
    }

    /// The server's URL for clients.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A typed client of it.
    pub async fn client(&self) -> girok::client::Client {
        girok::client::Client::connect(self.url()).await.expect("connect")
    }
}
