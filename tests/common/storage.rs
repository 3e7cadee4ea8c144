//! Helpers shared by the storage tests (`contract`, `recovery`, `durability`, `model`): small
//! configs, file surgery on a data directory, and [`FaultyFiles`], a [`FileOpener`] over real
//! files that can fail syncs, fail writes with ENOSPC, and simulate a power cut by dropping every
//! write not yet synced.
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use girok::storage::disk::fs::{DirSyncError, FileOpener, SegmentFile};
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy, LogConfig};

/// Bytes of a store file header.
pub const STORE_HEADER: u64 = 24;
/// Bytes of a frame header.
pub const FRAME_HEADER: u64 = 24;

/// A config with tiny segments so that tests roll often.
pub fn small_config(fsync: FsyncPolicy) -> DiskConfig {
    DiskConfig {
        max_store_bytes: 256,
        max_index_bytes: 8 * 12,
        log: LogConfig { max_record_bytes: 4096, initial_offset: 0 },
        // Few, so that reads of sealed segments go through opening and closing their files.
        max_open_segments: 2,
        fsync,
    }
}

/// The value the tests store at `offset`: recognisable and of varying length (including empty).
pub fn value_for(offset: u64) -> Bytes {
    let len = (offset * 7 % 23) as usize;
    Bytes::from((0..len).map(|i| (offset as u8).wrapping_add(i as u8)).collect::<Vec<u8>>())
}

/// Appends the test values for `[from, to)` one by one, checking each offset.
pub fn fill(log: &dyn CommitLog, from: u64, to: u64) {
    for offset in from..to {
        assert_eq!(log.append(value_for(offset)).expect("append"), offset);
    }
}

/// Asserts that every offset in `range` reads back its test value.
pub fn assert_values(log: &dyn CommitLog, range: std::ops::Range<u64>) {
    for offset in range {
        let record = log.read(offset).unwrap_or_else(|e| panic!("read {offset}: {e}"));
        assert_eq!(record.offset, offset);
        assert_eq!(record.value, value_for(offset), "value at {offset}");
    }
}

/// The segment base offsets of a data directory, sorted.
pub fn segment_bases(dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".store")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// The store file of the segment based at `base`.
pub fn store_file(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.store"))
}

/// The index file of the segment based at `base`.
pub fn index_file(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

/// The frame positions of a store file, walking its length fields from the header on.
pub fn frame_positions(store: &Path) -> Vec<u64> {
    let bytes = std::fs::read(store).expect("read store");
    let mut out = Vec::new();
    let mut pos = STORE_HEADER as usize;
    while pos + FRAME_HEADER as usize <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 16..pos + 20].try_into().unwrap()) as usize;
        if pos + FRAME_HEADER as usize + len > bytes.len() {
            break;
        }
        out.push(pos as u64);
        pos += FRAME_HEADER as usize + len;
    }
    out
}

/// Flips one bit of the file at `pos`.
pub fn flip_bit(path: &Path, pos: u64) {
    let file = OpenOptions::new().read(true).write(true).open(path).expect("open");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, pos).expect("read byte");
    byte[0] ^= 0x10;
    file.write_all_at(&byte, pos).expect("write byte");
}

/// Sets the length of the file at `path`.
pub fn set_len(path: &Path, len: u64) {
    OpenOptions::new().write(true).open(path).expect("open").set_len(len).expect("set_len");
}

/// Appends `bytes` at the end of the file at `path`.
pub fn append_bytes(path: &Path, bytes: &[u8]) {
    let file = OpenOptions::new().append(true).open(path).expect("open");
    std::io::Write::write_all(&mut &file, bytes).expect("append");
}

/// Overwrites the whole file at `path` with zeros, keeping its length.
pub fn zero_fill(path: &Path) {
    let len = std::fs::metadata(path).expect("metadata").len();
    std::fs::write(path, vec![0u8; len as usize]).expect("zero fill");
}

/// The length of the file at `path`.
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).expect("metadata").len()
}

/// Opens a disk log, panicking on failure.
pub fn open(dir: &Path, config: &DiskConfig) -> DiskLog {
    DiskLog::open(dir, config.clone()).expect("open disk log")
}

