//! [`Catalog`]: where the registry keeps its logs — a data directory ([`DataDir`](super::data_dir))
//! or memory ([`MemoryCatalog`]). The registry decides what happens; a catalog only stores.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use super::Result;
use super::name::DEFAULT_LOG;
use super::settings::LogMeta;
use crate::storage::{CommitLog, DiskGroup, LogConfig, MemoryLog};

/// A log a catalog opened, or one it could not open.
pub(crate) struct Opened {
    pub(crate) name: String,
    pub(crate) meta: LogMeta,
    pub(crate) log: Arc<dyn CommitLog>,
    /// Why the log could not be opened; its `log` is then an empty, closed stand-in.
    pub(crate) failed: Option<String>,
}

impl Opened {
    pub(crate) fn new(name: impl Into<String>, meta: LogMeta, log: Arc<dyn CommitLog>) -> Self {
        Self { name: name.into(), meta, log, failed: None }
    }

    /// A stored log that could not be opened: listed, deletable, and unavailable otherwise.
    pub(crate) fn failed(name: impl Into<String>, meta: LogMeta, why: String) -> Self {
        let stand_in = MemoryLog::new(LogConfig::default());
        let _ = stand_in.close();
        Self { name: name.into(), meta, log: Arc::new(stand_in), failed: Some(why) }
    }
}

/// Stores logs and their metadata. Calls block (file I/O) and are serialized by the registry.
pub(crate) trait Catalog: Send + Sync + Debug {
    /// Opens every stored log; `default` among them, created if it was missing.
    fn open_all(&self) -> Result<Vec<Opened>>;
    /// Stores a new log: once this returns, it survives a crash; if it fails, nothing of it is
    /// left behind.
    fn create(&self, name: &str, meta: &LogMeta) -> Result<Arc<dyn CommitLog>>;
    /// Replaces a log's stored metadata, atomically.
    fn save(&self, name: &str, meta: &LogMeta) -> Result<()>;
    /// Removes a log that has been closed: once this returns, it is gone for good; a crash
    /// before leaves it whole. Its space may be reclaimed later, by [`purge`](Self::purge).
    fn remove(&self, name: &str) -> Result<()>;
    /// Reclaims the space of removed logs; best effort (what it leaves, the next open takes).
    fn purge(&self) {}
    /// Opens a stored log again (after a removal that failed).
    fn reopen(&self, name: &str, meta: &LogMeta) -> Result<Arc<dyn CommitLog>>;
    /// The disk group the logs share (their free-space floor and roll signal); `None` for logs
    /// kept in memory.
    fn group(&self) -> Option<&DiskGroup> {
        None
    }
}

/// Logs kept in memory: nothing survives the process. One log may be given, under a name.
pub(crate) struct MemoryCatalog {
    config: LogConfig,
    given: Mutex<Option<(String, Arc<dyn CommitLog>)>>,
}

impl std::fmt::Debug for MemoryCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCatalog").field("config", &self.config).finish_non_exhaustive()
    }
}

impl MemoryCatalog {
    pub(crate) fn new(config: LogConfig, given: Option<(String, Arc<dyn CommitLog>)>) -> Self {
        Self { config, given: Mutex::new(given) }
    }

    fn new_log(&self) -> Arc<dyn CommitLog> {
        Arc::new(MemoryLog::new(self.config.clone()))
    }
}

impl Catalog for MemoryCatalog {
    fn open_all(&self) -> Result<Vec<Opened>> {
        let meta = LogMeta::new(Default::default());
        let mut opened = Vec::new();
        if let Some((name, log)) = self.given.lock().unwrap_or_else(|e| e.into_inner()).take() {
            opened.push(Opened::new(name, meta, log));
        }
        if !opened.iter().any(|o| o.name == DEFAULT_LOG) {
            opened.push(Opened::new(DEFAULT_LOG, meta, self.new_log()));
        }
        Ok(opened)
    }

    fn create(&self, _name: &str, _meta: &LogMeta) -> Result<Arc<dyn CommitLog>> {
        Ok(self.new_log())
    }

    fn save(&self, _name: &str, _meta: &LogMeta) -> Result<()> {
        Ok(())
    }

    fn remove(&self, _name: &str) -> Result<()> {
        Ok(())
    }

    fn reopen(&self, name: &str, meta: &LogMeta) -> Result<Arc<dyn CommitLog>> {
        self.create(name, meta)
    }
}
