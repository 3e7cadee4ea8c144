//! One WAL entry on disk: a checksummed frame.
//!
//! | bytes  | field                                                        |
//! | ------ | ------------------------------------------------------------ |
//! | 0..4   | payload length `n`, u32 little-endian                        |
//! | 4..8   | CRC-32C of bytes 8..24+n, then of bytes 0..4, u32 LE          |
//! | 8..16  | Raft index, u64 LE                                           |
//! | 16..24 | Raft term, u64 LE                                            |
//! | 24..   | payload, `n` bytes (opaque to the WAL)                       |
//!
//! The CRC covers the header as well as the payload, so a torn or zeroed header is caught. A
//! frame is valid only if the whole of it is present and its CRC matches.

use bytes::Bytes;

/// The bytes before the payload.
pub(super) const HEADER: usize = 24;

/// One entry of the Raft log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its Raft index; dense from the log's first index.
    pub index: u64,
    /// The term of the leader that proposed it.
    pub term: u64,
    /// What the state machine applies; opaque here.
    pub payload: Bytes,
}

/// An entry's identity: its index and term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    /// The Raft index.
    pub index: u64,
    /// The Raft term.
    pub term: u64,
}

impl Entry {
    /// The entry's index and term.
    pub fn id(&self) -> LogId {
        LogId { index: self.index, term: self.term }
    }
}

fn crc(head: &[u8; HEADER], payload: &[u8]) -> u32 {
    let c = crc32c::crc32c(&head[8..]);
    let c = crc32c::crc32c_append(c, payload);
    crc32c::crc32c_append(c, &head[..4])
}

/// Appends `entry`'s frame to `out`.
pub(super) fn encode(entry: &Entry, out: &mut Vec<u8>) {
    debug_assert!(entry.payload.len() <= u32::MAX as usize);
    let mut head = [0u8; HEADER];
    head[..4].copy_from_slice(&(entry.payload.len() as u32).to_le_bytes());
    head[8..16].copy_from_slice(&entry.index.to_le_bytes());
    head[16..24].copy_from_slice(&entry.term.to_le_bytes());
    let sum = crc(&head, &entry.payload);
    head[4..8].copy_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&entry.payload);
}

/// A frame header as read, before its payload is checked.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    bytes: [u8; HEADER],
}

impl Header {
    /// Wraps the header bytes read from a file.
    pub(super) fn new(bytes: [u8; HEADER]) -> Self {
        Self { bytes }
    }

    /// The payload length.
    pub(super) fn len(&self) -> u32 {
        u32::from_le_bytes(self.bytes[..4].try_into().expect("4 bytes"))
    }

    /// The Raft index.
    pub(super) fn index(&self) -> u64 {
        u64::from_le_bytes(self.bytes[8..16].try_into().expect("8 bytes"))
    }

    /// The Raft term.
    pub(super) fn term(&self) -> u64 {
        u64::from_le_bytes(self.bytes[16..24].try_into().expect("8 bytes"))
    }

    /// Whether `payload` completes this header into a valid frame.
    pub(super) fn checks(&self, payload: &[u8]) -> bool {
        let stored = u32::from_le_bytes(self.bytes[4..8].try_into().expect("4 bytes"));
        stored == crc(&self.bytes, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_any_flipped_bit_fails_its_check() {
        // Every bit of header and payload is covered by the checksum.
        let entry = Entry { index: 7, term: 3, payload: Bytes::from_static(b"hello") };
        let mut buf = Vec::new();
        encode(&entry, &mut buf);
        let ok = |buf: &[u8]| {
            let head = Header::new(buf[..HEADER].try_into().unwrap());
            head.len() as usize == buf.len() - HEADER && head.checks(&buf[HEADER..])
        };
        assert!(ok(&buf));
        let head = Header::new(buf[..HEADER].try_into().unwrap());
        assert_eq!((head.index(), head.term(), head.len()), (7, 3, 5));
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(!ok(&bad), "bit {bit}");
        }
    }
}
