//! Compiles `api/v1/log.proto` (and the cluster's internal `api/internal/raft.proto`) with protox (a pure-Rust protobuf compiler, so no system `protoc`)
//! and tonic-prost-build. The encoded descriptor set is written to `OUT_DIR` for server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=api");
    let fds = protox::compile(["api/v1/log.proto"], ["api"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("log_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().bytes(".").compile_fds(fds)?;
    // The internal Raft service between cluster nodes: not reflected, not public.
    let raft = protox::compile(["api/internal/raft.proto"], ["api"])?;
    tonic_prost_build::configure().bytes(".").compile_fds(raft)?;
    Ok(())
}
