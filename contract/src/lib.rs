//! The building-block contract of certify.
//!
//! One async trait per Dapr building block ([`StateStore`], [`PubSub`], [`OutputBinding`],
//! [`InputBinding`], [`SecretStore`], [`ConfigurationStore`], [`LockStore`]), typed requests and
//! responses, typed [`Error`]s, per-block feature sets, Dapr `Component` YAML and the
//! [`Registry`] that builds components from it. Nothing here knows any backend.

pub mod actors;
pub mod bindings;
pub mod block;
pub mod clock;
pub mod component;
pub mod configuration;
pub mod errors;
pub mod features;
pub mod jobs;
pub mod lock;
pub mod manifest;
pub mod metadata;
pub mod pubsub;
pub mod pubsub_batching;
pub mod pubsub_delivery;
pub mod registry;
pub mod secrets;
pub mod state;
pub mod state_query;

pub use actors::Actors;
pub use bindings::{InputBinding, OutputBinding};
pub use block::Block;
pub use clock::{Clock, ManualClock, SharedClock, SystemClock, system_clock};
pub use component::{Component, Parts};
pub use configuration::{ConfigurationStore, ConfigurationUpdater};
pub use errors::{Error, KeyedError, LoadError, MetadataError, Result};
pub use features::{FeatureSet, PubSubFeature, SecretFeature, StateFeature};
pub use jobs::Jobs;
pub use lock::LockStore;
pub use manifest::{ComponentManifest, Resources};
pub use metadata::{Metadata, Properties};
pub use pubsub::PubSub;
pub use registry::{ComponentContext, Components, FactoryError, Registry};
pub use secrets::SecretStore;
pub use state::StateStore;
