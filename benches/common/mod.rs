//! What the benches share: where their data lives, and criterion's settings.

/// A temporary directory for a bench's data, on the same filesystem as the working tree (under
/// the target directory), or under `GIROK_BENCH_DIR` when set.
pub fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("GIROK_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")),
    }
    .expect("a temporary directory for the bench")
}

/// Criterion as the storage benches run it: 20 samples after a half-second warm-up, each
/// bench measured for `measure`.
pub fn criterion(measure: std::time::Duration) -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(measure)
}
