//! [`LogStore`]: openraft's log storage (`RaftLogStorage` and `RaftLogReader`) over the Raft WAL
//! ([`Wal`]).
//!
//! # Mapping
//!
//! | openraft                       | WAL                                                        |
//! | ------------------------------ | ---------------------------------------------------------- |
//! | entry `log_id.index`           | [`wal::Entry::index`]                                      |
//! | entry `log_id` leader id (term) | [`wal::Entry::term`] (one leader per term: the term is the committed leader id) |
//! | entry payload (`EntryPayload`) | [`wal::Entry::payload`], postcard-encoded                  |
//! | vote                           | [`Meta::vote`], postcard-encoded                           |
//! | committed log id               | [`Meta::committed`]                                        |
//! | last purged log id             | [`Wal::purged`]                                            |
//! | node id, cluster id            | [`Meta::node_id`], [`Meta::cluster_id`]                    |
//!
//! # Durability
//!
//! A vote, a committed id, a truncation and a purge are durable when their call returns (the WAL
//! syncs them before returning). An append's entries are readable when `append` returns; when
//! openraft is told they are *persisted* (the `IOFlushed` callback) depends on [`Durability`]:
//! with [`Durability::Always`] after the WAL's group fdatasync covering them (they survive a power
//! loss); with [`Durability::Never`] at once (they survive a process crash, since they are in the
//! page cache, but not a power loss or kernel crash). The node's `--fsync always` maps to
//! `Always`; `--fsync never` and `--fsync interval` map to `Never`: the interval's periodic sync
//! is not what the callback waits for, so between two syncs an acknowledged entry is as exposed
//! as with `never`. A Raft member that loses acknowledged entries in a power loss may let a
//! majority forget a committed entry, so `Never` trades Raft's safety under power loss for
//! latency; it is for tests and for clusters that accept that.
//!
//! # Threads
//!
//! Every operation that may sync (vote, committed, truncate, purge) and every read (which takes
//! the WAL's lock, held across those syncs) runs on tokio's blocking pool. An append runs on the
//! calling task: see [`LogStore::append`] for why.
//!
//! # An append into an empty log
//!
//! The WAL's indexes are dense from its logical start. openraft never appends past the end of its
//! log: a fresh log starts at index 0, and after a snapshot install openraft purges up to the
//! snapshot first, which moves the start. openraft's conformance suite, however, appends at index
//! 1 or 2 into a fresh store. So an append into a log that holds no entry and begins past its
//! next index starts the log there: the WAL is purged up to the id before the first entry (with
//! the entry's term, the greatest the purged entry could have had), which [`get_log_state`]
//! then reports as the last purged id. An append with a gap into a log that holds entries is an
//! error.
//!
//! [`get_log_state`]: RaftLogStorage::get_log_state

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};

use super::types::{Entry, LogId, TypeConfig, Vote};
use super::wal::{self, Meta, Wal, WalConfig};

/// When an appended entry counts as persisted, for openraft's `IOFlushed` callback. See the
/// module doc for what each survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After the WAL's group fdatasync covering the entry: survives a power loss.
    Always,
    /// As soon as the entry is written to the page cache: survives a process crash only. The
    /// node's `--fsync never` and `--fsync interval` map here.
    Never,
}

/// openraft's log store over a [`Wal`]. Cheap to clone: a clone is the log reader, sharing the
/// WAL.
#[derive(Clone, Debug)]
pub struct LogStore {
    wal: Arc<Wal>,
    durability: Durability,
    /// Serialises read-modify-writes of the metadata (vote, committed, identity), which share one
    /// file and are saved whole. Never held across an `.await`: it is taken inside the blocking
    /// closures only. A poisoned lock is an error, like the WAL's own.
    meta_lock: Arc<Mutex<()>>,
    /// The last committed id openraft reported, not yet saved. openraft awaits
    /// `save_committed` before every apply; a crash-safe metadata save (two syncs and a rename)
    /// each time would cap the commit rate. A saved id only has to be a lower bound (entries up
    /// to it are re-applied at start; later ones are learnt from the leader again), so it is
    /// saved with the next vote and at close.
    committed: Arc<Mutex<Option<wal::LogId>>>,
}

fn invalid(what: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("raft log store: {what}: {err}"))
}

fn to_wal_id(id: &LogId) -> wal::LogId {
    wal::LogId { index: id.index, term: id.leader_id.term }
}

