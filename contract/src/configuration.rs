//! The configuration contract: versioned items, read on demand or pushed on change.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::errors::Result;
use crate::metadata::Metadata;

/// One configuration item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigurationItem {
    /// The value.
    pub value: String,
    /// The item's version, as the store names it.
    pub version: String,
    /// Item metadata.
    pub metadata: Metadata,
}

/// Read items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetConfigurationRequest {
    /// The keys; empty means every key.
    pub keys: Vec<String>,
    /// Request metadata.
    pub metadata: Metadata,
}

/// Subscribe to changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeConfigurationRequest {
    /// The keys; empty means every key, including keys created later.
    pub keys: Vec<String>,
    /// Request metadata.
    pub metadata: Metadata,
}

/// A change pushed to a subscriber.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigurationUpdate {
    /// The subscription it is for.
    pub id: String,
    /// The changed items. A deleted item is present with an empty value and version and the
    /// metadata `deleted: true`.
    pub items: BTreeMap<String, ConfigurationItem>,
}

/// Item metadata marking a deletion in a [`ConfigurationUpdate`].
pub const DELETED: &str = "deleted";

/// A live configuration subscription.
#[derive(Debug)]
pub struct ConfigurationSubscription {
    /// The id to unsubscribe with.
    pub id: String,
    /// The updates; the channel closes when the subscription ends.
    pub updates: mpsc::UnboundedReceiver<ConfigurationUpdate>,
}

/// A store of configuration items.
#[async_trait]
pub trait ConfigurationStore: Send + Sync {
    /// Reads items; keys that do not exist are absent from the answer.
    async fn get(&self, request: GetConfigurationRequest) -> Result<BTreeMap<String, ConfigurationItem>>;

    /// Starts pushing changes of the requested keys.
    async fn subscribe(&self, request: SubscribeConfigurationRequest) -> Result<ConfigurationSubscription>;

    /// Stops a subscription; an unknown id is [`crate::Error::NotFound`].
    async fn unsubscribe(&self, id: &str) -> Result<()>;

    /// Checks the store can reach its backend.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

/// Writes items behind a configuration store's back, as an operator would, so suites can
/// produce change events. Each store that can be certified provides one.
#[async_trait]
pub trait ConfigurationUpdater: Send + Sync {
    /// Creates or replaces items.
    async fn set(&self, items: BTreeMap<String, ConfigurationItem>) -> Result<()>;

    /// Deletes items.
    async fn delete(&self, keys: Vec<String>) -> Result<()>;
}
