//! The Rust client and the `girok` CLI against the shipped `girok-server` with TLS on: a round
//! trip trusting the server's CA (by IP address and by `localhost`), mutual TLS, bearer tokens
//! (streams included, a wrong one answering `UNAUTHENTICATED`), a denial by the ACL, and what a
//! person reads when a handshake fails or the options cannot work. Certificates come from a
//! test PKI made at test time (`common::certs`).

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use bytes::Bytes;
use common::binary::{PROCESS_TIMEOUT, ServerProcess, server_command, spawn, wait_with_timeout};
use common::bounded;
use common::certs::Pki;
use girok::client::{Client, ClientError, Connect};
use tempfile::TempDir;
use tonic::Code;

/// The token the token-checking servers accept, for the subject `alice`.
const TOKEN: &str = "s3cret-alice-t0ken";

/// The shipped server with TLS on, its data and its token and ACL files in a directory of its
/// own (the server is killed first, as fields drop in order).
struct Secured {
    server: ServerProcess,
    _dir: TempDir,
}

/// What a [`Secured`] server asks of its clients beyond TLS.
#[derive(Clone, Copy, Default)]
struct Asks {
    /// Mutual TLS: `--tls-client-ca` with the PKI's CA.
    client_cert: bool,
    /// `--auth-tokens` holding [`TOKEN`] for `alice`.
    token: bool,
    /// `--acl` letting `alice` only consume the log `orders` (and do anything on `default`).
    acl: bool,
}

impl Secured {
    /// Starts `girok-server --tls-cert --tls-key` with the PKI's server certificate, and what
    /// `asks` adds.
    fn start(pki: &Pki, asks: Asks) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = pki.server();
        let mut command = server_command(&dir.path().join("data"), &[]);
        command.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        if asks.client_cert {
            command.arg("--tls-client-ca").arg(pki.ca());
        }
        if asks.token {
            let tokens = dir.path().join("tokens");
            std::fs::write(&tokens, format!("{TOKEN} alice\n")).expect("write the token file");
            command.arg("--auth-tokens").arg(tokens);
        }
        if asks.acl {
            let acl = dir.path().join("acl.csv");
            std::fs::write(&acl, "p, alice, orders, consume\np, alice, default, *\n")
                .expect("write the ACL");
            command.arg("--acl").arg(acl);
        }
        let server = tokio::task::block_in_place(|| spawn(command, Stdio::null()));
        Secured { server, _dir: dir }
    }

    /// `https://HOST:PORT`.
    fn url(&self, host: &str) -> String {
        let port = self.server.addr.rsplit(':').next().expect("a port");
        format!("https://{host}:{port}")
    }
}

/// Produces two records one at a time and two through a ProduceStream, then reads them back
/// with Consume and a ConsumeStream: every kind of call the client makes.
async fn round_trip(client: &mut Client) {
    assert_eq!(client.produce("a").await.expect("produce"), 0);
    assert_eq!(client.produce("b").await.expect("produce"), 1);
    let values = futures_util::stream::iter([Bytes::from("c"), Bytes::from("d")]);
    let mut acks = client.produce_stream(values).await.expect("open a produce stream");
    assert_eq!(acks.next().await.expect("ack"), Some(2));
    assert_eq!(acks.next().await.expect("ack"), Some(3));
    assert_eq!(acks.next().await.expect("end"), None);
    assert_eq!(client.consume(1).await.expect("consume").value, "b");
    let mut records = client.consume_stream(0).await.expect("open a consume stream");
    for expected in ["a", "b", "c", "d"] {
        let record = records.next().await.expect("a record").expect("not the end");
        assert_eq!(record.value, expected);
    }
}

/// The `girok` command with `args` and `env`, no `GIROK_*` setting inherited, to the end.
async fn girok(args: &[&OsStr], env: &[(&str, &OsStr)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_girok"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for name in ["ADDR", "LOG", "COMPRESS", "CA", "CERT", "KEY", "TOKEN"] {
        command.env_remove(format!("GIROK_{name}"));
    }
    command.envs(env.iter().copied());
    tokio::task::spawn_blocking(move || {
        wait_with_timeout(command.spawn().expect("spawn girok"), PROCESS_TIMEOUT)
    })
    .await
    .expect("girok task")
}