fn from_wal_id(id: wal::LogId) -> LogId {
    LogId::new_term_index(id.term, id.index)
}

/// An openraft entry as the WAL stores it.
fn to_wal(entry: &Entry) -> io::Result<wal::Entry> {
    let payload = postcard::to_allocvec(&entry.payload).map_err(|e| invalid("encode entry", e))?;
    Ok(wal::Entry {
        index: entry.log_id.index,
        term: entry.log_id.leader_id.term,
        payload: Bytes::from(payload),
    })
}

/// The openraft entry a WAL entry stores.
fn from_wal(entry: &wal::Entry) -> io::Result<Entry> {
    let payload = postcard::from_bytes(&entry.payload)
        .map_err(|e| invalid(&format!("decode entry {}", entry.index), e))?;
    Ok(Entry { log_id: LogId::new_term_index(entry.term, entry.index), payload })
}

impl LogStore {
    /// Opens (or creates) the log store in `dir`, recovering the WAL from a crash. Blocking:
    /// call it at start-up or from the blocking pool.
    pub fn open(dir: &Path, durability: Durability) -> io::Result<Self> {
        Self::open_with(dir, durability, WalConfig::default())
    }

    /// [`LogStore::open`] with a WAL configuration (small segments in tests).
    pub fn open_with(dir: &Path, durability: Durability, config: WalConfig) -> io::Result<Self> {
        let wal = Wal::open(dir, config)?;
        Ok(Self {
            wal: Arc::new(wal),
            durability,
            meta_lock: Arc::new(Mutex::new(())),
            committed: Arc::default(),
        })
    }

    /// The durability chosen at open.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The node id and cluster id saved with [`LogStore::save_identity`]: `(0, empty)` for a new
    /// store. Blocking (a short lock, no disk I/O).
    pub fn identity(&self) -> io::Result<(u64, Bytes)> {
        let meta = self.wal.meta()?;
        Ok((meta.node_id, meta.cluster_id))
    }

    /// Saves this node's id and its cluster's id, durably before returning. Blocking: call it at
    /// start-up or from the blocking pool.
    pub fn save_identity(&self, node_id: u64, cluster_id: Bytes) -> io::Result<()> {
        self.update_meta(|meta| {
            meta.node_id = node_id;
            meta.cluster_id = cluster_id;
        })
    }

    /// Makes everything appended durable and closes the WAL when this is the last handle (a
    /// reader clone still alive keeps it open, flushed). Blocking.
    pub fn close(self) -> io::Result<()> {
        self.update_meta(|_| {})?;
        match Arc::try_unwrap(self.wal) {
            Ok(wal) => Ok(wal.close()?),
            Err(shared) => Ok(shared.flush()?),
        }
    }

    /// Reads the metadata, changes it and saves it whole, durably (blocking).
    fn update_meta(&self, change: impl FnOnce(&mut Meta)) -> io::Result<()> {
        let _serial = self.meta_lock.lock().map_err(|_| io::Error::other("meta lock poisoned"))?;
        let mut meta = self.wal.meta()?;
        let pending = *self.committed.lock().map_err(|_| io::Error::other("lock poisoned"))?;
        if pending
            .is_some_and(|pending| meta.committed.is_none_or(|saved| saved.index < pending.index))
        {
            meta.committed = pending;
        }
        change(&mut meta);
        Ok(self.wal.save_meta(&meta)?)
    }

    /// Runs `f` on the blocking pool: it may take the WAL's lock, which syncs hold.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LogStore) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| io::Error::other(format!("raft log store task: {e}")))?
    }

    /// Starts an empty log at `index` when the WAL holds no entry and would continue below it
    /// (see the module doc).
    async fn start_at(&self, index: u64, term: u64) -> io::Result<()> {
        let (first, next) = (self.wal.first_index()?, self.wal.next_index()?);
        if first == next && index > next {
            self.blocking(move |s| Ok(s.wal.purge_upto(wal::LogId { index: index - 1, term })?))
                .await?;
        }
        Ok(())
    }
}

/// The most payload bytes one replication request carries (always at least one entry): a node
/// catching up receives its backlog in requests of this size, each well within the transport's
/// message limit and an append's time limit.
const MAX_APPEND_BYTES: usize = 4 << 20;

/// How many entries a catch-up read takes from the WAL at a time.
const READ_CHUNK: u64 = 32;

