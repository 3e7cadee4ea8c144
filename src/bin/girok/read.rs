//! `girok consume` and `girok tail`: records read from one log, printed as text or, with
//! `--json`, as JSON lines (see `json`).
//!
//! `consume OFFSET -n COUNT` prints up to COUNT records from OFFSET: OFFSET itself must be in the
//! committed range (else the server's `OUT_OF_RANGE` is the error), and the command stops early,
//! without an error, at the log's end as it was when the command started. As text it prints each
//! value alone on its line, as `consume` always has.
//!
//! `tail --from WHERE` prints records from WHERE on as they are committed, until interrupted or
//! until the server ends the stream; as text each line is `OFFSET<TAB>VALUE`. WHERE is `start`
//! (the lowest offset), `end` (the default: only records committed from now on), `N` (that
//! offset) or `-N` (N records before the end, clamped to the start).

use std::ops::Range;
use std::str::FromStr;

use girok::client::ClusterLog;
use girok::storage::Record;

use crate::{CliError, Deadline, json, out};

/// Where `tail` starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TailFrom {
    /// The lowest offset the log holds.
    Start,
    /// The next offset: records committed after the command starts.
    End,
    /// This offset.
    At(u64),
    /// This many records before the end (or the start, if it holds fewer).
    BeforeEnd(u64),
}

impl TailFrom {
    /// The offset to stream from, given the log's committed `range`.
    pub(crate) fn resolve(self, range: &Range<u64>) -> u64 {
        match self {
            TailFrom::Start => range.start,
            TailFrom::End => range.end,
            TailFrom::At(offset) => offset,
            TailFrom::BeforeEnd(count) => range.end.saturating_sub(count).max(range.start),
        }
    }
}

impl FromStr for TailFrom {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let number = |digits: &str| {
            digits.parse::<u64>().map_err(|_| {
                format!("{text:?} is not start, end, an offset N or a count before the end -N")
            })
        };
        match text {
            "start" => Ok(TailFrom::Start),
            "end" => Ok(TailFrom::End),
            _ => match text.strip_prefix('-') {
                Some(count) => number(count).map(TailFrom::BeforeEnd),
                None => number(text).map(TailFrom::At),
            },
        }
    }
}

/// How records are printed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Format {
    /// `consume`: the value alone.
    Value,
    /// `tail`: `OFFSET<TAB>VALUE`.
    OffsetAndValue,
    /// `--json`: one JSON object.
    Json,
}

impl Format {
    fn print(self, log: &str, record: &Record) -> Result<(), CliError> {
        let value = || String::from_utf8_lossy(&record.value);
        match self {
            Format::Value => out::line(value()),
            Format::OffsetAndValue => out::line(format_args!("{}\t{}", record.offset, value())),
            Format::Json => out::line(json::record(log, record)),
        }
    }
}

/// `consume OFFSET -n COUNT`: the first record by a unary call (so an offset out of range fails
/// as it always has), the rest through one stream, cut at the end the log had by then.
pub(crate) async fn consume(
    log: &ClusterLog,
    deadline: &Deadline,
    offset: u64,
    count: u64,
    format: Format,
) -> Result<(), CliError> {
    let first = deadline.call(log.consume(offset)).await?;
    format.print(log.name(), &first)?;
    if count == 1 {
        return Ok(());
    }
    let end = deadline.call(log.offsets_linearizable()).await?.end;
    let stop = end.min(offset.saturating_add(count));
    let next = offset + 1;
    if next >= stop {
        return Ok(());
    }
    let mut records = deadline.call(log.consume_stream(next)).await?;
    while let Some(record) = records.next().await? {
        format.print(log.name(), &record)?;
        if record.offset + 1 >= stop {
            break;
        }
    }
    Ok(())
}

/// `tail --from WHERE`: streams until interrupted or until the server ends the stream.
pub(crate) async fn tail(
    log: &ClusterLog,
    deadline: &Deadline,
    from: TailFrom,
    format: Format,
) -> Result<(), CliError> {
    let offset = match from {
        TailFrom::At(offset) => offset,
        _ => from.resolve(&deadline.call(log.offsets_linearizable()).await?),
    };
    let mut records = deadline.call(log.consume_stream(offset)).await?;
    while let Some(record) = records.next().await? {
        format.print(log.name(), &record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TailFrom;

    #[test]
    fn from_reads_start_end_an_offset_and_a_count_before_the_end() {
        // Each spelling `--from` accepts, and the hyphen that makes a count.
        assert_eq!("start".parse(), Ok(TailFrom::Start));
        assert_eq!("end".parse(), Ok(TailFrom::End));
        assert_eq!("7".parse(), Ok(TailFrom::At(7)));
        assert_eq!("-3".parse(), Ok(TailFrom::BeforeEnd(3)));
        assert!("soon".parse::<TailFrom>().is_err());
        assert!("--3".parse::<TailFrom>().is_err());
    }

    #[test]
    fn a_count_before_the_end_stops_at_the_start() {
        // `-N` on a log holding fewer than N records starts at its lowest offset.
        assert_eq!(TailFrom::BeforeEnd(3).resolve(&(10..20)), 17);
        assert_eq!(TailFrom::BeforeEnd(30).resolve(&(10..20)), 10);
        assert_eq!(TailFrom::Start.resolve(&(10..20)), 10);
        assert_eq!(TailFrom::End.resolve(&(10..20)), 20);
    }
}
