//! A segment's store file: a header, then checksummed frames appended back to back.
//!
//! Header (24 bytes):
//!
//! | bytes  | field   | value                                   |
//! |--------|---------|-----------------------------------------|
//! | 0..8   | magic   | `b"GIROKLOG"`                           |
//! | 8..12  | version | format version, LE u32 (this build: 1)  |
//! | 12..16 | flags   | LE u32, 0                               |
//! | 16..24 | base    | the segment's base offset, LE u64       |
//!
//! Frame (24-byte header, then the payload):
//!
//! | bytes      | field        | meaning                                                |
//! |------------|--------------|--------------------------------------------------------|
//! | 0..8       | offset       | the record's absolute offset, LE u64                   |
//! | 8..16      | timestamp_ms | append time, ms since the Unix epoch, LE u64           |
//! | 16..20     | length       | payload length, LE u32                                 |
//! | 20..24     | crc          | CRC32C of the payload followed by bytes 0..20, LE u32  |
//! | 24..24+len | payload      | the record's value                                     |
//!
//! A frame is valid when its CRC matches and its offset is the one expected at its place, so a
//! stale index entry can never serve the wrong record. Invariant: the store's logical `size` is
//! the end of the last written frame; a failed write leaves `size` unchanged and its bytes are
//! overwritten by the next write.
//!
//! Under the `always` policy the file runs ahead of `size` with written zeros ([`Store::fill_ahead`]),
//! so that a sync of new frames is a data-only flush (no file-size change to journal): on ext4
//! that halves the cost of a small `fdatasync`. The zeros are written lazily, once the data has
//! reached their end, in a step that grows with the store (its size, between
//! [`FILL_STEP_MIN_BYTES`] and [`FILL_STEP_MAX_BYTES`]): an idle or lightly used store holds
//! about 64 KiB of zeros, a busy one a few MiB, and the steady state still syncs data only. The
//! zeros are what a crash leaves after the last frame anyway: recovery cuts them like any torn
//! tail, and sealing trims them.

use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::fs::{FileOpener, SegmentFile};

/// The store header's magic.
pub const MAGIC: &[u8; 8] = b"GIROKLOG";
/// The store format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Bytes in the store header.
pub const STORE_HEADER_BYTES: u64 = 24;
/// Bytes in a frame header.
pub const FRAME_HEADER_BYTES: u64 = 24;
/// The smallest step [`Store::fill_ahead`] writes zeros in.
pub const FILL_STEP_MIN_BYTES: u64 = 64 * 1024;
/// The largest step [`Store::fill_ahead`] writes zeros in.
pub const FILL_STEP_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The record's offset.
    pub offset: u64,
    /// The append time.
    pub timestamp_ms: u64,
    /// The payload's length.
    pub length: u32,
    /// The stored checksum.
    pub crc: u32,
}

impl FrameHeader {
    /// Decodes the first 24 bytes of `buf`.
    pub fn decode(buf: &[u8]) -> Self {
        let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        let u32_at = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"));
        Self { offset: u64_at(0), timestamp_ms: u64_at(8), length: u32_at(16), crc: u32_at(20) }
    }

    /// The frame's total size on disk.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_BYTES + u64::from(self.length)
    }

    /// Whether `payload` (exactly `length` bytes) together with this header matches the CRC.
    pub fn checks(&self, header_bytes: &[u8], payload: &[u8]) -> bool {
        payload.len() == self.length as usize
            && frame_crc(crc32c::crc32c(payload), header_bytes) == self.crc
    }
}

/// A frame's checksum: the payload's CRC32C extended over the first 20 header bytes. The payload
/// comes first so that its (costly) CRC can be computed before the offset is known.
fn frame_crc(payload_crc: u32, header_bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(payload_crc, &header_bytes[..20])
}

/// Appends one encoded frame to `buf`. `payload_crc` is `crc32c(value)`, computed by the caller
/// outside any lock.
pub fn encode_frame(
    buf: &mut Vec<u8>,
    offset: u64,
    timestamp_ms: u64,
    value: &[u8],
    payload_crc: u32,
) {
    let start = buf.len();
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
    let crc = frame_crc(payload_crc, &buf[start..start + 20]);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(value);
}

