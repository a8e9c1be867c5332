//! Dapr pluggable components over gRPC (`dapr.proto.components.v1` on a Unix socket): the
//! protocol, compiled without a system `protoc`; a client that makes a pluggable component a
//! contract component (so every suite certifies it, in any language it is written in); and a
//! server that serves contract components as pluggable ones (so the client is proven against
//! the reference runtime).

#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    //! The generated protocol.

    /// `dapr.proto.components.v1`.
    pub mod components {
        tonic::include_proto!("dapr.proto.components.v1");
    }

    /// The subset of `google.rpc` the error conventions use.
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }

    /// The encoded descriptors of every file, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/components_descriptor.bin"));
}

pub mod conventions;
pub mod socket;
pub mod state;

/// The gRPC metadata naming the component instance a call is for.
pub const INSTANCE_HEADER: &str = "x-component-instance";

/// The fully qualified names of the services daprd recognises.
pub mod services {
    /// The state store.
    pub const STATE: &str = "dapr.proto.components.v1.StateStore";
    /// Pub/sub.
    pub const PUBSUB: &str = "dapr.proto.components.v1.PubSub";
    /// Input bindings.
    pub const INPUT_BINDING: &str = "dapr.proto.components.v1.InputBinding";
    /// Output bindings.
    pub const OUTPUT_BINDING: &str = "dapr.proto.components.v1.OutputBinding";
    /// Secret stores.
    pub const SECRET_STORE: &str = "dapr.proto.components.v1.SecretStore";
}
