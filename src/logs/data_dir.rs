//! [`DataDir`]: the registry's logs in a data directory, one directory per log.
//!
//! | path | what |
//! |------|------|
//! | `LOCK` | held with an exclusive `flock` while a server has the directory |
//! | `logs/<name>/` | one log: its segment files and `log.json` (creation time, settings) |
//! | `.staging/<name>/` | a log being created; moved into `logs/` by one rename |
//! | `.trash/<name>.<n>/` | a deleted log, moved out of `logs/` by one rename, then removed |
//! | `.migrating/` | a data directory of the single-log release, on its way to `logs/default/` |
//!
//! A log exists exactly when `logs/<name>/` does: creating and deleting it each come down to one
//! `rename` followed by a sync of `logs/`, so a crash at any step leaves it whole or gone.
//! `.staging/` and `.trash/` are emptied on open.
//!
//! **The single-log layout.** The release before named logs kept its segment files at the top
//! of the data directory. On open they are moved, one rename each, into `.migrating/` and that
//! directory is renamed to `logs/default/`; every step can be repeated, so a crash part-way is
//! finished by the next open with every record and offset intact.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::catalog::{Catalog, Opened};
use super::fs::DirOps;
use super::name::{DEFAULT_LOG, validate};
use super::parallel::{OPEN_THREADS, parallel_map};
use super::settings::LogMeta;
use super::{Error, Result};
use crate::storage::disk::dir::{self as segment_files, index_path, store_path};
use crate::storage::{self, CommitLog, DiskConfig, DiskGroup, DiskLog, StorageEvents};

/// The metadata file in each log's directory.
const META_FILE: &str = "log.json";
/// A new `log.json`, written in full and synced before it is renamed over the old one.
const NEXT_META_FILE: &str = "log.json.next";

/// A data directory of named logs.
#[derive(Debug)]
pub(crate) struct DataDir {
    root: PathBuf,
    /// The settings every log starts from; `segment_bytes` replaces `max_store_bytes`.
    disk: DiskConfig,
    group: DiskGroup,
    dirs: Arc<dyn DirOps>,
    /// Makes trash names unique within this process (the trash is emptied on open).
    trashed: AtomicU64,
    /// Held until the directory is dropped.
    _lock: File,
}

impl DataDir {
    /// Creates (if needed) and locks the data directory `root`, empties its scratch
    /// directories and moves a single-log layout into `logs/default/`.
    pub(crate) fn open(
        root: &Path,
        disk: DiskConfig,
        dirs: Arc<dyn DirOps>,
        events: Arc<dyn StorageEvents>,
    ) -> Result<Self> {
        disk.validate()?;
        create_dir_durably(root, dirs.as_ref())?;
        let lock = segment_files::lock(root)?;
        let group = DiskGroup::with_events(disk.max_open_segments, events);
        let data = Self {
            root: root.to_path_buf(),
            disk,
            group,
            dirs,
            trashed: AtomicU64::new(0),
            _lock: lock,
        };
        for scratch in [data.staging(), data.trash()] {
            if scratch.exists() {
                data.dirs.remove_dir_all(&scratch)?;
            }
        }
        data.migrate_single_log()?;
        for dir in [data.logs(), data.staging(), data.trash()] {
            if !dir.exists() {
                data.dirs.create_dir(&dir)?;
            }
        }
        data.dirs.sync_dir(&data.root)?;
        data.check_case_sensitive()?;
        Ok(data)
    }

    /// Log names are case-sensitive and are directory names: a file system that folds case
    /// would make `Orders` and `orders` one directory. Refuses such a data directory.
    fn check_case_sensitive(&self) -> Result<()> {
        let probe = self.staging().join("case-probe");
        let at = crate::storage::error::at;
        std::fs::create_dir(&probe).map_err(at(&probe))?;
        let folded = self.staging().join("CASE-PROBE").exists();
        std::fs::remove_dir(&probe).map_err(at(&probe))?;
        if folded {
            return Err(Error::Storage(storage::Error::Format {
                file: self.root.display().to_string(),
                detail: "is on a file system that ignores the case of names; log names are \
                         case-sensitive, so girok needs a case-sensitive one"
                    .into(),
            }));
        }
        Ok(())
    }

    fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    fn staging(&self) -> PathBuf {
        self.root.join(".staging")
    }

    fn trash(&self) -> PathBuf {
        self.root.join(".trash")
    }

    fn log_dir(&self, name: &str) -> PathBuf {
        self.logs().join(name)
    }

    /// The disk settings of a log with `meta`.
    fn config(&self, meta: &LogMeta) -> DiskConfig {
        let mut config = self.disk.clone();
        if let Some(bytes) = meta.settings.segment_bytes {
            config.max_store_bytes = bytes;
        }
        config
    }

    fn open_log(&self, name: &str, meta: &LogMeta) -> Result<Arc<dyn CommitLog>> {
        let log = DiskLog::open_in(self.log_dir(name), self.config(meta), &self.group)?;
        Ok(Arc::new(log))
    }

    fn read_meta(&self, name: &str) -> Result<LogMeta> {
        let path = self.log_dir(name).join(META_FILE);
        let bytes = std::fs::read(&path).map_err(crate::storage::error::at(&path))?;
        LogMeta::from_json(&bytes).map_err(|detail| {
            Error::Storage(storage::Error::Format { file: path.display().to_string(), detail })
        })
    }

    /// Moves the segment files of a single-log data directory into `logs/default/`.
    fn migrate_single_log(&self) -> Result<()> {
        let (stores, indexes) = segment_files::list_bases(&self.root)?;
        let migrating = self.root.join(".migrating");
        if stores.is_empty() && indexes.is_empty() && !migrating.exists() {
            return Ok(());
        }
        let target = self.log_dir(DEFAULT_LOG);
        if target.exists() {
            return Err(Error::Storage(storage::Error::Format {
                file: self.root.display().to_string(),
                detail: format!(
                    "holds segment files at its top level (the single-log layout) and {} as \
                     well; move one of them away",
                    target.display()
                ),
            }));
        }
        let dirs = self.dirs.as_ref();
        if !migrating.exists() {
            dirs.create_dir(&migrating)?;
            dirs.sync_dir(&self.root)?;
        }
        let meta = migrating.join(META_FILE);
        if !meta.exists() {
            // Written aside and renamed, so that a crash (or a full disk) mid-write cannot leave
            // a torn `log.json` that a later open would take as finished.
            let next = migrating.join(NEXT_META_FILE);
            dirs.write_file(&next, &LogMeta::new(Default::default()).to_json())?;
            dirs.rename(&next, &meta)?;
        }
        let moved = stores.len() + indexes.len();
        let files = stores
            .iter()
            .map(|&base| store_path(&self.root, base))
            .chain(indexes.iter().map(|&base| index_path(&self.root, base)));
        for from in files {
            let name = from.file_name().expect("a segment file has a name");
            dirs.rename(&from, &migrating.join(name))?;
        }
        dirs.sync_dir(&migrating)?;
        dirs.sync_dir(&self.root)?;
        if !self.logs().exists() {
            dirs.create_dir(&self.logs())?;
            dirs.sync_dir(&self.root)?;
        }
        dirs.rename(&migrating, &target)?;
        dirs.sync_dir(&self.logs())?;
        dirs.sync_dir(&self.root)?;
        tracing::info!(
            files = moved,
            to = %target.display(),
            "moved the single-log layout into the default log"
        );
        Ok(())
    }

    /// The names in `logs/`, sorted; entries that are not valid log names are skipped.
    fn stored_names(&self) -> Result<Vec<String>> {
        let logs = self.logs();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&logs).map_err(crate::storage::error::at(&logs))? {
            let entry = entry.map_err(crate::storage::error::at(&logs))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate(&name).is_err() || !entry.path().is_dir() {
                tracing::warn!(entry = %entry.path().display(), "not a log: ignored");
                continue;
            }
            names.push(name);
        }
        names.sort_unstable();
        Ok(names)
    }
}

