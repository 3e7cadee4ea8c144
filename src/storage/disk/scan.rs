//! Forward scan of a store's frames: the one walk behind index rebuilds, torn-tail repair on open
//! and the offline `verify`.
//!
//! The scan checks every frame's CRC and that its offset is the next one expected. When a frame
//! fails, it looks further on for any valid frame with a later offset: if one exists, the damage
//! is in the middle of the data (reported as a corrupt range of offsets, never skipped or
//! renumbered) and the scan goes on from there; if none does, everything from the failed frame
//! on is a torn tail.

use std::io;
use std::ops::Range;

use super::fs::SegmentFile;
use super::store::{FRAME_HEADER_BYTES, FrameHeader};

/// How many bytes the scan reads from the file at a time.
const WINDOW_BYTES: u64 = 4 * 1024 * 1024;

/// What a scan found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// The frame position of each offset from the scan's first, in order. Offsets in a corrupt
    /// range map to the position where the damage starts, which never verifies as their frame.
    pub positions: Vec<u64>,
    /// Offsets whose frames are damaged, each range followed by a valid frame.
    pub corrupt: Vec<Range<u64>>,
    /// The end of the last valid frame: where a torn tail starts.
    pub valid_end: u64,
    /// Bytes of payload in the valid frames.
    pub payload_bytes: u64,
}

impl Scan {
    /// The offset after the last one scanned (valid or corrupt).
    pub(super) fn next_offset(&self, first: u64) -> u64 {
        first + self.positions.len() as u64
    }
}

/// Scans the frames of `file` in `[pos, len)`, the first expected to hold `offset`, stopping
/// after `max_records` offsets (valid or corrupt).
pub(super) fn scan(
    file: &dyn SegmentFile,
    mut pos: u64,
    len: u64,
    mut offset: u64,
    max_records: u64,
) -> io::Result<Scan> {
    let mut window = Window::new(file, len);
    let first = offset;
    let mut out = Scan { valid_end: pos, ..Scan::default() };
    while (out.positions.len() as u64) < max_records && pos < len {
        if let Some(header) = window.valid_frame(pos, offset)? {
            out.positions.push(pos);
            out.payload_bytes += u64::from(header.length);
            pos += header.frame_len();
            offset += 1;
            out.valid_end = pos;
            continue;
        }
        let Some((next_pos, next_offset)) = window.next_good_frame(pos, offset)? else {
            break;
        };
        let budget = max_records - (offset - first);
        let damaged = (next_offset - offset).min(budget);
        out.positions.extend(std::iter::repeat_n(pos, damaged as usize));
        out.corrupt.push(offset..offset + damaged);
        offset += damaged;
        pos = next_pos;
    }
    Ok(out)
}

