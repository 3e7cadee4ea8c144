//! A log's settings and the metadata stored with it (`log.json` in its directory).

use serde::{Deserialize, Serialize};

/// The settings a log was given. An absent field follows the server's default; for the
/// retention fields `0` means unlimited. Stored as given: a setting never given stays absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettings {
    /// Sealed segments are deleted, oldest first, while the log holds more bytes than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_bytes: Option<u64>,
    /// Sealed segments whose newest record is older than this many milliseconds are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<u64>,
    /// A segment's store file rolls over past this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
}

/// The smallest `segment_bytes` a log accepts: a store's header and one small frame.
pub const MIN_SEGMENT_BYTES: u64 = 64;

impl LogSettings {
    /// These settings with every field present in `changes` replaced.
    pub fn merged(self, changes: LogSettings) -> LogSettings {
        LogSettings {
            retention_bytes: changes.retention_bytes.or(self.retention_bytes),
            retention_ms: changes.retention_ms.or(self.retention_ms),
            segment_bytes: changes.segment_bytes.or(self.segment_bytes),
        }
    }

    /// Checks the values; on failure names the field (`segment_bytes`) and says why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match self.segment_bytes {
            Some(bytes) if bytes < MIN_SEGMENT_BYTES => Err((
                "segment_bytes",
                format!("segment_bytes must be at least {MIN_SEGMENT_BYTES}, not {bytes}"),
            )),
            _ => Ok(()),
        }
    }
}

/// What is stored with a log: when it was created and its settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMeta {
    /// Milliseconds since the Unix epoch at which the log was created.
    pub created_ms: u64,
    /// The settings as given.
    #[serde(default)]
    pub settings: LogSettings,
    /// In a cluster, the index of the Raft entry that created the log: it tells one log of a
    /// name from another created after it was deleted, when entries are applied again after a
    /// restart. Absent outside a cluster, and for `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_index: Option<u64>,
}

impl LogMeta {
    /// The metadata of a log created now with `settings`.
    pub fn new(settings: LogSettings) -> Self {
        Self { created_ms: crate::storage::next_timestamp(0), settings, raft_index: None }
    }

    /// The bytes of `log.json`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).expect("metadata always serializes");
        json.push(b'\n');
        json
    }

    /// Parses `log.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|err| err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_replaces_only_the_settings_given() {
        let stored = LogSettings { retention_bytes: Some(10), ..LogSettings::default() };
        let changes = LogSettings { retention_ms: Some(5), ..LogSettings::default() };
        assert_eq!(
            stored.merged(changes),
            LogSettings { retention_bytes: Some(10), retention_ms: Some(5), segment_bytes: None }
        );
        let zero = LogSettings { retention_bytes: Some(0), ..LogSettings::default() };
        assert_eq!(stored.merged(zero).retention_bytes, Some(0), "0 (unlimited) is a value");
    }

    #[test]
    fn metadata_round_trips_and_absent_settings_stay_absent() {
        let meta = LogMeta {
            created_ms: 1_700_000_000_000,
            settings: LogSettings { segment_bytes: Some(4096), ..LogSettings::default() },
            raft_index: None,
        };
        let json = meta.to_json();
        assert!(!String::from_utf8_lossy(&json).contains("retention"));
        assert_eq!(LogMeta::from_json(&json).unwrap(), meta);
        assert!(LogMeta::from_json(b"{").is_err());
    }

    #[test]
    fn a_segment_smaller_than_a_frame_is_refused() {
        let tiny = LogSettings { segment_bytes: Some(10), ..LogSettings::default() };
        assert_eq!(tiny.validate().unwrap_err().0, "segment_bytes");
        assert!(LogSettings::default().validate().is_ok());
    }
}
