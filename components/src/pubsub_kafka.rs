//! `pubsub.kafka`: pub/sub on a Kafka-protocol broker through librdkafka, with Dapr's
//! metadata names (`brokers`, `consumerGroup` or `consumerID`, `maxMessageBytes`) and the
//! shared delivery settings (`maxDeliveryAttempts`, `redeliveryBackoff`, `maxRedeliveryBackoff`),
//! plus `partitionCount` for the topics it creates.
//!
//! A consumer group is a Kafka consumer group named `{group}-{topic}` (as RabbitMQ's queues
//! are), so joining or leaving on one topic never rebalances the group's members on another;
//! each subscription is one member. A partition's
//! messages are handled one at a time, in offset order: a retried message is handled again
//! (after its backoff) before anything behind it, so messages with one `partitionKey` (the
//! record key) keep their order. The offset is committed only after the handler succeeded,
//! dropped the message, or used up its attempts (then it is produced to the dead-letter topic
//! first), so a crash redelivers rather than loses. Metadata, the content type and the expiry
//! travel as record headers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use contract::pubsub::{
    BulkPublishRequest, BulkPublishResponse, CONSUMER_ID, Handler, Message, PARTITION_KEY, PublishRequest,
    SubscribeRequest, Subscription,
};
use contract::pubsub_delivery::{self, DeliveryConfig, Settle};
use contract::{Error, FeatureSet, Metadata, MetadataError, Properties, PubSub, PubSubFeature, Result};
use rdkafka::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

const CONTENT_TYPE: &str = "contentType";
const EXPIRES_AT: &str = "expiresAt";
const META: &str = "meta.";

/// Settings of the Kafka broker.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `brokers`: the bootstrap `host:port` list.
    pub brokers: String,
    /// Attempts and backoff; the default group comes from `consumerGroup` or `consumerID`.
    pub delivery: DeliveryConfig,
    /// `maxMessageBytes`: the largest record produced.
    pub max_message_bytes: u32,
    /// `partitionCount`: partitions of the topics the component creates.
    pub partitions: i32,
}

impl KafkaSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        if let Some(auth) = p.get("authType").filter(|a| *a != "none") {
            return Err(MetadataError::Invalid {
                field: "authType".into(),
                value: auth.to_owned(),
                reason: "only `none` is supported by this build".into(),
            });
        }
        let mut delivery = DeliveryConfig::from_properties(p)?;
        if let Some(group) = p.get("consumerGroup") {
            delivery.default_group = group.to_owned();
        }
        Ok(Self {
            brokers: p.required("brokers")?.to_owned(),
            delivery,
            max_message_bytes: p.parse::<u32>("maxMessageBytes")?.unwrap_or(4 << 20),
            partitions: p.parse::<i32>("partitionCount")?.unwrap_or(1).max(1),
        })
    }
}

/// The Kafka broker.
#[derive(Clone)]
pub struct KafkaPubSub {
    producer: FutureProducer,
    admin: Arc<AdminClient<DefaultClientContext>>,
    created: Arc<Mutex<HashSet<String>>>,
    settings: KafkaSettings,
}

impl std::fmt::Debug for KafkaPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPubSub").field("brokers", &self.settings.brokers).finish()
    }
}

pub(crate) fn backend(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("kafka: {what}: {e}"))
}

