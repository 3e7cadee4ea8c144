//! `girok verify`: the offline, read-only check of a data directory, log by log.
//!
//! The logs are the directories under `DATA/logs/`, checked in name (byte) order. In a data
//! directory written before named logs, which no server has opened since, the segment files sit
//! at the top level of `DATA`: they are checked first, as `default`. `DATA/.staging/` and
//! `DATA/.trash/` are the server's scratch space and are not checked; neither is a `log.json`.
//!
//! Each log's report is the one [`girok::storage::disk::verify`] gives, under a `log NAME` line.
//! A last line sums up every log and ends in `: OK` when all are clean.
//!
//! Exit status: 0 when every log is free of corruption (no logs at all is fine), 1 when any log
//! is corrupt, 2 when none is but something could not be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use girok::client::DEFAULT_LOG;
use girok::storage::disk::{VerifyReport, verify};

/// One log to check.
struct LogDir {
    name: String,
    /// What its report is headed with, after `log `.
    label: String,
    dir: PathBuf,
}

/// Checks every log of the data directory `data`, printing each report and a summary, and
/// answers the exit status.
pub(crate) fn run(data: &Path) -> ExitCode {
    if !data.is_dir() {
        eprintln!("girok: {} is not a directory", data.display());
        return ExitCode::from(2);
    }
    let mut summary = Summary::default();
    let mut logs = Vec::new();
    match named_logs(data) {
        Ok(named) => logs = named,
        Err(err) => {
            eprintln!("girok: cannot list the logs in {}: {err}", data.display());
            summary.unreadable.push("logs/".to_string());
        }
    }
    // A top level without segments is the normal case: it holds no log to report.
    match verify(data) {
        Ok(report) if report.segments.is_empty() => {}
        result => {
            let label = format!("{DEFAULT_LOG} (top level, not yet moved to logs/{DEFAULT_LOG}/)");
            summary.add(&LogDir { name: DEFAULT_LOG.to_string(), label, dir: data.into() }, result);
        }
    }
    for log in &logs {
        summary.add(log, verify(&log.dir));
    }
    println!("{summary}");
    summary.exit_code()
}

/// The directories under `data/logs/`, sorted by name; none when there is no `logs/`.
fn named_logs(data: &Path) -> std::io::Result<Vec<LogDir>> {
    let root = data.join("logs");
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.path().is_dir() {
            names.push(entry.file_name());
        }
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let name_text = name.to_string_lossy().into_owned();
            LogDir { label: name_text.clone(), name: name_text, dir: root.join(name) }
        })
        .collect())
}

/// What the logs checked so far came to.
#[derive(Default)]
struct Summary {
    logs: usize,
    records: u64,
    corrupt: Vec<String>,
    unreadable: Vec<String>,
}

impl Summary {
    /// Prints one log's report (or its error, on stderr) and counts it.
    fn add(&mut self, log: &LogDir, result: girok::storage::Result<VerifyReport>) {
        self.logs += 1;
        match result {
            Ok(report) => {
                println!("log {}\n{report}", log.label);
                self.records += report.records();
                if !report.is_ok() {
                    self.corrupt.push(log.name.clone());
                }
            }
            Err(err) => {
                eprintln!("girok: cannot verify log {} in {}: {err}", log.name, log.dir.display());
                self.unreadable.push(log.name.clone());
            }
        }
    }

    fn exit_code(&self) -> ExitCode {
        if !self.corrupt.is_empty() {
            ExitCode::FAILURE
        } else if !self.unreadable.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} logs, {} records: ", self.logs, self.records)?;
        if self.corrupt.is_empty() && self.unreadable.is_empty() {
            return write!(f, "OK");
        }
        let mut parts = Vec::new();
        if !self.corrupt.is_empty() {
            parts.push(format!("CORRUPT: {}", self.corrupt.join(", ")));
        }
        if !self.unreadable.is_empty() {
            parts.push(format!("UNREADABLE: {}", self.unreadable.join(", ")));
        }
        write!(f, "{}", parts.join("; "))
    }
}
