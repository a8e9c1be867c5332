//! Builds components from Component manifests through factories keyed by `spec.type`.
//!
//! Secret stores are built first, so that other components' `secretKeyRef` entries can be
//! resolved through them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::clock::SharedClock;
use crate::errors::{Error, LoadError, MetadataError};
use crate::manifest::{ComponentManifest, MetadataValue};
use crate::metadata::{Metadata, Properties};
use crate::secrets::GetSecretRequest;
use crate::{Block, Component};

/// What a factory gets to build a component from.
#[derive(Debug, Clone)]
pub struct ComponentContext {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type`.
    pub type_name: String,
    /// `spec.version`.
    pub version: String,
    /// `spec.metadata`, secrets resolved.
    pub properties: Properties,
    /// The clock to measure TTLs, expiries and backoff with.
    pub clock: SharedClock,
}

/// Why a factory could not build a component.
#[derive(Debug, thiserror::Error)]
pub enum FactoryError {
    /// The metadata is missing a field or has a bad value.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The component failed to start.
    #[error(transparent)]
    Init(#[from] Error),
}

/// Builds a component.
pub type Factory = Arc<dyn Fn(ComponentContext) -> BoxFuture<'static, Result<Component, FactoryError>> + Send + Sync>;

/// Component factories by `spec.type`.
#[derive(Clone, Default)]
pub struct Registry {
    factories: BTreeMap<String, Factory>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("types", &self.types().collect::<Vec<_>>()).finish()
    }
}

/// A component built from a manifest.
#[derive(Debug, Clone)]
pub struct LoadedComponent {
    /// The manifest it was built from.
    pub manifest: ComponentManifest,
    /// The component.
    pub component: Component,
}

/// Every component of a run, by name.
#[derive(Debug, Clone, Default)]
pub struct Components {
    /// By `metadata.name`.
    pub by_name: BTreeMap<String, LoadedComponent>,
    /// Components with `ignoreErrors: true` that failed to build, and why.
    pub skipped: Vec<(String, String)>,
}

impl Components {
    /// The named component, if it serves `block`.
    pub fn get(&self, name: &str, block: Block) -> Option<&Component> {
        self.by_name.get(name).map(|c| &c.component).filter(|c| c.block() == block)
    }

    /// True when some component serves `block`.
    pub fn has_block(&self, block: Block) -> bool {
        self.by_name.values().any(|c| c.component.block() == block)
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a factory for `type_name` (e.g. `state.in-memory`), replacing any earlier one.
    pub fn register<F, Fut>(&mut self, type_name: &str, factory: F)
    where
        F: Fn(ComponentContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Component, FactoryError>> + Send + 'static,
    {
        self.factories.insert(type_name.to_owned(), Arc::new(move |ctx| Box::pin(factory(ctx))));
    }

    /// Builds a component of `type_name` from `ctx` (whose `type_name` may differ: a type
    /// built over another, as an actor runtime over a state store).
    pub async fn build_as(&self, type_name: &str, ctx: ComponentContext) -> Result<Component, FactoryError> {
        let factory = self.factories.get(type_name).ok_or_else(|| {
            FactoryError::Init(Error::Backend(format!("no component type `{type_name}` to build over")))
        })?;
        factory(ctx).await
    }

    /// The registered types, sorted.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds every component of `manifests`: secret stores first, then the rest with their
    /// `secretKeyRef`s resolved.
    pub async fn build_all(
        &self,
        manifests: &[ComponentManifest],
        clock: SharedClock,
    ) -> Result<Components, LoadError> {
        let mut components = Components::default();
        let mut first_seen: BTreeMap<&str, &ComponentManifest> = BTreeMap::new();
        for manifest in manifests {
            if let Some(first) = first_seen.insert(&manifest.name, manifest) {
                return Err(LoadError::Duplicate {
                    path: manifest.source.clone(),
                    component: manifest.name.clone(),
                    first: first.source.clone(),
                });
            }
        }
        let (secret_stores, others): (Vec<_>, Vec<_>) =
            manifests.iter().partition(|m| Block::SECRET_STORES.owns(&m.type_name));
        for manifest in secret_stores.into_iter().chain(others) {
            let properties = resolve_properties(manifest, &components).await?;
            match self.build(manifest, properties, clock.clone()).await {
                Ok(component) => {
                    components
                        .by_name
                        .insert(manifest.name.clone(), LoadedComponent { manifest: manifest.clone(), component });
                }
                Err(e) if manifest.ignore_errors => {
                    tracing::warn!(component = %manifest.name, error = %e, "skipping component (ignoreErrors)");
                    components.skipped.push((manifest.name.clone(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(components)
    }

    /// Builds one component from its manifest and resolved properties.
    pub async fn build(
        &self,
        manifest: &ComponentManifest,
        properties: Properties,
        clock: SharedClock,
    ) -> Result<Component, LoadError> {
        let factory = self.factories.get(&manifest.type_name).ok_or_else(|| LoadError::UnknownType {
            path: manifest.source.clone(),
            component: manifest.name.clone(),
            type_name: manifest.type_name.clone(),
            known: self.types().collect::<Vec<_>>().join(", "),
        })?;
        let ctx = ComponentContext {
            name: manifest.name.clone(),
            type_name: manifest.type_name.clone(),
            version: manifest.version.clone(),
            properties,
            clock,
        };
        factory(ctx).await.map_err(|e| match e {
            FactoryError::Metadata(cause) => LoadError::Metadata {
                path: manifest.source.clone(),
                component: manifest.name.clone(),
                type_name: manifest.type_name.clone(),
                cause,
            },
            FactoryError::Init(cause) => LoadError::Init {
                path: manifest.source.clone(),
                component: manifest.name.clone(),
                type_name: manifest.type_name.clone(),
                cause,
            },
        })
    }
}

async fn resolve_properties(manifest: &ComponentManifest, built: &Components) -> Result<Properties, LoadError> {
    let mut pairs = Vec::with_capacity(manifest.metadata.len());
    for (index, entry) in manifest.metadata.iter().enumerate() {
        let value = match &entry.value {
            MetadataValue::Plain(v) => v.clone(),
            MetadataValue::SecretRef { name, key } => {
                let field = format!("spec.metadata[{index}].secretKeyRef");
                let invalid = |message: String| LoadError::Invalid {
                    path: manifest.source.clone(),
                    component: manifest.name.clone(),
                    field: field.clone(),
                    message,
                };
                let store_name = manifest.secret_store.as_deref().ok_or_else(|| {
                    invalid(format!(
                        "`{}` refers to secret `{name}` but the component has no `auth.secretStore` to read it from",
                        entry.name
                    ))
                })?;
                let Some(store) = built.get(store_name, Block::SECRET_STORES).and_then(Component::as_secrets) else {
                    return Err(invalid(format!(
                        "`auth.secretStore` names `{store_name}`, which is not a loaded secret store"
                    )));
                };
                let secret = store
                    .get(GetSecretRequest { name: name.clone(), metadata: Metadata::new() })
                    .await
                    .map_err(|e| invalid(format!("cannot read secret `{name}` from `{store_name}`: {e}")))?;
                secret
                    .get(key)
                    .cloned()
                    .ok_or_else(|| invalid(format!("secret `{name}` in `{store_name}` has no key `{key}`")))?
            }
        };
        pairs.push((entry.name.clone(), value));
    }
    Ok(Properties::new(pairs))
}