/// A read-ahead window over the file, so the scan costs one read per few MiB, not per frame.
struct Window<'a> {
    file: &'a dyn SegmentFile,
    len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    fn new(file: &'a dyn SegmentFile, len: u64) -> Self {
        Self { file, len, start: 0, buf: Vec::new() }
    }

    /// The bytes `[pos, pos + n)`, or `None` when they run past the end of the file.
    fn bytes(&mut self, pos: u64, n: u64) -> io::Result<Option<&[u8]>> {
        if pos.checked_add(n).is_none_or(|end| end > self.len) {
            return Ok(None);
        }
        let have = pos >= self.start && pos + n <= self.start + self.buf.len() as u64;
        if !have {
            let take = n.max(WINDOW_BYTES).min(self.len - pos);
            self.buf.resize(take as usize, 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let at = (pos - self.start) as usize;
        Ok(Some(&self.buf[at..at + n as usize]))
    }

    /// The header of the frame at `pos` when that frame is whole, checks, and holds `offset`.
    fn valid_frame(&mut self, pos: u64, offset: u64) -> io::Result<Option<FrameHeader>> {
        let Some(head) = self.bytes(pos, FRAME_HEADER_BYTES)? else { return Ok(None) };
        let header = FrameHeader::decode(head);
        if header.offset != offset {
            return Ok(None);
        }
        self.checks(pos, header)
    }

    fn checks(&mut self, pos: u64, header: FrameHeader) -> io::Result<Option<FrameHeader>> {
        let Some(frame) = self.bytes(pos, header.frame_len())? else { return Ok(None) };
        let (head, payload) = frame.split_at(FRAME_HEADER_BYTES as usize);
        Ok(header.checks(head, payload).then_some(header))
    }

    /// The next frame worth trusting after the failed frame at `pos` (which should hold
    /// `offset`), or `None` when everything from `pos` on is a torn tail.
    ///
    /// A valid-looking frame inside the failed frame's bytes may be a client's payload, not a
    /// record of ours, so what the failed frame's header still says decides what counts:
    /// - it names `offset` and a length inside the file: a frame found within that length counts
    ///   only if the length field was the damage (the failed frame checks when cut there);
    /// - it names `offset` and runs past the end of the file (a write cut short, or a flipped
    ///   length): a frame found counts only if valid frames follow it to the end of the data,
    ///   which a torn write does not leave;
    /// - its header is damaged: any valid frame with a plausible later offset counts.
    fn next_good_frame(&mut self, pos: u64, offset: u64) -> io::Result<Option<(u64, u64)>> {
        // Zeros to the end (space preallocated under `always`, never written) hold no frame:
        // say so at once instead of looking for one at every byte.
        if self.zeros_to_end(pos)? {
            return Ok(None);
        }
        let claimed = self.claimed_end(pos, offset)?;
        let mut from = pos + 1;
        while let Some((next_pos, next_offset)) = self.resync(from, offset)? {
            let trusted = match claimed {
                Some(end) if end <= self.len => {
                    next_pos >= end || self.length_was_the_damage(pos, next_pos)?
                }
                Some(_) => self.chain_reaches_end(next_pos, next_offset)?,
                None => true,
            };
            if trusted {
                return Ok(Some((next_pos, next_offset)));
            }
            from = next_pos + 1;
        }
        Ok(None)
    }

    /// Whether the frame at `pos` would check if its length field said it ends at `end`.
    fn length_was_the_damage(&mut self, pos: u64, end: u64) -> io::Result<bool> {
        let Some(length) = end.checked_sub(pos + FRAME_HEADER_BYTES) else { return Ok(false) };
        let Ok(length) = u32::try_from(length) else { return Ok(false) };
        let Some(frame) = self.bytes(pos, end - pos)? else { return Ok(false) };
        let mut head = [0u8; FRAME_HEADER_BYTES as usize];
        head.copy_from_slice(&frame[..FRAME_HEADER_BYTES as usize]);
        head[16..20].copy_from_slice(&length.to_le_bytes());
        let repaired = FrameHeader::decode(&head);
        Ok(repaired.checks(&head, &frame[FRAME_HEADER_BYTES as usize..]))
    }

    /// Where the frame at `pos` ends by its own length field, when its header names `offset`
    /// (a whole header past the end of the file names nothing).
    fn claimed_end(&mut self, pos: u64, offset: u64) -> io::Result<Option<u64>> {
        let Some(head) = self.bytes(pos, FRAME_HEADER_BYTES)? else { return Ok(None) };
        let header = FrameHeader::decode(head);
        Ok((header.offset == offset).then(|| pos.saturating_add(header.frame_len())))
    }

    /// Whether valid frames from `pos` (the first holding `offset`) run to the end of the data:
    /// the end of the file, or zeros up to it (space preallocated and never written).
    fn chain_reaches_end(&mut self, mut pos: u64, mut offset: u64) -> io::Result<bool> {
        while pos < self.len {
            match self.valid_frame(pos, offset)? {
                Some(header) => pos += header.frame_len(),
                None => return self.zeros_to_end(pos),
            }
            offset += 1;
        }
        Ok(true)
    }

    /// Whether every byte from `pos` to the end of the file is zero.
    fn zeros_to_end(&mut self, mut pos: u64) -> io::Result<bool> {
        while pos < self.len {
            let n = WINDOW_BYTES.min(self.len - pos);
            match self.bytes(pos, n)? {
                Some(bytes) if bytes.iter().all(|&b| b == 0) => pos += n,
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The first position at or after `from` holding a valid frame with an offset above
    /// `after` (and plausibly close: at most one offset per frame header's worth of bytes).
    fn resync(&mut self, from: u64, after: u64) -> io::Result<Option<(u64, u64)>> {
        let mut pos = from;
        while pos + FRAME_HEADER_BYTES <= self.len {
            let Some(head) = self.bytes(pos, FRAME_HEADER_BYTES)? else { break };
            let header = FrameHeader::decode(head);
            let max_skip = (pos - from) / FRAME_HEADER_BYTES + 1;
            let plausible = header.offset > after
                && header.offset - after <= max_skip
                && pos + header.frame_len() <= self.len;
            if plausible && self.checks(pos, header)?.is_some() {
                return Ok(Some((pos, header.offset)));
            }
            pos += 1;
        }
        Ok(None)
    }
}

/// Whether the bytes `[from, to)` of `file` are all zero.
pub(super) fn all_zeros(
    file: &dyn SegmentFile,
    mut from: u64,
    to: u64,
) -> crate::storage::Result<bool> {
    let mut buf = vec![0u8; 1 << 20];
    while from < to {
        let n = (to - from).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], from)?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        from += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::fs::OsFiles;
    use super::super::store::{STORE_HEADER_BYTES, Store, encode_frame};
    use super::*;

    /// A store at `dir/s.store` based at 10 holding `values`, and each frame's position.
    fn store(dir: &std::path::Path, values: &[&[u8]]) -> (Store, Vec<u64>) {
        let mut store = Store::create(&OsFiles, &dir.join("s.store"), 10).unwrap();
        let mut positions = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let mut buf = Vec::new();
            encode_frame(&mut buf, 10 + i as u64, 1, value, crc32c::crc32c(value));
            positions.push(store.append(&buf).unwrap());
        }
        (store, positions)
    }

    fn scan_all(store: &Store) -> Scan {
        scan(store.file().as_ref(), STORE_HEADER_BYTES, store.size(), 10, u64::MAX).unwrap()
    }

    fn flip(store: &Store, pos: u64) {
        let mut byte = [0u8];
        store.file().read_exact_at(&mut byte, pos).unwrap();
        store.file().write_all_at(&[byte[0] ^ 0x04], pos).unwrap();
    }

    const VALUES: [&[u8]; 5] = [b"zero", b"", b"two two", b"three", b"four!"];

    #[test]
    fn a_frame_inside_a_torn_payload_is_never_taken_for_a_record() {
        // A client's payload that embeds a valid frame for the next offset, torn by a crash
        // after the embedded frame, is a torn tail: the embedded bytes do not become a record.
        let dir = tempfile::tempdir().unwrap();
        let mut embedded = Vec::new();
        encode_frame(&mut embedded, 13, 1, b"forged", crc32c::crc32c(b"forged"));
        let mut payload = vec![0xee; 8];
        payload.extend_from_slice(&embedded);
        payload.extend_from_slice(&[0xee; 32]);
        let (mut store, positions) = store(dir.path(), &[b"ten", b"eleven", &payload]);
        let torn = positions[2] + FRAME_HEADER_BYTES + 8 + embedded.len() as u64 + 5;
        store.cut(torn).unwrap();
        let found = scan_all(&store);
        assert_eq!(found.positions, positions[..2]);
        assert!(found.corrupt.is_empty());
        assert_eq!(found.valid_end, positions[2]);

        // The same with preallocated zeros after the tear (fsync=always): the torn frame's
        // length now ends inside the file, and still nothing inside it counts.
        let zeros = vec![0u8; 4096];
        store.file().write_all_at(&zeros, torn).unwrap();
        let len = torn + zeros.len() as u64;
        let found = scan(store.file().as_ref(), STORE_HEADER_BYTES, len, 10, u64::MAX).unwrap();
        assert_eq!(found.positions, positions[..2]);
        assert!(found.corrupt.is_empty());
        assert_eq!(found.valid_end, positions[2]);
    }

    #[test]
    fn a_clean_store_scans_whole() {
        // Every frame of an undamaged store is found, in order, with nothing corrupt.
        let dir = tempfile::tempdir().unwrap();
        let (store, positions) = store(dir.path(), &VALUES);
        let found = scan_all(&store);
        assert_eq!(found.positions, positions);
        assert!(found.corrupt.is_empty());
        assert_eq!(found.valid_end, store.size());
        assert_eq!(found.next_offset(10), 15);
        assert_eq!(found.payload_bytes, 21);
    }

    #[test]
    fn a_partial_last_frame_is_a_torn_tail() {
        // A last frame cut anywhere is a torn tail: the scan ends before it, nothing corrupt.
        let dir = tempfile::tempdir().unwrap();
        let (store, positions) = store(dir.path(), &VALUES);
        for len in positions[4]..store.size() {
            let found = scan(store.file().as_ref(), STORE_HEADER_BYTES, len, 10, u64::MAX).unwrap();
            assert_eq!(found.positions, positions[..4], "cut at {len}");
            assert!(found.corrupt.is_empty(), "cut at {len}");
            assert_eq!(found.valid_end, positions[4]);
        }
    }

    #[test]
    fn damage_in_the_last_frame_or_trailing_zeros_is_a_torn_tail() {
        // A bad last frame, or zeros after the last frame, has no valid frame after it: a tail.
        let dir = tempfile::tempdir().unwrap();
        let (mut store, positions) = store(dir.path(), &VALUES);
        let end = store.size();
        store.append(&[0u8; 64]).unwrap();
        let found = scan_all(&store);
        assert_eq!((found.positions.len(), found.valid_end), (5, end));
        flip(&store, positions[4] + 25);
        let found = scan_all(&store);
        assert_eq!((found.positions.len(), found.valid_end), (4, positions[4]));
        assert!(found.corrupt.is_empty());
    }

    #[test]
    fn damage_mid_file_is_corruption_and_the_scan_resyncs() {
        // A bad frame followed by valid ones is reported as a corrupt offset, and the scan goes
        // on past it without renumbering.
        let dir = tempfile::tempdir().unwrap();
        let (store, positions) = store(dir.path(), &VALUES);
        for at in [0, 8, 16, 20, 24] {
            flip(&store, positions[2] + at);
            let found = scan_all(&store);
            assert_eq!(found.corrupt, vec![12..13], "flip at +{at}");
            assert_eq!(found.positions.len(), 5);
            assert_eq!(found.positions[3..], positions[3..]);
            assert_eq!(found.valid_end, store.size());
            flip(&store, positions[2] + at);
        }
    }

    #[test]
    fn max_records_bounds_the_scan() {
        // The scan stops after max_records offsets.
        let dir = tempfile::tempdir().unwrap();
        let (store, positions) = store(dir.path(), &VALUES);
        let found = scan(store.file().as_ref(), STORE_HEADER_BYTES, store.size(), 10, 2).unwrap();
        assert_eq!(found.positions, positions[..2]);
        assert_eq!(found.valid_end, positions[2]);
    }
}
