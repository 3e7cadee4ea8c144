//! Security against a real server on a loopback port, with certificates made at test time: TLS
//! round trips, handshakes that must fail, bearer tokens, and the access-control list applied to
//! every RPC (streams included) in the contract's order: `UNAUTHENTICATED`, `INVALID_ARGUMENT`,
//! `PERMISSION_DENIED`, then everything else.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::certs::Pki;
use common::secure::{Creds, channel, client, reach};
use common::{TestServer, bounded, start_registry};
use girok::api::v1::{
    ConsumeRequest, CreateLogRequest, DeleteLogRequest, GetServersRequest, ListLogsRequest,
    LogSettings, OffsetsRequest, ProduceRequest, Record, UpdateLogRequest,
};
use girok::logs::{Logs, LogsConfig};
use girok::server::{Security, SecurityFiles, ServerConfig};
use girok::storage::{LogConfig, MemoryLog};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

/// The example policy, plus a subject that may only read `orders` itself.
const POLICY: &str = "\
# who may do what
p, producer, orders, produce
p, analytics, orders*, consume
p, ops, *, admin
p, root, *, *
";

/// Tokens for the policy's subjects.
const TOKENS: &str = "\
tok-producer-0123456789 producer
tok-analytics-0123456789 analytics
tok-ops-0123456789 ops
tok-root-0123456789 root
";

/// A server over an in-memory registry, with the security `files` name.
async fn secured(files: SecurityFiles) -> TestServer {
    let security = Security::load(files).expect("load the security files");
    let config = ServerConfig { security, ..ServerConfig::default() };
    let logs = Logs::serving(Arc::new(MemoryLog::new(LogConfig::default())), LogsConfig::default());
    start_registry(Arc::new(logs), config).await
}

/// Writes `text` into the PKI's directory as `name`.
fn file(pki: &Pki, name: &str, text: &str) -> PathBuf {
    let path = pki.dir().join(name);
    std::fs::write(&path, text).expect("write a security file");
    path
}

/// TLS with `pki`'s server certificate, and nothing else.
fn tls_files(pki: &Pki) -> SecurityFiles {
    let (cert, key) = pki.server();
    SecurityFiles { tls_cert: Some(cert), tls_key: Some(key), ..SecurityFiles::default() }
}

/// Mutual TLS: client certificates of `pki`'s CA are required.
fn mutual_files(pki: &Pki) -> SecurityFiles {
    SecurityFiles { tls_client_ca: Some(pki.ca()), ..tls_files(pki) }
}

/// TLS with optional client certificates, tokens and the policy: every way to be a subject.
async fn policed(pki: &Pki) -> TestServer {
    secured(SecurityFiles {
        auth_tokens: Some(file(pki, "tokens", TOKENS)),
        acl: Some(file(pki, "acl.csv", POLICY)),
        ..mutual_files(pki)
    })
    .await
}

fn produce(log: &str, value: &str) -> ProduceRequest {
    ProduceRequest {
        log: log.to_string(),
        record: Some(Record { value: value.as_bytes().to_vec().into(), ..Record::default() }),
    }
}

fn consume(log: &str, offset: u64) -> ConsumeRequest {
    ConsumeRequest { log: log.to_string(), offset }
}

fn offsets(log: &str) -> OffsetsRequest {
    OffsetsRequest { log: log.to_string(), ..OffsetsRequest::default() }
}

/// Asserts `status` is `PERMISSION_DENIED` naming `subject`, `action` and `log`, with its
/// `ErrorInfo`.
fn assert_denied(status: &Status, subject: &str, action: &str, log: &str) {
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    for word in [subject, action, log] {
        assert!(status.message().contains(word), "{word:?} not in {:?}", status.message());
    }
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "ACCESS_DENIED");
    assert_eq!(info.domain, "girok");
    assert_eq!(info.metadata.get("subject").map(String::as_str), Some(subject));
    assert_eq!(info.metadata.get("action").map(String::as_str), Some(action));
    assert_eq!(info.metadata.get("log").map(String::as_str), Some(log));
}

/// Runs a test body within the common time bound.
async fn with_timeout<T>(body: impl std::future::Future<Output = T>) -> T {
    bounded("security", body).await
}