impl RaftLogReader<TypeConfig> for LogStore {
    /// The entries of `[start, end)` up to 4 MiB of payload (at least one entry
    /// when any is held): what openraft sends a follower in one request.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, io::Error> {
        self.blocking(move |s| {
            let (mut entries, mut bytes, mut at) = (Vec::new(), 0usize, start);
            while at < end {
                let chunk = s.wal.read(at..end.min(at.saturating_add(READ_CHUNK)))?;
                if chunk.is_empty() {
                    break;
                }
                for entry in &chunk {
                    if !entries.is_empty() && bytes + entry.payload.len() > MAX_APPEND_BYTES {
                        return Ok(entries);
                    }
                    bytes += entry.payload.len();
                    entries.push(from_wal(entry)?);
                    at = entry.index + 1;
                }
            }
            Ok(entries)
        })
        .await
    }

    /// The entries of `range` the log holds: entries purged (below the start) or not yet
    /// appended (past the end) are left out, as openraft allows; the WAL never has a hole within.
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let bounds: (Bound<u64>, Bound<u64>) =
            (range.start_bound().cloned(), range.end_bound().cloned());
        self.blocking(move |s| s.wal.read(bounds)?.iter().map(from_wal).collect()).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.blocking(|s| match s.wal.meta()?.vote {
            Some(bytes) => {
                Ok(Some(postcard::from_bytes(&bytes).map_err(|e| invalid("decode vote", e))?))
            }
            None => Ok(None),
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        self.blocking(|s| {
            Ok(LogState {
                last_purged_log_id: s.wal.purged()?.map(from_wal_id),
                last_log_id: s.wal.last()?.map(from_wal_id),
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let vote = Bytes::from(postcard::to_allocvec(vote).map_err(|e| invalid("encode vote", e))?);
        self.blocking(move |s| s.update_meta(|meta| meta.vote = Some(vote))).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Kept in memory, saved with the next vote or at close (see the field's doc).
        let committed = committed.as_ref().map(to_wal_id);
        *self.committed.lock().map_err(|_| io::Error::other("lock poisoned"))? = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        let pending = *self.committed.lock().map_err(|_| io::Error::other("lock poisoned"))?;
        if let Some(pending) = pending {
            return Ok(Some(from_wal_id(pending)));
        }
        self.blocking(|s| Ok(s.wal.meta()?.committed.map(from_wal_id))).await
    }

    /// Writes the entries on the calling task and completes `callback` per [`Durability`].
    ///
    /// Why not on the blocking pool: the write goes to the page cache and takes the WAL's lock,
    /// which no sync holds while openraft is appending (openraft serialises its writes: no vote
    /// save, truncation or purge of this store runs meanwhile; the group fdatasync runs outside
    /// the lock), so it does not wait on the disk; a hop to the blocking pool would cost more
    /// than the write on this, the hottest path. The exception is a segment roll, once per
    /// `WalConfig::segment_bytes`, which syncs the sealed segment and the directory inline.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries.into_iter().map(|e| to_wal(&e)).collect::<io::Result<Vec<_>>>();
        let encoded = match encoded {
            Ok(encoded) => encoded,
            Err(err) => {
                callback.io_completed(Err(io::Error::new(err.kind(), err.to_string())));
                return Err(err);
            }
        };
        if let Some(first) = encoded.first()
            && let Err(err) = self.start_at(first.index, first.term).await
        {
            callback.io_completed(Err(io::Error::new(err.kind(), err.to_string())));
            return Err(err);
        }
        match self.durability {
            Durability::Always => {
                self.wal.append_then(encoded, move |done| callback.io_completed(done))?;
            }
            Durability::Never => match self.wal.append(encoded) {
                Ok(()) => callback.io_completed(Ok(())),
                Err(err) => {
                    callback.io_completed(Err(io::Error::other(err.to_string())));
                    return Err(err.into());
                }
            },
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let last_kept = last_log_id.map(|id| id.index);
        self.blocking(move |s| Ok(s.wal.truncate_after(last_kept)?)).await
    }

    /// Purges up to `log_id`, inclusive, durably; past the end it empties the log, which then
    /// continues after `log_id` (and reports it as its last id), as after a snapshot install.
    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let upto = to_wal_id(&log_id);
        self.blocking(move |s| Ok(s.wal.purge_upto(upto)?)).await
    }
}

#[cfg(test)]
mod tests;
