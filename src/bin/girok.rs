//! The girok command-line client: produce, consume, tail and offsets against a running server
//! or cluster, on the log `--log` names (`default` unless told); `logs` to list, create, update
//! and delete logs; `servers` and `cluster add|remove` to see and change a cluster's members;
//! `verify`, an offline check of a data directory; and `completions`, a shell's completion
//! script. Values are written to stdout one per line (as UTF-8, invalid bytes replaced), or with
//! `--json` as JSON lines (see `json`); input lines are records of raw bytes (see `produce`).
//!
//! `--addr` takes one server or a comma-separated list of a cluster's (`a:8400,b:8400`, with or
//! without `http://`/`https://`): the commands go through a cluster client, so writes reach the
//! leader wherever the list points and reads go to any server (see `girok::client::ClusterClient`).
//!
//! `--timeout` bounds connecting and each unary call, retries included (a cluster without a
//! leader is retried until it elects one, or the timeout). A stream (`tail`, `produce` from stdin or a
//! file, `consume -n`) is bounded only until it opens: after that it may idle or flow for as
//! long as it likes. `--compress gzip|zstd` asks the server to compress both directions.
//!
//! An `https://` address is TLS: `--ca` names the CA to trust (the system's roots without it),
//! `--cert` and `--key` the client certificate a mutual-TLS server asks for. `--token` (better
//! `GIROK_TOKEN`: a flag shows in `ps`) is sent as a bearer token on every call; it shows
//! nowhere, `--help` and errors included.
//!
//! A failure prints one line, `girok: ` and what went wrong (see `errors`), and exits 1; a
//! closed stdout (`girok tail | head`) ends a command quietly (see `out`).

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use girok::client::{ClientError, ClusterClient, Compression, Connect, DEFAULT_LOG, Retry};
use tonic::Code;

use crate::produce::Input;
use crate::read::{Format, TailFrom};
use crate::table::Units;

// The binary's root sits in src/bin/, so its modules are found by path.
#[path = "girok/errors.rs"]
mod errors;
#[path = "girok/json.rs"]
mod json;
#[path = "girok/logs.rs"]
mod logs;
#[path = "girok/out.rs"]
mod out;
#[path = "girok/produce.rs"]
mod produce;
#[path = "girok/read.rs"]
mod read;
#[path = "girok/servers.rs"]
mod servers;
#[path = "girok/table.rs"]
mod table;
#[path = "girok/verify.rs"]
mod verify;

/// A command-line client for a girok server.
#[derive(Debug, Parser)]
#[command(name = "girok", version)]
struct Args {
    /// The server's address, or a comma-separated list of a cluster's servers (any of them
    /// will do: the leader is found from there). `HOST:PORT` without a scheme takes the others'
    /// scheme, else https:// with --ca or --cert, else http://.
    #[arg(long, env = "GIROK_ADDR", default_value = "http://127.0.0.1:8400", global = true)]
    addr: String,
    /// How long connecting, and each call, may take (e.g. 500ms, 5s; a plain number is seconds).
    /// Streams are bounded only until they open.
    #[arg(long, env = "GIROK_TIMEOUT", default_value = "10s", global = true, value_parser = parse_timeout)]
    timeout: Duration,
    /// The log that produce, consume, tail and offsets use; the others ignore it.
    #[arg(long, env = "GIROK_LOG", default_value = DEFAULT_LOG, global = true)]
    log: String,
    /// Compress every call's messages both ways with gzip or zstd; off unless given.
    #[arg(long, env = "GIROK_COMPRESS", value_name = "ALGORITHM", global = true)]
    compress: Option<CompressArg>,
    #[command(flatten)]
    security: Security,
    #[command(subcommand)]
    command: Command,
}