/// What [`FaultyFiles`] is told to do; shared by every file it opened.
#[derive(Debug, Default)]
pub struct Faults {
    /// `sync_data` fails with EIO.
    pub fail_sync: AtomicBool,
    /// Writes put half their bytes in the file and then fail with ENOSPC.
    pub enospc: AtomicBool,
    /// Microseconds every `sync_data` takes before it starts (a slow disk).
    sync_delay_us: AtomicU64,
    /// How many `sync_data` calls succeeded.
    syncs: AtomicU64,
    /// Set by a power cut: the machine is gone, every later mutation fails.
    dead: AtomicBool,
    /// Serialises mutations with snapshots and the power cut, so a write either lands before
    /// the cut (and is dropped unless synced) or fails after it.
    mutate: Mutex<()>,
    /// Each file's content as of its last successful sync.
    synced: Mutex<HashMap<PathBuf, Vec<u8>>>,
    /// Every file ever opened.
    opened: Mutex<Vec<PathBuf>>,
    /// Opening a store file fails with EMFILE, as when no descriptor is free.
    pub fail_open: AtomicBool,
    /// Opening a directory to sync it fails with EMFILE.
    pub fail_dir_open: AtomicBool,
    /// `fsync` of a directory fails with EIO.
    pub fail_dir_sync: AtomicBool,
    /// Every directory synced, in order.
    dirs_synced: Mutex<Vec<PathBuf>>,
    /// Unlinks from this one on (counted from 0) do not happen: the process is killed there.
    kill_at_unlink: Mutex<Option<usize>>,
    /// Every file unlinked, in order.
    unlinked: Mutex<Vec<PathBuf>>,
}

/// A [`FileOpener`] over real files with injectable faults. Clone the `Arc` to keep a handle.
#[derive(Debug, Default, Clone)]
pub struct FaultyFiles {
    /// The faults, shared with every file opened.
    pub faults: Arc<Faults>,
}

impl FaultyFiles {
    /// A new opener with no faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later `sync_data` fail (or succeed again).
    pub fn fail_sync(&self, on: bool) {
        self.faults.fail_sync.store(on, Ordering::SeqCst);
    }

    /// Makes every later `sync_data` take `delay` longer, as on a slow disk.
    pub fn slow_sync(&self, delay: std::time::Duration) {
        self.faults.sync_delay_us.store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// How many `sync_data` calls have succeeded so far.
    pub fn sync_count(&self) -> u64 {
        self.faults.syncs.load(Ordering::SeqCst)
    }

    /// Makes opening store files fail with EMFILE (or work again).
    pub fn fail_open(&self, on: bool) {
        self.faults.fail_open.store(on, Ordering::SeqCst);
    }

    /// Makes opening a directory to sync it fail with EMFILE (or work again).
    pub fn fail_dir_open(&self, on: bool) {
        self.faults.fail_dir_open.store(on, Ordering::SeqCst);
    }

    /// Makes `fsync` of a directory fail with EIO (or work again).
    pub fn fail_dir_sync(&self, on: bool) {
        self.faults.fail_dir_sync.store(on, Ordering::SeqCst);
    }

    /// Every directory synced so far, in order.
    pub fn dirs_synced(&self) -> Vec<PathBuf> {
        self.faults.dirs_synced.lock().unwrap().clone()
    }

    /// Kills the process (as `kill -9` does) just before unlink number `n` (from 0): that unlink
    /// and every later mutation fail without doing anything, and files keep what they hold (a
    /// process crash loses no written byte). Drop the log afterwards without closing it.
    pub fn kill_at_unlink(&self, n: usize) {
        *self.faults.kill_at_unlink.lock().unwrap() = Some(n);
    }

    /// Every file unlinked so far, in order.
    pub fn unlinked(&self) -> Vec<PathBuf> {
        self.faults.unlinked.lock().unwrap().clone()
    }

    /// Whether a simulated power cut or kill has happened.
    pub fn is_dead(&self) -> bool {
        self.faults.dead.load(Ordering::SeqCst)
    }

    /// Makes every later write fail with ENOSPC after writing half its bytes (or work again).
    pub fn enospc(&self, on: bool) {
        self.faults.enospc.store(on, Ordering::SeqCst);
    }

    /// Simulates a power cut: from now on every write, resize and sync fails, and each file
    /// opened through this opener is put back as it was at its last successful sync (emptied if
    /// it was never synced). Index files are not touched: they are derived data, and keeping
    /// their possibly newer entries is the harder case for recovery.
    pub fn power_cut(&self) {
        let _guard = self.faults.mutate.lock().unwrap();
        self.faults.dead.store(true, Ordering::SeqCst);
        let synced = self.faults.synced.lock().unwrap();
        for path in self.faults.opened.lock().unwrap().iter() {
            if !path.exists() {
                continue;
            }
            let content = synced.get(path).cloned().unwrap_or_default();
            std::fs::write(path, content).expect("restore synced content");
        }
    }
}

impl FileOpener for FaultyFiles {
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let _guard = self.faults.mutate.lock().unwrap();
        let mut unlinked = self.faults.unlinked.lock().unwrap();
        if *self.faults.kill_at_unlink.lock().unwrap() == Some(unlinked.len()) {
            self.faults.dead.store(true, Ordering::SeqCst);
        }
        if self.faults.dead.load(Ordering::SeqCst) {
            return Err(dead());
        }
        std::fs::remove_file(path)?;
        // A file created again under this name starts from nothing, not from this one's content.
        self.faults.synced.lock().unwrap().remove(path);
        unlinked.push(path.to_path_buf());
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> Result<(), DirSyncError> {
        if self.faults.dead.load(Ordering::SeqCst) {
            return Err(DirSyncError::Sync(dead()));
        }
        if self.faults.fail_dir_open.load(Ordering::SeqCst) {
            return Err(DirSyncError::Open(io::Error::from_raw_os_error(libc::EMFILE)));
        }
        let file = File::open(dir).map_err(DirSyncError::Open)?;
        if self.faults.fail_dir_sync.load(Ordering::SeqCst) {
            return Err(DirSyncError::Sync(io::Error::from_raw_os_error(libc::EIO)));
        }
        file.sync_all().map_err(DirSyncError::Sync)?;
        self.faults.dirs_synced.lock().unwrap().push(dir.to_path_buf());
        Ok(())
    }

