//! The shipped `girok-server` binary driven by grpcurl, as the README walks through it:
//! reflection, Produce, ProduceStream from stdin, ConsumeStream, Offsets and the OUT_OF_RANGE
//! details, then SIGTERM and a clean exit. grpcurl must be on PATH (`make test` installs it).

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::binary::{spawn_server, wait_with_timeout};

/// How long any grpcurl call may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs grpcurl with `args` (and `stdin`, if any), killing it after `STEP_TIMEOUT`.
fn grpcurl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = match Command::new("grpcurl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => panic!(
            "grpcurl is not on PATH ({err}): run the tests with `make test`, which installs it \
             into .venv/bin"
        ),
    };
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write grpcurl stdin");
    }
    drop(input);
    wait_with_timeout(child, STEP_TIMEOUT)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "grpcurl failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        stdout(&output)
    );
    stdout(&output)
}

#[test]
fn grpcurl_walkthrough_against_the_real_binary() {
    // Everything the README shows with grpcurl works against the shipped binary.
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = spawn_server(&data.path().join("data"), &[]);
    let a = server.addr.clone();
    let a = a.as_str();

    let services = ok(grpcurl(&["-plaintext", a, "list"], None));
    for service in
        ["log.v1.Log", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
    {
        assert!(services.contains(service), "{service} missing from:\n{services}");
    }
    let described = ok(grpcurl(&["-plaintext", a, "describe", "log.v1.Log"], None));
    for rpc in [
        "Produce",
        "Consume",
        "ConsumeStream",
        "ProduceStream",
        "Offsets",
        "CreateLog",
        "DeleteLog",
        "ListLogs",
        "UpdateLog",
    ] {
        assert!(described.contains(&format!("rpc {rpc} ")), "{rpc} missing:\n{described}");
    }
    let health = ok(grpcurl(&["-plaintext", a, "grpc.health.v1.Health/Check"], None));
    assert!(health.contains("SERVING"), "{health}");

    // "hello" is aGVsbG8= in base64; a new log starts at 0, and proto3 JSON omits zeros.
    let produced = ok(grpcurl(
        &["-plaintext", "-d", r#"{"record":{"value":"aGVsbG8="}}"#, a, "log.v1.Log/Produce"],
        None,
    ));
    assert!(!produced.contains("offset"), "first offset is 0: {produced}");

    let lines = "{\"record\":{\"value\":\"YQ==\"}}\n{\"record\":{\"value\":\"Yg==\"}}\n";
    let streamed =
        ok(grpcurl(&["-plaintext", "-d", "@", a, "log.v1.Log/ProduceStream"], Some(lines)));
    assert!(streamed.contains(r#""offset": "1""#) && streamed.contains(r#""offset": "2""#));

    let offsets = ok(grpcurl(&["-plaintext", a, "log.v1.Log/Offsets"], None));
    assert!(offsets.contains(r#""nextOffset": "3""#), "{offsets}");

    // ConsumeStream stays open: grpcurl's -max-time ends it after the replay.
    let tail = grpcurl(
        &["-plaintext", "-max-time", "2", "-d", r#"{"offset":0}"#, a, "log.v1.Log/ConsumeStream"],
        None,
    );
    let replay = stdout(&tail);
    for value in ["aGVsbG8=", "YQ==", "Yg=="] {
        assert!(replay.contains(value), "{value} missing from the tail:\n{replay}");
    }
    assert!(String::from_utf8_lossy(&tail.stderr).contains("DeadlineExceeded"));

    let missing = grpcurl(&["-plaintext", "-d", r#"{"offset":7}"#, a, "log.v1.Log/Consume"], None);
    assert!(!missing.status.success());
    let error = String::from_utf8_lossy(&missing.stderr);
    for needle in [
        "Code: OutOfRange",
        "google.rpc.ErrorInfo",
        r#""reason":"OFFSET_OUT_OF_RANGE""#,
        r#""lowest_offset":"0""#,
        r#""next_offset":"3""#,
        r#""offset":"7""#,
        "google.rpc.LocalizedMessage",
    ] {
        assert!(error.contains(needle), "{needle} missing from:\n{error}");
    }

    named_logs_walkthrough(a);

    // SIGTERM: drain, close the log, exit 0.
    let status = server.terminate();
    assert!(status.success(), "girok-server exited with {status}");
}

/// The README's named-logs walk-through: create, produce, list, update, delete.
fn named_logs_walkthrough(a: &str) {
    let created = ok(grpcurl(
        &[
            "-plaintext",
            "-d",
            r#"{"name":"orders","settings":{"retentionBytes":"1073741824"}}"#,
            a,
            "log.v1.Log/CreateLog",
        ],
        None,
    ));
    assert!(created.contains(r#""name": "orders""#), "{created}");
    assert!(created.contains(r#""retentionBytes": "1073741824""#), "{created}");
    assert!(!created.contains("retentionMs"), "absent settings stay absent: {created}");

    let again =
        grpcurl(&["-plaintext", "-d", r#"{"name":"orders"}"#, a, "log.v1.Log/CreateLog"], None);
    let error = String::from_utf8_lossy(&again.stderr);
    assert!(error.contains("Code: AlreadyExists") && error.contains("LOG_EXISTS"), "{error}");

    let produced = ok(grpcurl(
        &[
            "-plaintext",
            "-d",
            r#"{"log":"orders","record":{"value":"aGVsbG8="}}"#,
            a,
            "log.v1.Log/Produce",
        ],
        None,
    ));
    assert!(!produced.contains("offset"), "orders starts at 0: {produced}");
    // A produce to a log nobody created creates it (--auto-create-logs is on by default).
    ok(grpcurl(
        &[
            "-plaintext",
            "-d",
            r#"{"log":"payments","record":{"value":"YQ=="}}"#,
            a,
            "log.v1.Log/Produce",
        ],
        None,
    ));

    let listed = ok(grpcurl(&["-plaintext", a, "log.v1.Log/ListLogs"], None));
    let at = |name: &str| listed.find(&format!(r#""name": "{name}""#)).expect(name);
    assert!(at("default") < at("orders") && at("orders") < at("payments"), "{listed}");

    let updated = ok(grpcurl(
        &[
            "-plaintext",
            "-d",
            r#"{"name":"orders","settings":{"retentionMs":"604800000"}}"#,
            a,
            "log.v1.Log/UpdateLog",
        ],
        None,
    ));
    assert!(updated.contains(r#""retentionBytes": "1073741824""#), "kept: {updated}");
    assert!(updated.contains(r#""retentionMs": "604800000""#), "{updated}");

    ok(grpcurl(&["-plaintext", "-d", r#"{"name":"payments"}"#, a, "log.v1.Log/DeleteLog"], None));
    let gone =
        grpcurl(&["-plaintext", "-d", r#"{"log":"payments"}"#, a, "log.v1.Log/Offsets"], None);
    let error = String::from_utf8_lossy(&gone.stderr);
    assert!(error.contains("Code: NotFound") && error.contains("LOG_NOT_FOUND"), "{error}");

    let default =
        grpcurl(&["-plaintext", "-d", r#"{"name":"default"}"#, a, "log.v1.Log/DeleteLog"], None);
    let error = String::from_utf8_lossy(&default.stderr);
    assert!(error.contains("Code: FailedPrecondition") && error.contains("DEFAULT_LOG"), "{error}");

    let bad =
        grpcurl(&["-plaintext", "-d", r#"{"log":"no/slash"}"#, a, "log.v1.Log/Offsets"], None);
    let error = String::from_utf8_lossy(&bad.stderr);
    assert!(
        error.contains("Code: InvalidArgument") && error.contains("google.rpc.BadRequest"),
        "{error}"
    );
}
