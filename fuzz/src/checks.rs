//! The checks behind girok's fuzz targets, one function per target, each taking the fuzzer's raw
//! bytes and panicking when girok breaks a promise.
//!
//! This file is the fuzz crate's library and is also compiled into `tests/fuzz_corpus.rs` (by
//! `#[path]`), which replays every kept corpus input and crash through the same functions on
//! stable Rust. So it uses nothing but girok (with `internals`), `std`, `bytes` and `tempfile`,
//! and decodes its structured inputs itself (see [`Input`]): a corpus file means the same thing
//! to the fuzzer and to the replay.
//!
//! | check | input | promise |
//! |-------|-------|---------|
//! | [`frame_decoder`] | an offset, then bytes | `decode_frame` agrees with a reference decoder; `encode_frame` round-trips |
//! | [`index_loader`] | a segment choice, then bytes that make (or change) its index file | an index is derived data: whatever it holds, open succeeds, every record reads back right or as corrupt, none is lost |
//! | [`recovery`] | a directory choice, then damage operations | after any damage, open, read, append, close and `verify` never panic, and a read returns the value written at its offset (or a frame that really is in the files) or an error |
//!
//! Every check works in a fresh directory on tmpfs (`/dev/shm`) when there is one; the data
//! directories damaged are built once per thread and copied in from memory.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::ops::Range;
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use girok::storage::disk::store::{FRAME_HEADER_BYTES, FrameHeader, decode_frame, encode_frame};
use girok::storage::disk::verify;
use girok::storage::{CommitLog, DiskConfig, DiskLog, Error, FsyncPolicy, LogConfig};

/// Records written into each data directory before it is damaged.
const RECORDS: u64 = 24;

/// Where the second family of directories starts numbering, so that base offsets in file names
/// are not all small.
const HIGH_INITIAL_OFFSET: u64 = 1_000_000_007;

/// The frame decoder: `decode_frame` and `FrameHeader::decode` on arbitrary bytes agree with an
/// independent reference decoder (never panicking), and `encode_frame` then `decode_frame`
/// gives the record back.
///
/// Input: an offset (8 bytes LE), then the bytes to decode. The same bytes, read as offset,
/// timestamp (8 bytes) and value, drive the round trip.
pub fn frame_decoder(data: &[u8]) {
    let mut input = Input::new(data);
    let offset = input.u64();
    let buf = Bytes::copy_from_slice(input.rest());
    let decoded = decode_frame(&buf, offset);
    let reference = reference_decode(&buf, offset);
    match (&decoded, &reference) {
        (Ok(got), Some(want)) => assert_eq!(got, want, "decode_frame misread a valid frame"),
        (Ok(got), None) => panic!("decode_frame accepted an invalid frame as {got:?}"),
        (Err(why), Some(_)) => panic!("decode_frame refused a valid frame: {why}"),
        (Err(_), None) => {}
    }
    if let Ok((timestamp_ms, value)) = &decoded {
        // A valid frame has exactly one encoding.
        let mut again = Vec::new();
        encode_frame(&mut again, offset, *timestamp_ms, value, crc32c(&[value]));
        assert_eq!(again, buf, "a valid frame re-encodes differently");
    }
    if buf.len() as u64 >= FRAME_HEADER_BYTES {
        let header = FrameHeader::decode(&buf);
        assert_eq!(header.offset.to_le_bytes(), buf[0..8]);
        assert_eq!(header.timestamp_ms.to_le_bytes(), buf[8..16]);
        assert_eq!(header.length.to_le_bytes(), buf[16..20]);
        assert_eq!(header.crc.to_le_bytes(), buf[20..24]);
        assert_eq!(header.frame_len(), FRAME_HEADER_BYTES + u64::from(header.length));
        let payload = &buf[FRAME_HEADER_BYTES as usize..];
        assert_eq!(header.checks(&buf, payload), reference_checks(&buf), "checks disagrees");
    }

    let mut input = Input::new(data);
    let (offset, timestamp_ms) = (input.u64(), input.u64());
    let value = input.rest();
    // encode_frame appends: whatever the buffer held before stays and is not checksummed.
    let prefix_len = data.first().map_or(0, |b| usize::from(b % 5));
    let mut frame = vec![0xA5; prefix_len];
    encode_frame(&mut frame, offset, timestamp_ms, value, crc32c(&[value]));
    assert!(frame[..prefix_len].iter().all(|&b| b == 0xA5), "encode_frame overwrote its buffer");
    let frame = Bytes::from(frame).slice(prefix_len..);
    assert_eq!(frame.len() as u64, FRAME_HEADER_BYTES + value.len() as u64);
    assert_eq!(decode_frame(&frame, offset), Ok((timestamp_ms, Bytes::copy_from_slice(value))));
    assert_eq!(
        reference_decode(&frame, offset),
        Some((timestamp_ms, Bytes::copy_from_slice(value)))
    );
    assert!(decode_frame(&frame, offset ^ 1).is_err(), "a frame read as another offset");
    assert!(decode_frame(&frame.slice(..frame.len() - 1), offset).is_err(), "a short frame read");
    let header = FrameHeader::decode(&frame);
    assert_eq!((header.offset, header.timestamp_ms), (offset, timestamp_ms));
    assert_eq!(header.frame_len(), frame.len() as u64);
}

