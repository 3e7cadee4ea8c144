//! Wire compression against the shipped `girok-server`: a client that asks for gzip or zstd
//! gets its records back intact and its answers compressed the same way; a client that asks for
//! nothing (as grpcurl does) gets plain answers from the same server.

mod common;

use bytes::Bytes;
use common::binary::Served;
use girok::api::errors::{DOMAIN, reason};
use girok::api::v1::ConsumeRequest;
use girok::client::{Client, ClientError, Compression};
use tonic::{Code, Status};
use tonic_types::StatusExt;

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

/// Asserts RESOURCE_EXHAUSTED with ErrorInfo MESSAGE_TOO_LARGE of girok's domain.
fn assert_message_too_large(err: ClientError, what: &str) {
    let ClientError::Status(status) = err else { panic!("{what}: {err:?}") };
    let status: Status = *status;
    assert_eq!(status.code(), Code::ResourceExhausted, "{what}: {status:?}");
    let details = status.get_error_details();
    let info = details.error_info().unwrap_or_else(|| panic!("{what}: no ErrorInfo: {status:?}"));
    assert_eq!((info.reason.as_str(), info.domain.as_str()), (reason::MESSAGE_TOO_LARGE, DOMAIN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_message_over_the_decode_limit_is_message_too_large() {
    // A record of 8 MiB compresses to a few KiB, under the 4 MiB decode limit, and exceeds it
    // once decompressed: it is refused as an uncompressed one is, RESOURCE_EXHAUSTED with
    // ErrorInfo MESSAGE_TOO_LARGE, unary and mid-stream, with gzip and with zstd.
    let served = Served::start();
    let huge = Bytes::from(vec![b'h'; 8 * 1024 * 1024]);
    for compression in [Compression::Gzip, Compression::Zstd] {
        let mut client = served.client().await.compressed(compression);
        let err = client.produce(huge.clone()).await.expect_err("over the limit");
        assert_message_too_large(err, compression.name());
        let stream = futures_util::stream::iter([Bytes::from_static(b"small"), huge.clone()]);
        let outcome = async {
            let mut acks = client.produce_stream(stream).await?;
            while acks.next().await?.is_some() {}
            Ok::<_, ClientError>(())
        };
        let err = outcome.await.expect_err("over the limit mid-stream");
        assert_message_too_large(err, compression.name());
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
