//! What the benches share: where their data lives.

/// A temporary directory for a bench's data, on the same filesystem as the working tree (under
/// the target directory), or under `GIROK_BENCH_DIR` when set.
pub fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("GIROK_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")),
    }
    .expect("a temporary directory for the bench")
}
