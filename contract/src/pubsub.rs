//! The pub/sub contract: publish to topics, subscribe with handlers that decide each
//! message's fate (success, retry, drop).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::errors::{Error, Result};
use crate::features::{FeatureSet, PubSubFeature};
use crate::metadata::Metadata;

/// Publish metadata: messages with the same key are delivered in order.
pub const PARTITION_KEY: &str = "partitionKey";
/// Publish metadata: the message expires after this many seconds.
pub const TTL_IN_SECONDS: &str = "ttlInSeconds";
/// Subscribe or component metadata: subscribers sharing a consumer id compete for messages.
pub const CONSUMER_ID: &str = "consumerID";

/// Publish one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// The topic.
    pub topic: String,
    /// The payload, carried byte-exact.
    pub data: Vec<u8>,
    /// Publish metadata (`partitionKey`, `ttlInSeconds`, component-specific keys).
    pub metadata: Metadata,
    /// The payload's content type.
    pub content_type: Option<String>,
}

impl PublishRequest {
    /// A message of `data` to `topic`.
    pub fn new(topic: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self { topic: topic.into(), data: data.into(), ..Self::default() }
    }

    /// The same message with one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// One entry of a bulk publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkMessageEntry {
    /// The entry's id, unique in the request.
    pub entry_id: String,
    /// The payload.
    pub event: Vec<u8>,
    /// The payload's content type.
    pub content_type: Option<String>,
    /// Entry metadata; overrides the request's.
    pub metadata: Metadata,
}

/// Publish several messages to one topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkPublishRequest {
    /// The topic.
    pub topic: String,
    /// The entries.
    pub entries: Vec<BulkMessageEntry>,
    /// Request metadata, applied to every entry.
    pub metadata: Metadata,
}

/// An entry that was not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    /// The entry's id.
    pub entry_id: String,
    /// Why it failed.
    pub error: String,
}

/// What a bulk publish did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkPublishResponse {
    /// The entries that were not published; every other entry was.
    pub failed_entries: Vec<FailedEntry>,
}

/// Subscribe to a topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The topic.
    pub topic: String,
    /// Subscribe metadata (`consumerID`, component-specific keys).
    pub metadata: Metadata,
    /// Where a message goes once its delivery attempts are used up, or when dropped.
    pub dead_letter_topic: Option<String>,
}

impl SubscribeRequest {
    /// A subscription to `topic`.
    pub fn new(topic: impl Into<String>) -> Self {
        Self { topic: topic.into(), ..Self::default() }
    }

    /// The same subscription in consumer group `group`.
    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        self.metadata.insert(CONSUMER_ID.to_owned(), group.into());
        self
    }
}

/// A delivered message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// The id the component gave the message; stable across redeliveries.
    pub id: String,
    /// The topic it was published to.
    pub topic: String,
    /// The payload, byte-exact.
    pub data: Vec<u8>,
    /// The publish metadata, carried through.
    pub metadata: Metadata,
    /// The payload's content type.
    pub content_type: Option<String>,
    /// Which delivery attempt this is, starting at 1.
    pub attempt: u32,
}

/// What the handler decided about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Processed: acknowledge it.
    Success,
    /// Not processed: deliver it again later.
    Retry(String),
    /// Never deliver it again (to the dead-letter topic, if one is set).
    Drop(String),
}

/// Handles one message at a time.
pub type Handler = Arc<dyn Fn(Message) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// Handles a batch of messages and answers one outcome per message id; a message left out of
/// the answer is retried.
pub type BulkHandler = Arc<dyn Fn(Vec<Message>) -> BoxFuture<'static, Vec<(String, Outcome)>> + Send + Sync>;

/// How a bulk subscription batches messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkSubscribeConfig {
    /// The most messages in one batch.
    pub max_messages_count: usize,
    /// The longest the first message of a batch waits for the batch to fill.
    pub max_await_duration: Duration,
}

impl Default for BulkSubscribeConfig {
    fn default() -> Self {
        // Dapr's defaults.
        Self { max_messages_count: 100, max_await_duration: Duration::from_millis(1000) }
    }
}

/// A live subscription; delivery stops when it is closed or dropped.
pub struct Subscription {
    id: String,
    stop: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription").field("id", &self.id).finish()
    }
}

impl Subscription {
    /// A subscription that runs `stop` once, when closed or dropped.
    pub fn new(id: impl Into<String>, stop: impl FnOnce() + Send + 'static) -> Self {
        Self { id: id.into(), stop: Mutex::new(Some(Box::new(stop))) }
    }

    /// The subscription's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops delivery. Deliveries already in a handler finish.
    pub fn close(&self) {
        let stop = self.stop.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(stop) = stop {
            stop();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.close();
    }
}

/// A message broker.
#[async_trait]
pub trait PubSub: Send + Sync {
    /// The features this component advertises.
    fn features(&self) -> FeatureSet<PubSubFeature>;

    /// Checks the component can reach its broker.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Publishes one message; `Ok` means the broker accepted it.
    async fn publish(&self, request: PublishRequest) -> Result<()>;

    /// Publishes several messages ([`PubSubFeature::BulkPublish`]).
    async fn bulk_publish(&self, _request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        Err(Error::unsupported("bulk-publish"))
    }

    /// Starts delivering `request.topic`'s messages to `handler`.
    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription>;

    /// Starts delivering messages in batches ([`PubSubFeature::BulkSubscribe`]).
    async fn bulk_subscribe(
        &self,
        _request: SubscribeRequest,
        _config: BulkSubscribeConfig,
        _handler: BulkHandler,
    ) -> Result<Subscription> {
        Err(Error::unsupported("bulk-subscribe"))
    }
}
