//! The public contract: the generated gRPC API of package `log.v1` (`api/v1/log.proto`) and the
//! vocabulary of its error details, which the server writes and the client reads.

pub mod errors;

/// Package `log.v1`: messages, the `Log` server trait and the `LogClient`. Nothing here is
/// written by hand; `build.rs` generates it.
pub mod v1 {
    #![allow(missing_docs, unreachable_pub, clippy::all)]
    tonic::include_proto!("log.v1");

    /// The encoded `FileDescriptorSet` of `log.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/log_v1_descriptor.bin"));
}

/// The wire form of a stored record.
impl From<crate::storage::Record> for v1::Record {
    fn from(record: crate::storage::Record) -> Self {
        Self { value: record.value, offset: record.offset, timestamp_ms: record.timestamp_ms }
    }
}

/// A record as the server sent it.
impl From<v1::Record> for crate::storage::Record {
    fn from(record: v1::Record) -> Self {
        Self { offset: record.offset, timestamp_ms: record.timestamp_ms, value: record.value }
    }
}
