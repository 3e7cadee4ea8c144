//! A real full disk: a small tmpfs mounted for the test (skipped, saying why, where the machine
//! does not allow mounting). A data directory restored with a sparse active index onto a full
//! disk must make the server refuse to start with an error, never die of SIGBUS, and start once
//! space is freed with every record intact. A server whose volume fills up while it runs
//! refuses produces with DISK_LOW, goes on serving reads, and takes produces again by itself
//! once space is freed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::binary::{server_command, spawn_server, wait_with_timeout};
use common::bounded;
use common::storage::{index_file, value_for};
use girok::api::v1::log_client::LogClient;
use girok::api::v1::{ConsumeRequest, ProduceRequest, Record};
use girok::client::Client;
use girok::storage::{CommitLog, DiskConfig, DiskLog, FsyncPolicy};
use tonic::Code;
use tonic_types::StatusExt;

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

fn produce(offset: u64) -> ProduceRequest {
    let record = Record { value: value_for(offset), ..Record::default() };
    ProduceRequest { record: Some(record), log: String::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_that_fills_up_refuses_produces_with_disk_low_serves_reads_and_recovers_by_itself()
{
    // girok-server (fsync always, --min-free-disk 4MiB) on a 16 MiB tmpfs takes records until a
    // plain file fills the volume to its last byte; then produces get RESOURCE_EXHAUSTED
    // (DISK_LOW) saying why, while Consume and ConsumeStream serve every record; once the file
    // is deleted, produces are taken again without a restart, at the next offset.
    let disk = match Tmpfs::mount("16m") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let data = disk.path.join("data");
    let env = [("GIROK_FSYNC", "always"), ("GIROK_MIN_FREE_DISK", "4MiB")];
    let server = tokio::task::block_in_place(|| spawn_server(&data, &env));
    let mut client = LogClient::connect(server.url()).await.unwrap();
    let mut next = 0;
    while next < 100 {
        assert_eq!(client.produce(produce(next)).await.unwrap().into_inner().offset, next);
        next += 1;
    }

    let filler = fill_disk(&disk.path);
    let refused = bounded("DISK_LOW on a full volume", async {
        loop {
            match client.produce(produce(next)).await {
                Ok(ack) => {
                    // Taken before the server measured the volume again (at most once a second).
                    assert_eq!(ack.into_inner().offset, next);
                    next += 1;
                }
                Err(status) => {
                    let info = status.get_error_details().error_info().cloned();
                    if info.as_ref().is_some_and(|i| i.reason == "DISK_LOW") {
                        return status;
                    }
                    // Writing into the last bytes of a full volume: refused as DISK_FULL.
                    assert_eq!(info.map(|i| i.reason), Some("DISK_FULL".into()), "{status:?}");
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("below --min-free-disk"), "{}", refused.message());
    let info = refused.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata.get("limit_bytes").map(String::as_str), Some("4194304"));
    let again = client.produce(produce(next)).await.unwrap_err();
    assert_eq!(again.get_error_details().error_info().unwrap().reason, "DISK_LOW");

    for offset in [0, next / 2, next - 1] {
        let read = client.consume(ConsumeRequest { offset, log: String::new() }).await.unwrap();
        assert_eq!(read.into_inner().record.unwrap().value, value_for(offset));
    }
    let request = ConsumeRequest { offset: 0, log: String::new() };
    let mut tail = client.consume_stream(request).await.unwrap().into_inner();
    bounded("ConsumeStream on a full volume", async {
        for offset in 0..next {
            let record = tail.message().await.unwrap().unwrap().record.unwrap();
            assert_eq!((record.offset, record.value), (offset, value_for(offset)));
        }
    })
    .await;

    std::fs::remove_file(filler).unwrap();
    let freed = Instant::now();
    let taken = bounded("produces resuming once space is freed", async {
        loop {
            match client.produce(produce(next)).await {
                Ok(ack) => return ack.into_inner().offset,
                Err(status) => {
                    let reason = status.get_error_details().error_info().map(|i| i.reason.clone());
                    assert_eq!(reason.as_deref(), Some("DISK_LOW"), "{status:?}");
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(taken, next);
    eprintln!("produces resumed {:?} after the space was freed", freed.elapsed());
    let record = tail.message().await.unwrap().unwrap().record.unwrap();
    assert_eq!((record.offset, record.value), (next, value_for(next)));
}