/// The index loader: arbitrary bytes as one segment's index file, next to intact stores. Opening
/// must succeed (the index is derived data), no record may be lost or renumbered, every read
/// returns the value written at its offset or fails as corrupt, and the log appends, closes and
/// reopens with the same guarantees.
///
/// Input: one byte choosing the directory (its low 4 bits, see [`Family`]) and the segment (its
/// high 4), one byte choosing how the rest makes the index file, then the rest: modulo 3,
/// 0 takes the rest as the file, 1 XORs it onto the index as written (so that a few changed
/// bytes make a nearly valid index), 2 does the same and cuts the file to the rest's length.
pub fn index_loader(data: &[u8]) {
    let mut input = Input::new(data);
    let choice = input.byte();
    let mode = input.byte() % 3;
    let delta = input.rest();
    let family = Family::from_byte(choice);
    let pristine = family.pristine();
    let indexes: Vec<&(String, Vec<u8>)> =
        pristine.iter().filter(|(name, _)| name.ends_with(".index")).collect();
    let (target, written) = indexes[usize::from(choice >> 4) % indexes.len()];
    let mut index = if mode == 0 { Vec::new() } else { written.clone() };
    if index.len() < delta.len() {
        index.resize(delta.len(), 0);
    }
    if mode == 2 {
        index.truncate(delta.len());
    }
    for (byte, d) in index.iter_mut().zip(delta) {
        *byte ^= d;
    }
    let dir = scratch_dir();
    family.restore(&pristine, dir.path());
    fs::write(dir.path().join(target), &index).expect("write the index");

    let report = verify(dir.path()).expect("verify an intact directory");
    assert!(report.is_ok(), "verify found corruption in intact stores:\n{report}");
    let log = DiskLog::open(dir.path(), family.config())
        .unwrap_or_else(|err| panic!("a bad {target} made open fail: {err}"));
    let written = family.offsets();
    assert_eq!(log.lowest_offset(), written.start, "lowest offset with a bad {target}");
    assert_eq!(log.next_offset(), written.end, "records lost or invented with a bad {target}");
    let stores = Stores::default();
    let first = read_all(&log, &family, &stores, None);
    let appended = append_and_check(&log);
    log.close().expect("close");

    let log = DiskLog::open(dir.path(), family.config()).expect("reopen after close");
    assert_eq!(log.next_offset(), appended + 1);
    let second = read_all(&log, &family, &stores, Some(appended));
    assert_kept(&first, &second);
    assert_eq!(log.read(appended).expect("read the appended record").value, APPENDED);
    log.close().expect("close");
}

