//! The offline scan behind `girok verify`: checks every frame's CRC and offset in a data
//! directory without changing anything, and says what it found.
//!
//! Corruption is a damaged or missing record anywhere but the tail of the last segment, or a
//! store header that is not girok's. A torn tail on the last segment (bytes after its last valid
//! frame) is what a crash leaves behind; it is reported but is not corruption: the next open cuts
//! it. So is a last segment whose creation was cut short (an empty or all-zero store file).

use std::fmt;
use std::ops::Range;
use std::path::Path;

use super::dir::{list_bases, store_path};
use super::fs::open_read_only;
use super::recovery::is_unborn;
use super::scan::{all_zeros, scan};
use super::store::{STORE_HEADER_BYTES, check_header};
use crate::storage::Result;

/// What `verify` found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentReport {
    /// The segment's base offset.
    pub base: u64,
    /// Valid records found.
    pub records: u64,
    /// Payload bytes in the valid records.
    pub payload_bytes: u64,
    /// Offsets whose records are damaged or missing.
    pub corrupt: Vec<Range<u64>>,
    /// Bytes after the last valid frame of the last segment (a torn tail, cut on next open).
    pub torn_tail_bytes: u64,
    /// Whether those bytes are all zeros: space preallocated under `fsync=always` (a live or
    /// crashed log has it), or a write that never reached the disk.
    pub tail_is_zeros: bool,
    /// Why the store file itself cannot be read, if it cannot.
    pub header_error: Option<String>,
}

impl SegmentReport {
    /// Whether the segment is free of corruption.
    pub fn is_ok(&self) -> bool {
        self.corrupt.is_empty() && self.header_error.is_none()
    }
}

/// What `verify` found in a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// One report per segment, in offset order.
    pub segments: Vec<SegmentReport>,
}

impl VerifyReport {
    /// Whether no segment is corrupt.
    pub fn is_ok(&self) -> bool {
        self.segments.iter().all(SegmentReport::is_ok)
    }

    /// Valid records in all segments.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }
}

/// Scans every segment of the data directory `dir`, read-only.
pub fn verify(dir: &Path) -> Result<VerifyReport> {
    let (bases, _) = list_bases(dir)?;
    let mut report = VerifyReport::default();
    for (i, &base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        report.segments.push(verify_segment(dir, base, next_base)?);
    }
    Ok(report)
}

fn verify_segment(dir: &Path, base: u64, next_base: Option<u64>) -> Result<SegmentReport> {
    let file = open_read_only(&store_path(dir, base))?;
    let len = file.size()?;
    let mut report = SegmentReport {
        base,
        records: 0,
        payload_bytes: 0,
        corrupt: Vec::new(),
        torn_tail_bytes: 0,
        tail_is_zeros: false,
        header_error: None,
    };
    let mut header = [0u8; STORE_HEADER_BYTES as usize];
    let header_ok = match len {
        l if l < STORE_HEADER_BYTES => Err("shorter than a store header".to_string()),
        _ => file.read_exact_at(&mut header, 0).map_err(|e| e.to_string()),
    };
    if let Err(why) = header_ok.and_then(|()| check_header(&header, base)) {
        if next_base.is_none() && is_unborn(file.as_ref())? {
            // A crash while the last segment was being created; the next open recreates it.
            report.torn_tail_bytes = len;
            return Ok(report);
        }
        report.header_error = Some(why);
        if let Some(next) = next_base {
            report.corrupt.push(base..next);
        }
        return Ok(report);
    }
    let expected = next_base.map_or(u64::MAX, |next| next - base);
    let found = scan(file.as_ref(), STORE_HEADER_BYTES, len, base, expected)?;
    let scanned = found.next_offset(base);
    report.records =
        found.positions.len() as u64 - found.corrupt.iter().map(|r| r.end - r.start).sum::<u64>();
    report.payload_bytes = found.payload_bytes;
    report.corrupt = found.corrupt;
    match next_base {
        Some(next) => {
            if scanned < next {
                report.corrupt.push(scanned..next);
            } else if found.valid_end < len {
                report.header_error = Some(format!(
                    "{} unexpected bytes after the last record",
                    len - found.valid_end
                ));
            }
        }
        None => {
            report.torn_tail_bytes = len - found.valid_end;
            report.tail_is_zeros = all_zeros(file.as_ref(), found.valid_end, len)?;
        }
    }
    Ok(report)
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            write!(
                f,
                "segment {:020}: {} records, {} payload bytes",
                s.base, s.records, s.payload_bytes
            )?;
            if let Some(why) = &s.header_error {
                write!(f, "; CORRUPT: {why}")?;
            }
            for r in &s.corrupt {
                write!(f, "; CORRUPT offsets [{}, {})", r.start, r.end)?;
            }
            match s.torn_tail_bytes {
                0 => {}
                n if s.tail_is_zeros => write!(
                    f,
                    "; {n} zero bytes after the last record (preallocated space, cut on next open)"
                )?,
                n => write!(f, "; torn tail of {n} bytes (cut on next open)")?,
            }
            writeln!(f)?;
        }
        let corrupt = self.segments.iter().filter(|s| !s.is_ok()).count();
        write!(
            f,
            "{} segments, {} records: {}",
            self.segments.len(),
            self.records(),
            if corrupt == 0 { "OK".to_string() } else { format!("{corrupt} segments CORRUPT") }
        )
    }
}
