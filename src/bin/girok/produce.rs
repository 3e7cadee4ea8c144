//! `girok produce` without values: stdin's lines streamed as records to one log, each ack
//! printed.

use std::io::{self, BufRead};

use bytes::Bytes;
use girok::client::NamedLog;
use tokio::sync::{mpsc, oneshot};

use crate::{CliError, Deadline};

/// Streams stdin's lines as records and prints each ack. Fails if stdin cannot be read (after
/// sending the lines before), if the server ends the stream with an error, or if it ends it before
/// acking every line.
pub(crate) async fn produce_stdin(log: &mut NamedLog, deadline: &Deadline) -> Result<(), CliError> {
    let (lines, rx) = mpsc::channel::<Bytes>(1024);
    let (report, mut outcome) = oneshot::channel();
    // A thread, not a tokio blocking task: a blocking read of a terminal cannot be cancelled, and
    // the runtime would wait for it on exit when the server fails first.
    std::thread::spawn(move || {
        let sent = send_lines(io::stdin().lock(), &lines);
        // Reported before `lines` drops, so it is there by the time the half-close is acked.
        let _ = report.send(sent);
    });
    let values = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut acks = deadline.call(log.produce_stream(values)).await?;
    let mut acked = 0;
    while let Some(offset) = acks.next().await? {
        println!("{offset}");
        acked += 1;
    }
    let sent = match outcome.try_recv() {
        Ok(sent) => sent?,
        // The stream ended with OK while stdin was still being read: the rest was never sent.
        Err(_) => return Err(CliError::Incomplete { acked }),
    };
    if sent != acked {
        return Err(CliError::Incomplete { acked });
    }
    Ok(())
}

/// Sends each line of `input` as raw bytes, without its `\n` or `\r\n`, until end of input or
/// until the stream is gone (its acks report why). Answers how many lines were sent.
fn send_lines(mut input: impl BufRead, lines: &mpsc::Sender<Bytes>) -> Result<u64, CliError> {
    let mut sent = 0;
    loop {
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(sent),
            Ok(_) => {}
            Err(source) => return Err(CliError::Stdin { lines: sent, source }),
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        if lines.blocking_send(Bytes::from(line)).is_err() {
            return Ok(sent);
        }
        sent += 1;
    }
}