/// Asserts that a client presenting `creds` gets an answer from `grpc.health.v1`.
async fn assert_healthy(addr: std::net::SocketAddr, creds: &Creds) {
    let channel = channel(addr, creds).await.unwrap();
    let health = HealthClient::new(channel).check(HealthCheckRequest::default()).await;
    assert!(health.is_ok(), "{health:?}");
}

/// The names `ListLogs` shows `client`.
async fn log_names(client: &mut common::secure::Client) -> Vec<String> {
    let logs = client.list_logs(ListLogsRequest {}).await.unwrap().into_inner().logs;
    logs.into_iter().map(|log| log.name).collect()
}

fn code<T>(result: Result<T, Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test]
async fn a_tls_server_round_trips_and_refuses_plaintext() {
    with_timeout(async {
        let pki = Pki::new();
        let server = secured(tls_files(&pki)).await;
        let mut client = client(server.addr, &Creds::tls(&pki)).await;
        let offset = client.produce(produce("", "over tls")).await.unwrap().into_inner().offset;
        let record = client.consume(consume("", offset)).await.unwrap().into_inner();
        assert_eq!(record.record.unwrap().value, "over tls".as_bytes());

        // A plaintext client gets no answer from a TLS port.
        let plaintext = reach(server.addr, &Creds::default()).await;
        assert!(plaintext.is_err(), "a plaintext client was served");
        // Nor does a client that trusts another CA.
        let stranger = Pki::new();
        let refused = reach(server.addr, &Creds::tls(&stranger)).await.unwrap_err();
        assert!(refused.contains("connect"), "{refused}");
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_from_its_ca() {
    with_timeout(async {
        let pki = Pki::new();
        let server = secured(mutual_files(&pki)).await;
        reach(server.addr, &Creds::cert(&pki, "alice"))
            .await
            .expect("a client certificate is served");
        assert!(
            reach(server.addr, &Creds::tls(&pki)).await.is_err(),
            "served without a certificate"
        );
        // A certificate from another CA, even one the client's own CA list contains.
        let other = Pki::new();
        let foreign = Creds { identity: Some(other.client("mallory")), ..Creds::tls(&pki) };
        assert!(reach(server.addr, &foreign).await.is_err(), "served a foreign certificate");
        // Health needs a handshake, not a subject.
        assert_healthy(server.addr, &Creds::cert(&pki, "probe")).await;
    })
    .await;
}

#[tokio::test]
async fn tokens_authenticate_and_a_wrong_one_is_unauthenticated_even_beside_a_certificate() {
    with_timeout(async {
        let pki = Pki::new();
        let server = policed(&pki).await;
        let mut root = client(server.addr, &Creds::token(&pki, "tok-root-0123456789")).await;
        root.produce(produce("orders", "a")).await.expect("a valid token is served");

        for creds in [
            Creds::token(&pki, "tok-root-wrong"),
            Creds::tls(&pki),
            Creds { token: Some("tok-root-wrong".into()), ..Creds::cert(&pki, "root") },
        ] {
            let mut client = client(server.addr, &creds).await;
            let status = client.offsets(offsets("orders")).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            assert!(!status.message().contains("tok-root"), "a token was echoed: {status:?}");
            // UNAUTHENTICATED comes before the request's own errors.
            let status = client.offsets(offsets("bad/name")).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        }

        // A certificate alone names its subject; beside a valid token, the token's applies.
        let mut cert_only = client(server.addr, &Creds::cert(&pki, "analytics")).await;
        cert_only.offsets(offsets("orders")).await.expect("analytics may consume orders");
        let both = Creds {
            token: Some("tok-producer-0123456789".into()),
            ..Creds::cert(&pki, "analytics")
        };
        let mut both = client(server.addr, &both).await;
        both.produce(produce("orders", "b")).await.expect("the token's subject may produce");
        let status = both.offsets(offsets("orders")).await.unwrap_err();
        assert_denied(&status, "producer", "consume", "orders");

        // Health needs no credentials at all.
        assert_healthy(server.addr, &Creds::tls(&pki)).await;
    })
    .await;
}

#[tokio::test]
async fn a_produce_only_subject_gets_exactly_what_the_policy_says() {
    with_timeout(async {
        let pki = Pki::new();
        let server = policed(&pki).await;
        let mut producer =
            client(server.addr, &Creds::token(&pki, "tok-producer-0123456789")).await;
        // Producing creates `orders` (auto-create) and appends.
        assert_eq!(producer.produce(produce("orders", "a")).await.unwrap().into_inner().offset, 0);
        // A stream to it works too.
        let values = tokio_stream::iter(vec![produce("orders", "b"), produce("", "c")]);
        let mut acks = producer.produce_stream(values).await.unwrap().into_inner();
        assert_eq!(acks.message().await.unwrap().unwrap().offset, 1);
        assert_eq!(acks.message().await.unwrap().unwrap().offset, 2);

        // Reading it, anything on another log, and administering are denied.
        assert_denied(
            &producer.consume(consume("orders", 0)).await.unwrap_err(),
            "producer",
            "consume",
            "orders",
        );
        assert_denied(
            &producer.offsets(offsets("orders")).await.unwrap_err(),
            "producer",
            "consume",
            "orders",
        );
        let status = producer.consume_stream(consume("orders", 0)).await.unwrap_err();
        assert_denied(&status, "producer", "consume", "orders");
        assert_denied(
            &producer.produce(produce("orders-eu", "x")).await.unwrap_err(),
            "producer",
            "produce",
            "orders-eu",
        );
        let create = CreateLogRequest { name: "new".into(), settings: None };
        assert_denied(&producer.create_log(create).await.unwrap_err(), "producer", "admin", "new");
        let listed = producer.list_logs(ListLogsRequest {}).await.unwrap().into_inner().logs;
        assert!(listed.is_empty(), "a producer may list nothing: {listed:?}");

        // A stream to a denied log ends with PERMISSION_DENIED and appends nothing.
        let values = tokio_stream::iter(vec![produce("default", "x")]);
        let mut acks = producer.produce_stream(values).await.unwrap().into_inner();
        let status = acks.message().await.unwrap_err();
        assert_denied(&status, "producer", "produce", "default");
        let mut root = client(server.addr, &Creds::token(&pki, "tok-root-0123456789")).await;
        let default = root.offsets(offsets("")).await.unwrap().into_inner();
        assert_eq!(default.next_offset, 0, "a denied stream appended");
        let orders = root.offsets(offsets("orders")).await.unwrap().into_inner();
        assert_eq!(orders.next_offset, 3);
        let names = log_names(&mut root).await;
        assert_eq!(names, ["default", "orders"], "a denied produce created a log");
    })
    .await;
}

#[tokio::test]
async fn a_consume_only_subject_gets_exactly_what_the_policy_says() {
    with_timeout(async {
        let pki = Pki::new();
        let server = policed(&pki).await;
        let mut root = client(server.addr, &Creds::token(&pki, "tok-root-0123456789")).await;
        for log in ["orders", "orders-eu", "payments"] {
            root.produce(produce(log, "first")).await.unwrap();
        }
        let mut analytics =
            client(server.addr, &Creds::token(&pki, "tok-analytics-0123456789")).await;
        // `orders*` covers both order logs, by every read.
        for log in ["orders", "orders-eu"] {
            let record = analytics.consume(consume(log, 0)).await.unwrap().into_inner();
            assert_eq!(record.record.unwrap().value, "first".as_bytes());
            assert_eq!(analytics.offsets(offsets(log)).await.unwrap().into_inner().next_offset, 1);
            let mut tail = analytics.consume_stream(consume(log, 0)).await.unwrap().into_inner();
            assert_eq!(tail.message().await.unwrap().unwrap().record.unwrap().offset, 0);
        }
        let names = log_names(&mut analytics).await;
        assert_eq!(names, ["orders", "orders-eu"]);

        // A denied read answers PERMISSION_DENIED even where the offset is out of range, and
        // even for a log that does not exist.
        let status = analytics.consume(consume("payments", 999)).await.unwrap_err();
        assert_denied(&status, "analytics", "consume", "payments");
        let status = analytics.consume(consume("nowhere", 0)).await.unwrap_err();
        assert_denied(&status, "analytics", "consume", "nowhere");
        // Its own out-of-range read is the usual OUT_OF_RANGE.
        assert_eq!(code(analytics.consume(consume("orders", 999)).await), Code::OutOfRange);
        // The request's own error comes first.
        assert_eq!(code(analytics.consume(consume("bad/name", 0)).await), Code::InvalidArgument);

        // A denied write appends nothing, unary or streamed.
        assert_denied(
            &analytics.produce(produce("orders", "x")).await.unwrap_err(),
            "analytics",
            "produce",
            "orders",
        );
        let mut acks = analytics
            .produce_stream(tokio_stream::iter(vec![produce("orders", "x")]))
            .await
            .unwrap()
            .into_inner();
        assert_denied(&acks.message().await.unwrap_err(), "analytics", "produce", "orders");
        assert_eq!(root.offsets(offsets("orders")).await.unwrap().into_inner().next_offset, 1);
        let status =
            analytics.delete_log(DeleteLogRequest { name: "orders".into() }).await.unwrap_err();
        assert_denied(&status, "analytics", "admin", "orders");
    })
    .await;
}

#[tokio::test]
async fn admin_rpcs_need_admin_and_check_the_request_first() {
    with_timeout(async {
        let pki = Pki::new();
        let server = policed(&pki).await;
        let mut ops = client(server.addr, &Creds::token(&pki, "tok-ops-0123456789")).await;
        let create = CreateLogRequest { name: "audit".into(), settings: None };
        ops.create_log(create).await.expect("ops may create");
        let settings = Some(LogSettings { retention_bytes: Some(1 << 20), ..Default::default() });
        let update = UpdateLogRequest { name: "audit".into(), settings };
        ops.update_log(update).await.expect("ops may update");
        let listed = ops.list_logs(ListLogsRequest {}).await.unwrap().into_inner().logs;
        assert_eq!(listed.len(), 2, "ops administers every log: {listed:?}");
        assert_denied(
            &ops.produce(produce("audit", "x")).await.unwrap_err(),
            "ops",
            "produce",
            "audit",
        );
        ops.delete_log(DeleteLogRequest { name: "audit".into() }).await.expect("ops may delete");

        // A bad request is INVALID_ARGUMENT whoever sends it; a good one from the wrong subject
        // is PERMISSION_DENIED.
        let mut producer =
            client(server.addr, &Creds::token(&pki, "tok-producer-0123456789")).await;
        let tiny = Some(LogSettings { segment_bytes: Some(1), ..Default::default() });
        let bad = CreateLogRequest { name: "orders".into(), settings: tiny };
        assert_eq!(code(producer.create_log(bad).await), Code::InvalidArgument);
        let bad = CreateLogRequest { name: "".into(), settings: None };
        assert_eq!(code(producer.create_log(bad).await), Code::InvalidArgument);
        let update = UpdateLogRequest { name: "orders".into(), settings: None };
        assert_denied(
            &producer.update_log(update).await.unwrap_err(),
            "producer",
            "admin",
            "orders",
        );
    })
    .await;
}

#[tokio::test]
async fn a_certificate_names_its_subject_under_mutual_tls_and_the_acl() {
    with_timeout(async {
        let pki = Pki::new();
        let acl = Some(file(&pki, "acl.csv", POLICY));
        let server = secured(SecurityFiles { acl, ..mutual_files(&pki) }).await;
        let mut producer = client(server.addr, &Creds::cert(&pki, "producer")).await;
        producer.produce(produce("orders", "a")).await.expect("producer may produce");
        assert_denied(
            &producer.consume(consume("orders", 0)).await.unwrap_err(),
            "producer",
            "consume",
            "orders",
        );
        // A subject the policy does not name may do nothing; the token header means nothing
        // without --auth-tokens.
        let stranger =
            Creds { token: Some("tok-root-0123456789".into()), ..Creds::cert(&pki, "stranger") };
        let mut stranger = client(server.addr, &stranger).await;
        assert_denied(
            &stranger.offsets(offsets("orders")).await.unwrap_err(),
            "stranger",
            "consume",
            "orders",
        );
    })
    .await;
}

#[tokio::test]
async fn flags_that_do_not_fit_together_or_bad_files_refuse_to_load() {
    let pki = Pki::new();
    let (cert, key) = pki.server();
    let acl = file(&pki, "acl.csv", POLICY);
    let refuse = |files: SecurityFiles| Security::load(files).map(drop).unwrap_err().to_string();

    let why = refuse(SecurityFiles { tls_cert: Some(cert.clone()), ..Default::default() });
    assert!(why.contains("--tls-key"), "{why}");
    let why = refuse(SecurityFiles { tls_client_ca: Some(pki.ca()), ..Default::default() });
    assert!(why.contains("--tls-cert"), "{why}");
    let why = refuse(SecurityFiles {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key.clone()),
        acl: Some(acl.clone()),
        ..Default::default()
    });
    assert!(why.contains("--acl needs"), "{why}");

    // Each bad file is named.
    let missing = pki.dir().join("missing.pem");
    let why = refuse(SecurityFiles {
        tls_cert: Some(missing.clone()),
        tls_key: Some(key.clone()),
        ..Default::default()
    });
    assert!(why.contains(&missing.display().to_string()), "{why}");
    let (_, other_key) = pki.client("someone");
    let why = refuse(SecurityFiles {
        tls_cert: Some(cert.clone()),
        tls_key: Some(other_key.clone()),
        ..Default::default()
    });
    assert!(why.contains(&other_key.display().to_string()), "{why}");
    let (expired, expired_key) = pki.expired_server();
    let why = refuse(SecurityFiles {
        tls_cert: Some(expired.clone()),
        tls_key: Some(expired_key),
        ..Default::default()
    });
    assert!(why.contains(&expired.display().to_string()), "{why}");
    let bad_acl = file(&pki, "bad-acl.csv", "p, alice, orders, fly\n");
    let why = refuse(SecurityFiles {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key.clone()),
        tls_client_ca: Some(pki.ca()),
        acl: Some(bad_acl.clone()),
        ..Default::default()
    });
    assert!(why.contains(&bad_acl.display().to_string()) && why.contains("line 1"), "{why}");
    let bad_tokens = file(&pki, "bad-tokens", "secret-token-without-subject\n");
    let why = refuse(SecurityFiles { auth_tokens: Some(bad_tokens.clone()), ..Default::default() });
    assert!(why.contains(&bad_tokens.display().to_string()), "{why}");
    assert!(!why.contains("secret-token"), "a token was echoed: {why}");
}

/// Reads `tail` to its end, which must come after records appended before the reload only
/// (offsets 0 and 1); answers the status it ended with.
async fn end_of(tail: &mut tonic::Streaming<girok::api::v1::ConsumeResponse>) -> Status {
    loop {
        match tail.message().await {
            Ok(Some(response)) => assert!(response.record.unwrap().offset < 2),
            Ok(None) => panic!("the tail ended without a status"),
            Err(status) => return status,
        }
    }
}

/// A server over `files` whose [`Security`] the test keeps, to reload it.
async fn reloadable(files: SecurityFiles, config: ServerConfig) -> (TestServer, Security) {
    let security = Security::load(files).expect("load the security files");
    let config = ServerConfig { security: security.clone(), ..config };
    let logs = Logs::serving(Arc::new(MemoryLog::new(LogConfig::default())), LogsConfig::default());
    (start_registry(Arc::new(logs), config).await, security)
}

#[tokio::test]
async fn a_reload_ends_open_streams_whose_permission_it_withdrew() {
    with_timeout(async {
        let pki = Pki::new();
        let (tokens, acl) = (file(&pki, "tokens", TOKENS), file(&pki, "acl.csv", POLICY));
        let files = SecurityFiles {
            auth_tokens: Some(tokens.clone()),
            acl: Some(acl.clone()),
            ..mutual_files(&pki)
        };
        let (server, security) = reloadable(files, ServerConfig::default()).await;
        let mut root = client(server.addr, &Creds::token(&pki, "tok-root-0123456789")).await;
        root.produce(produce("orders", "first")).await.unwrap();

        // A token's tail, a certificate's tail and a producer's stream, all open.
        let mut by_token =
            client(server.addr, &Creds::token(&pki, "tok-analytics-0123456789")).await;
        let mut token_tail =
            by_token.consume_stream(consume("orders", 0)).await.unwrap().into_inner();
        assert_eq!(token_tail.message().await.unwrap().unwrap().record.unwrap().offset, 0);
        let mut by_cert = client(server.addr, &Creds::cert(&pki, "analytics")).await;
        let mut cert_tail =
            by_cert.consume_stream(consume("orders", 0)).await.unwrap().into_inner();
        assert_eq!(cert_tail.message().await.unwrap().unwrap().record.unwrap().offset, 0);
        let mut producer =
            client(server.addr, &Creds::token(&pki, "tok-producer-0123456789")).await;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut acks = producer.produce_stream(requests).await.unwrap().into_inner();
        tx.send(produce("orders", "second")).await.unwrap();
        assert_eq!(acks.message().await.unwrap().unwrap().offset, 1);

        // The analytics token is revoked and `analytics` loses orders; the producer keeps its
        // token but loses its grant.
        std::fs::write(&tokens, TOKENS.replace("tok-analytics-0123456789 analytics\n", ""))
            .unwrap();
        std::fs::write(&acl, "p, root, *, *\n").unwrap();
        assert!(security.reload().is_empty());

        // Records appended before the reload may still arrive; then the tails end.
        let status = end_of(&mut token_tail).await;
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert_denied(&end_of(&mut cert_tail).await, "analytics", "consume", "orders");
        tx.send(produce("orders", "third")).await.unwrap();
        assert_denied(&acks.message().await.unwrap_err(), "producer", "produce", "orders");
        // Nothing was appended after the reload, and new calls see the new files too.
        assert_eq!(root.offsets(offsets("orders")).await.unwrap().into_inner().next_offset, 2);
        let status = by_token.offsets(offsets("orders")).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn a_reloaded_client_ca_stops_connections_made_under_the_old_one() {
    with_timeout(async {
        let (pki, next) = (Pki::new(), Pki::new());
        let ca = pki.dir().join("client-ca.pem");
        std::fs::copy(pki.ca(), &ca).unwrap();
        let files = SecurityFiles { tls_client_ca: Some(ca.clone()), ..tls_files(&pki) };
        let (server, security) = reloadable(files, ServerConfig::default()).await;
        let mut old = client(server.addr, &Creds::cert(&pki, "alice")).await;
        old.offsets(offsets("")).await.expect("served under the first CA");
        let mut tail = old.consume_stream(consume("", 0)).await.unwrap().into_inner();

        // Client certificates of another CA from now on.
        std::fs::copy(next.ca(), &ca).unwrap();
        assert!(security.reload().is_empty());
        let status = old.offsets(offsets("")).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().contains("no longer trusted"), "{status:?}");
        let status = tail.message().await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        // A certificate of the new CA is served.
        let creds = Creds { identity: Some(next.client("bob")), ..Creds::tls(&pki) };
        reach(server.addr, &creds).await.expect("a certificate of the new CA");
    })
    .await;
}

#[tokio::test]
async fn a_connection_that_never_authenticates_gives_up_its_slot() {
    with_timeout(async {
        let pki = Pki::new();
        let files =
            SecurityFiles { auth_tokens: Some(file(&pki, "tokens", TOKENS)), ..tls_files(&pki) };
        let config = ServerConfig {
            max_connections: 1,
            handshake_timeout: std::time::Duration::from_millis(300),
            ..ServerConfig::default()
        };
        let (server, _security) = reloadable(files, config).await;
        // A client without credentials takes the only slot and idles after its refusal.
        let mut idle = client(server.addr, &Creds::tls(&pki)).await;
        let status = idle.offsets(offsets("")).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        // It was closed, so a client with a token gets the slot; and a connection that
        // authenticated is not closed for idling.
        let root = Creds::token(&pki, "tok-root-0123456789");
        let mut busy = client(server.addr, &root).await;
        busy.offsets(offsets("")).await.expect("the idle connection kept the slot");
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        busy.offsets(offsets("")).await.expect("an authenticated connection was closed");
    })
    .await;
}

#[tokio::test]
async fn get_servers_needs_a_subject_but_no_permission() {
    with_timeout(async {
        let pki = Pki::new();
        let server = policed(&pki).await;
        // `stranger` is in no rule of the policy.
        let mut stranger = client(server.addr, &Creds::cert(&pki, "stranger")).await;
        let servers = stranger.get_servers(GetServersRequest {}).await.unwrap().into_inner();
        assert_eq!(servers.servers.len(), 1);
        let mut nobody = client(server.addr, &Creds::tls(&pki)).await;
        let status = nobody.get_servers(GetServersRequest {}).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    })
    .await;
}
