//! The narrow file seam the store writes through. Public only with the `internals` feature.
//!
//! A store file is only ever touched through [`SegmentFile`]: positional reads and writes, a data
//! sync, and resizing. Production uses [`OsFiles`] (plain `std::fs::File`); a test backend can
//! implement [`FileOpener`] to drop unsynced writes or inject errors. Index files are derived data
//! mapped with mmap and do not go through this seam.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

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

/// Opens store files; the seam a fault-injecting backend replaces.
pub trait FileOpener: Send + Sync + Debug {
    /// Opens `path` for reading and writing, creating it (empty) when `create` is set and it does
    /// not exist.
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn SegmentFile>>;
}

/// The operating system's files.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsFiles;

impl FileOpener for OsFiles {
    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().read(true).write(true).create(create).open(path)?;
        Ok(Box::new(OsFile(file)))
    }
}

/// Opens `path` read-only (for offline checks that must change nothing).
pub fn open_read_only(path: &Path) -> io::Result<Box<dyn SegmentFile>> {
    Ok(Box::new(OsFile(File::open(path)?)))
}

#[derive(Debug)]
struct OsFile(File);

impl SegmentFile for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}
