//! The reference runtime: in-memory components that implement every building-block contract
//! exactly (the oracle every suite case must pass against), and the default component set a
//! user gets with zero setup.

pub mod components;
pub mod sidecar;

use std::path::Path;

use contract::{LoadError, Registry, Resources};

/// A registry holding every component type this build has: the in-memory ones and those on
/// real backends (`state.redis`, `state.postgresql`).
pub fn builtin_registry() -> Registry {
    let mut registry = Registry::new();
    components::register(&mut registry);
    ::components::register(&mut registry);
    registry
}

/// The Component YAML of the default set: `statestore`, `pubsub`, `lockstore`, `configstore`
/// and `secretstore` (environment variables), all in memory.
pub const DEFAULT_COMPONENTS_YAML: &str = include_str!("default-components.yaml");

/// The default set, parsed.
pub fn default_resources() -> Result<Resources, LoadError> {
    Resources::parse(Path::new("<built-in default components>"), DEFAULT_COMPONENTS_YAML)
}

/// Serves a fresh in-memory state store per instance as a pluggable component on `socket`
/// (gRPC, `dapr.proto.components.v1.StateStore` with reflection) until `shutdown` resolves.
pub async fn serve_pluggable_state(
    socket: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let make: pluggable::state::StoreFactory = std::sync::Arc::new(|_| {
        let store = components::state_memory::InMemoryStateStore::new(contract::system_clock());
        Ok(std::sync::Arc::new(store) as std::sync::Arc<dyn contract::StateStore>)
    });
    pluggable::state::serve(socket, pluggable::state::StateService::new(make), shutdown).await
}
