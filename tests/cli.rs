//! The `girok` command-line client against a real server: produce (arguments and stdin),
//! consume, offsets, the out-of-range error, stdin read as raw bytes, failures that must not pass
//! for success, and `--timeout` against servers that never answer; named logs through `--log`,
//! `GIROK_LOG` and `girok logs` against the shipped `girok-server`; `girok verify` of every log
//! in a data directory, legacy layout included.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::binary::{PROCESS_TIMEOUT, Served, wait_with_timeout};
use common::{for_each_log, start_server};
use girok::storage::{CommitLog, DiskConfig, DiskLog, LogConfig};

/// The `girok` command against `url`, with piped output, not yet started.
fn command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_girok"));
    command.arg("--addr").arg(url).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Only the tests that mean to name a log or a compression by environment do; and none
    // inherits TLS settings or a token.
    for name in
        ["GIROK_LOG", "GIROK_COMPRESS", "GIROK_CA", "GIROK_CERT", "GIROK_KEY", "GIROK_TOKEN"]
    {
        command.env_remove(name);
    }
    command
}

/// Runs `command` to the end with `stdin` as its input, killing it after [`PROCESS_TIMEOUT`].
fn run(mut command: Command, stdin: Input) -> Output {
    let input = match stdin {
        Input::Bytes(bytes) => {
            command.stdin(Stdio::piped());
            bytes
        }
        Input::File(file) => {
            command.stdin(file);
            Vec::new()
        }
    };
    let mut child = command.spawn().expect("spawn girok");
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(&input).expect("write stdin");
    }
    wait_with_timeout(child, PROCESS_TIMEOUT)
}

/// What a run reads on stdin.
enum Input {
    Bytes(Vec<u8>),
    File(File),
}

/// Runs `girok` off the runtime (it blocks), feeding `stdin`.
async fn girok(url: &str, args: &[&str], stdin: impl AsRef<[u8]>) -> Output {
    girok_in(&[], url, args, stdin).await
}

