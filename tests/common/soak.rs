//! The crash soak's vocabulary: self-describing values (who sent them, and a body that can be
//! checked byte for byte), a small seeded random source, the server process it kills again and
//! again (stderr kept in a file, SIGKILLed on drop), and a working directory kept on failure.
//!
//! A value names its sender: `soak:PRODUCER:SEQ;` followed by filler bytes derived from the key,
//! up to a length also derived from the key. So a value read back is either empty, exactly the
//! value of the key its header names, or garbage; a record's value never has to be stored.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::binary::{PROCESS_TIMEOUT, listening_address, server_command};

const HEADER_PREFIX: &[u8] = b"soak:";
/// The longest header after its prefix: two `u32`s, a `:` and the `;`.
const MAX_HEADER_REST: usize = 10 + 1 + 10 + 1;

/// The splitmix64 finaliser: a well-mixed hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A seeded pseudo-random source (splitmix64): the soak's choices replay from the printed seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A source starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next_u64() as usize % items.len()]
    }

    /// A fresh source for another task, so that tasks draw independently.
    pub fn fork(&mut self) -> Self {
        Self(self.next_u64())
    }
}

/// Who sent a value: a producer (a number unique across the soak) and its sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The producer.
    pub producer: u32,
    /// Its sequence number, from 0.
    pub seq: u32,
}

impl Key {
    fn hash(self) -> u64 {
        mix((u64::from(self.producer) << 32) | u64::from(self.seq))
    }

    /// The value's length: mostly small, some up to 1 KiB, a few empty, and one in about 400
    /// between 16 and 80 KiB (larger than a 64 KiB segment now and then).
    pub fn len(self) -> usize {
        let h = self.hash();
        let spread = (h >> 16) as usize;
        match h % 1000 {
            0..40 => 0,
            40..700 => 32 + spread % 96,
            700..997 => 32 + spread % 992,
            _ => 16 * 1024 + spread % (64 * 1024),
        }
    }

    /// The value this key sends.
    pub fn value(self) -> Bytes {
        let len = self.len();
        if len == 0 {
            return Bytes::new();
        }
        let mut value = self.header().into_bytes();
        let h = self.hash();
        value.extend((value.len()..len).map(|i| filler(h, i)));
        Bytes::from(value)
    }

    /// `soak:PRODUCER:SEQ;`, the start of every non-empty value.
    fn header(self) -> String {
        format!("soak:{}:{};", self.producer, self.seq)
    }

    /// What the log shows at an offset holding this key's value.
    pub fn entry(self) -> Entry {
        if self.len() == 0 { Entry::Empty } else { Entry::Sent(self) }
    }
}

fn filler(hash: u64, i: usize) -> u8 {
    b'a' + ((hash.wrapping_add(i as u64 * 7)) % 26) as u8
}

/// What one offset of the log holds, as far as its value tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An empty value (several keys send one; which is not known).
    Empty,
    /// Exactly the value `Key` sends.
    Sent(Key),
    /// Neither: no producer sent these bytes.
    Garbage,
}

impl Entry {
    /// Reads a value back into what it is.
    pub fn of(value: &[u8]) -> Self {
        if value.is_empty() {
            return Self::Empty;
        }
        match parse_header(value) {
            Some((key, header)) if key.len() == value.len() => {
                let h = key.hash();
                let body_matches =
                    value.iter().enumerate().skip(header).all(|(i, &byte)| byte == filler(h, i));
                if body_matches { Self::Sent(key) } else { Self::Garbage }
            }
            _ => Self::Garbage,
        }
    }
}

/// The key a value's header names, and the header's length.
fn parse_header(value: &[u8]) -> Option<(Key, usize)> {
    let rest = value.strip_prefix(HEADER_PREFIX)?;
    let end = rest.iter().take(MAX_HEADER_REST).position(|&b| b == b';')?;
    let (producer, seq) = std::str::from_utf8(&rest[..end]).ok()?.split_once(':')?;
    let key = Key { producer: producer.parse().ok()?, seq: seq.parse().ok()? };
    let header = key.header();
    value.starts_with(header.as_bytes()).then_some((key, header.len()))
}

/// A short, printable description of a value for failure reports.
pub fn describe(value: &[u8]) -> String {
    let mut text = format!("{} bytes", value.len());
    if !value.is_empty() {
        text.push_str(": \"");
        for &byte in value.iter().take(48) {
            let _ = write!(text, "{}", std::ascii::escape_default(byte));
        }
        text.push_str(if value.len() > 48 { "\"…" } else { "\"" });
    }
    text
}

/// The soak's working directory: `data/` (the log) and `server.log` (the last server's stderr).
/// Removed at the end, but kept, and its path printed, when the test fails.
pub struct SoakDir {
    dir: Option<tempfile::TempDir>,
}

impl SoakDir {
    /// A fresh directory (under `GIROK_SOAK_DIR` if set, else the system's temp dir).
    pub fn new() -> Self {
        let mut builder = tempfile::Builder::new();
        builder.prefix("girok-soak-");
        let dir = match std::env::var_os("GIROK_SOAK_DIR") {
            Some(parent) => builder.tempdir_in(parent),
            None => builder.tempdir(),
        };
        let dir = dir.expect("soak dir");
        std::fs::create_dir(dir.path().join("data")).expect("data dir");
        Self { dir: Some(dir) }
    }

    /// The log's data directory.
    pub fn data(&self) -> PathBuf {
        self.root().join("data")
    }

    /// Where the running server's stderr goes.
    pub fn server_log(&self) -> PathBuf {
        self.root().join("server.log")
    }

    fn root(&self) -> &Path {
        self.dir.as_ref().expect("soak dir").path()
    }
}

impl Drop for SoakDir {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "crash soak: kept the data directory for inspection: {}",
                dir.keep().display()
            );
        }
    }
}

/// A running `girok-server` of the soak; SIGKILLed (by its pid) and reaped on drop, so neither a
/// failure nor a panic leaves it behind.
pub struct SoakServer {
    child: Child,
    log: PathBuf,
    /// The bound address, as `127.0.0.1:PORT`.
    pub addr: String,
}

impl SoakServer {
    /// Starts `girok-server` on `127.0.0.1:0` over `data_dir` with `env`, its stderr in `log`
    /// (truncated), and waits for its `listening on ADDR` line. A server that exits or stays
    /// silent fails the test with the end of its stderr.
    pub fn start(data_dir: &Path, env: &[(&str, &str)], log: &Path) -> Self {
        let stderr = File::create(log).expect("server log");
        let mut child = server_command(data_dir, env)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn girok-server");
        let address = listening_address(&mut child);
        let mut server = Self { child, log: log.to_path_buf(), addr: String::new() };
        match address.recv_timeout(PROCESS_TIMEOUT) {
            Ok(addr) => server.addr = addr,
            Err(_) => {
                let status = server.child.try_wait().ok().flatten();
                panic!(
                    "girok-server did not start (exit status {status:?}); its stderr ends:\n{}",
                    server.stderr_tail()
                );
            }
        }
        server
    }

    /// The server's URL for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILLs the server (a crash) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let term = Command::new("kill").arg("-TERM").arg(pid).status();
        assert!(term.expect("kill").success());
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < PROCESS_TIMEOUT, "girok-server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last few KiB of the server's stderr.
    pub fn stderr_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = file.seek(SeekFrom::Start(len.saturating_sub(4096)));
            let mut bytes = Vec::new();
            let _ = file.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    }
}

impl Drop for SoakServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