/// Decodes and checks the frame that fills `buf` exactly, expecting `offset`. Returns the
/// timestamp and the payload, or a description of what is wrong.
pub fn decode_frame(buf: &Bytes, offset: u64) -> Result<(u64, Bytes), String> {
    if (buf.len() as u64) < FRAME_HEADER_BYTES {
        return Err(format!("frame of {} bytes is shorter than its header", buf.len()));
    }
    let header = FrameHeader::decode(buf);
    if header.frame_len() != buf.len() as u64 {
        return Err(format!(
            "frame length field says {} bytes, the index says {}",
            header.frame_len(),
            buf.len()
        ));
    }
    let payload = &buf[FRAME_HEADER_BYTES as usize..];
    if !header.checks(buf, payload) {
        return Err("checksum mismatch".to_string());
    }
    if header.offset != offset {
        return Err(format!("frame holds offset {}, not {offset}", header.offset));
    }
    Ok((header.timestamp_ms, buf.slice(FRAME_HEADER_BYTES as usize..)))
}

/// Encodes a store header for a segment based at `base`.
pub fn encode_header(base: u64) -> [u8; STORE_HEADER_BYTES as usize] {
    let mut h = [0u8; STORE_HEADER_BYTES as usize];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    h
}

/// Checks a store header; `Err` says what is wrong.
pub fn check_header(h: &[u8], base: u64) -> Result<(), String> {
    if &h[0..8] != MAGIC {
        return Err("not a girok store file (bad magic)".into());
    }
    let version = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(format!("store format version {version}; this build reads {VERSION}"));
    }
    let stored = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
    if stored != base {
        return Err(format!("header names base offset {stored}, the file name {base}"));
    }
    Ok(())
}

/// A store file and its logical size.
#[derive(Debug)]
pub struct Store {
    /// Shared so that syncs and reads can run outside the log's lock.
    file: Arc<dyn SegmentFile>,
    size: u64,
    /// The file's length: `size`, or more once zeros were written ahead.
    allocated: u64,
    /// Set once writing zeros ahead failed (most likely a full disk): this store is not filled
    /// again, so that appends do not fill the disk with zeros over and over.
    fill_failed: bool,
}

impl Store {
    /// Creates (or resets) the store at `path` with a fresh header, synced.
    pub fn create(opener: &dyn FileOpener, path: &Path, base: u64) -> io::Result<Self> {
        let file: Arc<dyn SegmentFile> = Arc::from(opener.open(path, true)?);
        file.set_len(0)?;
        file.write_all_at(&encode_header(base), 0)?;
        file.sync_data()?;
        Ok(Self {
            file,
            size: STORE_HEADER_BYTES,
            allocated: STORE_HEADER_BYTES,
            fill_failed: false,
        })
    }

    /// Opens an existing store file; its logical size is the file's length until recovery says
    /// otherwise.
    pub fn open(opener: &dyn FileOpener, path: &Path) -> io::Result<Self> {
        let file: Arc<dyn SegmentFile> = Arc::from(opener.open(path, false)?);
        let size = file.size()?;
        Ok(Self { file, size, allocated: size, fill_failed: false })
    }

    /// The file, for reads and syncs outside the log's lock.
    pub fn file(&self) -> &Arc<dyn SegmentFile> {
        &self.file
    }

    /// The end of the last frame.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `frames` with one positional write and returns where they start. On failure the
    /// logical size is unchanged and the file is cut back to it (best effort), so nothing
    /// half-written is ever taken for data.
    pub fn append(&mut self, frames: &[u8]) -> io::Result<u64> {
        let pos = self.size;
        if let Err(err) = self.file.write_all_at(frames, pos) {
            // Drop whatever part was written (and the zeros ahead: they come back later).
            if self.file.set_len(pos).is_ok() {
                self.allocated = pos;
            }
            return Err(err);
        }
        self.size += frames.len() as u64;
        self.allocated = self.allocated.max(self.size);
        Ok(pos)
    }

