//! Structured logs of the shipped `girok-server`: one `rpc` span per call carrying its method,
//! peer, log, status and duration, and no line per record at `info`.

mod common;

use std::fs::File;
use std::process::Stdio;

use common::binary::{server_command, spawn};

/// The JSON lines the server wrote at `RUST_LOG=info`.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_the_server_failed_logs_one_line_with_its_span_and_the_others_stay_quiet_at_info() {
    // At RUST_LOG=info, on a data volume below --min-free-disk: ten successful calls, a read past
    // the end and a read of an unknown log (the client's doing) log nothing; the refused produce
    // (the server's state) is one `rpc finished` line whose span names the method, peer, log,
    // status and duration.
    let data = tempfile::tempdir().unwrap();
    let stderr_path = data.path().join("stderr.log");
    let stderr = File::create(&stderr_path).unwrap();
    let floor = u64::MAX.to_string();
    let mut command = server_command(&data.path().join("data"), &[("GIROK_MIN_FREE_DISK", &floor)]);
    command.env("RUST_LOG", "info");
    let mut server = tokio::task::block_in_place(|| spawn(command, Stdio::from(stderr)));

    let mut client = girok::client::Client::connect(server.url()).await.unwrap();
    for _ in 0..10 {
        assert_eq!(client.offsets().await.unwrap(), 0..0);
    }
    client.consume(99).await.expect_err("past the end");
    client.log("nope").consume(0).await.expect_err("an unknown log");
    let mut alpha = client.log("alpha");
    alpha.produce("x").await.expect_err("below the free-space floor");
    let status = tokio::task::block_in_place(|| server.terminate());
    assert!(status.success());

    let lines = json_lines(&std::fs::read_to_string(&stderr_path).unwrap());
    let finished: Vec<_> =
        lines.iter().filter(|line| line["fields"]["message"] == "rpc finished").collect();
    assert_eq!(finished.len(), 1, "{finished:#?}");
    let line = finished[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["status"], "ResourceExhausted");
    assert!(line["fields"]["duration_ms"].as_f64().is_some(), "{line}");
    let span = &line["span"];
    assert_eq!(span["name"], "rpc");
    assert_eq!(span["method"], "/log.v1.Log/Produce");
    assert_eq!(span["log"], "alpha");
    assert!(span["peer"].as_str().is_some_and(|peer| peer.starts_with("127.0.0.1:")), "{span}");
    let per_call = lines.iter().filter(|line| line["span"]["method"] == "/log.v1.Log/Offsets");
    assert_eq!(per_call.count(), 0, "a successful call logged at info");
}
