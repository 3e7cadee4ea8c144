//! A three-node girok cluster in one process, on 127.0.0.1 ports: election, replication with the
//! same offsets, values and timestamps on every node, `NOT_LEADER` from followers, a leader's
//! crash and re-election, a partition healed (the old leader's unreplicated write discarded),
//! and a node joining as a learner.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::cluster::TestCluster;
use girok::api::v1::{
    AddServerRequest, ConsumeRequest, CreateLogRequest, GetServersRequest, OffsetsRequest,
    ProduceRequest, RemoveServerRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

fn produce(log: &str, value: &str) -> ProduceRequest {
    ProduceRequest {
        log: log.into(),
        record: Some(girok::api::v1::Record {
            value: Bytes::from(value.to_string()),
            ..Default::default()
        }),
    }
}

/// The `ErrorInfo` reason and metadata of `status`.
fn info(status: &tonic::Status) -> (String, std::collections::HashMap<String, String>) {
    let info = status.get_error_details().error_info().cloned().expect("an ErrorInfo");
    (info.reason, info.metadata)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_elect_a_leader_and_hold_the_same_records() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let mut client = cluster.client(leader).await;
    for i in 0..20u64 {
        let offset = client.produce(produce("orders", &format!("order-{i}"))).await.unwrap();
        assert_eq!(offset.into_inner().offset, i, "offsets are dense from 0");
    }
    cluster.converged("orders", 20).await;
    let on_leader = cluster.records(leader, "orders");
    for id in cluster.others(leader) {
        assert_eq!(cluster.records(id, "orders"), on_leader, "node {id} holds the same records");
    }
    // Reads are served by any node from what it has applied.
    for id in cluster.others(leader) {
        let mut follower = cluster.client(id).await;
        let request = ConsumeRequest { log: "orders".into(), offset: 7 };
        let record = follower.consume(request).await.unwrap().into_inner().record.unwrap();
        assert_eq!(record.value, Bytes::from("order-7"));
    }
    // Discovery: every node reports the three members and the same leader.
    for id in 1..=3 {
        let servers = cluster.client(id).await.get_servers(GetServersRequest {}).await.unwrap();
        let servers = servers.into_inner().servers;
        assert_eq!(servers.len(), 3);
        assert!(servers.iter().all(|s| s.voter));
        let leaders: Vec<u64> = servers.iter().filter(|s| s.is_leader).map(|s| s.id).collect();
        assert_eq!(leaders, [leader], "node {id} names the leader");
        let addr = &servers.iter().find(|s| s.id == leader).unwrap().rpc_addr;
        assert_eq!(addr, &cluster.addrs[&leader].to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_refuses_writes_with_not_leader_naming_the_leader() {
    let cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.others(leader)[0];
    let mut client = cluster.client(follower).await;
    let refused = client.produce(produce("orders", "x")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable);
    let (reason, metadata) = info(&refused);
    assert_eq!(reason, "NOT_LEADER");
    assert_eq!(metadata["leader_id"], leader.to_string());
    assert_eq!(metadata["leader_addr"], cluster.addrs[&leader].to_string());
    let create = CreateLogRequest { name: "made-here".into(), ..Default::default() };
    let refused = client.create_log(create).await.unwrap_err();
    assert_eq!(info(&refused).0, "NOT_LEADER");
    // Nothing was appended or created anywhere.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for node in cluster.nodes.values() {
        assert!(node.logs.get("orders").is_err(), "node {} has no log orders", node.id);
        assert!(node.logs.get("made-here").is_err());
    }
    // Validation comes first: a bad name is INVALID_ARGUMENT even on a follower.
    let refused = client.produce(produce("bad name!", "x")).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    // A linearizable Offsets goes through the leader; an ordinary one is served here.
    let linear = OffsetsRequest { log: String::new(), linearizable: true };
    assert_eq!(info(&client.offsets(linear.clone()).await.unwrap_err()).0, "NOT_LEADER");
    let plain = OffsetsRequest { log: String::new(), linearizable: false };
    assert_eq!(client.offsets(plain).await.unwrap().into_inner().next_offset, 0);
    let mut at_leader = cluster.client(leader).await;
    at_leader.produce(produce("", "first")).await.unwrap();
    assert_eq!(at_leader.offsets(linear).await.unwrap().into_inner().next_offset, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_leader_is_replaced_and_catches_up_when_it_returns() {
    let mut cluster = TestCluster::start(3).await;
    let first = cluster.leader().await;
    let mut client = cluster.client(first).await;
    for i in 0..5 {
        client.produce(produce("events", &format!("before-{i}"))).await.unwrap();
    }
    cluster.crash(first).await;
    let second = cluster.leader().await;
    assert_ne!(second, first);
    let mut client = cluster.client(second).await;
    for i in 5..10u64 {
        let offset = client.produce(produce("events", &format!("after-{i}"))).await.unwrap();
        assert_eq!(offset.into_inner().offset, i, "the new leader continues the offsets");
    }
    cluster.restart(first).await;
    cluster.converged("events", 10).await;
    let expected = cluster.records(second, "events");
    assert_eq!(cluster.records(first, "events"), expected, "the old leader caught up");
    let values: Vec<String> =
        expected.iter().map(|(_, _, v)| String::from_utf8(v.clone()).unwrap()).collect();
    assert_eq!(values[4], "before-4");
    assert_eq!(values[5], "after-5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_leaders_write_is_discarded_when_the_partition_heals() {
    let cluster = TestCluster::start(3).await;
    let old = cluster.leader().await;
    let mut client = cluster.client(old).await;
    client.produce(produce("events", "agreed")).await.unwrap();
    cluster.converged("events", 1).await;
    // Cut the leader off from both others, both ways (each node's network consults its own
    // faults before sending).
    for node in cluster.nodes.values() {
        node.cluster.faults().isolate(old);
    }
    // A write on the old leader cannot commit: it waits.
    let stranded = tokio::spawn(async move { client.produce(produce("events", "stranded")).await });
    // The majority elects a leader of its own and goes on.
    let new = {
        let deadline = std::time::Instant::now() + common::cluster::SETTLE;
        loop {
            let found =
                cluster.others(old).into_iter().find(|id| cluster.nodes[id].cluster.is_leader());
            if let Some(id) = found {
                break id;
            }
            assert!(std::time::Instant::now() < deadline, "the majority elected no leader");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut majority = cluster.client(new).await;
    // A leader just elected may still refuse for a moment (its election not yet settled):
    // NOT_LEADER, which says nothing was done, is retried as a client would.
    let deadline = std::time::Instant::now() + common::cluster::SETTLE;
    let offset = loop {
        match majority.produce(produce("events", "majority")).await {
            Ok(offset) => break offset.into_inner().offset,
            Err(status) if info(&status).0 == "NOT_LEADER" => {
                assert!(std::time::Instant::now() < deadline, "the new leader never took a write");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("writing to the new leader: {status:?}"),
        }
    };
    assert_eq!(offset, 1, "the stranded write never took offset 1");
    for node in cluster.nodes.values() {
        node.cluster.faults().heal_all();
    }
    let outcome = tokio::time::timeout(common::cluster::SETTLE, stranded).await.unwrap().unwrap();
    let refused = outcome.expect_err("the stranded write cannot have been acknowledged");
    assert_eq!(refused.code(), Code::Unavailable);
    let (reason, _) = info(&refused);
    assert!(["LEADER_CHANGED", "NOT_LEADER"].contains(&reason.as_str()), "got {reason}");
    cluster.converged("events", 2).await;
    for id in 1..=3 {
        let values: Vec<Vec<u8>> =
            cluster.records(id, "events").into_iter().map(|(_, _, v)| v).collect();
        assert_eq!(values, [b"agreed".to_vec(), b"majority".to_vec()], "node {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_node_joins_as_a_learner_then_votes_and_ids_are_never_reused() {
    let mut cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let mut client = cluster.client(leader).await;
    for i in 0..10 {
        client.produce(produce("events", &format!("e{i}"))).await.unwrap();
    }
    let addr = cluster.start_joiner(4).await;
    // Before it is added, the new node serves nothing.
    let mut newcomer = cluster.client(4).await;
    let early = newcomer.offsets(OffsetsRequest::default()).await.unwrap_err();
    assert_eq!(early.code(), Code::Unavailable);
    let add = AddServerRequest { id: 4, rpc_addr: addr.to_string() };
    client.add_server(add.clone()).await.unwrap();
    cluster.converged("events", 10).await;
    let servers = client.get_servers(GetServersRequest {}).await.unwrap().into_inner().servers;
    assert_eq!(servers.len(), 4);
    assert!(servers.iter().find(|s| s.id == 4).unwrap().voter, "it votes once caught up");
    assert_eq!(cluster.records(4, "events"), cluster.records(leader, "events"));
    // A member's id again: ALREADY_EXISTS.
    assert_eq!(client.add_server(add).await.unwrap_err().code(), Code::AlreadyExists);
    // Removed, its id stays retired.
    client.remove_server(RemoveServerRequest { id: 4 }).await.unwrap();
    let again = AddServerRequest { id: 4, rpc_addr: addr.to_string() };
    assert_eq!(client.add_server(again).await.unwrap_err().code(), Code::AlreadyExists);
    let unknown = client.remove_server(RemoveServerRequest { id: 9 }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_tens_of_megabytes_behind_catches_up() {
    // Its backlog is sent in requests of a few MiB each, every one within an append's time
    // limit; one request of everything (or of 300 entries) would time out and be resent forever.
    let mut cluster = TestCluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = cluster.others(leader)[0];
    cluster.stop(follower).await;
    let mut client = cluster.client(leader).await;
    let records: u64 = 32;
    for i in 0..records {
        let mut value = vec![b'x'; 1 << 20];
        value[..8].copy_from_slice(&i.to_be_bytes());
        let record = girok::api::v1::Record { value: Bytes::from(value), ..Default::default() };
        client.produce(ProduceRequest { log: "big".into(), record: Some(record) }).await.unwrap();
    }
    cluster.restart(follower).await;
    cluster.converged("big", records).await;
    assert_eq!(cluster.records(follower, "big"), cluster.records(leader, "big"));
}