    /// Once the data has reached the end of the zeros written ahead of it, writes more: a step
    /// of the store's size, between [`FILL_STEP_MIN_BYTES`] and [`FILL_STEP_MAX_BYTES`], never
    /// past `limit` (the segment's size). Best effort: on failure (a full disk) the file is cut
    /// back to its data, and later writes simply grow it.
    pub fn fill_ahead(&mut self, limit: u64) {
        if self.fill_failed || self.allocated > self.size {
            return;
        }
        let step = self.size.clamp(FILL_STEP_MIN_BYTES, FILL_STEP_MAX_BYTES);
        let target = self.size.saturating_add(step).min(limit);
        if target <= self.allocated {
            return;
        }
        let from = self.allocated;
        let zeros = vec![0u8; (target - from) as usize];
        match self.file.write_all_at(&zeros, from) {
            Ok(()) => self.allocated = target,
            Err(err) => {
                tracing::debug!(error = %err, "could not preallocate store space");
                self.fill_failed = true;
                if self.file.set_len(from).is_ok() {
                    self.allocated = from;
                }
            }
        }
    }

    /// The file's length as this store wrote it: its data, and any zeros written ahead.
    pub fn allocated(&self) -> u64 {
        self.allocated
    }

    /// Cuts preallocated zeros off the end of the file, so its length is its data.
    pub fn trim(&mut self) -> io::Result<()> {
        self.file.set_len(self.size)?;
        self.allocated = self.size;
        self.fill_failed = true;
        Ok(())
    }

    /// Reads `len` bytes at `pos`.
    pub fn read(&self, pos: u64, len: u64) -> io::Result<Bytes> {
        read_at(self.file.as_ref(), pos, len)
    }

    /// Treats only the first `size` bytes as data, leaving the file as it is (a sealed store
    /// with damage at its end is reported, never modified).
    pub fn limit(&mut self, size: u64) {
        self.size = self.size.min(size);
    }

    /// Cuts the file back to `size` bytes (a torn tail) and syncs the cut.
    pub fn cut(&mut self, size: u64) -> io::Result<()> {
        self.file.set_len(size)?;
        self.file.sync_data()?;
        self.size = size;
        self.allocated = size;
        Ok(())
    }
}