/// Recovery of a whole data directory: a few segments, closed or crashed, then damage chosen by
/// the fuzzer (truncations, overwrites, garbage, deleted or zeroed files, spliced bytes). Then
/// `verify`, open, read everything, append, close, reopen and read again: nothing panics, a
/// read returns the value written at its offset (or a frame that really is in the damaged files
/// for that offset: a checksum is no signature) or fails as corrupt, a record that read back
/// before a clean close reads back after it, and when `verify` found nothing wrong (and no index
/// was damaged: `verify` does not read them) the log opens and every record reads back. Open
/// may refuse a damaged directory, with an error.
///
/// Input: one byte choosing the directory (see [`Family`]), then operations (see [`Damage`]).
pub fn recovery(data: &[u8]) {
    let mut input = Input::new(data);
    let family = Family::from_byte(input.byte());
    let pristine = family.pristine();
    let dir = scratch_dir();
    family.restore(&pristine, dir.path());
    let mut ops = 0;
    while !input.is_empty() && ops < 16 {
        Damage::apply(&mut input, dir.path());
        ops += 1;
    }
    let stores = Stores::read(dir.path());
    // `verify` reads stores only, so its verdict speaks for the whole log only while every
    // index is as written (or gone, to be rebuilt).
    let indexes_intact = pristine
        .iter()
        .filter(|(name, _)| name.ends_with(".index"))
        .all(|(name, bytes)| fs::read(dir.path().join(name)).map_or(true, |now| now == *bytes));

    let report = verify(dir.path());
    let clean = report.ok().filter(|r| r.is_ok() && indexes_intact);
    let log = match DiskLog::open(dir.path(), family.config()) {
        Ok(log) => log,
        Err(err) => {
            assert!(clean.is_none(), "verify said OK but open failed: {err}");
            let _ = verify(dir.path());
            return;
        }
    };
    let first = read_all(&log, &family, &stores, None);
    if let Some(report) = &clean {
        let failed: Vec<_> = first.iter().filter(|(_, r)| r.is_err()).collect();
        assert!(failed.is_empty(), "verify said OK:\n{report}\nbut reads failed: {failed:?}");
    }
    let appended = append_and_check(&log);
    log.close().expect("close");
    let _ = verify(dir.path());

    let log = DiskLog::open(dir.path(), family.config()).expect("reopen after a clean close");
    assert_eq!(log.next_offset(), appended + 1, "the commit point moved across a clean close");
    let second = read_all(&log, &family, &stores, Some(appended));
    assert_kept(&first, &second);
    assert_eq!(log.read(appended).expect("read the appended record").value, APPENDED);
    drop(log);
    let _ = verify(dir.path());
}

/// The value appended after recovery.
const APPENDED: &[u8] = b"appended after recovery";

/// The value written at `offset`: letters only (so no value holds a frame), lengths from empty
/// to larger than a whole segment.
fn value_of(offset: u64) -> Bytes {
    const LENGTHS: [usize; 9] = [0, 1, 7, 40, 3, 90, 12, 0, 300];
    let len = LENGTHS[(offset % LENGTHS.len() as u64) as usize];
    (0..len).map(|i| b'a' + ((offset as usize + i) % 26) as u8).collect()
}

/// A data directory's segment files: names and contents, sorted by name.
type Files = Vec<(String, Vec<u8>)>;

/// One of the data directories the checks damage: how it was written and left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Family {
    /// Closed cleanly (every segment sealed and trimmed), or dropped (a crash).
    closed: bool,
    /// `fsync=always` (the active store zero-filled ahead) or `never`.
    always: bool,
    /// The log starts at [`HIGH_INITIAL_OFFSET`] instead of 0.
    high: bool,
    /// At most one sealed segment's files open at a time, instead of all of them.
    one_open: bool,
}

impl Family {
    fn from_byte(b: u8) -> Self {
        Self { closed: b & 1 != 0, always: b & 2 != 0, high: b & 4 != 0, one_open: b & 8 != 0 }
    }

    /// Tiny segments, so that a few records make several.
    // The struct update names no field today; it keeps this file compiling, with the default,
    // when the storage engine grows a setting.
    #[allow(clippy::needless_update)]
    fn config(&self) -> DiskConfig {
        DiskConfig {
            log: LogConfig { initial_offset: self.initial(), ..LogConfig::default() },
            max_store_bytes: 256,
            max_index_bytes: 96,
            fsync: if self.always { FsyncPolicy::Always } else { FsyncPolicy::Never },
            max_open_segments: if self.one_open { 1 } else { 64 },
            ..DiskConfig::default()
        }
    }

    fn initial(&self) -> u64 {
        if self.high { HIGH_INITIAL_OFFSET } else { 0 }
    }

    fn offsets(&self) -> Range<u64> {
        self.initial()..self.initial() + RECORDS
    }

    /// The segment files of this family's directory, built once per thread.
    fn pristine(&self) -> Rc<Files> {
        thread_local! {
            static BUILT: RefCell<HashMap<Family, Rc<Files>>> =
                RefCell::new(HashMap::new());
        }
        if let Some(files) = BUILT.with(|b| b.borrow().get(self).cloned()) {
            return files;
        }
        let dir = scratch_dir();
        let log = DiskLog::open(dir.path(), self.config()).expect("open a new log");
        let mut next = self.initial();
        for batch in [1u64, 2, 1, 3, 1, 1, 4, 2, 1, 5, 1, 2].iter().cycle() {
            let end = (next + batch).min(self.offsets().end);
            let values: Vec<Bytes> = (next..end).map(value_of).collect();
            assert_eq!(log.append_batch(&values).expect("append"), next..end);
            next = end;
            if next == self.offsets().end {
                break;
            }
        }
        if self.closed {
            log.close().expect("close");
        }
        drop(log);
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8 name"))
            .filter(|name| name.ends_with(".store") || name.ends_with(".index"))
            .map(|name| {
                let bytes = fs::read(dir.path().join(&name)).expect("read");
                (name, bytes)
            })
            .collect();
        files.sort();
        assert!(files.len() >= 6, "expected several segments, got {files:?}");
        let files = Rc::new(files);
        BUILT.with(|b| b.borrow_mut().insert(*self, Rc::clone(&files)));
        files
    }

