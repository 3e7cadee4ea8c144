//! The segmented on-disk log (being written).

/// Bytes per index entry.
pub const INDEX_ENTRY_BYTES: u64 = 12;
