//! The girok command-line client: produce, consume, tail and offsets against a running server,
//! and `verify`, an offline check of a data directory. Values are written to stdout one per line
//! (as UTF-8, invalid bytes replaced).

use std::process::ExitCode;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use girok::client::{Client, ClientError};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A command-line client for a girok server.
#[derive(Debug, Parser)]
#[command(name = "girok", version)]
struct Args {
    /// The server's address.
    #[arg(long, env = "GIROK_ADDR", default_value = "http://127.0.0.1:8400", global = true)]
    addr: String,
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
    /// Scans every frame's checksum and offset in a data directory (offline, read-only), prints
    /// a summary and exits non-zero on corruption.
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
        return verify(data_dir);
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("girok: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), ClientError> {
    let mut client = Client::connect(args.addr).await?;
    match args.command {
        Command::Produce { values } if values.is_empty() => produce_stdin(&mut client).await,
        Command::Produce { values } => {
            for value in values {
                println!("{}", client.produce(value).await?);
            }
            Ok(())
        }
        Command::Consume { offset } => {
            let record = client.consume(offset).await?;
            println!("{}", String::from_utf8_lossy(&record.value));
            Ok(())
        }
        Command::Tail { from } => {
            let from = match from {
                Some(offset) => offset,
                None => client.offsets().await?.end,
            };
            let mut records = client.consume_stream(from).await?;
            while let Some(record) = records.next().await? {
                println!("{}\t{}", record.offset, String::from_utf8_lossy(&record.value));
            }
            Ok(())
        }
        Command::Offsets => {
            let range = client.offsets().await?;
            println!("{} {}", range.start, range.end);
            Ok(())
        }
        Command::Verify { .. } => unreachable!("handled before connecting"),
    }
}

/// `girok verify`: exit 0 when the data directory is free of corruption, 1 when it is not, 2 when
/// it cannot be read.
fn verify(dir: &std::path::Path) -> ExitCode {
    if !dir.is_dir() {
        eprintln!("girok: {} is not a directory", dir.display());
        return ExitCode::from(2);
    }
    match girok::storage::disk::verify(dir) {
        Ok(report) => {
            println!("{report}");
            if report.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(err) => {
            eprintln!("girok: cannot verify {}: {err}", dir.display());
            ExitCode::from(2)
        }
    }
}

/// Streams stdin's lines as records and prints each ack.
async fn produce_stdin(client: &mut Client) -> Result<(), ClientError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(Bytes::from(line)).await.is_err() {
                break;
            }
        }
    });
    let mut acks = client.produce_stream(tokio_stream::wrappers::ReceiverStream::new(rx)).await?;
    while let Some(offset) = acks.next().await? {
        println!("{offset}");
    }
    reader.abort();
    Ok(())
}
