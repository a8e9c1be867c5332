//! The reference runtime: in-memory components that implement every building-block contract
//! exactly (the oracle every suite case must pass against), and the default component set a
//! user gets with zero setup.

pub mod actors;
pub mod daprd_flags;
pub mod grpc;
pub mod in_memory;
pub mod jobs;
pub mod metrics;
pub mod otel;
pub mod sidecar;
pub mod workflows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use contract::{ComponentManifest, LoadError, Registry, Resources};

/// A registry holding every component type this build has: the in-memory ones and those on
/// real backends (`state.redis`, `state.postgresql`).
pub fn builtin_registry() -> Registry {
    let mut registry = Registry::new();
    in_memory::register(&mut registry);
    ::components::register(&mut registry);
    actors::register_over_state_stores(&mut registry);
    workflows::register_over_state_stores(&mut registry);
    registry
}

/// Registers `<block>.<store>` for every `state.<store>` of `registry`: a runtime feature kept
/// in that store, built with the store's own metadata (`actors.redis` is actors kept in
/// Redis). `part` makes the component from the store, or says why the store cannot back it.
pub fn register_over_state_stores(
    registry: &mut Registry,
    block: contract::Block,
    part: fn(&str, Arc<dyn contract::StateStore>) -> Result<contract::Component, String>,
) {
    let states: Vec<String> = registry.types().filter(|t| t.starts_with("state.")).map(str::to_owned).collect();
    let inner = registry.clone();
    for state_type in states {
        let own_type = format!("{}.{}", block.prefix(), &state_type["state.".len()..]);
        let (inner, state_type) = (inner.clone(), state_type.clone());
        registry.register(&own_type, move |ctx: contract::ComponentContext| {
            let (inner, state_type) = (inner.clone(), state_type.clone());
            async move {
                let built = inner.build_as(&state_type, ctx).await?;
                let backend = |why: String| contract::FactoryError::Init(contract::Error::Backend(why));
                let store =
                    built.as_state().cloned().ok_or_else(|| backend(format!("`{state_type}` built no state store")))?;
                part(&state_type, store).map_err(backend)
            }
        });
    }
}

/// The builtin registry plus a component type for each block of each pluggable component
/// whose socket is in `sockets_folder` (as daprd discovers them: `my-store.sock` serving the
/// state protocol makes `state.my-store`).
pub async fn registry_with_pluggables(
    sockets_folder: &Path,
) -> Result<(Registry, Vec<pluggable::discovery::Discovered>), pluggable::socket::SocketError> {
    let mut registry = builtin_registry();
    let found = pluggable::discovery::register_folder(&mut registry, sockets_folder).await?;
    Ok((registry, found))
}

/// The Component YAML of the default set: `statestore`, `pubsub`, `lockstore`, `configstore`
/// and `secretstore` (environment variables), all in memory.
pub const DEFAULT_COMPONENTS_YAML: &str = include_str!("default-components.yaml");

/// The default set, parsed.
pub fn default_resources() -> Result<Resources, LoadError> {
    Resources::parse(Path::new("<built-in default components>"), DEFAULT_COMPONENTS_YAML)
}

/// The in-memory components as one pluggable component (gRPC, `dapr.proto.components.v1`):
/// a state store, a pub/sub broker and an input/output binding, and, given `secrets_file`, a
/// secret store reading that file. Every instance that calls `Init` gets fresh components
/// built from its metadata, as they would be from a Component resource.
pub fn pluggable_services(secrets_file: Option<PathBuf>) -> pluggable::Services {
    let state: pluggable::state::StoreFactory = Arc::new(|properties| {
        Box::pin(async move {
            let built = build("state.in-memory", properties).await?;
            built
                .as_state()
                .cloned()
                .ok_or_else(|| contract::Error::Backend("state.in-memory built no state store".into()))
        })
    });
    let pubsub: pluggable::pubsub::BrokerFactory = Arc::new(|properties| {
        Box::pin(async move {
            let built = build("pubsub.in-memory", properties).await?;
            built
                .as_pubsub()
                .cloned()
                .ok_or_else(|| contract::Error::Backend("pubsub.in-memory built no broker".into()))
        })
    });
    let bindings: pluggable::bindings::BindingFactory = Arc::new(|properties| {
        Box::pin(async move {
            let built = build("bindings.in-memory", properties).await?;
            let (input, output) = (built.as_input_binding().cloned(), built.as_output_binding().cloned());
            Ok(pluggable::bindings::BindingPair { input, output })
        })
    });
    let secrets = secrets_file.map(|file| {
        let make: pluggable::secrets::SecretStoreFactory = Arc::new(move |mut properties| {
            properties.entry("secretsFile".into()).or_insert_with(|| file.display().to_string());
            properties.entry("multiValued".into()).or_insert_with(|| "true".into());
            Box::pin(async move {
                let built = build("secretstores.local.file", properties).await?;
                built
                    .as_secrets()
                    .cloned()
                    .ok_or_else(|| contract::Error::Backend("secretstores.local.file built no secret store".into()))
            })
        });
        pluggable::secrets::SecretService::new(make)
    });
    pluggable::Services {
        state: Some(pluggable::state::StateService::new(state)),
        pubsub: Some(pluggable::pubsub::PubSubService::new(pubsub)),
        bindings: Some(pluggable::bindings::BindingService::new(bindings, true)),
        secrets,
    }
}

/// Builds a component of `type_name` from `Init` properties, through the builtin registry.
async fn build(type_name: &str, properties: BTreeMap<String, String>) -> contract::Result<contract::Component> {
    let manifest = ComponentManifest {
        source: PathBuf::from("<pluggable Init>"),
        name: type_name.to_owned(),
        namespace: None,
        type_name: type_name.to_owned(),
        version: "v1".into(),
        metadata: Vec::new(),
        secret_store: None,
        ignore_errors: false,
        scopes: Vec::new(),
    };
    builtin_registry()
        .build(&manifest, contract::Properties::new(properties), contract::system_clock())
        .await
        .map_err(|e| contract::Error::InvalidArgument(e.to_string()))
}
