//! Builds components from Component manifests through factories keyed by `spec.type`.
//!
//! Secret stores are built first, so that other components' `secretKeyRef` entries can be
//! resolved through them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::bindings::{InputBinding, OutputBinding};
use crate::clock::SharedClock;
use crate::configuration::{ConfigurationStore, ConfigurationUpdater};
use crate::errors::{Error, LoadError, MetadataError};
use crate::lock::LockStore;
use crate::manifest::{ComponentManifest, MetadataValue};
use crate::metadata::{Metadata, Properties};
use crate::pubsub::PubSub;
use crate::secrets::{GetSecretRequest, SecretStore};
use crate::state::StateStore;

/// The building blocks, named by the prefix of `spec.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Block {
    /// `state.*`
    State,
    /// `pubsub.*`
    PubSub,
    /// `bindings.*`
    Bindings,
    /// `secretstores.*`
    SecretStores,
    /// `configuration.*`
    Configuration,
    /// `lock.*`
    Lock,
    /// Service invocation: the sidecar's app-to-app API. No component type has this prefix;
    /// it is certified black-box, with certify as the app.
    Invocation,
}

impl Block {
    /// Every block.
    pub const ALL: &'static [Block] = &[
        Block::State,
        Block::PubSub,
        Block::Bindings,
        Block::SecretStores,
        Block::Configuration,
        Block::Lock,
        Block::Invocation,
    ];

    /// The `spec.type` prefix, e.g. `state`.
    pub fn prefix(self) -> &'static str {
        match self {
            Block::State => "state",
            Block::PubSub => "pubsub",
            Block::Bindings => "bindings",
            Block::SecretStores => "secretstores",
            Block::Configuration => "configuration",
            Block::Lock => "lock",
            Block::Invocation => "invocation",
        }
    }

    /// The block a `spec.type` belongs to.
    pub fn of_type(type_name: &str) -> Option<Block> {
        let prefix = type_name.split('.').next()?;
        Block::ALL.iter().copied().find(|b| b.prefix() == prefix)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// A built component.
#[derive(Clone)]
pub enum Component {
    /// A state store.
    State(Arc<dyn StateStore>),
    /// A pub/sub broker.
    PubSub(Arc<dyn PubSub>),
    /// A binding, in one or both directions.
    Binding {
        /// The input side, if any.
        input: Option<Arc<dyn InputBinding>>,
        /// The output side, if any.
        output: Option<Arc<dyn OutputBinding>>,
    },
    /// A secret store.
    Secrets(Arc<dyn SecretStore>),
    /// A configuration store, and its updater when it has one.
    Configuration {
        /// The store.
        store: Arc<dyn ConfigurationStore>,
        /// Writes items behind the store's back, for suites.
        updater: Option<Arc<dyn ConfigurationUpdater>>,
    },
    /// A lock store.
    Lock(Arc<dyn LockStore>),
}

impl Component {
    /// The block this component serves.
    pub fn block(&self) -> Block {
        match self {
            Component::State(_) => Block::State,
            Component::PubSub(_) => Block::PubSub,
            Component::Binding { .. } => Block::Bindings,
            Component::Secrets(_) => Block::SecretStores,
            Component::Configuration { .. } => Block::Configuration,
            Component::Lock(_) => Block::Lock,
        }
    }

    /// The capability strings Dapr lists for this component in `/v1.0/metadata`.
    pub fn capabilities(&self) -> Vec<String> {
        use crate::features::StateFeature;
        match self {
            Component::State(store) => {
                let features = store.features();
                let mut caps: Vec<String> = features.iter().map(|f| f.as_str().to_owned()).collect();
                if features.contains(&StateFeature::Etag) && features.contains(&StateFeature::Transactional) {
                    caps.push("ACTOR".to_owned());
                }
                caps
            }
            Component::PubSub(p) => p.features().iter().map(|f| f.as_str().to_owned()).collect(),
            Component::Binding { input, output } => {
                let mut caps = Vec::new();
                if input.is_some() {
                    caps.push("INPUT_BINDING".to_owned());
                }
                if output.is_some() {
                    caps.push("OUTPUT_BINDING".to_owned());
                }
                caps
            }
            Component::Secrets(s) => s.features().iter().map(|f| f.as_str().to_owned()).collect(),
            Component::Configuration { .. } | Component::Lock(_) => Vec::new(),
        }
    }
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Component::{:?}{:?}", self.block(), self.capabilities())
    }
}

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
            manifests.iter().partition(|m| Block::of_type(&m.type_name) == Some(Block::SecretStores));
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
                let Some(Component::Secrets(store)) = built.get(store_name, Block::SecretStores) else {
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
