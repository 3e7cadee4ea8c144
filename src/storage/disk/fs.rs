//! The narrow file seam the store writes through. Public only with the `internals` feature.
//!
//! A store file is only ever touched through [`SegmentFile`]: positional reads and writes, a data
//! sync, and resizing; directories are synced through [`FileOpener::sync_dir`], and retention's
//! unlinks go through [`FileOpener::remove_file`] (so a test can stop between two). Production uses
//! [`OsFiles`] (plain `std::fs::File`, every error naming its file); a test backend can implement
//! [`FileOpener`] to drop unsynced writes or inject errors. Index files are derived data mapped
//! with mmap and do not go through this seam.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::storage::error::at;

/// One open store file.
pub trait SegmentFile: Send + Sync + Debug {
    /// Reads exactly `buf.len()` bytes at `pos`.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// Writes all of `buf` at `pos`. A failed write may have written a prefix.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Makes every write so far durable (`fdatasync`). `File::flush` is not this.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's current length.
    fn size(&self) -> io::Result<u64>;
}

/// Why a directory sync failed, which decides what the failure means.
#[derive(Debug)]
pub enum DirSyncError {
    /// The directory could not be opened (most often: no descriptor free). Nothing was synced and
    /// nothing is uncertain: the sync can simply be tried again.
    Open(io::Error),
    /// `fsync` of the directory failed: whether its entries are durable is unknown.
    Sync(io::Error),
}

/// Opens store files and syncs directories; the seam a fault-injecting backend replaces.
pub trait FileOpener: Send + Sync + Debug {
    /// Opens `path` for reading and writing, creating it (empty) when `create` is set and it does
    /// not exist.
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn SegmentFile>>;

    /// Syncs the directory `dir`, so that files created, renamed or deleted in it stay so after a
    /// power cut.
    fn sync_dir(&self, dir: &Path) -> Result<(), DirSyncError> {
        let file = File::open(dir).map_err(|err| DirSyncError::Open(at(dir)(err)))?;
        file.sync_all().map_err(|err| DirSyncError::Sync(at(dir)(err)))
    }

    /// Unlinks the segment file `path` (a store or an index retention deletes).
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
}

/// The operating system's files.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFiles;

impl FileOpener for OsFiles {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(path)
            .map_err(at(path))?;
        Ok(Box::new(OsFile { file, path: path.to_path_buf() }))
    }
}

/// Opens `path` read-only (for offline checks that must change nothing).
pub fn open_read_only(path: &Path) -> io::Result<Box<dyn SegmentFile>> {
    let file = File::open(path).map_err(at(path))?;
    Ok(Box::new(OsFile { file, path: path.to_path_buf() }))
}

/// A file of the operating system; its errors name it.
#[derive(Debug)]
struct OsFile {
    file: File,
    path: PathBuf,
}

impl SegmentFile for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buf, pos).map_err(at(&self.path))
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.file, buf, pos).map_err(at(&self.path))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data().map_err(at(&self.path))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len).map_err(at(&self.path))
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata().map_err(at(&self.path))?.len())
    }
}
