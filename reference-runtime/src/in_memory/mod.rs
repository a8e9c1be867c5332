//! The in-memory reference components and their registration by `spec.type`.

pub mod bindings_localstorage;
pub mod bindings_memory;
pub mod configuration_memory;
pub mod keys_like;
pub mod lock_memory;
pub mod pubsub_memory;
pub mod query_eval;
pub mod secrets_local;
pub mod state_memory;

use std::path::PathBuf;
use std::sync::Arc;

use contract::{Component, ComponentContext, FactoryError, MetadataError, Registry};

use bindings_localstorage::LocalStorageBinding;
use bindings_memory::InMemoryBinding;
use configuration_memory::InMemoryConfigurationStore;
use lock_memory::InMemoryLockStore;
use pubsub_memory::{DeliveryConfig, InMemoryPubSub};
use secrets_local::{EnvSecretStore, LocalFileSecretStore};
use state_memory::InMemoryStateStore;

/// Every `spec.type` this crate provides.
pub const TYPES: &[&str] = &[
    "state.in-memory",
    "pubsub.in-memory",
    "bindings.in-memory",
    "bindings.localstorage",
    "secretstores.local.file",
    "secretstores.local.env",
    "configuration.in-memory",
    "lock.in-memory",
];

/// Registers the in-memory components.
pub fn register(registry: &mut Registry) {
    registry.register("state.in-memory", |ctx: ComponentContext| async move {
        Ok(Component::state(Arc::new(InMemoryStateStore::new(ctx.clock))))
    });
    registry.register("pubsub.in-memory", |ctx: ComponentContext| async move {
        let config = DeliveryConfig::from_properties(&ctx.properties)?;
        Ok(Component::pubsub(Arc::new(InMemoryPubSub::new(config, ctx.clock))))
    });
    // Its jobs are kept in a store of its own, so a scheduler restarted over it takes them up.
    registry.register("jobs.in-memory", |ctx: ComponentContext| async move {
        let store = crate::jobs::JobStore::new(Arc::new(InMemoryStateStore::new(Arc::clone(&ctx.clock))), "jobs");
        Ok(Component::new(contract::Block::JOBS).with(crate::jobs::Scheduler::timed_by(ctx.clock, Some(store))))
    });
    // Nothing to build: the sidecar serving it is what its certification looks at.
    registry.register("observability.sidecar", |_: ComponentContext| async move {
        Ok(Component::new(contract::Block::OBSERVABILITY))
    });
    registry.register("bindings.in-memory", |ctx: ComponentContext| async move {
        let binding = Arc::new(InMemoryBinding::new(ctx.clock));
        Ok(Component::binding(Some(binding.clone()), Some(binding)))
    });
    registry.register("bindings.localstorage", |ctx: ComponentContext| async move {
        let root = PathBuf::from(ctx.properties.required("rootPath")?);
        let binding = LocalStorageBinding::new(root)?;
        Ok(Component::binding(None, Some(Arc::new(binding))))
    });
    registry.register("secretstores.local.file", |ctx: ComponentContext| async move {
        let file = PathBuf::from(ctx.properties.required("secretsFile")?);
        let separator = ctx.properties.get("nestedSeparator").unwrap_or(":").to_owned();
        let multi_valued = ctx.properties.bool_or("multiValued", false)?;
        let store = LocalFileSecretStore::load(&file, &separator, multi_valued).map_err(|e| {
            FactoryError::Metadata(MetadataError::Invalid {
                field: "secretsFile".into(),
                value: file.display().to_string(),
                reason: e.to_string(),
            })
        })?;
        Ok(Component::secrets(Arc::new(store)))
    });
    registry.register("secretstores.local.env", |ctx: ComponentContext| async move {
        let prefix = ctx.properties.get("prefix").unwrap_or_default().to_owned();
        Ok(Component::secrets(Arc::new(EnvSecretStore::new(prefix))))
    });
    registry.register("configuration.in-memory", |_ctx: ComponentContext| async move {
        let store = Arc::new(InMemoryConfigurationStore::new());
        Ok(Component::configuration(store.clone(), Some(store)))
    });
    registry.register("lock.in-memory", |ctx: ComponentContext| async move {
        Ok(Component::lock(Arc::new(InMemoryLockStore::new(ctx.clock))))
    });
}
