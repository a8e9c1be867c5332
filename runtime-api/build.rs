//! Compiles the vendored `dapr.proto.runtime.v1` with a pure-Rust compiler (protox), so no
//! system `protoc` is needed, and keeps the descriptor set for gRPC reflection. Services get
//! default methods answering `UNIMPLEMENTED`, as daprd does for what it does not serve.
//! The durabletask protos (`TaskHubSidecarService`, no proto package) compile on their own,
//! since they import each other by bare file name.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new("proto/dapr/proto/runtime/v1");
    let mut files: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .map(|p| p.display().to_string())
        .collect();
    files.push("proto/dapr/proto/common/v1/common.proto".into());
    files.sort();
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(&files, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("runtime_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;

    let dir = std::path::Path::new("proto/durabletask");
    let mut files: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.ends_with(".proto"))
        .collect();
    files.sort();
    let fds = protox::compile(&files, [dir])?;
    std::fs::write(out.join("durabletask_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
