//! One WAL segment file: entries `first..` as frames after a small header.
//!
//! Named `{first:020}.wal` (the index of its first entry, zero-padded so names sort by index).
//!
//! | bytes | field                                                    |
//! | ----- | -------------------------------------------------------- |
//! | 0..8  | magic and version `GRKWAL01`                             |
//! | 8..   | frames (see `frame`), indexes dense from `first`         |
//!
//! The positions of its frames are kept in memory (rebuilt by a scan at open), so a read is one
//! positional read. Only the last segment of a WAL is written; the others are sealed and were
//! fdatasynced when the next one was created.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::error::{Result, WalError};
use super::frame::{self, Entry, HEADER, Header};
use crate::storage::disk::fs::{FileOpener, SegmentFile};

const MAGIC: &[u8; 8] = b"GRKWAL01";
const FILE_HEADER: u64 = MAGIC.len() as u64;

/// Where one entry's frame sits.
#[derive(Clone, Copy, Debug)]
struct Slot {
    pos: u64,
    len: u32,
    term: u64,
}

/// An open segment.
#[derive(Debug)]
pub(super) struct Segment {
    /// The index of its first entry (from its name).
    pub(super) first: u64,
    pub(super) path: PathBuf,
    /// Shared with the syncer, which fdatasyncs it outside the WAL's lock.
    file: Arc<dyn SegmentFile>,
    /// `slots[i]` is entry `first + i`.
    slots: Vec<Slot>,
    /// Bytes written: where the next frame goes.
    size: u64,
}

/// The file name of the segment starting at `first`.
pub(super) fn file_name(first: u64) -> String {
    format!("{first:020}.wal")
}

/// The first index a segment file name stands for, if it is one.
pub(super) fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

impl Segment {
    /// Creates an empty segment starting at `first` (not synced: the caller syncs the directory).
    pub(super) fn create(dir: &Path, first: u64, files: &dyn FileOpener) -> Result<Self> {
        let path = dir.join(file_name(first));
        let file: Arc<dyn SegmentFile> = Arc::from(files.open(&path, true)?);
        file.set_len(0)?;
        file.write_all_at(MAGIC, 0)?;
        Ok(Self { first, path, file, slots: Vec::new(), size: FILE_HEADER })
    }

    /// Opens the segment starting at `first` and scans its frames. A tail that is not a whole,
    /// valid frame continuing the indexes is a torn write: when `last` is set it is cut off (and
    /// the cut synced); in a sealed segment it is corruption.
    pub(super) fn open(dir: &Path, first: u64, files: &dyn FileOpener, last: bool) -> Result<Self> {
        let path = dir.join(file_name(first));
        let file: Arc<dyn SegmentFile> = Arc::from(files.open(&path, false)?);
        let len = file.size()?;
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)?;
        let corrupt = |what: String| WalError::Corrupt(format!("{}: {what}", path.display()));
        if bytes.len() < MAGIC.len() {
            // Created and never synced: a crash may leave it empty or with part of its header.
            if !last || bytes.iter().any(|&b| b != 0) && !MAGIC.starts_with(&bytes) {
                return Err(corrupt("no header".into()));
            }
            file.set_len(0)?;
            file.write_all_at(MAGIC, 0)?;
            file.sync_data()?;
            return Ok(Self { first, path, file, slots: Vec::new(), size: FILE_HEADER });
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a WAL segment (bad magic)".into()));
        }
        let mut slots = Vec::new();
        let mut pos = FILE_HEADER as usize;
        while pos + HEADER <= bytes.len() {
            let head = Header::new(bytes[pos..pos + HEADER].try_into().expect("header"));
            let end = pos + HEADER + head.len() as usize;
            if end > bytes.len()
                || !head.checks(&bytes[pos + HEADER..end])
                || head.index() != first + slots.len() as u64
            {
                break;
            }
            slots.push(Slot { pos: pos as u64, len: head.len(), term: head.term() });
            pos = end;
        }
        if pos < bytes.len() {
            if !last {
                return Err(corrupt(format!("damaged frame at byte {pos} of a sealed segment")));
            }
            file.set_len(pos as u64)?;
            file.sync_data()?;
        }
        Ok(Self { first, path, file, slots, size: pos as u64 })
    }

    /// The index after its last entry.
    pub(super) fn next(&self) -> u64 {
        self.first + self.slots.len() as u64
    }

    /// Its bytes on disk.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// The term of entry `index`, which it must hold.
    pub(super) fn term(&self, index: u64) -> u64 {
        self.slots[(index - self.first) as usize].term
    }

    /// The file, for a sync outside the WAL's lock.
    pub(super) fn file(&self) -> Arc<dyn SegmentFile> {
        self.file.clone()
    }

    /// Writes the frames of `entries`, which continue this segment.
    pub(super) fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let mut buf = Vec::new();
        let mut slots = Vec::with_capacity(entries.len());
        for entry in entries {
            debug_assert_eq!(entry.index, self.next() + slots.len() as u64);
            let pos = self.size + buf.len() as u64;
            frame::encode(entry, &mut buf);
            slots.push(Slot { pos, len: entry.payload.len() as u32, term: entry.term });
        }
        self.file.write_all_at(&buf, self.size)?;
        self.size += buf.len() as u64;
        self.slots.extend(slots);
        Ok(())
    }

    /// Reads entry `index`, which it must hold.
    pub(super) fn read(&self, index: u64) -> Result<Entry> {
        let slot = self.slots[(index - self.first) as usize];
        let mut payload = vec![0u8; slot.len as usize];
        self.file.read_exact_at(&mut payload, slot.pos + HEADER as u64)?;
        Ok(Entry { index, term: slot.term, payload: Bytes::from(payload) })
    }

    /// Cuts entries `from..` off (the file shrinks) and syncs the cut.
    pub(super) fn truncate_from(&mut self, from: u64) -> Result<()> {
        debug_assert!(from > self.first && from <= self.next());
        let keep = (from - self.first) as usize;
        let size = self.slots.get(keep).map_or(self.size, |slot| slot.pos);
        self.file.set_len(size)?;
        self.file.sync_data()?;
        self.slots.truncate(keep);
        self.size = size;
        Ok(())
    }

    /// Makes everything written durable.
    pub(super) fn sync(&self) -> Result<()> {
        Ok(self.file.sync_data()?)
    }
}
