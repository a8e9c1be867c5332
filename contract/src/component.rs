//! A built component: its block and the trait objects it is made of ([`Parts`]), one per
//! trait. The blocks' own constructors and accessors (`Component::state`, `.state()`, …) are
//! conveniences over the same two calls any new block uses: [`Component::with`] and
//! [`Component::part`].

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::Block;
use crate::bindings::{InputBinding, OutputBinding};
use crate::configuration::{ConfigurationStore, ConfigurationUpdater};
use crate::lock::LockStore;
use crate::pubsub::PubSub;
use crate::secrets::SecretStore;
use crate::state::StateStore;

/// Shared trait objects by type: at most one `Arc<T>` per `T` (usually a `dyn Trait`).
#[derive(Clone, Default)]
pub struct Parts(BTreeMap<TypeId, (&'static str, Arc<dyn Any + Send + Sync>)>);

impl Parts {
    /// The same parts and `part` (replacing one of the same type).
    pub fn with<T: ?Sized + Send + Sync + 'static>(mut self, part: Arc<T>) -> Self {
        self.insert(part);
        self
    }

    /// Adds `part`, replacing one of the same type.
    pub fn insert<T: ?Sized + Send + Sync + 'static>(&mut self, part: Arc<T>) {
        self.0.insert(TypeId::of::<Arc<T>>(), (std::any::type_name::<T>(), Arc::new(part)));
    }

    /// The part of type `T`, if there is one.
    pub fn get<T: ?Sized + Send + Sync + 'static>(&self) -> Option<&Arc<T>> {
        self.0.get(&TypeId::of::<Arc<T>>()).and_then(|(_, part)| part.downcast_ref::<Arc<T>>())
    }

    /// True when there is a part of type `T`.
    pub fn has<T: ?Sized + Send + Sync + 'static>(&self) -> bool {
        self.contains(TypeId::of::<Arc<T>>())
    }

    /// True when there is a part whose `Arc` has type id `id`.
    pub fn contains(&self, id: TypeId) -> bool {
        self.0.contains_key(&id)
    }

    /// Adds the parts of `other` of types not here yet; answers how many it added.
    pub fn fill(&mut self, other: &Parts) -> usize {
        let before = self.0.len();
        for (k, v) in &other.0 {
            self.0.entry(*k).or_insert_with(|| v.clone());
        }
        self.0.len() - before
    }

    /// Every part of `other` added (replacing those of the same types).
    pub fn merged(mut self, other: &Parts) -> Self {
        self.0.extend(other.0.iter().map(|(k, v)| (*k, v.clone())));
        self
    }
}

impl fmt::Debug for Parts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.values().map(|(name, _)| name)).finish()
    }
}

/// A built component: which block it serves and what it is made of.
#[derive(Clone)]
pub struct Component {
    block: Block,
    parts: Parts,
}

impl Component {
    /// A component of `block` with no parts yet.
    pub fn new(block: Block) -> Self {
        Component { block, parts: Parts::default() }
    }

