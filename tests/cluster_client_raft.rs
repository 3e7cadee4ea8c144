//! The cluster client against a real three-node cluster (in process): a client seeded with a
//! follower writes at the leader, a follower's NOT_LEADER decodes with the leader's hint, and
//! tails keep delivering every record exactly once while the leader crashes and another takes
//! over.

mod common;

use std::time::Duration;

use common::bounded;
use common::cluster::TestCluster;
use girok::client::{Client, ClientError, ClusterClient, ClusterRecords, Connect, Retry};

/// Retries long enough for an election on a loaded machine.
fn patient() -> Retry {
    Retry { budget: Duration::from_secs(20), at_least_once: true, ..Retry::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_seeded_with_a_follower_writes_at_the_leader() {
    // Only a follower's address is given; the write still lands, and the follower itself
    // answers NOT_LEADER naming the leader.
    let cluster = TestCluster::start(3).await;
    bounded("seeded with a follower", async {
        let leader = cluster.leader().await;
        let follower = cluster.others(leader)[0];
        let seed = cluster.addrs[&follower].to_string();
        let client =
            ClusterClient::connect_with(&seed, Connect::new(""), patient()).await.expect("connect");
        let servers = client.servers().await.expect("servers");
        assert_eq!(servers.len(), 3, "{servers:?}");
        let leaders: Vec<u64> = servers.iter().filter(|s| s.is_leader).map(|s| s.id).collect();
        assert_eq!(leaders, [leader]);
        assert_eq!(client.log("orders").produce("a").await.expect("produce"), 0);
        assert_eq!(client.log("orders").produce("b").await.expect("produce"), 1);

        let direct = Client::connect(format!("http://{seed}")).await.expect("connect");
        let err = direct.log("orders").produce("c").await.expect_err("a follower refuses");
        let leader_addr = cluster.addrs[&leader].to_string();
        match err {
            ClientError::NotLeader { leader_id, leader_addr: addr } => {
                assert_eq!((leader_id, addr), (Some(leader), Some(leader_addr)));
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

/// Reads `tail` until it delivers offset `last`, answering (offset, value) in order.
async fn drain(tail: &mut ClusterRecords, last: u64) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    while seen.last().is_none_or(|(offset, _)| *offset < last) {
        let record = tail.next().await.expect("the tail goes on").expect("a record");
        seen.push((record.offset, String::from_utf8_lossy(&record.value).into_owned()));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tails_deliver_every_record_once_while_the_leader_crashes_and_another_takes_over() {
    // Three tails, one per node (reads go round-robin), so one sits on the leader when it
    // crashes; each must deliver offsets 0.. without a gap or a repeat, and every value
    // produced (a retried produce may add a duplicate value under a new offset).
    let mut cluster = TestCluster::start(3).await;
    let seeds: Vec<String> = cluster.addrs.values().map(ToString::to_string).collect();
    let leader = cluster.leader().await;
    bounded("tails across a leader crash", async {
        let client = ClusterClient::connect_with(&seeds.join(","), Connect::new(""), patient())
            .await
            .expect("connect");
        let log = client.log("events");
        log.produce("v0").await.expect("produce");
        let mut tails = Vec::new();
        for _ in 0..3 {
            tails.push(log.consume_stream(0).await.expect("tail"));
        }
        for i in 1..20 {
            log.produce(format!("v{i}")).await.expect("produce");
        }
        cluster.crash(leader).await;
        let mut last = 0;
        for i in 20..40 {
            last = log.produce(format!("v{i}")).await.expect("produce across the crash");
        }
        assert_ne!(cluster.leader().await, leader);
        for tail in &mut tails {
            let seen = drain(tail, last).await;
            let offsets: Vec<u64> = seen.iter().map(|(offset, _)| *offset).collect();
            assert_eq!(offsets, (0..=last).collect::<Vec<_>>());
            for i in 0..40 {
                let value = format!("v{i}");
                assert!(seen.iter().any(|(_, v)| *v == value), "{value} missing: {seen:?}");
            }
        }
    })
    .await;
}
