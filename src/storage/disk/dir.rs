//! The data directory: its exclusive lock, the names of segment files, listing them, and syncing
//! the directory itself.
//!
//! | file | what |
//! |------|------|
//! | `LOCK` | held with an exclusive `flock` while a log opened alone is open; a second process fails with [`Error::Locked`]. A log opened in a group has none: its caller locks a parent directory |
//! | `{base:020}.store` | the store of the segment whose first offset is `base` (see `store`) |
//! | `{base:020}.index` | its index (see `index`) |
//!
//! Any other file is ignored. A segment file name is exactly twenty ASCII digits and a suffix.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::fs::{DirSyncError, FileOpener};
use crate::storage::error::at;
use crate::storage::{Error, Result};

/// Creates the data directory `dir` and any missing parents, and syncs the parent of each
/// directory it created and of `dir` itself (whether or not this open created it: an earlier
/// open may have crashed before its sync), so that a power cut cannot take the directory (and
/// the acknowledged records in it) back.
pub(super) fn create(dir: &Path, opener: &dyn FileOpener) -> Result<()> {
    let mut missing = Vec::new();
    let mut ancestor = Some(dir);
    while let Some(path) = ancestor.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        ancestor = path.parent();
    }
    std::fs::create_dir_all(dir).map_err(at(dir))?;
    if missing.is_empty() {
        missing.push(dir);
    }
    for created in missing.iter().rev() {
        let parent = match created.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        opener
            .sync_dir(parent)
            .map_err(|(DirSyncError::Open(err) | DirSyncError::Sync(err))| err)?;
    }
    Ok(())
}

/// Takes the data directory's exclusive lock, creating the `LOCK` file if needed. The lock is
/// held until the returned file is closed or unlocked.
pub(crate) fn lock(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(at(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(err)) => Err(at(&path)(err).into()),
    }
}

/// The path of the store file of the segment based at `base`.
pub(crate) fn store_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.store"))
}

/// The path of the index file of the segment based at `base`.
pub(crate) fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

/// The base offset a segment file name `stem` stands for: exactly twenty ASCII digits.
fn parse_base(stem: &str) -> Option<u64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok())?
}

/// The base offsets of the segment files in `dir`: stores and indexes, each sorted. Files with
/// other names are ignored.
pub(crate) fn list_bases(dir: &Path) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let (mut stores, mut indexes) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir).map_err(at(dir))? {
        let name = entry.map_err(at(dir))?.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name.strip_suffix(".store").and_then(parse_base) {
            stores.push(base);
        } else if let Some(base) = name.strip_suffix(".index").and_then(parse_base) {
            indexes.push(base);
        }
    }
    stores.sort_unstable();
    indexes.sort_unstable();
    Ok((stores, indexes))
}

/// The base offsets of the segments in `dir`, sorted; deletes index files that have no store
/// (left by a crash while a segment was created or deleted).
pub(super) fn segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let (stores, indexes) = list_bases(dir)?;
    for base in indexes.into_iter().filter(|b| stores.binary_search(b).is_err()) {
        let path = index_path(dir, base);
        std::fs::remove_file(&path).map_err(at(&path))?;
    }
    Ok(stores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_twenty_digit_names_are_segments() {
        // A segment name is twenty ASCII digits: a sign, a short or a long name is not one.
        assert_eq!(parse_base("00000000000000000005"), Some(5));
        assert_eq!(parse_base("+0000000000000000005"), None);
        assert_eq!(parse_base("0000000000000000005"), None);
        assert_eq!(parse_base("000000000000000000005"), None);
        assert_eq!(parse_base("99999999999999999999"), None, "past u64::MAX");
    }
}
