//! [`Retention`]: the rules by which a log deletes its oldest records, and [`Enforced`], what
//! one pass of them did (see [`CommitLog::enforce_retention`](super::CommitLog::enforce_retention)).
//!
//! Retention works in whole segments: a log deletes its sealed segments oldest first, never the
//! active one, while it holds more than `max_bytes` or while the oldest one's newest record is
//! older than `max_age_ms`.

/// How much of its past a log keeps; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Sealed segments are deleted, oldest first, while the log holds more bytes than this
    /// ([`CommitLog::size_bytes`](super::CommitLog::size_bytes)).
    pub max_bytes: Option<u64>,
    /// Sealed segments whose newest record is older than this many milliseconds are deleted,
    /// and the active segment is rolled once its oldest record is.
    pub max_age_ms: Option<u64>,
}

impl Retention {
    /// Keeps everything.
    pub const UNLIMITED: Self = Self { max_bytes: None, max_age_ms: None };

    /// Whether nothing is ever deleted.
    pub fn is_unlimited(&self) -> bool {
        self.max_bytes.is_none() && self.max_age_ms.is_none()
    }

    /// Whether a record stamped `timestamp_ms` is past the age limit at `now_ms`.
    pub fn too_old(&self, timestamp_ms: u64, now_ms: u64) -> bool {
        self.max_age_ms.is_some_and(|age| now_ms.saturating_sub(timestamp_ms) > age)
    }

    /// Whether a log holding `bytes` holds more than the size limit.
    pub fn too_large(&self, bytes: u64) -> bool {
        self.max_bytes.is_some_and(|max| bytes > max)
    }
}

/// What one pass of retention did to a log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Enforced {
    /// Whether the active segment was rolled because its oldest record was too old.
    pub rolled: bool,
    /// How many sealed segments were deleted.
    pub deleted_segments: usize,
    /// The store bytes they held.
    pub deleted_bytes: u64,
    /// The log's lowest offset afterwards.
    pub lowest: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_passed_only_strictly() {
        // A log at exactly its size or a record at exactly its age is kept.
        let rules = Retention { max_bytes: Some(100), max_age_ms: Some(10) };
        assert!(!rules.too_large(100) && rules.too_large(101));
        assert!(!rules.too_old(990, 1000) && rules.too_old(989, 1000));
        assert!(!rules.too_old(2000, 1000), "a clock stepped back keeps everything");
        assert!(!Retention::UNLIMITED.too_large(u64::MAX) && Retention::UNLIMITED.is_unlimited());
    }
}
