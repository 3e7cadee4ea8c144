//! The generated gRPC API (`api/v1/log.proto`, package `log.v1`): messages, the `Log` server
//! trait and the `LogClient`. Nothing here is written by hand; `build.rs` generates it.

/// Package `log.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("log.v1");

    /// The encoded `FileDescriptorSet` of `log.v1`, for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/log_v1_descriptor.bin"));
}
