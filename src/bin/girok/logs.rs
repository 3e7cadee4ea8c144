//! `girok logs`: list, create, update and delete the named logs of a server.
//!
//! `list` prints every log as a table (see `table`), or with `--json` as JSON lines (see
//! `json`); `create` and `update` print the log as the server holds it afterwards, in the same
//! table; `delete` prints nothing. `--bytes` makes every number in the table exact. A server
//! from before named logs answers these calls `UNIMPLEMENTED`, which is reported as such.

use std::time::Duration;

use clap::Subcommand;
use girok::api::errors::reason;
use girok::client::{ClientError, ClusterClient, LogSettings};
use girok::units::{parse_duration, parse_size};
use tonic::Code;
use tonic_types::StatusExt;

use crate::table::{self, Units};
use crate::{CliError, Deadline, json, out};

/// A `girok logs` subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum LogsCommand {
    /// Prints every log, sorted by name: NAME LOWEST NEXT SIZE RETENTION-BYTES RETENTION-AGE
    /// SEGMENT-BYTES, after a header line. A setting never given prints as `-` (the server's
    /// default applies).
    List {
        /// One JSON object per log instead of the table: `log`, `lowest_offset`, `next_offset`,
        /// `size_bytes`, and each of `retention_bytes`, `retention_ms`, `segment_bytes` that was
        /// given.
        #[arg(long)]
        json: bool,
    },
    /// Creates the log NAME; settings not given follow the server's defaults.
    Create {
        /// The log's name: 1-200 characters of A-Z a-z 0-9 . _ -
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Changes the settings given of the log NAME; the others stay. Takes effect at once.
    Update {
        /// The log's name.
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Deletes the log NAME and all its records. `default` cannot be deleted.
    Delete {
        /// The log's name.
        name: String,
    },
}

/// A log's settings as flags; each one absent leaves the setting alone.
#[derive(Debug, clap::Args)]
pub(crate) struct SettingsArgs {
    /// Delete the oldest sealed segments while the log holds more than SIZE of records (e.g.
    /// 10GiB, or a plain byte count; 0 = unlimited).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    retention_bytes: Option<u64>,
    /// Delete sealed segments whose newest record is older than DURATION (e.g. 7d, 90m; a unit
    /// is required; 0 = unlimited).
    #[arg(long, value_name = "DURATION", value_parser = parse_age)]
    retention_age: Option<u64>,
    /// Roll the log's segments over past SIZE of records (e.g. 64MiB, or a plain byte count).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    segment_bytes: Option<u64>,
}

impl From<SettingsArgs> for LogSettings {
    fn from(args: SettingsArgs) -> Self {
        LogSettings {
            retention_bytes: args.retention_bytes,
            retention_ms: args.retention_age,
            segment_bytes: args.segment_bytes,
        }
    }
}

/// Runs `command` against the server, printing in `units`.
pub(crate) async fn run(
    client: &ClusterClient,
    deadline: &Deadline,
    command: LogsCommand,
    units: Units,
) -> Result<(), CliError> {
    let as_json = matches!(command, LogsCommand::List { json: true });
    // The logs to print, if the command prints any.
    let outcome = match command {
        LogsCommand::List { .. } => deadline.call(client.list_logs()).await.map(Some),
        LogsCommand::Create { name, settings } => {
            let created = deadline.call(client.create_log(name, settings.into())).await;
            created.map(|log| Some(vec![log]))
        }
        LogsCommand::Update { name, settings } => {
            let updated = deadline.call(client.update_log(name, settings.into())).await;
            updated.map(|log| Some(vec![log]))
        }
        LogsCommand::Delete { name } => deadline.call(client.delete_log(name)).await.map(|()| None),
    };
    match outcome {
        Ok(Some(logs)) if as_json => logs.iter().try_for_each(|log| out::line(json::log_info(log))),
        Ok(Some(logs)) => out::bytes(table::render(&logs, units).as_bytes()),
        Ok(None) => Ok(()),
        Err(CliError::Client(err)) if is_default_log(&err) => Err(CliError::DefaultLog),
        Err(CliError::Client(err)) if err.code() == Some(Code::Unimplemented) => {
            Err(CliError::NoNamedLogs { addr: deadline.addr.clone() })
        }
        Err(err) => Err(err),
    }
}

/// Whether `err` is the server refusing to delete the `default` log.
fn is_default_log(err: &ClientError) -> bool {
    let ClientError::Status(status) = err else { return false };
    status.code() == Code::FailedPrecondition
        && status
            .get_error_details()
            .error_info()
            .is_some_and(|info| info.reason == reason::DEFAULT_LOG)
}

/// `--retention-age`: a duration with a unit, in milliseconds (the wire's unit, rounded down);
/// `0` is unlimited. A plain number other than 0 is refused: seconds or milliseconds would be a
/// guess.
fn parse_age(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => return Ok(0),
        Ok(_) => {
            return Err(format!("{text:?} has no unit: use e.g. 7d, 12h or 90m (0 = unlimited)"));
        }
        Err(_) => {}
    }
    let age = parse_duration(text, Duration::from_millis(1))?;
    match u64::try_from(age.as_millis()) {
        Ok(0) => Err(format!("{text:?} is under a millisecond, and 0 would mean unlimited")),
        Ok(ms) => Ok(ms),
        Err(_) => Err(format!("{text:?} is too long")),
    }
}
