//! The girok command-line client: produce, consume, tail and offsets against a running server,
//! on the log `--log` names (`default` unless told); `logs` to list, create, update and delete
//! logs; and `verify`, an offline check of a data directory. Values are written to stdout one per
//! line (as UTF-8, invalid bytes replaced); lines read from stdin are records of raw bytes.
//!
//! `--timeout` bounds connecting and each unary call. A stream (`tail`, `produce` from stdin) is
//! bounded only until it opens: after that it may idle or flow for as long as it likes.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use girok::client::{Client, ClientError, DEFAULT_LOG};
use tonic::transport::Endpoint;

use crate::table::Units;

// The binary's root sits in src/bin/, so its modules are found by path.
#[path = "girok/logs.rs"]
mod logs;
#[path = "girok/stdin.rs"]
mod stdin;
#[path = "girok/table.rs"]
mod table;
#[path = "girok/verify.rs"]
mod verify;

/// A command-line client for a girok server.
#[derive(Debug, Parser)]
#[command(name = "girok", version)]
struct Args {
    /// The server's address.
    #[arg(long, env = "GIROK_ADDR", default_value = "http://127.0.0.1:8400", global = true)]
    addr: String,
    /// How long connecting, and each call, may take (e.g. 500ms, 5s; a plain number is seconds).
    /// Streams are bounded only until they open.
    #[arg(long, env = "GIROK_TIMEOUT", default_value = "10s", global = true, value_parser = parse_timeout)]
    timeout: Duration,
    /// The log that produce, consume, tail and offsets use; the others ignore it.
    #[arg(long, env = "GIROK_LOG", default_value = DEFAULT_LOG, global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Appends each VALUE as a record (or, with none, each line of stdin, streamed) and prints
    /// the offsets.
    Produce {
        /// Record values; when absent, stdin is read line by line.
        values: Vec<String>,
    },
    /// Prints the record at OFFSET.
    Consume {
        /// The offset to read.
        offset: u64,
    },
    /// Prints records as they are committed, until interrupted.
    Tail {
        /// Where to start; the current end of the log when absent.
        #[arg(long)]
        from: Option<u64>,
    },
    /// Prints the committed range `lowest next`.
    Offsets,
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
    /// Scans every frame's checksum and offset of every log in a data directory (offline,
    /// read-only), prints a report per log and a summary, and exits non-zero on corruption.
    Verify {
        /// The server's data directory.
        #[arg(long, env = "GIROK_DATA_DIR", default_value = girok::DEFAULT_DATA_DIR)]
        data_dir: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Command::Verify { data_dir } = &args.command {
        return verify::run(data_dir);
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = format!("girok: {err}");
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                // Some errors repeat their source in their own text.
                let cause_text = cause.to_string();
                if !message.ends_with(&cause_text) {
                    message = format!("{message}: {cause_text}");
                }
                source = cause.source();
            }
            eprintln!("{message}");
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
    /// `--addr` is not a URL.
    #[error("invalid address {addr:?}")]
    Address { addr: String, source: tonic::transport::Error },
    /// The connection was refused or broke while being made.
    #[error("cannot connect to {addr}")]
    Connect { addr: String, source: tonic::transport::Error },
    /// `--timeout` passed while connecting or waiting for an answer.
    #[error("timed out after {} {doing} {addr}", humantime::format_duration(*after))]
    Timeout { addr: String, after: Duration, doing: &'static str },
    /// Stdin could not be read; the lines before were sent, and their acks printed.
    #[error("reading stdin after {lines} lines")]
    Stdin { lines: u64, source: io::Error },
    /// The server ended a produce stream with OK before acking every line sent.
    #[error("the server ended the stream after {acked} acks, before all of stdin was appended")]
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
}

impl Deadline {
    /// Connects, giving up after the limit (a full backlog drops the SYN, so the TCP connect
    /// itself can hang).
    async fn connect(&self) -> Result<Client, CliError> {
        let endpoint = Endpoint::from_shared(self.addr.clone())
            .map_err(|source| CliError::Address { addr: self.addr.clone(), source })?;
        match tokio::time::timeout(self.limit, endpoint.connect()).await {
            Ok(Ok(channel)) => Ok(Client::new(channel)),
            Ok(Err(source)) => Err(CliError::Connect { addr: self.addr.clone(), source }),
            Err(_) => Err(self.elapsed("connecting to")),
        }
    }

    /// Awaits one call, giving up after the limit (a peer that accepted the connection may
    /// still never answer). For a stream this bounds only its opening.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, CliError> {
        match tokio::time::timeout(self.limit, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(self.elapsed("waiting for an answer from")),
        }
    }

    fn elapsed(&self, doing: &'static str) -> CliError {
        CliError::Timeout { addr: self.addr.clone(), after: self.limit, doing }
    }
}

async fn run(args: Args) -> Result<(), CliError> {
    let deadline = Deadline { addr: args.addr, limit: args.timeout };
    let mut client = deadline.connect().await?;
    let mut log = client.log(args.log);
    match args.command {
        Command::Produce { values } if values.is_empty() => {
            stdin::produce_stdin(&mut log, &deadline).await
        }
        Command::Produce { values } => {
            for value in values {
                println!("{}", deadline.call(log.produce(value)).await?);
            }
            Ok(())
        }
        Command::Consume { offset } => {
            let record = deadline.call(log.consume(offset)).await?;
            println!("{}", String::from_utf8_lossy(&record.value));
            Ok(())
        }
        Command::Tail { from } => {
            let from = match from {
                Some(offset) => offset,
                None => deadline.call(log.offsets()).await?.end,
            };
            let mut records = deadline.call(log.consume_stream(from)).await?;
            while let Some(record) = records.next().await? {
                println!("{}\t{}", record.offset, String::from_utf8_lossy(&record.value));
            }
            Ok(())
        }
        Command::Offsets => {
            let range = deadline.call(log.offsets()).await?;
            println!("{} {}", range.start, range.end);
            Ok(())
        }
        Command::Logs { bytes, command } => {
            let units = if bytes { Units::Exact } else { Units::Human };
            logs::run(&mut client, &deadline, command, units).await
        }
        Command::Verify { .. } => unreachable!("handled before connecting"),
    }
}

/// `--timeout`: a duration above zero (zero would time out every call).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match girok::units::parse_duration(text, Duration::from_secs(1))? {
        Duration::ZERO => Err("the timeout must be above zero".to_string()),
        timeout => Ok(timeout),
    }
}
