//! The WAL's small crash-safe metadata file, `meta`: what Raft must keep beside its log.
//!
//! Saved whole, crash-atomically: written to `meta.tmp`, fdatasynced, renamed over `meta`, and
//! the directory fsynced, so after a crash `meta` is either the old or the new version, never a
//! mix. Every save is durable before it returns.
//!
//! | bytes   | field                                                          |
//! | ------- | -------------------------------------------------------------- |
//! | 0..8    | magic `GRKRMETA`                                               |
//! | 8..12   | format version, u32 LE (1)                                     |
//! | 12..16  | body length `n`, u32 LE                                        |
//! | 16..20  | CRC-32C of the body, u32 LE                                    |
//! | 20..    | body: the fields below in order                                |
//!
//! Body: node id (u64); cluster id (u32 length + bytes); vote (u8 0/1, then u32 length + bytes);
//! committed (u8 0/1, then index u64 + term u64); purged (the same shape); pending truncation
//! (u8 0/1, then u64). Integers are little-endian.

use std::io;
use std::path::Path;

use bytes::Bytes;

use super::error::{Result, WalError};
use super::frame::LogId;
use crate::storage::disk::fs::{DirSyncError, FileOpener};

const MAGIC: &[u8; 8] = b"GRKRMETA";
const VERSION: u32 = 1;
/// The file's name in the WAL directory.
pub(super) const FILE: &str = "meta";
const TMP: &str = "meta.tmp";

/// What the Raft node keeps beside its log; saved with [`Wal::save_meta`](super::Wal::save_meta).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// This node's id (0 until set).
    pub node_id: u64,
    /// The cluster this node belongs to (empty until set).
    pub cluster_id: Bytes,
    /// The last vote, encoded by the Raft layer (term, voted-for, committed flag).
    pub vote: Option<Bytes>,
    /// The last committed log id the Raft layer reported.
    pub committed: Option<LogId>,
}

/// The whole file: the Raft layer's [`Meta`] and the WAL's own bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Stored {
    pub(super) meta: Meta,
    /// The log's first index: where it was created, or right after the last purge.
    pub(super) start: u64,
    /// The last purged entry: the log starts right after it.
    pub(super) purged: Option<LogId>,
    /// A truncation begun and not known to be complete: entries from this index on are gone.
    pub(super) truncate_from: Option<u64>,
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_id(out: &mut Vec<u8>, id: Option<LogId>) {
    match id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            out.extend_from_slice(&id.index.to_le_bytes());
            out.extend_from_slice(&id.term.to_le_bytes());
        }
    }
}

impl Stored {
    fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&self.start.to_le_bytes());
        body.extend_from_slice(&self.meta.node_id.to_le_bytes());
        put_bytes(&mut body, &self.meta.cluster_id);
        match &self.meta.vote {
            None => body.push(0),
            Some(vote) => {
                body.push(1);
                put_bytes(&mut body, vote);
            }
        }
        put_id(&mut body, self.meta.committed);
        put_id(&mut body, self.purged);
        match self.truncate_from {
            None => body.push(0),
            Some(from) => {
                body.push(1);
                body.extend_from_slice(&from.to_le_bytes());
            }
        }
        let mut out = Vec::with_capacity(20 + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = |what: &str| WalError::Corrupt(format!("{FILE}: {what}"));
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err(bad("no magic"));
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4"));
        if version != VERSION {
            return Err(bad(&format!("unknown version {version}")));
        }
        let len = u32::from_le_bytes(bytes[12..16].try_into().expect("4")) as usize;
        let sum = u32::from_le_bytes(bytes[16..20].try_into().expect("4"));
        let body = bytes.get(20..20 + len).ok_or_else(|| bad("short"))?;
        if crc32c::crc32c(body) != sum {
            return Err(bad("checksum mismatch"));
        }
        let mut r = Reader { bytes: body };
        let start = r.u64()?;
        let node_id = r.u64()?;
        let cluster_id = Bytes::copy_from_slice(r.bytes_field()?);
        let vote = if r.flag()? { Some(Bytes::copy_from_slice(r.bytes_field()?)) } else { None };
        let committed = r.id()?;
        let purged = r.id()?;
        let truncate_from = if r.flag()? { Some(r.u64()?) } else { None };
        Ok(Self {
            meta: Meta { node_id, cluster_id, vote, committed },
            start,
            purged,
            truncate_from,
        })
    }

    /// Reads the file in `dir`; `None` when there is none (a new WAL).
    pub(super) fn load(dir: &Path) -> Result<Option<Self>> {
        match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => Self::decode(&bytes).map(Some),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(crate::storage::error::at(&dir.join(FILE))(err).into()),
        }
    }

    /// Replaces the file in `dir` with `self`, durably and crash-atomically.
    pub(super) fn save(&self, dir: &Path, files: &dyn FileOpener) -> Result<()> {
        let tmp = dir.join(TMP);
        let bytes = self.encode();
        let file = files.open(&tmp, true)?;
        file.set_len(0)?;
        file.write_all_at(&bytes, 0)?;
        file.sync_data()?;
        drop(file);
        std::fs::rename(&tmp, dir.join(FILE)).map_err(crate::storage::error::at(&tmp))?;
        files.sync_dir(dir).map_err(|err| match err {
            DirSyncError::Open(err) | DirSyncError::Sync(err) => WalError::Io(err),
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(WalError::Corrupt(format!("{FILE}: body too short")));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn flag(&mut self) -> Result<bool> {
        Ok(self.take(1)?[0] != 0)
    }

    fn bytes_field(&mut self) -> Result<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().expect("4")) as usize;
        self.take(len)
    }

    fn id(&mut self) -> Result<Option<LogId>> {
        if !self.flag()? {
            return Ok(None);
        }
        Ok(Some(LogId { index: self.u64()?, term: self.u64()? }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::disk::fs::OsFiles;

    #[test]
    fn metadata_saved_is_metadata_loaded_and_a_missing_file_is_empty() {
        // Every field survives a save and a load; a new directory loads as the default.
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Stored::load(dir.path()).unwrap(), None);
        let stored = Stored {
            meta: Meta {
                node_id: 3,
                cluster_id: Bytes::from_static(b"c1"),
                vote: Some(Bytes::from_static(b"vote")),
                committed: Some(LogId { index: 9, term: 2 }),
            },
            start: 5,
            purged: Some(LogId { index: 4, term: 1 }),
            truncate_from: Some(12),
        };
        stored.save(dir.path(), &OsFiles).unwrap();
        assert_eq!(Stored::load(dir.path()).unwrap(), Some(stored));
        assert!(!dir.path().join(TMP).exists());
    }

    #[test]
    fn a_damaged_metadata_file_is_corrupt_not_empty() {
        // A flipped bit must never read as "no vote": that could let the node vote twice.
        let dir = tempfile::tempdir().unwrap();
        let stored = Stored { meta: Meta { node_id: 1, ..Meta::default() }, ..Stored::default() };
        stored.save(dir.path(), &OsFiles).unwrap();
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(Stored::load(dir.path()), Err(WalError::Corrupt(_))));
    }
}
