//! Security of the shipped `girok-server` binary: it refuses to start on bad files or flags that
//! do not fit together (naming the file), SIGHUP swaps in a new certificate without dropping
//! open connections (and keeps the old one when the new files are bad), the admin listener
//! serves over the same certificate, and grpcurl works against mutual TLS.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::binary::{server_command, spawn, spawn_server, wait_with_timeout};
use common::certs::Pki;
use common::secure::{Creds, client, reach};
use girok::api::v1::{OffsetsRequest, ProduceRequest, Record};

/// How long any one step (a process start, a reload) may take.
const STEP: Duration = Duration::from_secs(20);

/// The `(flag env var, path)` pairs of a TLS server over `pki`'s server certificate.
fn tls_env(cert: &Path, key: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("GIROK_TLS_CERT", cert.display().to_string()),
        ("GIROK_TLS_KEY", key.display().to_string()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(key, value)| (*key, value.as_str())).collect()
}

/// Runs `girok-server` with `env` expecting it to refuse to start; answers its stderr.
fn refused(data: &Path, env: &[(&'static str, String)]) -> String {
    let child = server_command(data, &borrowed(env))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn girok-server");
    let output = wait_with_timeout(child, STEP);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "girok-server started: {stdout}");
    assert!(!stdout.contains("listening on"), "girok-server listened: {stdout}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_files_and_flags_refuse_to_start_naming_the_file() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("temp dir");
    let (cert, key) = pki.server();

    // An expired certificate.
    let (expired, expired_key) = pki.expired_server();
    let stderr = refused(data.path(), &tls_env(&expired, &expired_key));
    assert!(stderr.contains(&expired.display().to_string()), "{stderr}");
    // A key that is not the certificate's.
    let (_, stranger_key) = pki.client("stranger");
    let stderr = refused(data.path(), &tls_env(&cert, &stranger_key));
    assert!(stderr.contains(&stranger_key.display().to_string()), "{stderr}");
    // An unreadable client CA.
    let missing = pki.dir().join("no-such-ca.pem");
    let mut env = tls_env(&cert, &key);
    env.push(("GIROK_TLS_CLIENT_CA", missing.display().to_string()));
    let stderr = refused(data.path(), &env);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    // An ACL with no way to know who calls.
    let acl = pki.dir().join("acl.csv");
    std::fs::write(&acl, "p, alice, *, *\n").unwrap();
    let mut env = tls_env(&cert, &key);
    env.push(("GIROK_ACL", acl.display().to_string()));
    let stderr = refused(data.path(), &env);
    assert!(stderr.contains("--acl needs --tls-client-ca or --auth-tokens"), "{stderr}");
    // Tokens in the clear to other machines.
    let tokens = pki.dir().join("tokens");
    std::fs::write(&tokens, "a-long-enough-token alice\n").unwrap();
    let env = vec![
        ("GIROK_AUTH_TOKENS", tokens.display().to_string()),
        ("GIROK_LISTEN_ADDR", "0.0.0.0:0".to_string()),
    ];
    let stderr = refused(data.path(), &env);
    assert!(stderr.contains("--auth-tokens on plaintext"), "{stderr}");
}

/// Copies `(cert, key)` over the files the server was started with.
fn install(from: &(PathBuf, PathBuf), to: &(PathBuf, PathBuf)) {
    std::fs::copy(&from.0, &to.0).expect("copy the certificate");
    std::fs::copy(&from.1, &to.1).expect("copy the key");
}

fn send_hangup(pid: u32) {
    let status = Command::new("kill").arg("-HUP").arg(pid.to_string()).status().expect("kill");
    assert!(status.success());
}

fn produce(value: &str) -> ProduceRequest {
    ProduceRequest {
        log: String::new(),
        record: Some(Record { value: value.as_bytes().to_vec().into(), ..Record::default() }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_without_dropping_connections() {
    let (first, second) = (Pki::new(), Pki::new());
    let live = (first.dir().join("live.pem"), first.dir().join("live.key"));
    install(&first.server(), &live);
    let data = tempfile::tempdir().expect("temp dir");
    let env = tls_env(&live.0, &live.1);
    let command = server_command(data.path(), &borrowed(&env));
    let server = tokio::task::block_in_place(|| spawn(command, Stdio::null()));
    let addr: SocketAddr = server.addr.parse().unwrap();

    // A connection made under the first certificate.
    let mut old = client(addr, &Creds::tls(&first)).await;
    old.produce(produce("before")).await.expect("served under the first certificate");

    // A bad pair on disk: the reload keeps the first certificate in force.
    std::fs::write(&live.0, "not a certificate").unwrap();
    send_hangup(server.id());
    tokio::time::sleep(Duration::from_millis(300)).await;
    reach(addr, &Creds::tls(&first)).await.expect("a failed reload kept the first certificate");

    // The second certificate, then SIGHUP: new connections get it.
    install(&second.server(), &live);
    send_hangup(server.id());
    let started = Instant::now();
    while reach(addr, &Creds::tls(&second)).await.is_err() {
        assert!(started.elapsed() < STEP, "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reach(addr, &Creds::tls(&first)).await.is_err(), "the old certificate is still served");
    // The connection made before goes on.
    old.produce(produce("after")).await.expect("the open connection survived the reload");
    let next = old.offsets(OffsetsRequest::default()).await.unwrap().into_inner().next_offset;
    assert_eq!(next, 2);
}

#[test]
fn the_admin_listener_serves_over_the_same_certificate() {
    let pki = Pki::new();
    let (cert, key) = pki.server();
    let data = tempfile::tempdir().expect("temp dir");
    let mut env = tls_env(&cert, &key);
    env.push(("GIROK_TLS_CLIENT_CA", pki.ca().display().to_string()));
    env.push(("GIROK_ADMIN_ADDR", "127.0.0.1:0".to_string()));
    let server = spawn_server(data.path(), &borrowed(&env));
    let admin = server.admin_addr.clone().expect("an admin address");
    // No client certificate needed, though the gRPC port requires one.
    let url = format!("https://{admin}/readyz");
    let curl = |extra: &[&str]| {
        let child = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(extra)
            .arg(&url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl is on PATH");
        wait_with_timeout(child, STEP)
    };
    let ca = pki.ca().display().to_string();
    let served = curl(&["--cacert", &ca]);
    assert_eq!(String::from_utf8_lossy(&served.stdout), "200", "{served:?}");
    // Plain HTTP gets no answer.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "5", &format!("http://{admin}/readyz")])
        .output()
        .expect("curl");
    assert!(!plain.status.success(), "the admin listener answered plain HTTP");
}

/// Runs grpcurl with `args`, killing it after [`STEP`].
fn grpcurl(args: &[&str]) -> std::process::Output {
    let child = Command::new("grpcurl")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("grpcurl is on PATH: run the tests with `make test`");
    wait_with_timeout(child, STEP)
}

#[test]
fn grpcurl_calls_the_mutual_tls_server_with_its_certificate() {
    let pki = Pki::new();
    let (cert, key) = pki.server();
    let data = tempfile::tempdir().expect("temp dir");
    let acl = pki.dir().join("acl.csv");
    std::fs::write(&acl, "p, grpcurl, orders, produce\np, grpcurl, orders, consume\n").unwrap();
    let mut env = tls_env(&cert, &key);
    env.push(("GIROK_TLS_CLIENT_CA", pki.ca().display().to_string()));
    env.push(("GIROK_ACL", acl.display().to_string()));
    let server = spawn_server(data.path(), &borrowed(&env));
    let (client_cert, client_key) = pki.client("grpcurl");
    let (ca, client_cert, client_key) = (
        pki.ca().display().to_string(),
        client_cert.display().to_string(),
        client_key.display().to_string(),
    );
    let tls = ["-cacert", &ca, "-cert", &client_cert, "-key", &client_key];
    let call = |extra: &[&str]| {
        let args: Vec<&str> = tls.iter().copied().chain(extra.iter().copied()).collect();
        grpcurl(&args)
    };

    let listed = call(&[server.addr.as_str(), "list"]);
    assert!(listed.status.success(), "{listed:?}");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("log.v1.Log"));
    let produced = call(&[
        "-d",
        r#"{"log": "orders", "record": {"value": "aGk="}}"#,
        server.addr.as_str(),
        "log.v1.Log/Produce",
    ]);
    assert!(produced.status.success(), "{produced:?}");
    let read = call(&["-d", r#"{"log": "orders"}"#, server.addr.as_str(), "log.v1.Log/Consume"]);
    assert!(String::from_utf8_lossy(&read.stdout).contains("aGk="), "{read:?}");
    // What the ACL does not grant is PERMISSION_DENIED.
    let denied =
        call(&["-d", r#"{"log": "payments"}"#, server.addr.as_str(), "log.v1.Log/Offsets"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    // Without its certificate grpcurl gets nowhere.
    let bare = grpcurl(&["-cacert", &ca, server.addr.as_str(), "list"]);
    assert!(!bare.status.success(), "served without a client certificate");
}
