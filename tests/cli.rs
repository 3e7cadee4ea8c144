//! The `girok` command-line client against a real server: produce (arguments and stdin),
//! consume, offsets, and the out-of-range error.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{for_each_log, start_server};

/// Runs the `girok` binary off the runtime (it blocks), feeding `stdin`.
async fn girok(url: &str, args: &[&str], stdin: &str) -> Output {
    let (url, args, stdin) = (
        url.to_string(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        stdin.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_girok"))
            .arg("--addr")
            .arg(url)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn girok");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("girok output")
    })
    .await
    .expect("girok task")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_and_offsets_from_the_command_line() {
    // Values from arguments and from stdin get consecutive offsets and read back; a read past
    // the end fails with the range in the message.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let url = server.url();
        let produced = girok(&url, &["produce", "a", "b"], "").await;
        assert!(produced.status.success());
        assert_eq!(text(&produced), "0\n1\n");
        let streamed = girok(&url, &["produce"], "c\nd\n").await;
        assert_eq!(text(&streamed), "2\n3\n");
        assert_eq!(text(&girok(&url, &["consume", "3"], "").await), "d\n");
        assert_eq!(text(&girok(&url, &["offsets"], "").await), "0 4\n");
        let missing = girok(&url, &["consume", "9"], "").await;
        assert!(!missing.status.success());
        let error = String::from_utf8_lossy(&missing.stderr);
        assert!(error.contains("offset 9 is out of range [0, 4)"), "{error}");
    })
    .await;
}