/// Runs `girok` as [`girok`] does, with `env` set.
async fn girok_in(
    env: &[(&str, &str)],
    url: &str,
    args: &[&str],
    stdin: impl AsRef<[u8]>,
) -> Output {
    let mut command = command(url, args);
    command.envs(env.iter().copied());
    let input = Input::Bytes(stdin.as_ref().to_vec());
    tokio::task::spawn_blocking(move || run(command, input)).await.expect("girok task")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn error_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
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
        let error = error_text(&missing);
        assert!(error.contains("offset 9 is out of range: the log holds [0, 4)"), "{error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_lines_are_records_of_raw_bytes() {
    // Every line of stdin becomes a record whatever its bytes: invalid UTF-8 in the middle, an
    // empty line, `\r\n` and a last line without a newline all arrive, with the line ending gone.
    for_each_log(|logs| async move {
        let server = start_server(logs.open_default()).await;
        let input = b"one\ntwo\r\n\xff\xfe three\n\nfive";
        let streamed = girok(&server.url(), &["produce"], input).await;
        assert!(streamed.status.success(), "{}", error_text(&streamed));
        assert_eq!(text(&streamed), "0\n1\n2\n3\n4\n");
        let mut client = server.client().await;
        let expected: [&[u8]; 5] = [b"one", b"two", b"\xff\xfe three", b"", b"five"];
        for (offset, value) in (0..).zip(expected) {
            assert_eq!(client.consume(offset).await.unwrap().value, Bytes::from_static(value));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_stdin_fails_the_command() {
    // A stdin that cannot be read (a directory) ends `produce` non-zero with a message naming
    // stdin, not with a silent success.
    let server = start_server(common::factories().remove(0).open_default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let stdin = File::open(dir.path()).expect("open a directory for reading");
    let command = command(&server.url(), &["produce"]);
    let output = common::bounded("girok produce", async {
        tokio::task::spawn_blocking(move || run(command, Input::File(stdin))).await.unwrap()
    })
    .await;
    assert!(!output.status.success(), "exit {:?}", output.status);
    let error = error_text(&output);
    assert!(error.contains("stdin"), "{error}");
    assert_eq!(server.client().await.offsets().await.unwrap(), 0..0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_server_ends_with_an_error_fails_the_command() {
    // When the server ends the stream with an error (a line over the record limit), the acks
    // before it are printed and the command exits non-zero with the status.
    for_each_log(|logs| async move {
        let server =
            start_server(logs.open(LogConfig { max_record_bytes: 8, ..LogConfig::default() }))
                .await;
        let output = girok(&server.url(), &["produce"], "a\nb\nfar too long a line\nd\n").await;
        assert!(!output.status.success(), "exit {:?}", output.status);
        assert_eq!(text(&output), "0\n1\n");
        let error = error_text(&output);
        assert!(error.starts_with("girok: "), "{error}");
        assert_eq!(server.client().await.offsets().await.unwrap(), 0..2);
    })
    .await;
}

/// A listener that accepts connections into its backlog but never reads or answers.
fn silent_listener() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    (listener, url)
}

/// Runs `girok --timeout 1s ARGS` against `url`, and answers its output and how long it took.
fn timed(url: &str, args: &[&str], stdin: &str) -> (Output, Duration) {
    let mut command = command(url, &["--timeout", "1s"]);
    command.args(args);
    let started = Instant::now();
    let output = run(command, Input::Bytes(stdin.as_bytes().to_vec()));
    (output, started.elapsed())
}

#[test]
fn every_command_gives_up_on_a_server_that_never_answers() {
    // Against a TCP listener that never speaks HTTP/2, each command that talks to the server
    // exits non-zero soon after `--timeout 1s`, with a message naming the address.
    let (_listener, url) = silent_listener();
    let commands: [&[&str]; 13] = [
        &["produce", "a"],
        &["produce"],
        &["produce", "--file", "/dev/null"],
        &["consume", "0"],
        &["consume", "0", "-n", "3", "--json"],
        &["--compress", "zstd", "offsets"],
        &["tail", "--from", "-3"],
        &["offsets"],
        &["tail"],
        &["tail", "--from", "0"],
        &["--log", "orders", "tail"],
        &["logs", "list"],
        &["logs", "create", "orders", "--retention-age", "7d"],
    ];
    std::thread::scope(|scope| {
        let runs: Vec<_> = commands
            .iter()
            .map(|args| (args, scope.spawn(|| timed(&url, args, "a\nb\n"))))
            .collect();
        for (args, run) in runs {
            let (output, took) = run.join().expect("girok run");
            assert!(!output.status.success(), "{args:?}: exit {:?}", output.status);
            assert!(took < Duration::from_secs(5), "{args:?}: took {took:?}");
            let error = error_text(&output);
            assert!(error.contains(&url) && error.contains("timed out"), "{args:?}: {error}");
        }
    });
}

#[test]
fn a_server_whose_backlog_is_full_times_out_the_connect() {
    // A listener whose accept queue is full drops new connections' SYNs, so the TCP connect
    // itself never completes: `--timeout 1s` still ends the command, naming the address.
    let (listener, url) = silent_listener();
    // Listening again on a listening socket only changes its backlog.
    socket2::SockRef::from(&listener).listen(0).expect("shrink the backlog");
    // With a backlog of 0 the queue holds one connection: this one fills it.
    let _filler = TcpStream::connect(listener.local_addr().unwrap()).expect("fill the backlog");
    let (output, took) = timed(&url, &["produce", "a"], "");
    assert!(!output.status.success(), "exit {:?}", output.status);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let error = error_text(&output);
    assert!(error.contains(&url) && error.contains("connecting"), "{error}");
}

/// A child process killed (SIGKILL) and reaped on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines a child prints, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_outlive_the_timeout_while_they_are_open() {
    // `--timeout` bounds only the opening of a stream: a tail idle for three timeouts still
    // prints the next record, and a stdin produce whose input pauses as long still succeeds.
    let server = start_server(common::factories().remove(0).open_default()).await;
    let url = server.url();
    let mut client = server.client().await;
    let pause = Duration::from_millis(1500);
    let wait = |lines: &mpsc::Receiver<String>| {
        let line = tokio::task::block_in_place(|| lines.recv_timeout(PROCESS_TIMEOUT));
        line.expect("a line within the process timeout")
    };

    let mut tail = Running(
        command(&url, &["--timeout", "500ms", "tail", "--from", "0"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn girok tail"),
    );
    let tailed = lines_of(&mut tail.0);
    client.produce("a").await.unwrap();
    assert_eq!(wait(&tailed), "0\ta");
    tokio::time::sleep(pause).await;
    client.produce("b").await.unwrap();
    assert_eq!(wait(&tailed), "1\tb");
    assert!(tail.0.try_wait().unwrap().is_none(), "tail is still running");
    drop(tail);

    let mut produce = Running(
        command(&url, &["--timeout", "500ms", "produce"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn girok produce"),
    );
    let mut stdin = produce.0.stdin.take().expect("stdin");
    let acks = lines_of(&mut produce.0);
    stdin.write_all(b"c\n").unwrap();
    assert_eq!(wait(&acks), "2");
    tokio::time::sleep(pause).await;
    stdin.write_all(b"d\n").unwrap();
    drop(stdin);
    assert_eq!(wait(&acks), "3");
    let status = tokio::task::block_in_place(|| {
        let started = Instant::now();
        loop {
            if let Some(status) = produce.0.try_wait().expect("wait") {
                return status;
            }
            assert!(started.elapsed() < PROCESS_TIMEOUT, "produce did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert!(status.success(), "exit {status:?}");
}

/// `GIROK_LOG=orders`.
const ORDERS_BY_ENV: &[(&str, &str)] = &[("GIROK_LOG", "orders")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_and_girok_log_send_produce_consume_and_offsets_to_that_log_only() {
    // `--log orders` (before or after the command) and `GIROK_LOG=orders` produce, read and
    // count in the log `orders`, with offsets of its own; without either, the commands use
    // `default`; a read of a log that does not exist fails naming it.
    let served = Served::start();
    let url = served.url();
    common::bounded("girok --log", async {
        let produced = girok(&url, &["--log", "orders", "produce", "a", "b"], "").await;
        assert_eq!(text(&produced), "0\n1\n", "{}", error_text(&produced));
        assert_eq!(text(&girok_in(ORDERS_BY_ENV, &url, &["produce"], "c\n").await), "2\n");
        assert_eq!(text(&girok(&url, &["produce", "x"], "").await), "0\n");

        assert_eq!(text(&girok(&url, &["offsets", "--log", "orders"], "").await), "0 3\n");
        assert_eq!(text(&girok_in(ORDERS_BY_ENV, &url, &["offsets"], "").await), "0 3\n");
        assert_eq!(text(&girok(&url, &["offsets"], "").await), "0 1\n");
        assert_eq!(text(&girok(&url, &["--log", "default", "offsets"], "").await), "0 1\n");
        assert_eq!(text(&girok(&url, &["--log", "orders", "consume", "2"], "").await), "c\n");
        assert_eq!(text(&girok_in(ORDERS_BY_ENV, &url, &["consume", "0"], "").await), "a\n");
        assert_eq!(text(&girok(&url, &["consume", "0"], "").await), "x\n");

        let past = girok(&url, &["--log", "orders", "consume", "3"], "").await;
        assert!(!past.status.success());
        assert!(
            error_text(&past).contains("offset 3 is out of range: the log holds [0, 3)"),
            "{past:?}"
        );
        let ghost = girok(&url, &["--log", "ghost", "consume", "0"], "").await;
        assert!(!ghost.status.success());
        let error = error_text(&ghost);
        assert_eq!(error, "girok: log \"ghost\" does not exist\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_with_log_prints_that_logs_records_only() {
    // A tail of `orders`, named by `--log` or by `GIROK_LOG`, prints the records produced to
    // `orders` with their offsets there, and none of those produced to `default` in between.
    let served = Served::start();
    let url = served.url();
    // A tail of a log that does not exist ends at once with NOT_FOUND: create it first.
    let mut admin = girok::client::Client::connect(url.clone()).await.expect("connect");
    admin.create_log("orders", Default::default()).await.expect("create orders");
    let tail = |env: &[(&str, &str)], args: &[&str]| {
        let mut command = command(&url, args);
        command.envs(env.iter().copied()).stdin(Stdio::null());
        Running(command.spawn().expect("spawn girok tail"))
    };
    let mut by_flag = tail(&[], &["--log", "orders", "tail", "--from", "0"]);
    let mut by_env = tail(ORDERS_BY_ENV, &["tail", "--from", "0"]);
    let tails = [lines_of(&mut by_flag.0), lines_of(&mut by_env.0)];
    common::bounded("girok tail --log", async {
        let mut client = girok::client::Client::connect(url.clone()).await.expect("connect");
        let mut orders = client.log("orders");
        orders.produce("o0").await.unwrap();
        client.produce("d0").await.unwrap();
        client.produce("d1").await.unwrap();
        orders.produce("o1").await.unwrap();
        for lines in &tails {
            let next = || {
                tokio::task::block_in_place(|| lines.recv_timeout(PROCESS_TIMEOUT))
                    .expect("a line within the process timeout")
            };
            assert_eq!(next(), "0\to0");
            assert_eq!(next(), "1\to1");
        }
    })
    .await;
}

/// A table `girok logs` printed: its lines' cells.
fn cells(output: &Output) -> Vec<Vec<String>> {
    text(output).lines().map(|line| line.split_whitespace().map(String::from).collect()).collect()
}

/// Where each cell of `line` starts.
fn cell_starts(line: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        if c != ' ' && previous == ' ' {
            starts.push(at);
        }
        previous = c;
    }
    starts
}

/// The table's header line, split.
const HEADER: [&str; 7] =
    ["NAME", "LOWEST", "NEXT", "SIZE", "RETENTION-BYTES", "RETENTION-AGE", "SEGMENT-BYTES"];

/// Asserts that `output` succeeded and printed the header and then `rows` (each without its
/// SIZE, which depends on the server's file format), in aligned columns; answers the rows.
fn assert_table(output: &Output, rows: &[[&str; 6]]) -> Vec<Vec<String>> {
    assert!(output.status.success(), "{}", error_text(output));
    let table = cells(output);
    assert_eq!(table[0], HEADER, "{}", text(output));
    let printed: Vec<Vec<&str>> = table[1..]
        .iter()
        .map(|row| {
            row.iter().enumerate().filter(|&(i, _)| i != 3).map(|(_, c)| c.as_str()).collect()
        })
        .collect();
    assert_eq!(printed, rows, "{}", text(output));
    let lines = text(output);
    let header_starts = cell_starts(lines.lines().next().unwrap());
    for line in lines.lines() {
        assert_eq!(cell_starts(line), header_starts, "columns are aligned:\n{lines}");
    }
    table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_created_listed_updated_and_deleted_from_the_command_line() {
    // `logs create` takes sizes and ages with units and prints the new log; `logs list` prints
    // every log in name order with its range, size and settings (`-` for a server default),
    // exact with `--bytes`; `logs update` changes only the flags given, 0 meaning unlimited;
    // `logs delete` removes the log; a missing or taken name fails naming it.
    let served = Served::start();
    let url = served.url();
    common::bounded("girok logs", async {
        let logs = |args: &'static [&'static str]| {
            let url = url.clone();
            async move { girok(&url, &[&["logs"], args].concat(), "").await }
        };
        assert_eq!(text(&girok(&url, &["produce", "x"], "").await), "0\n");

        let created = logs(&[
            "create",
            "orders",
            "--retention-bytes",
            "1GiB",
            "--retention-age",
            "7d",
            "--segment-bytes",
            "1048576",
        ])
        .await;
        assert_table(&created, &[["orders", "0", "0", "1GiB", "7d", "1MiB"]]);
        let produced = girok(&url, &["--log", "orders", "produce", "a", "b"], "").await;
        assert_eq!(text(&produced), "0\n1\n");

        let listed = logs(&["list"]).await;
        assert_table(
            &listed,
            &[["default", "0", "1", "-", "-", "-"], ["orders", "0", "2", "1GiB", "7d", "1MiB"]],
        );
        let exact = assert_table(
            &logs(&["list", "--bytes"]).await,
            &[
                ["default", "0", "1", "-", "-", "-"],
                ["orders", "0", "2", "1073741824", "604800000", "1048576"],
            ],
        );
        let size: u64 = exact[2][3].parse().expect("--bytes prints SIZE as a byte count");
        assert!(size > 0, "{exact:?}");

        let updated =
            logs(&["update", "orders", "--retention-age", "0", "--segment-bytes", "2MiB"]);
        assert_table(&updated.await, &[["orders", "0", "2", "1GiB", "unlimited", "2MiB"]]);

        let deleted = logs(&["delete", "orders"]).await;
        assert!(deleted.status.success(), "{}", error_text(&deleted));
        assert_eq!(text(&deleted), "");
        assert_table(&logs(&["list"]).await, &[["default", "0", "1", "-", "-", "-"]]);

        let again = logs(&["delete", "orders"]).await;
        assert!(!again.status.success());
        assert_eq!(error_text(&again), "girok: log \"orders\" does not exist\n");
        let missing = logs(&["update", "orders", "--retention-age", "1d"]).await;
        assert_eq!(error_text(&missing), "girok: log \"orders\" does not exist\n");
        assert_table(&logs(&["create", "orders"]).await, &[["orders", "0", "0", "-", "-", "-"]]);
        let taken = logs(&["create", "orders"]).await;
        assert!(!taken.status.success());
        assert_eq!(error_text(&taken), "girok: log \"orders\" already exists\n");
        let bad = logs(&["create", "no/slashes"]).await;
        assert!(!bad.status.success());
        assert!(error_text(&bad).starts_with("girok: "), "{}", error_text(&bad));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_default_log_fails_and_says_why() {
    // `logs delete default` exits non-zero with a message saying the default log cannot be
    // deleted, and the log still serves.
    let served = Served::start();
    let url = served.url();
    common::bounded("girok logs delete default", async {
        assert_eq!(text(&girok(&url, &["produce", "x"], "").await), "0\n");
        let refused = girok(&url, &["logs", "delete", "default"], "").await;
        assert!(!refused.status.success());
        assert_eq!(
            error_text(&refused),
            "girok: the log \"default\" cannot be deleted: it is where requests naming no log go\n"
        );
        assert_eq!(text(&girok(&url, &["offsets"], "").await), "0 1\n");
    })
    .await;
}

#[test]
fn settings_flags_are_checked_before_anything_is_sent() {
    // A size or age the flags cannot read fails at once, naming the flag: an age needs a unit
    // (only 0 goes without), and one under a millisecond would read as unlimited.
    let (_listener, url) = silent_listener();
    let refused: [&[&str]; 4] = [
        &["logs", "create", "orders", "--retention-bytes", "lots"],
        &["logs", "create", "orders", "--retention-age", "5"],
        &["logs", "update", "orders", "--retention-age", "100us"],
        &["logs", "update", "orders", "--segment-bytes", "huge"],
    ];
    for args in refused {
        let output = run(command(&url, args), Input::Bytes(Vec::new()));
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let flag = args[3];
        assert!(error_text(&output).contains(flag), "{args:?}: {}", error_text(&output));
    }
}

/// `girok verify --data-dir DATA`, to the end.
fn girok_verify(data: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_girok"));
    command.arg("verify").arg("--data-dir").arg(data).stdout(Stdio::piped()).stderr(Stdio::piped());
    run(command, Input::Bytes(Vec::new()))
}

/// Writes a log of `count` records `{name}-record-{i:04}` into `dir`, as the server's storage
/// does, and closes it.
fn write_log(dir: &Path, name: &str, count: u64) {
    let log = DiskLog::open(dir, DiskConfig::default()).expect("open a log");
    for i in 0..count {
        log.append(Bytes::from(format!("{name}-record-{i:04}"))).expect("append");
    }
    log.close().expect("close");
}

/// Flips one byte in the middle of the value `{name}-record-{i:04}` in the store of `dir`.
fn flip_a_byte_of_record(dir: &Path, name: &str, i: u64) {
    let store = dir.join(format!("{:020}.store", 0));
    let mut bytes = std::fs::read(&store).expect("read the store");
    let value = format!("{name}-record-{i:04}");
    let at = bytes.windows(value.len()).position(|w| w == value.as_bytes()).expect("the record");
    bytes[at + value.len() / 2] ^= 0x10;
    std::fs::write(&store, bytes).expect("write the store");
}

/// The lines of `girok verify`'s report from `log NAME` up to the next log or the summary.
fn report_of<'a>(report: &'a str, header: &str) -> Vec<&'a str> {
    let mut lines = report.lines().skip_while(|line| *line != header);
    let mut section: Vec<&str> = lines.next().into_iter().collect();
    section.extend(lines.take_while(|line| !line.starts_with("log ") && !line.contains(" logs, ")));
    section
}

#[test]
fn verify_checks_every_log_and_names_the_corrupt_one() {
    // Each directory under logs/ is checked and reported under its name, in name order, with a
    // summary; the server's scratch directories and settings files are no logs. A byte flipped
    // inside one record of `orders` fails the run with status 1, naming `orders` only.
    let data = tempfile::tempdir().expect("temp dir");
    let logs = data.path().join("logs");
    write_log(&logs.join("orders"), "orders", 10);
    write_log(&logs.join("default"), "default", 3);
    std::fs::write(logs.join("orders/log.json"), "{}").unwrap();
    for scratch in [".staging", ".trash"] {
        std::fs::create_dir_all(data.path().join(scratch).join("x")).unwrap();
        std::fs::write(
            data.path().join(scratch).join("x").join(format!("{:020}.store", 0)),
            "junk",
        )
        .unwrap();
    }
    std::fs::write(data.path().join("LOCK"), "").unwrap();

    let clean = girok_verify(data.path());
    let report = text(&clean);
    assert!(clean.status.success(), "{report}{}", error_text(&clean));
    let headers: Vec<&str> = report.lines().filter(|l| l.starts_with("log ")).collect();
    assert_eq!(headers, ["log default", "log orders"], "{report}");
    assert!(report_of(&report, "log orders").contains(&"1 segments, 10 records: OK"), "{report}");
    assert_eq!(report.lines().last(), Some("2 logs, 13 records: OK"), "{report}");

    flip_a_byte_of_record(&logs.join("orders"), "orders", 5);
    let damaged = girok_verify(data.path());
    let report = text(&damaged);
    assert_eq!(damaged.status.code(), Some(1), "{report}");
    let orders = report_of(&report, "log orders");
    assert!(orders.iter().any(|l| l.starts_with("segment ") && l.contains("CORRUPT")), "{report}");
    assert!(!report_of(&report, "log default").iter().any(|l| l.contains("CORRUPT")), "{report}");
    let summary = report.lines().last().unwrap_or("");
    assert!(summary.ends_with(": CORRUPT: orders"), "{report}");
}

#[test]
fn verify_reads_segments_at_the_top_level_as_the_legacy_default_log() {
    // A data directory from before named logs, never opened since, holds its segments at the
    // top level: they are checked as `default`, and corruption there fails the run naming it.
    let data = tempfile::tempdir().expect("temp dir");
    write_log(data.path(), "default", 10);

    let clean = girok_verify(data.path());
    let report = text(&clean);
    assert!(clean.status.success(), "{report}{}", error_text(&clean));
    let legacy = report_of(&report, "log default (top level, not yet moved to logs/default/)");
    assert!(legacy.contains(&"1 segments, 10 records: OK"), "{report}");
    assert_eq!(report.lines().last(), Some("1 logs, 10 records: OK"), "{report}");

    flip_a_byte_of_record(data.path(), "default", 4);
    let damaged = girok_verify(data.path());
    assert_eq!(damaged.status.code(), Some(1), "{}", text(&damaged));
    assert!(text(&damaged).ends_with(": CORRUPT: default\n"), "{}", text(&damaged));
}

#[test]
fn verify_of_a_data_directory_without_logs_is_ok_and_of_a_missing_one_fails() {
    // No logs/ and no segments (a server that never ran), or an empty logs/, is a clean data
    // directory; one that does not exist cannot be verified (status 2).
    let data = tempfile::tempdir().expect("temp dir");
    for _ in 0..2 {
        let output = girok_verify(data.path());
        assert!(output.status.success(), "{}", error_text(&output));
        assert_eq!(text(&output), "0 logs, 0 records: OK\n");
        std::fs::create_dir_all(data.path().join("logs")).unwrap();
    }
    let missing = girok_verify(&data.path().join("nowhere"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(error_text(&missing).contains("is not a directory"), "{}", error_text(&missing));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_every_log_a_server_wrote() {
    // After the shipped server has written two logs and stopped, `girok verify` reports both,
    // clean.
    let mut served = Served::start();
    let url = served.url();
    common::bounded("produce to two logs", async {
        assert_eq!(text(&girok(&url, &["produce", "a", "b"], "").await), "0\n1\n");
        assert_eq!(text(&girok(&url, &["--log", "orders", "produce", "c"], "").await), "0\n");
    })
    .await;
    assert!(tokio::task::block_in_place(|| served.server.terminate()).success());
    let output = girok_verify(served.data.path());
    let report = text(&output);
    assert!(output.status.success(), "{report}{}", error_text(&output));
    let headers: Vec<&str> = report.lines().filter(|l| l.starts_with("log ")).collect();
    assert_eq!(headers, ["log default", "log orders"], "{report}");
    assert_eq!(report.lines().last(), Some("2 logs, 3 records: OK"), "{report}");
}

/// Runs `girok` against a [`Served`] server, failing the test with its stderr if it fails.
async fn girok_ok(url: &str, args: &[&str]) -> String {
    let output = girok(url, args, "").await;
    assert!(output.status.success(), "girok {args:?}: {}", error_text(&output));
    text(&output)
}

/// Spawns `girok tail` with `args` and answers its first `count` lines, then kills it.
fn first_lines_of_tail(url: &str, args: &[&str], count: usize) -> Vec<String> {
    let mut tail = Running(command(url, args).stdin(Stdio::null()).spawn().expect("spawn tail"));
    let lines = lines_of(&mut tail.0);
    let wait = || tokio::task::block_in_place(|| lines.recv_timeout(PROCESS_TIMEOUT));
    (0..count).map(|_| wait().expect("a tailed line within the process timeout")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_with_a_count_prints_that_many_values_and_stops_quietly_at_the_end() {
    // `consume OFFSET -n COUNT` prints COUNT values from OFFSET, fewer without error when the
    // log ends first; OFFSET itself past the end is still an error, and a count of 0 is refused.
    let served = Served::start();
    let url = served.url();
    girok_ok(&url, &["produce", "a", "b", "c", "d", "e"]).await;
    assert_eq!(girok_ok(&url, &["consume", "1", "-n", "2"]).await, "b\nc\n");
    assert_eq!(girok_ok(&url, &["consume", "3", "--count", "10"]).await, "d\ne\n");
    assert_eq!(girok_ok(&url, &["consume", "4", "-n", "1"]).await, "e\n");
    let past = girok(&url, &["consume", "5", "-n", "2"], "").await;
    assert!(!past.status.success());
    assert_eq!(error_text(&past), "girok: offset 5 is out of range: the log holds [0, 5)\n");
    assert!(!girok(&url, &["consume", "0", "-n", "0"], "").await.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_starts_at_the_start_an_offset_n_records_before_the_end_or_the_end() {
    // `--from start` replays everything, `--from 3` from offset 3, `--from -2` the last two
    // records, and `--from end` (the default) only what is produced after it starts.
    let served = Served::start();
    let url = served.url();
    girok_ok(&url, &["produce", "a", "b", "c", "d", "e"]).await;
    let tail = |args: &[&str], count| first_lines_of_tail(&url, args, count);
    assert_eq!(tail(&["tail", "--from", "start"], 5), ["0\ta", "1\tb", "2\tc", "3\td", "4\te"]);
    assert_eq!(tail(&["tail", "--from", "3"], 2), ["3\td", "4\te"]);
    assert_eq!(tail(&["tail", "--from", "-2"], 2), ["3\td", "4\te"]);
    assert_eq!(tail(&["tail", "--from=-9"], 1), ["0\ta"]);

    for args in [&["tail"][..], &["tail", "--from", "end"]] {
        let mut running =
            Running(command(&url, args).stdin(Stdio::null()).spawn().expect("spawn tail"));
        let lines = lines_of(&mut running.0);
        // The tail has read the end once its stream is open; a produce before that would be
        // replayed. Produce until the tail prints something, then check it is new.
        let mut client = served.client().await;
        let mut first = None;
        for _ in 0..100 {
            client.produce("new").await.expect("produce");
            let wait = Duration::from_millis(200);
            first = tokio::task::block_in_place(|| lines.recv_timeout(wait).ok());
            if first.is_some() {
                break;
            }
        }
        let first = first.expect("the tail printed a record produced after it started");
        assert!(first.ends_with("\tnew"), "{args:?} replayed {first:?}");
    }
    assert!(!girok(&url, &["tail", "--from", "soon"], "").await.status.success());
}

/// The keys of a JSON object line, sorted.
fn keys(line: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> =
        line.as_object().expect("an object").keys().map(|k| k.as_str()).collect();
    keys.sort_unstable();
    keys
}

/// Every line of `output` parsed as JSON.
fn json_lines(output: &str) -> Vec<serde_json::Value> {
    output.lines().map(|line| serde_json::from_str(line).expect("a JSON line")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_exactly_the_documented_fields_and_binary_values_as_base64() {
    // consume, tail, offsets and logs list print one JSON object per line with exactly the
    // documented keys; a UTF-8 value is text, any other value base64; a log setting never given
    // is absent.
    let served = Served::start();
    let url = served.url();
    let client = served.client().await;
    let mut orders = client.log("orders");
    orders.produce("héllo").await.unwrap();
    orders.produce(&b"\xff\x00\xfe"[..]).await.unwrap();
    let record_keys = ["encoding", "log", "offset", "timestamp_ms", "value"];

    let consumed = json_lines(
        &girok_ok(&url, &["--log", "orders", "consume", "0", "-n", "2", "--json"]).await,
    );
    assert_eq!(consumed.len(), 2);
    for (offset, line) in (0..).zip(&consumed) {
        assert_eq!(keys(line), record_keys);
        assert_eq!(line["log"], "orders");
        assert_eq!(line["offset"], offset);
        assert!(line["timestamp_ms"].as_u64().expect("a number") > 1_600_000_000_000);
    }
    assert_eq!(
        (&consumed[0]["value"], &consumed[0]["encoding"]),
        (&"héllo".into(), &"utf8".into())
    );
    assert_eq!(
        (&consumed[1]["value"], &consumed[1]["encoding"]),
        (&"/wD+".into(), &"base64".into())
    );

    let tailed =
        first_lines_of_tail(&url, &["--log", "orders", "tail", "--from", "start", "--json"], 2);
    let tailed: Vec<serde_json::Value> =
        tailed.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(tailed, consumed);

    let offsets = json_lines(&girok_ok(&url, &["--log", "orders", "offsets", "--json"]).await);
    assert_eq!(
        offsets,
        [serde_json::json!({"log": "orders", "lowest_offset": 0, "next_offset": 2})]
    );

    girok_ok(&url, &["logs", "create", "capped", "--retention-bytes", "1MiB"]).await;
    let listed = json_lines(&girok_ok(&url, &["logs", "list", "--json"]).await);
    let names: Vec<&str> = listed.iter().map(|l| l["log"].as_str().unwrap()).collect();
    assert_eq!(names, ["capped", "default", "orders"]);
    let plain = ["log", "lowest_offset", "next_offset", "size_bytes"];
    assert_eq!(
        keys(&listed[0]),
        ["log", "lowest_offset", "next_offset", "retention_bytes", "size_bytes"]
    );
    assert_eq!(listed[0]["retention_bytes"], 1024 * 1024);
    assert_eq!(keys(&listed[2]), plain);
    assert_eq!((&listed[2]["lowest_offset"], &listed[2]["next_offset"]), (&0.into(), &2.into()));
    assert!(listed[2]["size_bytes"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_from_a_file_sends_each_line_or_delimited_record_and_prints_a_summary() {
    // `--file` sends one record per line (`\r\n` too), or per `--delimiter` byte, and prints
    // the count and the offsets; an empty file produces nothing, and a missing one fails naming
    // it.
    let served = Served::start();
    let url = served.url();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let lines = write("lines", b"one\r\ntwo\n\nfour\n");
    let commas = write("commas", b"x,y\nz,");
    let nuls = write("nuls", b"p\0q");
    let empty = write("empty", b"");

    assert_eq!(
        girok_ok(&url, &["produce", "--file", &lines]).await,
        "produced 4 records, offsets [0, 4)\n"
    );
    assert_eq!(
        girok_ok(&url, &["produce", "-f", &commas, "--delimiter", ","]).await,
        "produced 2 records, offsets [4, 6)\n"
    );
    assert_eq!(
        girok_ok(&url, &["produce", "-f", &nuls, "-d", "\\0"]).await,
        "produced 2 records, offsets [6, 8)\n"
    );
    assert_eq!(girok_ok(&url, &["produce", "--file", &empty]).await, "produced 0 records\n");
    assert_eq!(
        girok_ok(&url, &["consume", "0", "-n", "8"]).await,
        "one\ntwo\n\nfour\nx\ny\nz\np\nq\n"
    );
    // Stderr is not a terminal here: no progress bar, nothing at all.
    let quiet = girok(&url, &["produce", "--file", &lines], "").await;
    assert!(quiet.status.success() && quiet.stderr.is_empty(), "{quiet:?}");

    let missing = girok(&url, &["produce", "--file", "/nonexistent/girok-input"], "").await;
    assert!(!missing.status.success());
    assert!(error_text(&missing).contains("/nonexistent/girok-input"), "{}", error_text(&missing));
    assert!(!girok(&url, &["produce", "-d", "ab"], "").await.status.success());
    assert!(!girok(&url, &["produce", "v", "--file", &lines], "").await.status.success());
}

#[test]
fn completions_are_non_empty_scripts_for_bash_zsh_and_fish() {
    // `girok completions SHELL` needs no server and prints a script naming girok's commands;
    // each shell found on this machine parses its script without running it.
    for shell in ["bash", "zsh", "fish"] {
        let output =
            run(command("http://127.0.0.1:1", &["completions", shell]), Input::Bytes(vec![]));
        assert!(output.status.success(), "{shell}: {}", error_text(&output));
        let script = text(&output);
        assert!(script.contains("girok") && script.contains("consume"), "{shell}: {script}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("girok-completion");
        std::fs::write(&path, &script).unwrap();
        match Command::new(shell).arg("-n").arg(&path).output() {
            Ok(check) => assert!(check.status.success(), "{shell} -n: {}", error_text(&check)),
            // This shell is not installed: its script is checked only for being non-empty.
            Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{shell}: {err}"),
        }
    }
    assert!(
        !run(command("http://127.0.0.1:1", &["completions", "cmd"]), Input::Bytes(vec![]))
            .status
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line_with_the_servers_details_decoded() {
    // A failed call prints one line on stderr, `girok: ` first, with what the server's details
    // say (the range held, the missing log, a RESOURCE_EXHAUSTED reason and its metadata), and
    // exits 1.
    let data = tempfile::tempdir().unwrap();
    let server = common::binary::spawn_server(data.path(), &[("GIROK_MAX_LOGS", "2")]);
    let url = server.url();
    let fails = |output: &Output| {
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        let error = error_text(output);
        assert_eq!(error.lines().count(), 1, "{error}");
        error
    };
    girok_ok(&url, &["produce", "a", "b", "c"]).await;
    let past = fails(&girok(&url, &["consume", "7"], "").await);
    assert_eq!(past, "girok: offset 7 is out of range: the log holds [0, 3)\n");
    let ghost = fails(&girok(&url, &["--log", "x", "offsets"], "").await);
    assert_eq!(ghost, "girok: log \"x\" does not exist\n");

    girok_ok(&url, &["logs", "create", "second"]).await;
    let full = fails(&girok(&url, &["logs", "create", "third"], "").await);
    assert!(full.starts_with("girok: "), "{full}");
    assert!(full.contains("(RESOURCE_EXHAUSTED LOG_LIMIT, limit=2)"), "{full}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_and_girok_compress_round_trip_through_the_server() {
    // `--compress zstd` and `GIROK_COMPRESS=gzip` produce and read back the same records as a
    // plain client sees them; an unknown algorithm is refused before anything is sent.
    let served = Served::start();
    let url = served.url();
    assert_eq!(girok_ok(&url, &["--compress", "zstd", "produce", "a", "b"]).await, "0\n1\n");
    let by_env = girok_in(&[("GIROK_COMPRESS", "gzip")], &url, &["produce"], "c\n").await;
    assert_eq!(text(&by_env), "2\n", "{}", error_text(&by_env));
    let read =
        girok_in(&[("GIROK_COMPRESS", "gzip")], &url, &["consume", "0", "-n", "3"], "").await;
    assert_eq!(text(&read), "a\nb\nc\n", "{}", error_text(&read));
    assert_eq!(
        girok_ok(&url, &["consume", "0", "-n", "3", "--compress", "zstd"]).await,
        "a\nb\nc\n"
    );
    assert_eq!(girok_ok(&url, &["consume", "0", "-n", "3"]).await, "a\nb\nc\n");
    assert!(!girok(&url, &["--compress", "lz4", "offsets"], "").await.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_ends_a_tail_quietly() {
    // `girok tail | head -1`: once stdout's reader is gone, the next record ends the tail with
    // success and nothing on stderr, not with a panic.
    let served = Served::start();
    let url = served.url();
    girok_ok(&url, &["produce", "a"]).await;
    let mut tail =
        command(&url, &["tail", "--from", "start"]).stdin(Stdio::null()).spawn().unwrap();
    let mut stdout = BufReader::new(tail.stdout.take().expect("stdout"));
    let mut first = String::new();
    tokio::task::block_in_place(|| stdout.read_line(&mut first)).expect("read a line");
    assert_eq!(first, "0\ta\n");
    drop(stdout);
    girok_ok(&url, &["produce", "b"]).await;
    let output = tokio::task::block_in_place(|| wait_with_timeout(tail, PROCESS_TIMEOUT));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(error_text(&output), "");
}