impl KafkaPubSub {
    /// Creates the clients and checks the broker answers within 10 s.
    pub async fn connect(settings: KafkaSettings) -> Result<Self> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("message.max.bytes", settings.max_message_bytes.to_string())
            .set("linger.ms", "0")
            .set("acks", "all")
            .set("enable.idempotence", "false")
            // A broker that stops answering fails a publish after this, instead of librdkafka's
            // five minutes.
            .set("message.timeout.ms", "10000")
            .create()
            .map_err(|e| backend("cannot create a producer", e))?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .create()
            .map_err(|e| backend("cannot create an admin client", e))?;
        let broker = Self { producer, admin: Arc::new(admin), created: Arc::default(), settings };
        broker.ping().await?;
        Ok(broker)
    }

    /// Creates `topic` once per broker instance; one that exists already is fine.
    pub(crate) async fn ensure_topic(&self, topic: &str) -> Result<()> {
        if topic.is_empty() {
            return Err(Error::InvalidArgument("the topic must not be empty".into()));
        }
        if self.created.lock().unwrap_or_else(PoisonError::into_inner).contains(topic) {
            return Ok(());
        }
        let new = NewTopic::new(topic, self.settings.partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = self.admin.create_topics([&new], &options).await.map_err(|e| backend("create topic", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(backend(&format!("creating topic `{name}`"), code)),
            }
        }
        self.created.lock().unwrap_or_else(PoisonError::into_inner).insert(topic.to_owned());
        Ok(())
    }

    pub(crate) async fn produce(&self, request: &PublishRequest, expires_at: Option<SystemTime>) -> Result<()> {
        self.ensure_topic(&request.topic).await?;
        let mut headers = OwnedHeaders::new();
        if let Some(ct) = &request.content_type {
            headers = headers.insert(Header { key: CONTENT_TYPE, value: Some(ct.as_bytes()) });
        }
        if let Some(at) = expires_at {
            let ms = pubsub_delivery::unix_millis(at).to_string();
            headers = headers.insert(Header { key: EXPIRES_AT, value: Some(ms.as_bytes()) });
        }
        let named: Vec<(String, &String)> = request.metadata.iter().map(|(k, v)| (format!("{META}{k}"), v)).collect();
        for (k, v) in &named {
            headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
        let mut record = FutureRecord::<str, [u8]>::to(&request.topic).payload(&request.data).headers(headers);
        if let Some(key) = request.metadata.get(PARTITION_KEY) {
            record = record.key(key.as_str());
        }
        self.producer
            .send(record, Duration::from_secs(10))
            .await
            .map(|_| ())
            .map_err(|(e, _)| backend(&format!("producing to `{}`", request.topic), e))
    }
}

/// A consumer's context: librdkafka's log lines go to `tracing`, except once the consumer is
/// closing, when a broker that went away is expected and not worth a line.
#[derive(Clone, Default)]
pub(crate) struct ConsumerLog {
    closing: Arc<AtomicBool>,
}

impl ClientContext for ConsumerLog {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, line: &str) {
        if self.closing.load(Ordering::Relaxed) {
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{facility} {line}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{facility} {line}"),
            _ => tracing::debug!(target: "librdkafka", "{facility} {line}"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if !self.closing.load(Ordering::Relaxed) {
            tracing::warn!(target: "librdkafka", "{error}: {reason}");
        }
    }
}

impl ConsumerContext for ConsumerLog {}

/// A consumer that leaves its group on a thread of its own when dropped: librdkafka's close
/// blocks until the broker answers (for ever, if it is gone), and must never block the
/// async runtime or the process's exit.
pub(crate) struct Detached(Option<StreamConsumer<ConsumerLog>>, ConsumerLog);

impl Detached {
    /// The consumer (present until dropped).
    pub(crate) fn get(&self) -> Option<&StreamConsumer<ConsumerLog>> {
        self.0.as_ref()
    }

    /// Subscribes to `topics`.
    pub(crate) fn subscribe(&self, topics: &[&str]) -> Result<()> {
        match &self.0 {
            Some(c) => c.subscribe(topics).map_err(|e| backend("subscribe", e)),
            None => Err(Error::Backend("kafka: the consumer is closed".into())),
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        self.1.closing.store(true, Ordering::Relaxed);
        if let Some(consumer) = self.0.take() {
            let _ = std::thread::Builder::new().name("kafka-consumer-close".into()).spawn(move || drop(consumer));
        }
    }
}

/// The message of a record, with its expiry.
pub(crate) fn message_of(record: &rdkafka::message::BorrowedMessage<'_>) -> (Message, Option<u64>) {
    let mut message = Message {
        id: format!("{}-{}-{}", record.topic(), record.partition(), record.offset()),
        topic: record.topic().to_owned(),
        data: record.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        ..Message::default()
    };
    let mut metadata = Metadata::new();
    let mut expires_at = None;
    if let Some(headers) = record.headers() {
        for header in headers.iter() {
            let value = header.value.map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
            match header.key {
                CONTENT_TYPE => message.content_type = Some(value),
                EXPIRES_AT => expires_at = value.parse().ok(),
                key => {
                    if let Some(name) = key.strip_prefix(META) {
                        metadata.insert(name.to_owned(), value);
                    }
                }
            }
        }
    }
    message.metadata = metadata;
    (message, expires_at)
}

impl KafkaPubSub {
    /// A consumer in group `group_id` subscribed to nothing yet, starting where
    /// `auto.offset.reset` says when the group has no committed offset.
    pub(crate) fn consumer(&self, group_id: &str, offset_reset: &str) -> Result<Detached> {
        let log = ConsumerLog::default();
        let consumer: StreamConsumer<ConsumerLog> = ClientConfig::new()
            .set("bootstrap.servers", &self.settings.brokers)
            .set("group.id", group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", offset_reset)
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "30000")
            .set("heartbeat.interval.ms", "500")
            .set("fetch.max.bytes", (self.settings.max_message_bytes * 2).to_string())
            .set("max.partition.fetch.bytes", (self.settings.max_message_bytes * 2).to_string())
            .create_with_context(log.clone())
            .map_err(|e| backend("cannot create a consumer", e))?;
        Ok(Detached(Some(consumer), log))
    }

    /// Handles one record until it is settled: retried in place, so nothing behind it in its
    /// partition overtakes it.
    async fn settle(&self, mut message: Message, expires_at: Option<u64>, handler: &Handler, dlq: Option<&str>) {
        let config = &self.settings.delivery;
        let mut attempt = 1;
        loop {
            let settle = if pubsub_delivery::expired(expires_at, SystemTime::now()) {
                Settle::DeadLetter
            } else {
                message.attempt = attempt;
                config.settle(&pubsub_delivery::handle(handler, message.clone()).await, attempt)
            };
            match settle {
                Settle::Ack => return,
                Settle::Redeliver(wait) => {
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Settle::DeadLetter => {
                    let Some(dlq) = dlq else { return };
                    let request = PublishRequest {
                        topic: dlq.to_owned(),
                        data: message.data.clone(),
                        metadata: message.metadata.clone(),
                        content_type: message.content_type.clone(),
                    };
                    // Not committed until the dead-letter topic has it.
                    loop {
                        match self.produce(&request, None).await {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!(topic = %dlq, error = %e, "kafka pubsub: dead-lettering failed; retrying");
                                tokio::time::sleep(config.backoff).await;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[async_trait]
impl PubSub for KafkaPubSub {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        [PubSubFeature::MessageTtl, PubSubFeature::BulkPublish, PubSubFeature::OrderedByKey, PubSubFeature::DeadLetter]
            .into()
    }

    async fn ping(&self) -> Result<()> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, Duration::from_secs(10)))
            .await
            .map_err(|e| backend("ping", e))?
            .map(|_| ())
            .map_err(|e| backend("the broker did not answer a metadata request", e))
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let expires_at = pubsub_delivery::expiry(&request.metadata, SystemTime::now())?;
        self.produce(&request, expires_at).await
    }

    async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        pubsub_delivery::publish_each(request, |one| self.publish(one)).await
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        self.ensure_topic(&request.topic).await?;
        let dlq = request.dead_letter_topic.clone().filter(|d| !d.is_empty());
        if let Some(dlq) = &dlq {
            self.ensure_topic(dlq).await?;
        }
        let group =
            request.metadata.get(CONSUMER_ID).cloned().unwrap_or_else(|| self.settings.delivery.default_group.clone());
        let consumer = self.consumer(&format!("{group}-{}", request.topic), "latest")?;
        consumer.subscribe(&[request.topic.as_str()])?;
        let broker = self.clone();
        let topic = request.topic.clone();
        let task = tokio::spawn(async move {
            let Some(consumer) = consumer.get() else { return };
            loop {
                match consumer.recv().await {
                    Ok(record) => {
                        let (message, expires_at) = message_of(&record);
                        broker.settle(message, expires_at, &handler, dlq.as_deref()).await;
                        if let Err(e) = consumer.commit_message(&record, CommitMode::Async) {
                            tracing::warn!(%topic, error = %e, "kafka pubsub: commit failed; the record may come again");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%topic, error = %e, "kafka pubsub: receive failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(Subscription::new(format!("kafka-{group}-{}", request.topic), move || task.abort()))
    }
}
