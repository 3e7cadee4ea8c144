//! Named logs: [`Logs`], the registry of the logs one server holds, each an independent
//! [`CommitLog`] with its own offsets, settings and directory.
//!
//! | file | owns |
//! |------|------|
//! | `mod.rs` | [`Logs`]: finding, creating (also on first produce), updating and deleting logs |
//! | `activity.rs` | [`Activity`]: a log's append, read and retention counters |
//! | `name.rs` | the naming rules and the `default` log |
//! | `settings.rs` | [`LogSettings`] and the metadata stored with a log |
//! | `catalog.rs` | where logs are kept: the seam between the registry and its storage |
//! | `data_dir.rs` | the data directory: one directory per log, crash-atomic create and delete |
//! | `fs.rs` | the directory seam a test replaces to crash at any step |
//! | `parallel.rs` | opening and closing many logs on a few threads |
//! | `retention.rs` | the thread that applies every log's retention |
//! | `error.rs` | the registry's [`Error`] |
//!
//! # Concurrency
//!
//! The open logs sit in a map behind an `RwLock` that calls hold only to look a name up (a
//! clone of an `Arc`), never across I/O: appends to different logs meet nowhere else, and each
//! log keeps its own group commit. Creating, updating and deleting take a second lock, so that
//! they happen one at a time, in the order the registry answers them; their file work runs under
//! it but outside the map's lock, so lookups go on meanwhile.
//!
//! A deleted log is taken out of the map first, then marked deleted (which ends its tails), then
//! closed (which waits for the append in progress, if any, and refuses later ones), then removed
//! from storage. Anyone still holding its [`LogEntry`] sees [`LogEntry::is_deleted`].

mod activity;
mod catalog;
mod data_dir;
mod error;
#[cfg(feature = "internals")]
pub mod fs;
#[cfg(not(feature = "internals"))]
#[allow(unreachable_pub)]
mod fs;
pub mod name;
mod parallel;
mod retention;
mod settings;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

pub use activity::Activity;
pub use error::{Error, Result};
pub use name::DEFAULT_LOG;
pub use retention::{INTERVAL as RETENTION_INTERVAL, RetentionTask};
pub use settings::{LogMeta, LogSettings, MIN_SEGMENT_BYTES};

use self::catalog::{Catalog, MemoryCatalog, Opened};
use self::data_dir::DataDir;
use self::fs::{DirOps, OsDirs};
use crate::storage::{CommitLog, DiskConfig, LogConfig, NoEvents, Retention, StorageEvents};

/// How the registry treats logs nobody created explicitly, and how many it holds.
#[derive(Clone, Debug)]
pub struct LogsConfig {
    /// A produce to an unknown log creates it with default settings. Default true.
    pub auto_create: bool,
    /// The most logs the registry holds, `default` included. Default 10,000.
    pub max_logs: usize,
    /// Told of every disk log's syncs and appended batches. Default [`NoEvents`].
    pub events: Arc<dyn StorageEvents>,
    /// The retention of logs whose settings leave it absent. Default unlimited.
    pub retention: Retention,
    /// Appends are refused while the data volume has less free than this many bytes. Default 0
    /// (never); the server binary's `--min-free-disk` defaults to 256 MiB.
    pub min_free_disk: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            auto_create: true,
            max_logs: 10_000,
            events: Arc::new(NoEvents),
            retention: Retention::UNLIMITED,
            min_free_disk: 0,
        }
    }
}

/// One named log: the log itself, its metadata, and whether it has been deleted.
pub struct LogEntry {
    name: String,
    created_ms: u64,
    raft_index: Option<u64>,
    settings: Mutex<LogSettings>,
    log: Arc<dyn CommitLog>,
    /// `true` once deleted; tails wait on it.
    deleted: watch::Sender<bool>,
    /// Why the stored log could not be opened (then `log` is an empty, closed stand-in).
    failed: Option<String>,
    /// What has been done to the log since it was opened; the metrics read it, and keep it for a
    /// scrape past the log's deletion to count its last increments.
    activity: Arc<Activity>,
}

impl std::fmt::Debug for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogEntry")
            .field("name", &self.name)
            .field("created_ms", &self.created_ms)
            .field("settings", &self.settings())
            .field("deleted", &self.is_deleted())
            .finish_non_exhaustive()
    }
}

impl LogEntry {
    fn new(opened: Opened) -> Arc<Self> {
        Arc::new(Self {
            name: opened.name,
            created_ms: opened.meta.created_ms,
            raft_index: opened.meta.raft_index,
            settings: Mutex::new(opened.meta.settings),
            log: opened.log,
            deleted: watch::Sender::new(false),
            failed: opened.failed,
            activity: Arc::default(),
        })
    }

