//! `configuration.in-memory`: items in memory, changed through its [`ConfigurationUpdater`],
//! with every change pushed to the subscriptions that cover the key.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, ConfigurationUpdate, DELETED, GetConfigurationRequest,
    SubscribeConfigurationRequest,
};
use contract::{ConfigurationStore, ConfigurationUpdater, Error, Metadata, Result};
use tokio::sync::mpsc;

struct Subscriber {
    keys: Vec<String>,
    updates: mpsc::UnboundedSender<ConfigurationUpdate>,
}

impl Subscriber {
    fn covers(&self, key: &str) -> bool {
        self.keys.is_empty() || self.keys.iter().any(|k| k == key)
    }
}

#[derive(Default)]
struct State {
    items: BTreeMap<String, ConfigurationItem>,
    subscribers: HashMap<String, Subscriber>,
}

/// The in-memory configuration store.
#[derive(Default)]
pub struct InMemoryConfigurationStore {
    state: Mutex<State>,
    next_id: AtomicU64,
    next_version: AtomicU64,
}

impl std::fmt::Debug for InMemoryConfigurationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InMemoryConfigurationStore")
    }
}

impl InMemoryConfigurationStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends each subscriber the changed items it covers, one update per key as Dapr does.
    fn notify(state: &mut State, changed: &BTreeMap<String, ConfigurationItem>) {
        state.subscribers.retain(|id, subscriber| {
            for (key, item) in changed.iter().filter(|(k, _)| subscriber.covers(k)) {
                let update =
                    ConfigurationUpdate { id: id.clone(), items: BTreeMap::from([(key.clone(), item.clone())]) };
                if subscriber.updates.send(update).is_err() {
                    return false; // The receiver is gone: the subscription ended.
                }
            }
            true
        });
    }
}

#[async_trait]
impl ConfigurationStore for InMemoryConfigurationStore {
    async fn get(&self, request: GetConfigurationRequest) -> Result<BTreeMap<String, ConfigurationItem>> {
        let state = self.lock();
        Ok(if request.keys.is_empty() {
            state.items.clone()
        } else {
            request.keys.iter().filter_map(|k| state.items.get(k).map(|item| (k.clone(), item.clone()))).collect()
        })
    }

    async fn subscribe(&self, request: SubscribeConfigurationRequest) -> Result<ConfigurationSubscription> {
        let id = format!("config-sub-{}", self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().subscribers.insert(id.clone(), Subscriber { keys: request.keys, updates: tx });
        Ok(ConfigurationSubscription { id, updates: rx })
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        match self.lock().subscribers.remove(id) {
            Some(_) => Ok(()),
            None => Err(Error::NotFound { what: format!("configuration subscription `{id}`") }),
        }
    }
}

#[async_trait]
impl ConfigurationUpdater for InMemoryConfigurationStore {
    async fn set(&self, items: BTreeMap<String, ConfigurationItem>) -> Result<()> {
        let items: BTreeMap<_, _> = items
            .into_iter()
            .map(|(key, mut item)| {
                // An item written without a version gets the store's next one.
                if item.version.is_empty() {
                    item.version = (self.next_version.fetch_add(1, Ordering::Relaxed) + 1).to_string();
                }
                (key, item)
            })
            .collect();
        let mut state = self.lock();
        state.items.extend(items.clone());
        Self::notify(&mut state, &items);
        Ok(())
    }

    async fn delete(&self, keys: Vec<String>) -> Result<()> {
        let mut state = self.lock();
        let deleted: BTreeMap<_, _> = keys
            .into_iter()
            .filter(|k| state.items.remove(k).is_some())
            .map(|k| {
                let item = ConfigurationItem {
                    metadata: Metadata::from([(DELETED.to_owned(), "true".to_owned())]),
                    ..ConfigurationItem::default()
                };
                (k, item)
            })
            .collect();
        Self::notify(&mut state, &deleted);
        Ok(())
    }
}
