//! `--json`: what the read commands print as JSON lines, one object per line, each with exactly
//! the fields documented here (a log setting never given is omitted, not `null`).
//!
//! | command | object |
//! | --- | --- |
//! | `consume`, `tail` | `{"log", "offset", "timestamp_ms", "value", "encoding"}` |
//! | `offsets` | `{"log", "lowest_offset", "next_offset"}` |
//! | `logs list` | `{"log", "lowest_offset", "next_offset", "size_bytes", "retention_bytes"?, "retention_ms"?, "segment_bytes"?}` |
//!
//! A record's value is its text when the bytes are UTF-8 (`"encoding": "utf8"`), else standard
//! base64 with padding (`"encoding": "base64"`), so every value round-trips exactly.

use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use girok::client::LogInfo;
use girok::storage::Record;
use serde::Serialize;

/// One record of the log `log`.
#[derive(Serialize)]
struct RecordLine<'a> {
    log: &'a str,
    offset: u64,
    timestamp_ms: u64,
    value: String,
    encoding: &'static str,
}

/// A log's committed range.
#[derive(Serialize)]
struct OffsetsLine<'a> {
    log: &'a str,
    lowest_offset: u64,
    next_offset: u64,
}

/// One log of `logs list`.
#[derive(Serialize)]
struct LogLine<'a> {
    log: &'a str,
    lowest_offset: u64,
    next_offset: u64,
    size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_bytes: Option<u64>,
}

/// `record` of `log` as one JSON line (without the newline).
pub(crate) fn record(log: &str, record: &Record) -> String {
    let (value, encoding) = match std::str::from_utf8(&record.value) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (STANDARD.encode(&record.value), "base64"),
    };
    let line = RecordLine {
        log,
        offset: record.offset,
        timestamp_ms: record.timestamp_ms,
        value,
        encoding,
    };
    to_line(&line)
}

/// The committed `range` of `log` as one JSON line.
pub(crate) fn offsets(log: &str, range: &Range<u64>) -> String {
    to_line(&OffsetsLine { log, lowest_offset: range.start, next_offset: range.end })
}

/// `info` as one JSON line.
pub(crate) fn log_info(info: &LogInfo) -> String {
    let settings = info.settings.unwrap_or_default();
    to_line(&LogLine {
        log: &info.name,
        lowest_offset: info.lowest_offset,
        next_offset: info.next_offset,
        size_bytes: info.size_bytes,
        retention_bytes: settings.retention_bytes,
        retention_ms: settings.retention_ms,
        segment_bytes: settings.segment_bytes,
    })
}

fn to_line(value: &impl Serialize) -> String {
    // Strings, integers and options only: serialising cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}
