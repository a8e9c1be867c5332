//! `bindings.kafka`: Kafka topics as an output binding (`create` produces to `publishTopic`,
//! or to the request's `topic`) and an input binding (reads `topics`), with Dapr's metadata
//! names: `brokers`, `topics`, `publishTopic`, `consumerGroup`, `initialOffset` (`newest`, the
//! default, or `oldest`) and `backOffMaxRetries`.
//!
//! Records are handled one at a time per partition, in offset order. A record whose handler
//! fails is handled again in place after a backoff (so nothing behind it overtakes it) until it
//! succeeds or `backOffMaxRetries` is used up (-1, the default, retries for ever, as Dapr's);
//! its offset is committed only then, so a crash redelivers rather than loses. The request
//! metadata `key` (or `partitionKey`) is the record key; other metadata travels as headers.

use std::time::Duration;

use async_trait::async_trait;
use contract::bindings::{BindingEvent, BindingHandler, InvokeRequest, InvokeResponse};
use contract::pubsub::{PARTITION_KEY, PublishRequest, Subscription};
use contract::{Error, InputBinding, MetadataError, OutputBinding, Properties, PubSub, Result};
use rdkafka::consumer::{CommitMode, Consumer};

use crate::pubsub_kafka::{KafkaPubSub, KafkaSettings, message_of};

/// The first wait before a failed record is handled again; it doubles up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Settings of the Kafka binding.
#[derive(Debug, Clone)]
pub struct KafkaBindingSettings {
    /// The broker connection (`brokers`, `maxMessageBytes`, `partitionCount`).
    pub broker: KafkaSettings,
    /// `topics`: the topics the input binding reads (none: output only).
    pub topics: Vec<String>,
    /// `publishTopic`: where `create` produces (none: input only, unless a request names one).
    pub publish_topic: Option<String>,
    /// `consumerGroup`.
    pub group: String,
    /// `initialOffset`: where a new consumer group starts, `latest` or `earliest`.
    pub offset_reset: &'static str,
    /// `backOffMaxRetries`: handler retries of one record; `None` retries for ever.
    pub max_retries: Option<u32>,
}

impl KafkaBindingSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        let list = |field: &str| -> Vec<String> {
            p.get(field)
                .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let offset_reset = match p.get("initialOffset").unwrap_or("newest") {
            "newest" => "latest",
            "oldest" => "earliest",
            other => {
                return Err(MetadataError::Invalid {
                    field: "initialOffset".into(),
                    value: other.to_owned(),
                    reason: "must be `newest` or `oldest`".into(),
                });
            }
        };
        let topics = list("topics");
        let group = match (p.get("consumerGroup"), topics.is_empty()) {
            (Some(g), _) => g.to_owned(),
            (None, true) => String::new(),
            (None, false) => p.required("consumerGroup")?.to_owned(),
        };
        Ok(Self {
            broker: KafkaSettings::from_properties(p)?,
            topics,
            publish_topic: p.get("publishTopic").filter(|t| !t.is_empty()).map(str::to_owned),
            group,
            offset_reset,
            max_retries: p.parse::<i64>("backOffMaxRetries")?.and_then(|n| u32::try_from(n).ok()),
        })
    }
}

/// The Kafka binding.
#[derive(Clone)]
pub struct KafkaBinding {
    broker: KafkaPubSub,
    settings: KafkaBindingSettings,
}

impl std::fmt::Debug for KafkaBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBinding").field("topics", &self.settings.topics).finish()
    }
}

impl KafkaBinding {
    /// Creates the clients, checks the broker answers, and creates the topics.
    pub async fn connect(settings: KafkaBindingSettings) -> Result<Self> {
        let broker = KafkaPubSub::connect(settings.broker.clone()).await?;
        for topic in settings.topics.iter().chain(&settings.publish_topic) {
            broker.ensure_topic(topic).await?;
        }
        Ok(Self { broker, settings })
    }

    /// True when the binding reads topics.
    pub fn reads(&self) -> bool {
        !self.settings.topics.is_empty()
    }
}

#[async_trait]
impl OutputBinding for KafkaBinding {
    fn operations(&self) -> Vec<String> {
        vec!["create".to_owned()]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        if !request.operation.eq_ignore_ascii_case("create") {
            return Err(Error::unsupported(format!(
                "binding operation `{}` (bindings.kafka has create)",
                request.operation
            )));
        }
        let mut metadata = request.metadata;
        let topic = match metadata.remove("topic").or_else(|| self.settings.publish_topic.clone()) {
            Some(t) => t,
            None => {
                return Err(Error::InvalidArgument(
                    "bindings.kafka: no topic to produce to (set `publishTopic`, or the request metadata `topic`)"
                        .into(),
                ));
            }
        };
        if let Some(key) = metadata.remove("key") {
            metadata.insert(PARTITION_KEY.to_owned(), key);
        }
        let request = PublishRequest { topic, data: request.data, metadata, content_type: None };
        self.broker.produce(&request, None).await?;
        Ok(InvokeResponse::default())
    }

    async fn ping(&self) -> Result<()> {
        PubSub::ping(&self.broker).await
    }
}

#[async_trait]
impl InputBinding for KafkaBinding {
    async fn read(&self, handler: BindingHandler) -> Result<Subscription> {
        if self.settings.topics.is_empty() {
            return Err(Error::InvalidArgument("bindings.kafka: `topics` names nothing to read".into()));
        }
        let consumer = self.broker.consumer(&self.settings.group, self.settings.offset_reset)?;
        let topics: Vec<&str> = self.settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let max_retries = self.settings.max_retries;
        let task = tokio::spawn(async move {
            let Some(consumer) = consumer.get() else { return };
            loop {
                let record = match consumer.recv().await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "kafka binding: receive failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                let (message, _) = message_of(&record);
                let event = BindingEvent { data: message.data, metadata: message.metadata };
                let (mut retries, mut wait) = (0u32, BACKOFF);
                while let Err(reason) = handler(event.clone()).await {
                    if max_retries.is_some_and(|max| retries >= max) {
                        tracing::warn!(%reason, retries, "kafka binding: the handler kept failing; giving the record up");
                        break;
                    }
                    retries += 1;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                if let Err(e) = consumer.commit_message(&record, CommitMode::Async) {
                    tracing::warn!(error = %e, "kafka binding: commit failed; the record may come again");
                }
            }
        });
        Ok(Subscription::new(format!("kafka-binding-{}", self.settings.group), move || task.abort()))
    }
}
