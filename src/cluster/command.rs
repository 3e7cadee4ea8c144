//! What a Raft entry asks of the state machine ([`Command`]) and what applying it answered
//! ([`Applied`]).
//!
//! Every change to the named logs goes through one of these, decided on the leader and applied
//! identically on every node: the leader stamps the time into an append, so every node stores
//! the same timestamps, and a refusal that depends only on the replicated state (a log that
//! exists already, the `default` log) is an [`Applied::Refused`] everywhere alike. What depends on
//! one node's machine (a full disk, a failed sync) is never an answer: the node stops applying.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::logs::LogSettings;

/// A change to the named logs, as one Raft entry carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Appends `values` to `log` as one batch stamped `timestamp_ms` (or the log's last
    /// timestamp, if later); creates the log first when `create` and it does not exist.
    Append {
        /// The log's name.
        log: String,
        /// The Raft index that created the log the proposer appended to (0 for `default`):
        /// the append is refused if that log was deleted since, even if another of the same name
        /// exists. `None` for an append that may create the log.
        incarnation: Option<u64>,
        /// Whether an unknown log is created (auto-create) rather than refused.
        create: bool,
        /// The leader's clock when it proposed the batch.
        timestamp_ms: u64,
        /// The records' values, in order.
        values: Vec<Bytes>,
    },
    /// Creates `log` with `settings`.
    Create {
        /// The log's name.
        log: String,
        /// Its settings.
        #[serde(with = "settings_wire")]
        settings: LogSettings,
        /// The leader's clock when it proposed the creation.
        created_ms: u64,
    },
    /// Replaces the settings present in `settings`.
    Update {
        /// The log's name.
        log: String,
        /// The settings to change.
        #[serde(with = "settings_wire")]
        settings: LogSettings,
    },
    /// Deletes `log` and its records.
    Delete {
        /// The log's name.
        log: String,
    },
}

impl Command {
    /// The log the command is about.
    pub fn log(&self) -> &str {
        match self {
            Command::Append { log, .. }
            | Command::Create { log, .. }
            | Command::Update { log, .. }
            | Command::Delete { log } => log,
        }
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Append { log, values, .. } => write!(f, "append {} to {log:?}", values.len()),
            Command::Create { log, .. } => write!(f, "create {log:?}"),
            Command::Update { log, .. } => write!(f, "update {log:?}"),
            Command::Delete { log } => write!(f, "delete {log:?}"),
        }
    }
}

/// [`LogSettings`] in a form postcard can carry: `log.json` leaves absent settings out, which
/// only a self-describing format can read back; here every field is always written.
pub(crate) mod settings_wire {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::logs::LogSettings;

    type Wire = (Option<u64>, Option<u64>, Option<u64>);

    pub(crate) fn serialize<S: Serializer>(
        settings: &LogSettings,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let wire: Wire = (settings.retention_bytes, settings.retention_ms, settings.segment_bytes);
        wire.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LogSettings, D::Error> {
        let (retention_bytes, retention_ms, segment_bytes) = Wire::deserialize(d)?;
        Ok(LogSettings { retention_bytes, retention_ms, segment_bytes })
    }
}

/// What applying a [`Command`] answered; the leader hands it back to the RPC that proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// Not a command (a blank or membership entry), or one that changes nothing to report.
    Done,
    /// The records of an `Append` got the offsets `[first, first + count)`.
    Appended {
        /// The first record's offset.
        first: u64,
        /// How many records.
        count: u64,
    },
    /// The command was refused, identically on every node; nothing changed.
    Refused(Refusal),
}

/// Why a command was refused: the replicated state decided it, so every node agrees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// The log does not exist.
    NotFound {
        /// Its name.
        log: String,
    },
    /// A log of that name exists.
    Exists {
        /// Its name.
        log: String,
    },
    /// The `default` log cannot be deleted.
    DefaultLog,
    /// The log has run out of offsets.
    OffsetsExhausted {
        /// Its next offset.
        next: u64,
    },
}

impl From<Refusal> for crate::logs::Error {
    fn from(refusal: Refusal) -> Self {
        use crate::logs::Error;
        use crate::storage;
        match refusal {
            Refusal::NotFound { log } => Error::NotFound { log },
            Refusal::Exists { log } => Error::Exists { log },
            Refusal::DefaultLog => Error::DefaultLog,
            Refusal::OffsetsExhausted { next } => {
                Error::Storage(storage::Error::OffsetsExhausted { next })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_postcard() {
        let command = Command::Append {
            log: "orders".into(),
            incarnation: None,
            create: true,
            timestamp_ms: 1_700_000_000_000,
            values: vec![Bytes::from_static(b"a"), Bytes::new()],
        };
        let bytes = postcard::to_allocvec(&command).unwrap();
        assert_eq!(postcard::from_bytes::<Command>(&bytes).unwrap(), command);
        let create = Command::Create {
            log: "orders".into(),
            settings: LogSettings { segment_bytes: Some(4096), ..LogSettings::default() },
            created_ms: 7,
        };
        let bytes = postcard::to_allocvec(&create).unwrap();
        assert_eq!(postcard::from_bytes::<Command>(&bytes).unwrap(), create);
        let applied = Applied::Refused(Refusal::Exists { log: "orders".into() });
        let bytes = postcard::to_allocvec(&applied).unwrap();
        assert_eq!(postcard::from_bytes::<Applied>(&bytes).unwrap(), applied);
    }
}
