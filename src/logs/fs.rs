//! The directory seam of the registry: every step that creates, renames or removes a log's
//! directory, or writes its metadata, goes through [`DirOps`], so a test can stop ("crash") the
//! registry at any step and check what a restart finds. Public only with the `internals`
//! feature. Production uses [`OsDirs`]; every error names its path.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::storage::error::at;

/// The directory operations of the registry, each one step a crash can fall between.
pub trait DirOps: Send + Sync + Debug {
    /// Creates the directory `path` (its parent must exist).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates or replaces the file `path` with `bytes` and syncs it.
    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Renames `from` to `to` (atomically, within one file system).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Syncs the directory `path`, so that entries created, renamed or removed in it stay so.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes the directory `path` and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
}

/// The operating system's directories.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsDirs;

impl DirOps for OsDirs {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path).map_err(at(path))
    }

    fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(at(path))?;
        file.write_all(bytes).map_err(at(path))?;
        file.sync_all().map_err(at(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to).map_err(at(from))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path).and_then(|dir| dir.sync_all()).map_err(at(path))
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path).map_err(at(path))
    }
}
