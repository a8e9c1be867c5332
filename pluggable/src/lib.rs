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

pub mod bindings;
pub mod conventions;
pub mod discovery;
pub mod instances;
pub mod pubsub;
pub mod secrets;
pub mod server;
pub mod socket;
pub mod state;

pub use server::{Services, serve};
/// The channel to a pluggable component's socket.
pub use tonic::transport::Channel;

use std::collections::BTreeMap;
use std::str::FromStr;

/// The gRPC metadata naming the component instance a call is for.
pub const INSTANCE_HEADER: &str = "x-component-instance";

/// `message` for instance `instance`.
pub(crate) fn with_instance<T>(instance: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = instance.parse() {
        request.metadata_mut().insert(INSTANCE_HEADER, value);
    }
    request
}

/// The Component metadata as `Init` carries it.
pub(crate) fn metadata_request(properties: BTreeMap<String, String>) -> Option<proto::components::MetadataRequest> {
    Some(proto::components::MetadataRequest { properties: properties.into_iter().collect() })
}

/// The answer of a server's call.
pub(crate) type Answer<T> = Result<tonic::Response<T>, tonic::Status>;

/// A contract component's features as `Features` lists them.
pub(crate) fn feature_names<F: std::fmt::Display>(features: &contract::FeatureSet<F>) -> Vec<String> {
    features.iter().map(ToString::to_string).collect()
}

/// The features a component listed: those this build knows, and the names of the others.
pub(crate) fn features_of<F: FromStr + Ord>(listed: Vec<String>) -> (contract::FeatureSet<F>, Vec<String>) {
    let (mut known, mut unknown) = (contract::FeatureSet::new(), Vec::new());
    for name in listed {
        match F::from_str(&name) {
            Ok(feature) => {
                known.insert(feature);
            }
            Err(_) => unknown.push(name),
        }
    }
    (known, unknown)
}

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