    /// The log's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it was created, in milliseconds since the Unix epoch.
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// In a cluster, the index of the Raft entry that created the log (see [`LogMeta`]).
    pub fn raft_index(&self) -> Option<u64> {
        self.raft_index
    }

    /// Its settings as stored.
    pub fn settings(&self) -> LogSettings {
        *self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The log.
    pub fn log(&self) -> &Arc<dyn CommitLog> {
        &self.log
    }

    /// Why the log could not be opened when the registry was, if it could not: it is then
    /// listed and can be deleted, and nothing else.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// What has been done to the log since it was opened (appends, reads, retention).
    pub fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// Counts `segments` more segments deleted by retention (the metric
    /// `girok_retention_deleted_segments_total` reads it).
    pub fn note_retention_deleted(&self, segments: u64) {
        self.activity.retention_deleted(segments);
    }

    /// Whether the log has been deleted.
    pub fn is_deleted(&self) -> bool {
        *self.deleted.borrow()
    }

    /// A receiver that changes to `true` when the log is deleted.
    pub fn watch_deleted(&self) -> watch::Receiver<bool> {
        self.deleted.subscribe()
    }

    fn meta(&self) -> LogMeta {
        LogMeta {
            created_ms: self.created_ms,
            settings: self.settings(),
            raft_index: self.raft_index,
        }
    }
}

/// The registry of a server's named logs. Its calls block (file I/O): call them off the async
/// runtime's workers.
#[derive(Debug)]
pub struct Logs {
    catalog: Box<dyn Catalog>,
    config: LogsConfig,
    max_record_bytes: usize,
    /// The open logs by name; held only for lookups and inserts, never across I/O.
    open: RwLock<BTreeMap<String, Arc<LogEntry>>>,
    /// Serializes create, update and delete.
    admin: Mutex<()>,
    /// The `max_logs` in force: [`LogsConfig::max_logs`], or lower (see [`Logs::limit_logs`]).
    max_logs: AtomicUsize,
    /// The last creation time handed out, so that a log re-created within the same millisecond
    /// (or after the clock stepped back) still gets a later one.
    last_created_ms: AtomicU64,
}

impl Logs {
    /// Opens (creating if needed) the data directory `root`: every log in it, `default` always
    /// among them; a single-log data directory of the previous release becomes `default`.
    pub fn open(root: impl AsRef<Path>, disk: DiskConfig, config: LogsConfig) -> Result<Self> {
        Self::open_through(root.as_ref(), disk, config, Arc::new(OsDirs))
    }

    /// [`open`](Self::open), with directories changed through `dirs`: the seam a test uses to
    /// stop the registry at any step of creating or deleting a log.
    #[cfg(feature = "internals")]
    pub fn open_with(
        root: impl AsRef<Path>,
        disk: DiskConfig,
        config: LogsConfig,
        dirs: Arc<dyn DirOps>,
    ) -> Result<Self> {
        Self::open_through(root.as_ref(), disk, config, dirs)
    }

    fn open_through(
        root: &Path,
        disk: DiskConfig,
        config: LogsConfig,
        dirs: Arc<dyn DirOps>,
    ) -> Result<Self> {
        let max_record_bytes = disk.log.max_record_bytes;
        let catalog = DataDir::open(root, disk, dirs, Arc::clone(&config.events))?;
        Self::with_catalog(Box::new(catalog), config, max_record_bytes)
    }

    /// A registry whose logs live in memory, each keeping `log`'s record rules.
    pub fn in_memory(log: LogConfig, config: LogsConfig) -> Self {
        let max_record_bytes = log.max_record_bytes;
        let catalog = MemoryCatalog::new(log, None);
        Self::with_catalog(Box::new(catalog), config, max_record_bytes)
            .expect("memory logs always open")
    }

    /// A registry serving `log` as `default`; logs created later live in memory with the same
    /// record limit. For embedding one log, and for tests.
    pub fn serving(log: Arc<dyn CommitLog>, config: LogsConfig) -> Self {
        Self::serving_as(DEFAULT_LOG, log, config)
    }

    /// A registry serving `log` under `name` (which must be valid), beside an empty `default`
    /// unless `name` is `default`; logs created later live in memory with the same record limit.
    pub fn serving_as(name: &str, log: Arc<dyn CommitLog>, config: LogsConfig) -> Self {
        assert!(name::validate(name).is_ok(), "invalid log name {name:?}");
        let max_record_bytes = log.max_record_bytes();
        let rules = LogConfig { max_record_bytes, ..LogConfig::default() };
        let catalog = MemoryCatalog::new(rules, Some((name.to_string(), log)));
        Self::with_catalog(Box::new(catalog), config, max_record_bytes)
            .expect("memory logs always open")
    }

