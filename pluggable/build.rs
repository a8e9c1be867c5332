//! Compiles the protocol with a pure-Rust compiler (protox), so no system `protoc` is needed,
//! and keeps the descriptor set for gRPC reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/dapr/proto/components/v1/common.proto",
        "proto/dapr/proto/components/v1/state.proto",
        "proto/dapr/proto/components/v1/pubsub.proto",
        "proto/dapr/proto/components/v1/bindings.proto",
        "proto/dapr/proto/components/v1/secretstore.proto",
        "proto/google/rpc/error_details.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("components_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