    /// The same component with `part`.
    pub fn with<T: ?Sized + Send + Sync + 'static>(mut self, part: Arc<T>) -> Self {
        self.parts.insert(part);
        self
    }

    /// The block this component serves.
    pub fn block(&self) -> Block {
        self.block
    }

    /// Its part of type `T`.
    pub fn part<T: ?Sized + Send + Sync + 'static>(&self) -> Option<&Arc<T>> {
        self.parts.get::<T>()
    }

    /// Every part.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// A state store.
    pub fn state(store: Arc<dyn StateStore>) -> Self {
        Component::new(Block::STATE).with(store)
    }

    /// A pub/sub broker.
    pub fn pubsub(broker: Arc<dyn PubSub>) -> Self {
        Component::new(Block::PUBSUB).with(broker)
    }

    /// A binding, in one or both directions.
    pub fn binding(input: Option<Arc<dyn InputBinding>>, output: Option<Arc<dyn OutputBinding>>) -> Self {
        let mut component = Component::new(Block::BINDINGS);
        if let Some(input) = input {
            component = component.with(input);
        }
        if let Some(output) = output {
            component = component.with(output);
        }
        component
    }

    /// A secret store.
    pub fn secrets(store: Arc<dyn SecretStore>) -> Self {
        Component::new(Block::SECRET_STORES).with(store)
    }

    /// A configuration store, and its updater when it has one (writes items behind the
    /// store's back, for suites).
    pub fn configuration(store: Arc<dyn ConfigurationStore>, updater: Option<Arc<dyn ConfigurationUpdater>>) -> Self {
        let component = Component::new(Block::CONFIGURATION).with(store);
        match updater {
            Some(updater) => component.with(updater),
            None => component,
        }
    }

    /// A lock store.
    pub fn lock(store: Arc<dyn LockStore>) -> Self {
        Component::new(Block::LOCK).with(store)
    }

    /// Its state store.
    pub fn as_state(&self) -> Option<&Arc<dyn StateStore>> {
        self.part::<dyn StateStore>()
    }

    /// Its broker.
    pub fn as_pubsub(&self) -> Option<&Arc<dyn PubSub>> {
        self.part::<dyn PubSub>()
    }

    /// Its input binding.
    pub fn as_input_binding(&self) -> Option<&Arc<dyn InputBinding>> {
        self.part::<dyn InputBinding>()
    }

    /// Its output binding.
    pub fn as_output_binding(&self) -> Option<&Arc<dyn OutputBinding>> {
        self.part::<dyn OutputBinding>()
    }

    /// Its secret store.
    pub fn as_secrets(&self) -> Option<&Arc<dyn SecretStore>> {
        self.part::<dyn SecretStore>()
    }

    /// Its configuration store.
    pub fn as_configuration(&self) -> Option<&Arc<dyn ConfigurationStore>> {
        self.part::<dyn ConfigurationStore>()
    }

    /// Its configuration updater.
    pub fn as_configuration_updater(&self) -> Option<&Arc<dyn ConfigurationUpdater>> {
        self.part::<dyn ConfigurationUpdater>()
    }

    /// Its lock store.
    pub fn as_lock(&self) -> Option<&Arc<dyn LockStore>> {
        self.part::<dyn LockStore>()
    }

    /// The capability strings Dapr lists for this component in `/v1.0/metadata`.
    pub fn capabilities(&self) -> Vec<String> {
        use crate::features::StateFeature;
        let mut caps = Vec::new();
        if let Some(store) = self.as_state() {
            let features = store.features();
            caps.extend(features.iter().map(|f| f.as_str().to_owned()));
            if features.contains(&StateFeature::Etag) && features.contains(&StateFeature::Transactional) {
                caps.push("ACTOR".to_owned());
            }
        }
        if let Some(broker) = self.as_pubsub() {
            caps.extend(broker.features().iter().map(|f| f.as_str().to_owned()));
        }
        if self.as_input_binding().is_some() {
            caps.push("INPUT_BINDING".to_owned());
        }
        if self.as_output_binding().is_some() {
            caps.push("OUTPUT_BINDING".to_owned());
        }
        if let Some(store) = self.as_secrets() {
            caps.extend(store.features().iter().map(|f| f.as_str().to_owned()));
        }
        caps
    }
}

impl fmt::Debug for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Component").field("block", &self.block).field("parts", &self.parts).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Toy: Send + Sync {
        fn hello(&self) -> &'static str;
    }

    struct Hi;

    impl Toy for Hi {
        fn hello(&self) -> &'static str {
            "hi"
        }
    }

    #[test]
    fn parts_are_found_by_their_trait() {
        let toy: Arc<dyn Toy> = Arc::new(Hi);
        let component = Component::new(Block::new("toy")).with(toy);
        assert_eq!(component.part::<dyn Toy>().map(|t| t.hello()), Some("hi"));
        assert!(component.as_state().is_none() && component.parts().has::<dyn Toy>());
        assert_eq!(component.block(), Block::new("toy"));
    }
}