/// Reads `len` bytes at `pos` of `file`.
pub fn read_at(file: &dyn SegmentFile, pos: u64, len: u64) -> io::Result<Bytes> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, pos)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::super::fs::OsFiles;
    use super::*;

    fn frame(offset: u64, value: &[u8]) -> Bytes {
        let mut buf = Vec::new();
        encode_frame(&mut buf, offset, 1_700_000_000_000, value, crc32c::crc32c(value));
        Bytes::from(buf)
    }

    #[test]
    fn frames_round_trip() {
        // An encoded frame decodes to its timestamp and value, empty values included.
        for value in [&b""[..], b"x", b"hello, girok", &[0xffu8; 1000][..]] {
            let buf = frame(42, value);
            assert_eq!(buf.len() as u64, FRAME_HEADER_BYTES + value.len() as u64);
            let header = FrameHeader::decode(&buf);
            assert_eq!((header.offset, header.length), (42, value.len() as u32));
            assert_eq!(
                decode_frame(&buf, 42),
                Ok((1_700_000_000_000, Bytes::copy_from_slice(value)))
            );
        }
    }

    #[test]
    fn any_flipped_bit_fails_the_frame() {
        // A single flipped bit anywhere in a frame, header or payload, is detected.
        let good = frame(7, b"some payload");
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.to_vec();
                bad[byte] ^= 1 << bit;
                assert!(decode_frame(&Bytes::from(bad), 7).is_err(), "byte {byte} bit {bit}");
            }
        }
    }

    #[test]
    fn a_frame_for_another_offset_is_refused() {
        // A valid frame read where another offset was expected is an error, not that record.
        let err = decode_frame(&frame(7, b"v"), 8).unwrap_err();
        assert!(err.contains("holds offset 7"), "{err}");
        assert!(decode_frame(&frame(7, b"v").slice(..20), 7).is_err());
    }

    #[test]
    fn headers_check_magic_version_and_base() {
        // A store header is accepted only with girok's magic, this version and the right base.
        let header = encode_header(99);
        assert_eq!(check_header(&header, 99), Ok(()));
        assert!(check_header(&header, 98).unwrap_err().contains("base offset 99"));
        let mut bad = header;
        bad[0] = b'X';
        assert!(check_header(&bad, 99).unwrap_err().contains("magic"));
        let mut bad = header;
        bad[8] = 2;
        assert!(check_header(&bad, 99).unwrap_err().contains("version 2"));
    }

    #[test]
    fn a_store_appends_reads_limits_and_cuts() {
        // Appends land back to back after the header; limit and cut move the logical end.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.store");
        let mut store = Store::create(&OsFiles, &path, 5).unwrap();
        assert_eq!(store.size(), STORE_HEADER_BYTES);
        let (a, b) = (frame(5, b"a"), frame(6, b"bb"));
        assert_eq!(store.append(&a).unwrap(), STORE_HEADER_BYTES);
        assert_eq!(store.append(&b).unwrap(), STORE_HEADER_BYTES + a.len() as u64);
        assert_eq!(store.read(STORE_HEADER_BYTES + a.len() as u64, b.len() as u64).unwrap(), b);
        let reopened = Store::open(&OsFiles, &path).unwrap();
        assert_eq!(reopened.size(), STORE_HEADER_BYTES + (a.len() + b.len()) as u64);
        let mut limited = Store::open(&OsFiles, &path).unwrap();
        limited.limit(STORE_HEADER_BYTES + a.len() as u64);
        assert_eq!(limited.size(), STORE_HEADER_BYTES + a.len() as u64);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            reopened.size(),
            "limit changed the file"
        );
        store.cut(STORE_HEADER_BYTES + a.len() as u64).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), store.size());
        assert_eq!(store.append(&b).unwrap(), STORE_HEADER_BYTES + a.len() as u64);
    }

    #[test]
    fn zeros_are_written_ahead_only_once_the_data_reaches_them_in_growing_steps() {
        // A store is filled ahead once its data reaches the end of the zeros, by a step of its
        // size (64 KiB at least, 4 MiB at most), never past the limit; meanwhile appends write
        // into the zeros and the file's length stays put.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.store");
        let mut store = Store::create(&OsFiles, &path, 0).unwrap();
        let file_len = || std::fs::metadata(&path).unwrap().len();
        assert_eq!(file_len(), STORE_HEADER_BYTES, "nothing ahead at creation");
        let small = frame(0, b"small");
        store.append(&small).unwrap();
        store.fill_ahead(u64::MAX);
        let first_fill = store.size() + FILL_STEP_MIN_BYTES;
        assert_eq!((store.allocated(), file_len()), (first_fill, first_fill));
        store.append(&frame(1, b"x")).unwrap();
        store.fill_ahead(u64::MAX);
        assert_eq!(file_len(), first_fill, "zeros remain: nothing more is written");

        let big = frame(2, &vec![9u8; 100 * 1024]);
        store.append(&big).unwrap();
        store.fill_ahead(u64::MAX);
        let size = store.size();
        assert_eq!(file_len(), 2 * size, "a step of the store's size past 64 KiB");

        let huge = frame(3, &vec![9u8; 5 * 1024 * 1024]);
        store.append(&huge).unwrap();
        store.fill_ahead(u64::MAX);
        assert_eq!(file_len(), store.size() + FILL_STEP_MAX_BYTES, "at most 4 MiB ahead");

        store.append(&huge).unwrap();
        store.fill_ahead(store.size() + 1000);
        assert_eq!(file_len(), store.size() + 1000, "never past the limit");
        store.trim().unwrap();
        assert_eq!(file_len(), store.size());
    }
}