    fn with_catalog(
        catalog: Box<dyn Catalog>,
        config: LogsConfig,
        max_record_bytes: usize,
    ) -> Result<Self> {
        let opened = catalog.open_all()?;
        let last_created_ms = opened.iter().map(|o| o.meta.created_ms).max().unwrap_or(0);
        let open = opened.into_iter().map(|o| (o.name.clone(), LogEntry::new(o))).collect();
        if let Some(group) = catalog.group() {
            group.set_min_free_bytes(config.min_free_disk);
        }
        Ok(Self {
            catalog,
            max_logs: AtomicUsize::new(config.max_logs),
            config,
            max_record_bytes,
            open: RwLock::new(open),
            admin: Mutex::new(()),
            last_created_ms: AtomicU64::new(last_created_ms),
        })
    }

    /// The largest record value any log accepts.
    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// The registry's settings.
    pub fn config(&self) -> &LogsConfig {
        &self.config
    }

    /// The most logs the registry holds now.
    pub fn max_logs(&self) -> usize {
        self.max_logs.load(Ordering::Relaxed)
    }

    /// Lowers the most logs the registry holds to `max` (never below the logs it has), for
    /// a server whose descriptors cannot cover [`LogsConfig::max_logs`] (each log holds one).
    pub fn limit_logs(&self, max: usize) {
        let _admin = self.admin();
        self.max_logs.store(max.max(self.len()), Ordering::Relaxed);
    }

    /// Refuses appends while the data volume has less than `bytes` free (0: never), replacing
    /// [`LogsConfig::min_free_disk`]; takes effect at once. Logs kept in memory have no floor.
    pub fn set_min_free_disk(&self, bytes: u64) {
        if let Some(group) = self.catalog.group() {
            group.set_min_free_bytes(bytes);
        }
    }

    /// A creation time later than any handed out before, and not before now.
    fn next_created_ms(&self) -> u64 {
        let now = crate::storage::next_timestamp(0);
        let previous = self
            .last_created_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(now.max(last + 1)))
            .expect("the update always succeeds");
        now.max(previous + 1)
    }

    /// How many logs there are.
    pub fn len(&self) -> usize {
        self.read_map().len()
    }

    /// Whether there are none (never: `default` always exists).
    pub fn is_empty(&self) -> bool {
        self.read_map().is_empty()
    }

    /// The log named `name`, or [`Error::NotFound`].
    pub fn get(&self, name: &str) -> Result<Arc<LogEntry>> {
        check_name(name)?;
        self.lookup(name).ok_or_else(|| Error::NotFound { log: name.into() })
    }

    /// The log named `name`, created with default settings when it does not exist and
    /// auto-create is on (what a produce does).
    pub fn get_or_create(&self, name: &str) -> Result<Arc<LogEntry>> {
        check_name(name)?;
        if let Some(entry) = self.lookup(name) {
            return Ok(entry);
        }
        if !self.config.auto_create {
            return Err(Error::NotFound { log: name.into() });
        }
        let _admin = self.admin();
        if let Some(entry) = self.lookup(name) {
            return Ok(entry);
        }
        let meta = LogMeta { created_ms: self.next_created_ms(), ..LogMeta::default() };
        self.create_locked(name, meta)
    }

    /// Creates the log `name`, or fails with [`Error::Exists`].
    pub fn create(&self, name: &str, settings: LogSettings) -> Result<Arc<LogEntry>> {
        check_name(name)?;
        check_settings(&settings)?;
        let _admin = self.admin();
        if self.lookup(name).is_some() {
            return Err(Error::Exists { log: name.into() });
        }
        let meta = LogMeta { created_ms: self.next_created_ms(), settings, raft_index: None };
        self.create_locked(name, meta)
    }

    /// [`create`](Self::create) with the metadata decided elsewhere: a cluster's state machine
    /// creates a log with the time its leader read and the Raft index of the entry, the same on
    /// every node. Neither auto-create nor the limit on logs applies: the leader checked its
    /// limit before proposing, and every node must apply the creation alike.
    pub fn create_with(&self, name: &str, meta: LogMeta) -> Result<Arc<LogEntry>> {
        check_name(name)?;
        check_settings(&meta.settings)?;
        let _admin = self.admin();
        if self.lookup(name).is_some() {
            return Err(Error::Exists { log: name.into() });
        }
        self.insert_created(name, meta)
    }