/// TLS and the token: what a secured server asks of a client.
#[derive(Debug, clap::Args)]
struct Security {
    /// Trust the server's certificate if this CA (PEM) signed it; needs an https:// address.
    /// Without it, https:// trusts the system's roots.
    #[arg(long, env = "GIROK_CA", value_name = "PATH", global = true)]
    ca: Option<PathBuf>,
    /// This client's certificate (PEM), for a server that asks for one (mutual TLS); needs
    /// --key.
    #[arg(long, env = "GIROK_CERT", value_name = "PATH", global = true, requires = "key")]
    cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, env = "GIROK_KEY", value_name = "PATH", global = true, requires = "cert")]
    key: Option<PathBuf>,
    /// A bearer token sent with every call. Prefer the environment variable: a flag shows in
    /// `ps`.
    #[arg(long, env = "GIROK_TOKEN", value_name = "TOKEN", global = true, hide_env_values = true)]
    token: Option<Token>,
}

/// `--token`; its `Debug` never shows it.
#[derive(Clone)]
struct Token(String);

impl std::str::FromStr for Token {
    type Err = std::convert::Infallible;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        Ok(Token(token.to_owned()))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `--compress`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum CompressArg {
    Gzip,
    Zstd,
}

impl From<CompressArg> for Compression {
    fn from(arg: CompressArg) -> Self {
        match arg {
            CompressArg::Gzip => Compression::Gzip,
            CompressArg::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Appends each VALUE as a record and prints each offset; with no VALUE, streams the records
    /// of stdin (printing each offset) or of --file (printing a summary).
    Produce {
        /// Record values; when absent, stdin (or --file) is read.
        #[arg(conflicts_with = "file")]
        values: Vec<String>,
        /// Read the records from PATH, with a progress bar on a terminal, and print
        /// `produced N records, offsets [FIRST, NEXT)` at the end.
        #[arg(long, short = 'f', value_name = "PATH")]
        file: Option<PathBuf>,
        /// The byte that ends each record of stdin or --file: one ASCII character, or \n, \t or
        /// \0. With the default (a newline) a `\r` before it is dropped too.
        #[arg(long, short = 'd', value_name = "BYTE", default_value = "\\n", value_parser = produce::parse_delimiter, conflicts_with = "values")]
        delimiter: u8,
    },
    /// Prints the value at OFFSET, or with -n up to COUNT values from OFFSET (fewer if the log
    /// ends first; OFFSET itself must exist).
    Consume {
        /// The first offset to read.
        offset: u64,
        /// How many records to print at most.
        #[arg(short = 'n', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        /// Print each record as a JSON object: log, offset, timestamp_ms, value, encoding.
        #[arg(long)]
        json: bool,
    },
    /// Prints records as they are committed, as `OFFSET<TAB>VALUE`, until interrupted.
    Tail {
        /// Where to start: `start`, `end` (records committed from now on), an offset N, or -N
        /// (N records before the end).
        #[arg(long, value_name = "WHERE", default_value = "end", allow_hyphen_values = true)]
        from: TailFrom,
        /// Print each record as a JSON object: log, offset, timestamp_ms, value, encoding.
        #[arg(long)]
        json: bool,
    },
    /// Prints the committed range `lowest next`.
    Offsets {
        /// Print `{"log", "lowest_offset", "next_offset"}` instead.
        #[arg(long)]
        json: bool,
    },
    /// Lists, creates, updates and deletes logs. Sizes take units (64MiB, 10GB) or a plain byte
    /// count; ages take units (7d, 12h, 90m).
    Logs {
        /// Print the table's numbers exact, for scripts: sizes in bytes, ages in milliseconds,
        /// 0 for unlimited.
        #[arg(long, global = true)]
        bytes: bool,
        #[command(subcommand)]
        command: logs::LogsCommand,
    },
    /// Prints the cluster's servers: ID ADDRESS LEADER VOTER, after a header line. A single
    /// server prints itself, as leader and voter.
    Servers {
        /// One JSON object per server instead: `id`, `addr`, `is_leader`, `voter`.
        #[arg(long)]
        json: bool,
    },
    /// Adds servers to, or removes them from, the cluster (at its leader).
    Cluster {
        #[command(subcommand)]
        command: servers::ClusterCommand,
    },
    /// Scans every frame's checksum and offset of every log in a data directory (offline,
    /// read-only), prints a report per log and a summary, and exits non-zero on corruption.
    Verify {
        /// The server's data directory.
        #[arg(long, env = "GIROK_DATA_DIR", default_value = girok::DEFAULT_DATA_DIR)]
        data_dir: std::path::PathBuf,
    },
    /// Prints the completion script for SHELL (bash, zsh, fish, elvish or powershell), e.g.
    /// `girok completions bash > ~/.local/share/bash-completion/completions/girok`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Command::Verify { data_dir } => return verify::run(data_dir),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Args::command(), "girok", &mut script);
            return exit(out::bytes(&script));
        }
        _ => {}
    }
    exit(run(args).await)
}

/// The exit code of a command that ended with `outcome`, its error printed.
fn exit(outcome: Result<(), CliError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if out::is_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("girok: {}", errors::describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// What a command can fail with.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// A call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The connection was refused or broke while being made.
    #[error("cannot connect to {addr}")]
    Connect { addr: String, source: tonic::transport::Error },
    /// `--timeout` passed while connecting or waiting for an answer.
    #[error("timed out after {} {doing} {addr}", humantime::format_duration(*after))]
    Timeout { addr: String, after: Duration, doing: &'static str },
    /// The server closed the connection while a call was under way (the CLI cancels none), or
    /// answered with bytes that are not HTTP/2.
    #[error("the server at {addr} {how}: {hint}")]
    BrokenOff { addr: String, how: &'static str, hint: &'static str },
    /// Stdin or the --file could not be read; the records before were sent.
    #[error("reading {what} after {records} records")]
    Input { what: String, records: u64, source: io::Error },
    /// Stdout could not be written (a closed pipe ends the command quietly; see `out`).
    #[error("writing to stdout")]
    Stdout(#[source] io::Error),
    /// The server ended a produce stream with OK before acking every record sent.
    #[error("the server ended the stream after {acked} acks, before all the input was appended")]
    Incomplete { acked: u64 },
    /// `logs delete default`: the server keeps the log requests without a name go to.
    #[error("the log \"default\" cannot be deleted: it is where requests naming no log go")]
    DefaultLog,
    /// The server answered a `logs` call UNIMPLEMENTED: it predates named logs.
    #[error("the server at {addr} does not support named logs: upgrade girok-server")]
    NoNamedLogs { addr: String },
}

/// `--timeout` for one server: how long connecting and each call may take.
struct Deadline {
    addr: String,
    limit: Duration,
    /// What a call the server breaks off (see `broken_off`) most likely means, given the options.
    closed: &'static str,
}

impl Deadline {
    /// Connects with `security` to the first server of `--addr` that answers and learns the
    /// cluster from it, giving up after the limit (a full backlog drops the SYN, so the TCP
    /// connect itself can hang). Every call then retries within the limit.
    async fn connect(&mut self, security: Security) -> Result<ClusterClient, CliError> {
        // A server refusing a client's certificate (or its absence) under TLS 1.3, or a TLS
        // server spoken to in plaintext, just closes the connection once the call is under way:
        // the client sees no TLS error to report, only the close.
        self.closed = match (self.addr.starts_with("https://"), security.cert.is_some()) {
            (false, _) => "if it serves TLS, use https://",
            (true, false) => "if it requires a client certificate, pass --cert and --key",
            (true, true) => {
                "if it refused the client certificate, check that its client CA signed --cert"
            }
        };
        let mut options = Connect::new(self.addr.clone()).connect_timeout(self.limit);
        if let Some(ca) = security.ca {
            options = options.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (security.cert, security.key) {
            options = options.identity_files(cert, key);
        }
        if let Some(Token(token)) = security.token {
            options = options.token(token);
        }
        let retry = Retry { budget: self.limit, ..Retry::default() };
        self.call(ClusterClient::connect_with(&self.addr, options, retry)).await
    }

    /// Awaits one call, giving up after the limit (a peer that accepted the connection may
    /// still never answer). For a stream this bounds only its opening. The cluster client
    /// bounds its retries by the same limit and reports first; this bound, a little later, is
    /// a backstop.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, CliError> {
        match tokio::time::timeout(self.limit + BACKSTOP, call).await {
            Ok(Err(ClientError::Status(status))) if broken_off(&status).is_some() => {
                let how = broken_off(&status).unwrap_or_default();
                Err(CliError::BrokenOff { addr: self.addr.clone(), how, hint: self.closed })
            }
            Ok(Err(ClientError::Connect(source))) => {
                Err(CliError::Connect { addr: self.addr.clone(), source })
            }
            Ok(Err(ClientError::Timeout { .. })) => Err(self.elapsed("connecting to")),
            Ok(Err(ClientError::CallTimeout { .. })) | Err(_) => {
                Err(self.elapsed("waiting for an answer from"))
            }
            Ok(result) => Ok(result?),
        }
    }

    fn elapsed(&self, doing: &'static str) -> CliError {
        CliError::Timeout { addr: self.addr.clone(), after: self.limit, doing }
    }
}

/// How much longer than `--timeout` a call may take before the CLI stops waiting for the
/// cluster client's own answer.
const BACKSTOP: Duration = Duration::from_millis(500);

async fn run(args: Args) -> Result<(), CliError> {
    let mut deadline = Deadline { addr: args.addr, limit: args.timeout, closed: "" };
    let mut client = deadline.connect(args.security).await?;
    if let Some(compress) = args.compress {
        client = client.compressed(compress.into());
    }
    let log = client.log(args.log);
    let format = |json| if json { Format::Json } else { Format::Value };
    match args.command {
        Command::Produce { values, file, delimiter } if values.is_empty() => {
            let input = file.map_or(Input::Stdin, Input::File);
            produce::produce(&log, &deadline, input, delimiter).await
        }
        Command::Produce { values, .. } => {
            for value in values {
                out::line(deadline.call(log.produce(value)).await?)?;
            }
            Ok(())
        }
        Command::Consume { offset, count, json } => {
            read::consume(&log, &deadline, offset, count, format(json)).await
        }
        Command::Tail { from, json } => {
            let format = if json { Format::Json } else { Format::OffsetAndValue };
            read::tail(&log, &deadline, from, format).await
        }
        Command::Offsets { json } => {
            let range = deadline.call(log.offsets_linearizable()).await?;
            if json {
                out::line(json::offsets(log.name(), &range))
            } else {
                out::line(format_args!("{} {}", range.start, range.end))
            }
        }
        Command::Logs { bytes, command } => {
            let units = if bytes { Units::Exact } else { Units::Human };
            logs::run(&client, &deadline, command, units).await
        }
        Command::Servers { json } => servers::list(&client, &deadline, json).await,
        Command::Cluster { command } => servers::change(&client, &deadline, command).await,
        Command::Verify { .. } | Command::Completions { .. } => {
            unreachable!("handled before connecting")
        }
    }
}

/// How the server broke off a call, when `status` says only that: hyper cancels the calls of
/// a connection the peer closed, or fails the one writing with a broken pipe or a reset; h2
/// fails on bytes that are no HTTP/2 frame (a TLS alert read as plaintext).
fn broken_off(status: &tonic::Status) -> Option<&'static str> {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        let kind = err.downcast_ref::<io::Error>().map(io::Error::kind);
        if matches!(kind, Some(io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)) {
            return Some("closed the connection");
        }
        if err.downcast_ref::<h2::Error>().is_some_and(h2::Error::is_library) {
            return Some("answered with something other than HTTP/2");
        }
        source = err.source();
    }
    (status.code() == Code::Cancelled).then_some("closed the connection")
}

/// `--timeout`: a duration above zero (zero would time out every call).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match girok::units::parse_duration(text, Duration::from_secs(1))? {
        Duration::ZERO => Err("the timeout must be above zero".to_string()),
        timeout => Ok(timeout),
    }
}
