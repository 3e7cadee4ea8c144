//! Wire compression against the shipped `girok-server`: a client that asks for gzip or zstd
//! gets its records back intact and its answers compressed the same way; a client that asks for
//! nothing (as grpcurl does) gets plain answers from the same server.

mod common;

use bytes::Bytes;
use common::binary::Served;
use girok::api::v1::ConsumeRequest;
use girok::client::{Client, Compression};

/// The `grpc-encoding` the server answered a unary Consume of offset 0 with, if any.
async fn answer_encoding(client: &mut Client) -> Option<String> {
    let request = ConsumeRequest { offset: 0, log: String::new() };
    let response = client.inner().consume(request).await.expect("consume");
    let encoding = response.metadata().get("grpc-encoding")?;
    Some(encoding.to_str().expect("an ASCII header").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_client_round_trips_records_and_gets_compressed_answers() {
    // With gzip and with zstd, unary calls and both streams carry a large, compressible record
    // and a small binary one unchanged, and the server's answers name the encoding asked for.
    let served = Served::start();
    let large = Bytes::from(vec![b'g'; 256 * 1024]);
    let binary = Bytes::from_static(b"\x00\xff\x7f");
    for (compression, name) in [(Compression::Gzip, "gzip"), (Compression::Zstd, "zstd")] {
        let mut client = served.client().await.compressed(compression);
        let mut log = client.log(name);
        let first = log.produce(large.clone()).await.expect("compressed produce");
        let stream = futures_util::stream::iter([binary.clone(), large.clone()]);
        let mut acks = log.produce_stream(stream).await.expect("compressed produce stream");
        assert_eq!(acks.next().await.unwrap(), Some(first + 1));
        assert_eq!(acks.next().await.unwrap(), Some(first + 2));
        assert_eq!(acks.next().await.unwrap(), None);

        assert_eq!(log.consume(first).await.unwrap().value, large);
        let mut records = log.consume_stream(first).await.expect("compressed consume stream");
        for expected in [&large, &binary, &large] {
            assert_eq!(&records.next().await.unwrap().expect("a record").value, expected);
        }
        client.produce("x").await.unwrap();
        assert_eq!(answer_encoding(&mut client).await.as_deref(), Some(name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_for_nothing_gets_plain_answers() {
    // Compression is the client's choice: without it the same server answers uncompressed.
    let served = Served::start();
    let mut client = served.client().await;
    client.produce("plain").await.unwrap();
    assert_eq!(answer_encoding(&mut client).await, None);
    assert_eq!(client.consume(0).await.unwrap().value, Bytes::from_static(b"plain"));
}