    /// Syncs every log's records to stable storage, whatever its fsync policy.
    pub fn sync_all(&self) -> Result<()> {
        let entries = self.list();
        let synced = parallel::parallel_map(&entries, parallel::OPEN_THREADS, |entry| {
            if entry.failed.is_some() { Ok(()) } else { entry.log.sync() }
        });
        synced.into_iter().find_map(|outcome| outcome.err()).map_or(Ok(()), |err| Err(err.into()))
    }

    /// Creates `name`; the caller holds the admin lock and found no such log.
    fn create_locked(&self, name: &str, meta: LogMeta) -> Result<Arc<LogEntry>> {
        let limit = self.max_logs();
        if self.len() >= limit {
            return Err(Error::Limit { limit });
        }
        self.insert_created(name, meta)
    }

    /// Creates `name` in storage and the map; the caller holds the admin lock, found no such log
    /// and checked the limit (or has none to check).
    fn insert_created(&self, name: &str, meta: LogMeta) -> Result<Arc<LogEntry>> {
        let log = self.catalog.create(name, &meta)?;
        let entry = LogEntry::new(Opened::new(name, meta, log));
        self.write_map().insert(name.into(), Arc::clone(&entry));
        tracing::info!(log = name, "log created");
        Ok(entry)
    }

    /// Replaces the settings present in `changes`; the others stay. Takes effect at once.
    pub fn update(&self, name: &str, changes: LogSettings) -> Result<Arc<LogEntry>> {
        check_name(name)?;
        check_settings(&changes)?;
        let _admin = self.admin();
        let entry = self.get(name)?;
        let settings = entry.settings().merged(changes);
        let meta = LogMeta { settings, ..entry.meta() };
        self.catalog.save(name, &meta)?;
        *entry.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
        if let Some(bytes) = changes.segment_bytes {
            entry.log.set_segment_bytes(bytes)?;
        }
        Ok(entry)
    }

    /// Deletes the log `name` and its files. Its tails end and its producers fail from then on.
    pub fn delete(&self, name: &str) -> Result<()> {
        check_name(name)?;
        if name == DEFAULT_LOG {
            return Err(Error::DefaultLog);
        }
        let _admin = self.admin();
        let entry =
            self.write_map().remove(name).ok_or_else(|| Error::NotFound { log: name.into() })?;
        entry.deleted.send_replace(true);
        if let Err(err) = entry.log.close() {
            tracing::debug!(log = name, error = %err, "closing a deleted log");
        }
        if let Err(err) = self.catalog.remove(name) {
            // Still stored: serve it again rather than lose it until a restart.
            tracing::error!(log = name, error = %err, "cannot delete a log; it stays");
            let meta = entry.meta();
            let log = self.catalog.reopen(name, &meta)?;
            let again = LogEntry::new(Opened::new(name, meta, log));
            self.write_map().insert(name.into(), again);
            return Err(err);
        }
        drop(_admin);
        tracing::info!(log = name, "log deleted");
        // Removing the files can take a while for a large log; other admin calls go on.
        self.catalog.purge();
        Ok(())
    }

    /// Every log, sorted by name (byte order).
    pub fn list(&self) -> Vec<Arc<LogEntry>> {
        self.read_map().values().cloned().collect()
    }

    /// Closes every log (syncing it), a few at a time. Appends fail from then on.
    pub fn close(&self) -> Result<()> {
        let _admin = self.admin();
        let entries = self.list();
        let closed = parallel::parallel_map(&entries, parallel::OPEN_THREADS, |entry| {
            entry.log.close().inspect_err(|err| {
                tracing::error!(log = entry.name(), error = %err, "closing a log failed");
            })
        });
        closed.into_iter().find_map(|outcome| outcome.err()).map_or(Ok(()), |err| Err(err.into()))
    }

    fn lookup(&self, name: &str) -> Option<Arc<LogEntry>> {
        self.read_map().get(name).cloned()
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<LogEntry>>> {
        // The map holds whole `Arc`s: a panic cannot leave it half updated.
        self.open.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<LogEntry>>> {
        self.open.write().unwrap_or_else(|e| e.into_inner())
    }

    fn admin(&self) -> std::sync::MutexGuard<'_, ()> {
        self.admin.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn check_name(name: &str) -> Result<()> {
    name::validate(name).map_err(|why| Error::InvalidName { name: name.into(), why })
}

fn check_settings(settings: &LogSettings) -> Result<()> {
    settings.validate().map_err(|(field, why)| Error::InvalidSettings { field, why })
}
