//! A real full disk: a small tmpfs mounted for the test (skipped, saying why, where the machine
//! does not allow mounting). A data directory restored with a sparse active index onto a full
//! disk must make the server refuse to start with an error, never die of SIGBUS, and start once
//! space is freed with every record intact.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::binary::{server_command, spawn_server, wait_with_timeout};
use common::storage::{index_file, value_for};
use girok::client::Client;
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or says why it cannot.
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().to_path_buf();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Self { path, _dir: dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Rewrites the file at `path` as a sparse file of the same length holding only its first
/// `keep` bytes: what `cp --sparse=always` of a mostly zero index leaves.
fn make_sparse(path: &Path, keep: usize) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::remove_file(path).unwrap();
    let file = std::fs::File::create(path).unwrap();
    file.set_len(bytes.len() as u64).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &bytes[..keep], 0).unwrap();
}

/// Fills the filesystem at `dir` until a write fails; returns the filler's path.
fn fill_disk(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0xAB; 64 * 1024];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    filler
}

#[tokio::test]
async fn a_sparse_active_index_on_a_full_disk_is_an_error_not_a_sigbus() {
    let disk = match Tmpfs::mount("24m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let data = disk.path.join("data");
    let index_bytes = 8 * 1024 * 1024;
    let config = DiskConfig {
        max_index_bytes: index_bytes,
        fsync: FsyncPolicy::Never,
        ..DiskConfig::default()
    };
    let log = DiskLog::open(&data, config).unwrap();
    for offset in 0..100 {
        assert_eq!(log.append(value_for(offset)).unwrap(), offset);
    }
    drop(log); // a crash: the active index keeps its full length
    make_sparse(&index_file(&data, 0), 100 * 12);
    let filler = fill_disk(&disk.path);

    let env = [("GIROK_FSYNC", "never"), ("GIROK_SEGMENT_MAX_INDEX_BYTES", "8MiB")];
    let child =
        server_command(&data, &env).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let output = wait_with_timeout(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "not a clean error exit: {:?}: {stderr}",
        output.status
    );
    assert!(stderr.contains("no space"), "{stderr}");

    std::fs::remove_file(filler).unwrap();
    let server = spawn_server(&data, &env);
    let mut client = Client::connect(server.url()).await.unwrap();
    assert_eq!(client.offsets().await.unwrap(), 0..100);
    for offset in 0..100 {
        assert_eq!(client.consume(offset).await.unwrap().value, value_for(offset));
    }
}
