//! `girok produce` from stdin or `--file PATH`: the input split into records at a delimiter and
//! streamed to one log.
//!
//! The delimiter is a newline unless `--delimiter` names another single byte; with the newline a
//! `\r` before it goes too (so `\r\n` files read as expected), with any other delimiter nothing
//! else is removed. Input ending in the delimiter makes no empty last record. Records are raw
//! bytes: nothing is decoded.
//!
//! Stdin prints each record's offset as it is acked. A file prints one summary line at the end,
//! `produced N records, offsets [FIRST, NEXT)`, and on a terminal a progress bar on stderr while
//! it is read (hidden when stderr is not a terminal).

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::path::PathBuf;

use bytes::Bytes;
use girok::client::ClusterLog;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{mpsc, oneshot};

use crate::{CliError, Deadline, out};

/// Where the records come from.
pub(crate) enum Input {
    /// Stdin: each offset printed as it is acked.
    Stdin,
    /// A file: a progress bar, then a summary.
    File(PathBuf),
}

/// `--delimiter`: one byte, given as itself (an ASCII character) or as `\n`, `\t`, `\0`.
pub(crate) fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "\\n" => Ok(b'\n'),
        "\\t" => Ok(b'\t'),
        "\\0" => Ok(b'\0'),
        _ => match text.as_bytes() {
            [byte] => Ok(*byte),
            _ => Err(format!(
                "{text:?} is not one byte: give one ASCII character, or \\n, \\t or \\0"
            )),
        },
    }
}

/// Streams `input` to `log` as records split at `delimiter`. Fails if the input cannot be read
/// (after sending the records before), if the server ends the stream with an error, or if it
/// ends it before acking every record sent.
pub(crate) async fn produce(
    log: &ClusterLog,
    deadline: &Deadline,
    input: Input,
    delimiter: u8,
) -> Result<(), CliError> {
    let (file, what, progress) = match &input {
        Input::Stdin => (None, "stdin".to_owned(), ProgressBar::hidden()),
        Input::File(path) => {
            let what = path.display().to_string();
            let file = File::open(path).map_err(|source| CliError::Input {
                what: what.clone(),
                records: 0,
                source,
            })?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            (Some(file), what, progress_bar(len))
        }
    };
    let (records, rx) = mpsc::channel::<Bytes>(1024);
    let (report, mut outcome) = oneshot::channel();
    let reading = progress.clone();
    // A thread, not a tokio blocking task: a blocking read of a terminal cannot be cancelled, and
    // the runtime would wait for it on exit when the server fails first.
    std::thread::spawn(move || {
        let sent = match file {
            Some(file) => send_records(BufReader::new(file), delimiter, &records, &reading),
            None => send_records(io::stdin().lock(), delimiter, &records, &reading),
        };
        let sent = sent.map_err(|(records, source)| CliError::Input { what, records, source });
        // Reported before `records` drops, so it is there by the time the half-close is acked.
        let _ = report.send(sent);
    });
    let values = tokio_stream::wrappers::ReceiverStream::new(rx);
    let print_each = matches!(input, Input::Stdin);
    let (mut acked, mut first, mut next) = (0, None, 0);
    let streamed = async {
        let mut acks = deadline.call(log.produce_stream(values)).await?;
        while let Some(offset) = acks.next().await? {
            if print_each {
                out::line(offset)?;
            }
            first.get_or_insert(offset);
            next = offset + 1;
            acked += 1;
        }
        Ok::<_, CliError>(())
    }
    .await;
    // Cleared before anything else is printed, the error included.
    progress.finish_and_clear();
    streamed?;
    let sent = match outcome.try_recv() {
        Ok(sent) => sent?,
        // The stream ended with OK while the input was still being read: the rest was never sent.
        Err(_) => return Err(CliError::Incomplete { acked }),
    };
    if sent != acked {
        return Err(CliError::Incomplete { acked });
    }
    if let Input::File(_) = input {
        match first {
            Some(first) => {
                out::line(format_args!("produced {acked} records, offsets [{first}, {next})"))
            }
            None => out::line("produced 0 records"),
        }
    } else {
        Ok(())
    }
}

/// A bar over `len` bytes of input, drawn only when stderr is a terminal.
fn progress_bar(len: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let template = "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Sends each record of `input` as raw bytes, without its delimiter, until end of input or until
/// the stream is gone (its acks report why). Answers how many records were sent, or how many
/// were sent before reading failed.
fn send_records(
    mut input: impl BufRead,
    delimiter: u8,
    records: &mpsc::Sender<Bytes>,
    progress: &ProgressBar,
) -> Result<u64, (u64, io::Error)> {
    let mut sent = 0;
    loop {
        let mut record = Vec::new();
        match input.read_until(delimiter, &mut record) {
            Ok(0) => return Ok(sent),
            Ok(read) => progress.inc(read as u64),
            Err(source) => return Err((sent, source)),
        }
        if record.last() == Some(&delimiter) {
            record.pop();
            if delimiter == b'\n' && record.last() == Some(&b'\r') {
                record.pop();
            }
        }
        if records.blocking_send(Bytes::from(record)).is_err() {
            return Ok(sent);
        }
        sent += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_delimiter;

    #[test]
    fn a_delimiter_is_one_byte_or_a_named_escape() {
        // A single ASCII character stands for itself; \n, \t and \0 name the bytes a shell
        // makes awkward; anything longer, or a character of several bytes, is refused.
        assert_eq!(parse_delimiter(","), Ok(b','));
        assert_eq!(parse_delimiter("\\0"), Ok(0));
        assert_eq!(parse_delimiter("\\t"), Ok(b'\t'));
        assert_eq!(parse_delimiter("\\n"), Ok(b'\n'));
        assert!(parse_delimiter(",,").is_err());
        assert!(parse_delimiter("é").is_err());
        assert!(parse_delimiter("").is_err());
    }
}