impl Catalog for DataDir {
    fn open_all(&self) -> Result<Vec<Opened>> {
        let names = self.stored_names()?;
        // One damaged log must not keep the others from being served: it is listed, can be
        // deleted, and answers UNAVAILABLE until an operator repairs it and restarts. Only a
        // `default` that cannot be opened stops the server, as it always has.
        let open_one = |name: &String| -> Result<Opened> {
            let meta = self.read_meta(name).unwrap_or_else(|err| {
                tracing::warn!(log = %name, error = %err, "unreadable log.json: default settings");
                LogMeta::new(Default::default())
            });
            match self.open_log(name, &meta) {
                Ok(log) => Ok(Opened::new(name.clone(), meta, log)),
                Err(err) if name != DEFAULT_LOG => {
                    tracing::error!(log = %name, error = %err, "cannot open a log: it stays unavailable");
                    Ok(Opened::failed(name.clone(), meta, err.to_string()))
                }
                Err(err) => Err(err),
            }
        };
        let mut opened =
            parallel_map(&names, OPEN_THREADS, open_one).into_iter().collect::<Result<Vec<_>>>()?;
        if !names.iter().any(|name| name == DEFAULT_LOG) {
            let meta = LogMeta::new(Default::default());
            let log = self.create(DEFAULT_LOG, &meta)?;
            opened.push(Opened::new(DEFAULT_LOG, meta, log));
        }
        Ok(opened)
    }

    fn create(&self, name: &str, meta: &LogMeta) -> Result<Arc<dyn CommitLog>> {
        let (staged, dir) = (self.staging().join(name), self.log_dir(name));
        let dirs = self.dirs.as_ref();
        if staged.exists() {
            dirs.remove_dir_all(&staged)?;
        }
        dirs.create_dir(&staged)?;
        dirs.write_file(&staged.join(META_FILE), &meta.to_json())?;
        dirs.sync_dir(&staged)?;
        dirs.rename(&staged, &dir)?;
        let opened = dirs
            .sync_dir(&self.logs())
            .map_err(Error::from)
            .and_then(|()| self.open_log(name, meta));
        if opened.is_err() {
            // In place but not durable, or not openable (no descriptor free, say): take it back,
            // so that the failure the caller sees leaves nothing behind.
            if let Err(undo) = self.remove(name) {
                tracing::error!(log = name, error = %undo, "cannot take back a failed create");
            }
        }
        opened
    }

    fn save(&self, name: &str, meta: &LogMeta) -> Result<()> {
        let dir = self.log_dir(name);
        let (next, path) = (dir.join(NEXT_META_FILE), dir.join(META_FILE));
        self.dirs.write_file(&next, &meta.to_json())?;
        self.dirs.rename(&next, &path)?;
        self.dirs.sync_dir(&dir)?;
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let n = self.trashed.fetch_add(1, Ordering::Relaxed);
        let trashed = self.trash().join(format!("{name}.{n}"));
        self.dirs.rename(&self.log_dir(name), &trashed)?;
        // The rename is the deletion: past it, the log is gone from this process whatever else
        // fails. Until `logs/` is synced a power cut may bring it back, whole; what is left in
        // the trash is space, which `purge` or the next open reclaims.
        if let Err(err) = self.dirs.sync_dir(&self.logs()) {
            tracing::warn!(log = name, error = %err, "cannot sync logs/ after a delete");
        }
        Ok(())
    }

    fn purge(&self) {
        let Ok(entries) = std::fs::read_dir(self.trash()) else { return };
        for entry in entries.flatten() {
            match self.dirs.remove_dir_all(&entry.path()) {
                Ok(()) => {}
                // Another purge got there first.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => tracing::warn!(error = %err, "cannot remove a deleted log's files"),
            }
        }
    }

    fn group(&self) -> Option<&DiskGroup> {
        Some(&self.group)
    }

    fn reopen(&self, name: &str, meta: &LogMeta) -> Result<Arc<dyn CommitLog>> {
        self.open_log(name, meta)
    }
}

/// Creates `dir` and any missing parents, syncing the parent of each one created and of `dir`
/// itself (an earlier open may have crashed before its sync).
fn create_dir_durably(dir: &Path, dirs: &dyn DirOps) -> Result<()> {
    let mut missing = Vec::new();
    let mut ancestor = Some(dir);
    while let Some(path) = ancestor.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        ancestor = path.parent();
    }
    for created in missing.iter().rev() {
        dirs.create_dir(created)?;
    }
    if missing.is_empty() {
        missing.push(dir);
    }
    for created in missing.iter().rev() {
        match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => dirs.sync_dir(parent)?,
            _ => dirs.sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}
