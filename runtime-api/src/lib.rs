//! The Dapr runtime's gRPC API, compiled from the vendored protos (`dapr/dapr`, Apache-2.0,
//! licence headers kept): `dapr.proto.runtime.v1` (the `Dapr` service an application calls,
//! the `AppCallback` services a sidecar calls) and `dapr.proto.common.v1`, with daprd's HTTP ↔ gRPC
//! code tables (`codes`). No other behaviour lives here: the reference runtime serves it,
//! certify's gRPC driver calls it.

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod generated {
    //! Nested as the packages are, so the generated `super::` paths resolve.
    pub mod dapr {
        pub mod proto {
            pub mod common {
                pub mod v1 {
                    tonic::include_proto!("dapr.proto.common.v1");
                }
            }
            pub mod runtime {
                pub mod v1 {
                    tonic::include_proto!("dapr.proto.runtime.v1");
                }
            }
        }
    }
    pub mod durabletask {
        //! No proto package: prost names the file `_`.
        tonic::include_proto!("_");
    }
}

pub mod codes;

/// `dapr.proto.common.v1`.
pub use generated::dapr::proto::common::v1 as common;
/// `dapr.proto.runtime.v1`.
pub use generated::dapr::proto::runtime::v1 as runtime;

/// The durabletask protocol (`dapr/durabletask-protobuf`, MIT, licence headers kept):
/// `TaskHubSidecarService`, which workflow workers and clients call on the Dapr gRPC port,
/// with its work items, actions and history events.
pub use generated::durabletask;

/// The encoded descriptors of the durabletask files, for gRPC reflection.
pub const DURABLETASK_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/durabletask_descriptor.bin"));

/// The encoded descriptors of every file, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/runtime_descriptor.bin"));

/// The full name of the `Dapr` service.
pub const DAPR_SERVICE: &str = "dapr.proto.runtime.v1.Dapr";

pub use prost_types;
pub use tonic;
pub use tonic_prost;