    fn restore(&self, files: &[(String, Vec<u8>)], dir: &Path) {
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).expect("write");
        }
    }
}

/// A fresh empty directory, on tmpfs when there is one.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
    dir.expect("a scratch directory")
}

/// One damage operation on a data directory's files, decoded from the input:
/// `op`, `file` (an index into the sorted segment file names), then its arguments. Positions
/// are 16-bit and taken modulo the file's length (plus one), so that they land.
enum Damage {}

impl Damage {
    fn apply(input: &mut Input<'_>, dir: &Path) {
        let op = input.byte();
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8 name"))
            .filter(|name| name.ends_with(".store") || name.ends_with(".index"))
            .collect();
        names.sort();
        let pick = usize::from(input.byte());
        let Some(name) = names.get(pick % names.len().max(1)) else { return };
        let path = dir.join(name);
        let mut bytes = fs::read(&path).expect("read");
        let at = |input: &mut Input<'_>, len: usize| usize::from(input.u16()) % (len + 1);
        match op % 9 {
            // Truncate.
            0 => {
                let cut = at(input, bytes.len());
                bytes.truncate(cut);
            }
            // Overwrite with the input's bytes.
            1 => {
                let pos = at(input, bytes.len());
                let n = usize::from(input.byte() % 32);
                let with = input.bytes(n);
                let end = (pos + with.len()).min(bytes.len());
                bytes[pos..end].copy_from_slice(&with[..end - pos]);
            }
            // Append garbage.
            2 => {
                let n = usize::from(input.byte() % 64);
                bytes.extend_from_slice(input.bytes(n));
            }
            // Delete the file.
            3 => {
                fs::remove_file(&path).expect("delete");
                return;
            }
            // Zero the file, keeping its length.
            4 => bytes.fill(0),
            // Flip one bit.
            5 => {
                let pos = at(input, bytes.len());
                let bit = input.byte() % 8;
                if let Some(b) = bytes.get_mut(pos) {
                    *b ^= 1 << bit;
                }
            }
            // Append zeros.
            6 => {
                let n = usize::from(input.byte()) * 4;
                bytes.resize(bytes.len() + n, 0);
            }
            // Copy a range of another segment file over this one (stale or foreign frames).
            7 => {
                let Some(from) = names.get(usize::from(input.byte()) % names.len()) else { return };
                let source = fs::read(dir.join(from)).expect("read");
                let start = at(input, source.len());
                let n = usize::from(input.byte());
                let chunk = &source[start..(start + n).min(source.len())];
                let pos = at(input, bytes.len());
                let end = pos + chunk.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[pos..end].copy_from_slice(chunk);
            }
            // Remove a range of bytes (a lost write in the middle).
            _ => {
                let pos = at(input, bytes.len());
                let n = usize::from(input.byte());
                bytes.drain(pos..(pos + n).min(bytes.len()));
            }
        }
        fs::write(&path, bytes).expect("write");
    }
}

/// The store files of a damaged directory, as they were before it was opened: what a read may
/// legitimately return besides the value written.
#[derive(Default)]
struct Stores(Vec<Vec<u8>>);

impl Stores {
    fn read(dir: &Path) -> Self {
        let stores = fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "store"))
            .map(|p| fs::read(p).expect("read"))
            .collect();
        Self(stores)
    }

    /// Whether some store holds a valid frame for `offset` carrying `value`.
    fn hold(&self, offset: u64, value: &[u8]) -> bool {
        let frame_len = FRAME_HEADER_BYTES as usize + value.len();
        self.0.iter().any(|store| {
            store.windows(frame_len).any(|w| {
                w[0..8] == offset.to_le_bytes()
                    && decode_frame(&Bytes::copy_from_slice(w), offset)
                        .is_ok_and(|(_, v)| v == value)
            })
        })
    }
}

/// What one read of an offset gave: the value, or the error's kind.
type ReadResult = Result<Bytes, String>;