    fn open(&self, path: &Path, create: bool) -> io::Result<Box<dyn SegmentFile>> {
        if self.faults.fail_open.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EMFILE));
        }
        let existed = path.exists();
        let file = OpenOptions::new().read(true).write(true).create(create).open(path)?;
        let path = path.to_path_buf();
        {
            let mut opened = self.faults.opened.lock().unwrap();
            if !existed {
                // New: a power cut before its first sync leaves it empty, whatever an earlier
                // file of this name held.
                self.faults.synced.lock().unwrap().remove(&path);
            }
            if !opened.contains(&path) {
                opened.push(path.clone());
                // A file that already exists counts as synced as it is.
                if !create || file.metadata()?.len() > 0 {
                    let content = std::fs::read(&path)?;
                    self.faults.synced.lock().unwrap().insert(path.clone(), content);
                }
            }
        }
        Ok(Box::new(FaultyFile { path, file, faults: self.faults.clone() }))
    }
}

#[derive(Debug)]
struct FaultyFile {
    path: PathBuf,
    file: File,
    faults: Arc<Faults>,
}

fn dead() -> io::Error {
    io::Error::other("simulated crash: the process or the machine is gone")
}

impl SegmentFile for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let _guard = self.faults.mutate.lock().unwrap();
        if self.faults.dead.load(Ordering::SeqCst) {
            return Err(dead());
        }
        if self.faults.enospc.load(Ordering::SeqCst) {
            self.file.write_all_at(&buf[..buf.len() / 2], pos)?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        self.file.write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        let delay = self.faults.sync_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_micros(delay));
        }
        let _guard = self.faults.mutate.lock().unwrap();
        if self.faults.dead.load(Ordering::SeqCst) {
            return Err(dead());
        }
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.file.sync_data()?;
        let content = std::fs::read(&self.path)?;
        self.faults.synced.lock().unwrap().insert(self.path.clone(), content);
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let _guard = self.faults.mutate.lock().unwrap();
        if self.faults.dead.load(Ordering::SeqCst) {
            return Err(dead());
        }
        self.file.set_len(len)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

/// Copies the files of `from` into `to` (a flat data directory), leaving out the lock file.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// How many of this process's file descriptors point into `dir`.
pub fn fds_into(dir: &Path) -> usize {
    let dir = dir.canonicalize().expect("canonical dir");
    std::fs::read_dir("/proc/self/fd")
        .expect("list fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir))
        .count()
}

/// Writes `count` segments straight into `dir`, one record each (offset `i` holds
/// [`value_for`]`(i)`), as a clean shutdown leaves them: quicker than appending through a log
/// with tiny segments, which syncs at every roll.
pub fn write_one_record_segments(dir: &Path, count: u64) {
    use girok::storage::disk::store::{encode_frame, encode_header};
    std::fs::create_dir_all(dir).expect("create dir");
    for base in 0..count {
        let value = value_for(base);
        let mut store = encode_header(base).to_vec();
        encode_frame(&mut store, base, 1_700_000_000_000, &value, crc32c::crc32c(&value));
        std::fs::write(store_file(dir, base), store).expect("write store");
        let mut index = 0u32.to_le_bytes().to_vec();
        index.extend_from_slice(&STORE_HEADER.to_le_bytes());
        std::fs::write(index_file(dir, base), index).expect("write index");
    }
}
