//! A three-node cluster of `girok-server` processes under mutual TLS: the nodes call each other
//! with their own certificates, elect a leader and replicate; a client with a certificate of the
//! cluster's CA writes at the leader and reads on a follower; and a client without a certificate
//! cannot make Raft calls even when its tokens would let it call the Log service.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::binary::{ServerProcess, server_command, spawn};
use common::certs::Pki;
use common::secure::{self, Creds};
use girok::api::v1::{ConsumeRequest, GetServersRequest, ProduceRequest, Record};

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

fn start(
    id: u64,
    pki: &Pki,
    dir: &std::path::Path,
    members: &str,
    tokens: &std::path::Path,
) -> ServerProcess {
    let (cert, key) = pki.node(&format!("girok-node-{id}"));
    let (id, ca) = (id.to_string(), pki.ca());
    let mut command = server_command(
        dir,
        &[
            ("GIROK_NODE_ID", id.as_str()),
            ("GIROK_CLUSTER", members),
            ("GIROK_RAFT_HEARTBEAT", "100ms"),
            ("GIROK_RAFT_ELECTION_TIMEOUT", "500ms"),
            ("GIROK_TLS_CERT", cert.to_str().unwrap()),
            ("GIROK_TLS_KEY", key.to_str().unwrap()),
            ("GIROK_TLS_CLIENT_CA", ca.to_str().unwrap()),
            ("GIROK_AUTH_TOKENS", tokens.to_str().unwrap()),
        ],
    );
    command.env_remove("GIROK_LISTEN_ADDR");
    spawn(command, std::process::Stdio::null())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_replicate_over_mutual_tls_and_raft_calls_need_a_certificate() {
    let pki = Pki::new();
    let root = tempfile::tempdir().unwrap();
    let tokens = root.path().join("tokens");
    std::fs::write(&tokens, "s3cret-token alice\n").unwrap();
    let ports = free_ports(3);
    let addrs: Vec<std::net::SocketAddr> =
        ports.iter().map(|p| format!("127.0.0.1:{p}").parse().unwrap()).collect();
    let members: Vec<String> =
        addrs.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect();
    let members = members.join(",");
    let _nodes: Vec<ServerProcess> = (1..=3)
        .map(|id| start(id, &pki, &root.path().join(format!("n{id}")), &members, &tokens))
        .collect();

    let creds = Creds::cert(&pki, "alice");
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        let mut client = secure::client(addrs[0], &creds).await;
        if let Ok(servers) = client.get_servers(GetServersRequest {}).await
            && let Some(leader) = servers.into_inner().servers.iter().find(|s| s.is_leader)
        {
            break leader.id as usize;
        }
        assert!(Instant::now() < deadline, "no leader elected over TLS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut at_leader = secure::client(addrs[leader - 1], &creds).await;
    let record = Some(Record { value: Bytes::from_static(b"sealed"), ..Default::default() });
    let produced = at_leader.produce(ProduceRequest { log: "secure".into(), record }).await;
    assert_eq!(produced.unwrap().into_inner().offset, 0);
    let follower = if leader == 1 { 2 } else { 1 };
    let mut at_follower = secure::client(addrs[follower - 1], &creds).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = ConsumeRequest { log: "secure".into(), offset: 0 };
        if let Ok(response) = at_follower.consume(read).await {
            assert_eq!(response.into_inner().record.unwrap().value, Bytes::from_static(b"sealed"));
            break;
        }
        assert!(Instant::now() < deadline, "the follower never held the record");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A token opens the Log service, but never the Raft service: that needs a certificate.
    let channel = secure::channel(addrs[0], &Creds::token(&pki, "s3cret-token")).await.unwrap();
    let mut raft = girok::cluster::proto::raft_client::RaftClient::new(channel);
    let mut request = tonic::Request::new(girok::cluster::proto::Frame::default());
    request.metadata_mut().insert("girok-node-id", "2".parse().unwrap());
    let refused = raft.vote(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    // A user's certificate from the same CA cannot speak for a node either.
    let channel = secure::channel(addrs[0], &Creds::cert(&pki, "alice")).await.unwrap();
    let mut raft = girok::cluster::proto::raft_client::RaftClient::new(channel);
    let mut request = tonic::Request::new(girok::cluster::proto::Frame::default());
    request.metadata_mut().insert("girok-node-id", "2".parse().unwrap());
    let refused = raft.vote(request).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
}