/// Reads every offset of `[lowest, next)` one by one and checks each result (`appended` is the
/// offset of [`APPENDED`], if it was), then reads them again in batches and checks those agree;
/// also checks the offsets just outside.
fn read_all(
    log: &DiskLog,
    family: &Family,
    stores: &Stores,
    appended: Option<u64>,
) -> Vec<(u64, ReadResult)> {
    let (lowest, next) = (log.lowest_offset(), log.next_offset());
    assert!(lowest <= next, "lowest {lowest} past next {next}");
    let written = family.offsets();
    let mut results = Vec::new();
    for offset in lowest..next.min(lowest + 4 * RECORDS) {
        let result = match log.read(offset) {
            Ok(record) => {
                assert_eq!(record.offset, offset, "read {offset} returned another offset");
                let right = if appended == Some(offset) {
                    record.value == APPENDED
                } else {
                    written.contains(&offset) && record.value == value_of(offset)
                };
                assert!(
                    right || stores.hold(offset, &record.value),
                    "read {offset} returned {:?}, which was neither written there nor is a \
                     frame in the files",
                    record.value
                );
                Ok(record.value)
            }
            Err(Error::Corrupt { offset: at, detail }) => {
                assert_eq!(at, offset, "read {offset} reported corruption at {at}");
                Err(format!("corrupt: {detail}"))
            }
            Err(err) => panic!("read {offset} in [{lowest}, {next}) failed with {err:?}"),
        };
        results.push((offset, result));
    }
    for outside in [lowest.checked_sub(1), Some(next)].into_iter().flatten() {
        assert!(
            matches!(log.read(outside), Err(Error::OffsetOutOfRange { .. })),
            "read {outside} outside [{lowest}, {next})"
        );
    }
    let mut at = 0;
    while let Some((offset, _)) = results.get(at) {
        match log.read_batch(*offset, 5, 100) {
            Ok(batch) => {
                assert!(!batch.is_empty(), "an empty batch at {offset}");
                for (i, record) in batch.iter().enumerate() {
                    let (want_offset, want) = &results[at + i];
                    assert_eq!(record.offset, *want_offset, "batch from {offset} skipped");
                    assert_eq!(Ok(&record.value), want.as_ref(), "batch from {offset}");
                }
                at += batch.len();
            }
            Err(err) => {
                assert!(results[at].1.is_err(), "batch at {offset} failed ({err}), read did not");
                at += 1;
            }
        }
    }
    results
}

/// Appends one record and reads it back; returns its offset.
fn append_and_check(log: &DiskLog) -> u64 {
    let next = log.next_offset();
    let offset = log
        .append(Bytes::from_static(APPENDED))
        .unwrap_or_else(|err| panic!("append after recovery failed: {err}"));
    assert_eq!(offset, next, "append did not take the next offset");
    let record = log.read(offset).expect("read the appended record");
    assert_eq!(record.value, APPENDED);
    offset
}

/// Checks that every record that read back before a clean close reads back the same after it.
fn assert_kept(before: &[(u64, ReadResult)], after: &[(u64, ReadResult)]) {
    for (offset, result) in before {
        let Ok(value) = result else { continue };
        let again = after.iter().find(|(o, _)| o == offset).map(|(_, r)| r);
        assert_eq!(again, Some(&Ok(value.clone())), "offset {offset} changed across close");
    }
}

/// The reference decoder: the store's frame layout read field by field, checked with a CRC32C
/// written here, independent of girok's code.
fn reference_decode(buf: &[u8], offset: u64) -> Option<(u64, Bytes)> {
    (reference_checks(buf) && field(buf, 0, 8) == offset)
        .then(|| (field(buf, 8, 8), Bytes::copy_from_slice(&buf[24..])))
}

/// Whether `buf` is one whole frame whose checksum matches, whatever offset it holds.
fn reference_checks(buf: &[u8]) -> bool {
    buf.len() >= 24
        && field(buf, 16, 4) == buf.len() as u64 - 24
        && u64::from(crc32c(&[&buf[24..], &buf[..20]])) == field(buf, 20, 4)
}

/// The little-endian field of `n` bytes at `at`.
fn field(buf: &[u8], at: usize, n: usize) -> u64 {
    buf[at..at + n].iter().rev().fold(0, |acc, &b| acc << 8 | u64::from(b))
}

/// CRC32C (Castagnoli) of the concatenation of `parts`, bit by bit.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// A reader of structured values from the fuzzer's bytes; past the end it reads zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `n` bytes (fewer at the end).
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    fn byte(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let taken = self.bytes(2);
        b[..taken.len()].copy_from_slice(taken);
        u16::from_le_bytes(b)
    }

    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        let taken = self.bytes(8);
        b[..taken.len()].copy_from_slice(taken);
        u64::from_le_bytes(b)
    }

    fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}