/// `args` as the command line's arguments.
macro_rules! args {
    ($($arg:expr),* $(,)?) => { [$(OsStr::new(&$arg)),*] };
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read a PEM file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_round_trips_over_tls_by_ip_address_and_by_localhost() {
    // The server's certificate names localhost, 127.0.0.1 and ::1; the client checks it against
    // the host of the address, whichever way it is written.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks::default());
    bounded("round trip by IP", async {
        let mut client = Connect::new(served.url("127.0.0.1")).ca_file(pki.ca()).connect().await;
        round_trip(client.as_mut().expect("connect by IP")).await;
    })
    .await;
    bounded("round trip by name", async {
        let options = Connect::new(served.url("localhost")).ca_pem(read(&pki.ca()));
        let mut client = options.connect().await.expect("connect by name");
        assert_eq!(client.consume(3).await.expect("consume").value, "d");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_round_trips_with_a_client_certificate_and_refuses_a_client_without() {
    // With --tls-client-ca the server requires a certificate its CA signed. Under TLS 1.3 the
    // client's side of the handshake is done before the server checks, so a client without
    // one only sees the server close the connection on its first call.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks { client_cert: true, ..Asks::default() });
    let (cert, key) = pki.client("alice");
    bounded("mutual TLS", async {
        let options = Connect::new(served.url("127.0.0.1")).ca_file(pki.ca());
        let mut client =
            options.clone().identity_files(&cert, &key).connect().await.expect("connect");
        round_trip(&mut client).await;

        let err = match options.connect().await {
            Ok(mut client) => client.offsets().await.expect_err("no client certificate"),
            Err(err) => err,
        };
        // Depending on timing: the server's alert, the connection closing under the call
        // (CANCELLED), or the call's write failing with a broken pipe (UNKNOWN).
        let refused = matches!(err, ClientError::Handshake { .. })
            || matches!(err.code(), Some(Code::Cancelled | Code::Unknown));
        assert!(refused, "{err:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_what_a_connection_closed_by_a_mutual_tls_server_likely_means() {
    // No TLS error reaches the client (see above), so the CLI names the likely cause from the
    // options it was given: no --cert, or a --cert the server's client CA did not sign.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks { client_cert: true, ..Asks::default() });
    let stranger = Pki::new();
    let (stranger_cert, stranger_key) = stranger.client("mallory");
    let (url, ca) = (served.url("localhost"), pki.ca());
    bounded("the CLI against mutual TLS", async {
        let output = girok(&args!["--addr", url, "--ca", ca, "offsets"], &[]).await;
        assert!(!output.status.success());
        let error = stderr(&output);
        // Whichever the client saw first: the server's alert, or the connection closing.
        let alert = "girok: TLS handshake failed: received fatal alert: CertificateRequired: \
                     the server requires a client certificate: pass --cert and --key\n";
        let closed = format!(
            "girok: the server at {url} closed the connection: if it requires a client \
             certificate, pass --cert and --key\n"
        );
        assert!(error == alert || error == closed, "{error}");

        let cert = args!["--cert", stranger_cert, "--key", stranger_key];
        let offsets = [&cert[..], &args!["--addr", url, "--ca", ca, "offsets"]].concat();
        let output = girok(&offsets, &[]).await;
        assert!(!output.status.success());
        let error = stderr(&output);
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(
            error.contains("refused the client certificate") || error.contains("TLS handshake"),
            "{error}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_goes_with_every_call_and_a_wrong_one_is_unauthenticated() {
    // With --auth-tokens the server wants a valid token on each call: unary calls and both
    // streams succeed with it; without it, or with another, they answer UNAUTHENTICATED.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks { token: true, ..Asks::default() });
    bounded("tokens", async {
        let options = Connect::new(served.url("localhost")).ca_file(pki.ca());
        let mut client = options.clone().token(TOKEN).connect().await.expect("connect");
        round_trip(&mut client).await;

        for options in [options.clone().token("wrong-token"), options] {
            let mut client = options.connect().await.expect("connect");
            let err = client.offsets().await.expect_err("no valid token");
            assert_eq!(err.code(), Some(Code::Unauthenticated), "{err:?}");
            let err = match client.consume_stream(0).await {
                Ok(mut records) => records.next().await.expect_err("no valid token"),
                Err(err) => err,
            };
            assert_eq!(err.code(), Some(Code::Unauthenticated), "{err:?}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_fails_the_handshake_naming_why() {
    // The error names the server and rustls's reason, not just "transport error".
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks::default());
    let stranger = Pki::new();
    bounded("another CA", async {
        let options = Connect::new(served.url("127.0.0.1")).ca_file(stranger.ca());
        let err = options.connect().await.expect_err("an untrusted server");
        let peer = served.server.addr.clone();
        assert!(
            matches!(&err, ClientError::Handshake { peer: Some(p), .. } if *p == peer),
            "{err:?}"
        );
        // Both test CAs have the same name, so rustls finds "the" issuer and reports a bad
        // signature (UnknownIssuer when the names differ).
        let expected = format!("TLS handshake with {peer} failed: invalid peer certificate: ");
        assert!(err.to_string().starts_with(&expected), "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_round_trips_with_ca_cert_and_key_by_ip_address_and_by_localhost() {
    // --ca, --cert and --key against a mutual-TLS server; the same through GIROK_CA and friends.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks { client_cert: true, ..Asks::default() });
    let (cert, key) = pki.client("alice");
    let ca = pki.ca();
    bounded("the CLI over mutual TLS", async {
        let by_ip = served.url("127.0.0.1");
        let tls = args!["--ca", ca, "--cert", cert, "--key", key];
        let produce = [&tls[..], &args!["--addr", by_ip, "produce", "a", "b"]].concat();
        let output = girok(&produce, &[]).await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), "0\n1\n");

        let by_name = served.url("localhost");
        let env = [
            ("GIROK_ADDR", OsStr::new(&by_name)),
            ("GIROK_CA", ca.as_os_str()),
            ("GIROK_CERT", cert.as_os_str()),
            ("GIROK_KEY", key.as_os_str()),
        ];
        let output = girok(&args!["consume", "0", "-n", "2"], &env).await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), "a\nb\n");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_girok_token_and_a_wrong_one_prints_one_line_without_it() {
    // GIROK_TOKEN authenticates; a wrong token exits non-zero with one line naming
    // UNAUTHENTICATED, and the token itself shows nowhere.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks { token: true, ..Asks::default() });
    let (url, ca) = (served.url("127.0.0.1"), pki.ca());
    bounded("the CLI with a token", async {
        let env = [("GIROK_TOKEN", OsStr::new(TOKEN)), ("GIROK_CA", ca.as_os_str())];
        let output = girok(&args!["--addr", url, "produce", "a"], &env).await;
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), "0\n");

        let wrong = "wrong-t0ken-value";
        let output =
            girok(&args!["--addr", url, "--ca", ca, "--token", wrong, "offsets"], &[]).await;
        assert!(!output.status.success());
        let error = stderr(&output);
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(error.starts_with("girok: ") && error.contains("UNAUTHENTICATED"), "{error}");
        assert!(!error.contains(wrong), "{error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_a_denial_by_the_acl_as_one_line() {
    // alice may only consume `orders`: a produce there is PERMISSION_DENIED, printed as one
    // line, exit non-zero; the read she may make still works.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks { client_cert: true, acl: true, ..Asks::default() });
    let (cert, key) = pki.client("alice");
    let ca = pki.ca();
    bounded("a denial", async {
        let url = served.url("localhost");
        let base = args!["--addr", url, "--ca", ca, "--cert", cert, "--key", key];
        let produce = [&base[..], &args!["--log", "orders", "produce", "x"]].concat();
        let output = girok(&produce, &[]).await;
        assert!(!output.status.success());
        let error = stderr(&output);
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(error.contains("PERMISSION_DENIED"), "{error}");
        let output = girok(&[&base[..], &args!["produce", "y"]].concat(), &[]).await;
        assert!(output.status.success(), "{}", stderr(&output));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_names_the_handshake_failure_when_it_trusts_another_ca_or_speaks_plaintext() {
    // What a person can act on: the server, and that its certificate's issuer is unknown; or,
    // speaking plaintext to a TLS server (which just closes the connection), to use https://.
    let pki = Pki::new();
    let served = Secured::start(&pki, Asks::default());
    let stranger = Pki::new();
    bounded("the CLI against an untrusted server", async {
        let url = served.url("127.0.0.1");
        let output = girok(&args!["--addr", url, "--ca", stranger.ca(), "offsets"], &[]).await;
        assert!(!output.status.success());
        let error = stderr(&output);
        let expected = format!(
            "girok: TLS handshake with {} failed: invalid peer certificate: ",
            served.server.addr
        );
        assert!(error.starts_with(&expected) && error.lines().count() == 1, "{error}");

        let plaintext = served.server.url();
        let output = girok(&args!["--addr", plaintext, "offsets"], &[]).await;
        assert!(!output.status.success());
        // The server's alert arrives as a close, or as bytes that are no HTTP/2 frame.
        let error = stderr(&output);
        let prefix = format!("girok: the server at {plaintext} ");
        assert!(error.starts_with(&prefix), "{error}");
        assert!(error.ends_with(": if it serves TLS, use https://\n"), "{error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_refuses_options_that_cannot_work_before_connecting() {
    // No server is needed: each is caught before a byte is sent, in one line.
    let pki = Pki::new();
    let (cert, key) = pki.client("alice");
    let url = "https://127.0.0.1:1";

    // --cert without --key, and the reverse: clap names the missing flag.
    for (given, missing) in [("--cert", "--key"), ("--key", "--cert")] {
        let path = if given == "--cert" { &cert } else { &key };
        let output = girok(&args!["--addr", url, given, path, "offsets"], &[]).await;
        assert!(!output.status.success());
        let error = stderr(&output);
        assert!(error.contains("required") && error.contains(missing), "{given}: {error}");
    }

    // An unreadable file is named.
    let missing = pki.dir().join("nope.pem");
    let output = girok(&args!["--addr", url, "--ca", missing, "offsets"], &[]).await;
    assert_eq!(
        stderr(&output),
        format!(
            "girok: cannot read the CA certificate {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );

    // A CA with a plaintext address.
    let output =
        girok(&args!["--addr", "http://127.0.0.1:1", "--ca", pki.ca(), "offsets"], &[]).await;
    assert!(!output.status.success());
    assert!(stderr(&output).trim_end().ends_with("use https://"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_shows_in_help_or_errors() {
    // `--help` lists GIROK_TOKEN without its value; an error about the connection does not
    // repeat it either.
    let secret = "s3cret-never-shown";
    let env = [("GIROK_TOKEN", OsStr::new(secret))];
    let output = girok(&args!["--help"], &env).await;
    assert!(output.status.success());
    let help = stdout(&output);
    assert!(help.contains("GIROK_TOKEN") && !help.contains(secret), "{help}");

    let output =
        girok(&args!["--addr", "http://127.0.0.1:1", "--timeout", "1s", "offsets"], &env).await;
    assert!(!output.status.success());
    assert!(!stderr(&output).contains(secret), "{}", stderr(&output));
    let output =
        girok(&args!["--addr", "http://127.0.0.1:1", "--token", "bad token", "offsets"], &[]).await;
    assert!(!output.status.success());
    assert!(!stderr(&output).contains("bad token"), "{}", stderr(&output));
}
