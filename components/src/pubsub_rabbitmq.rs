//! `pubsub.rabbitmq`: pub/sub on RabbitMQ (AMQP 0-9-1), with Dapr's metadata names
//! (`connectionString`, `consumerID`, `prefetchCount`) and the shared delivery settings
//! (`maxDeliveryAttempts`, `redeliveryBackoff`, `maxRedeliveryBackoff`).
//!
//! A topic is a durable fanout exchange. A consumer group is a durable quorum queue
//! `{consumerID}-{topic}` bound to it (as Dapr names it), so the group keeps its messages
//! while nobody consumes, its subscribers compete, and separate groups each get every message.
//! Publishing waits for the broker's publisher confirm. A delivery is acknowledged only after
//! its handler succeeded. A retried one is negatively acknowledged with requeue after its
//! backoff, and the attempt count is the quorum queue's own `x-delivery-count`. A dropped or
//! exhausted one is rejected without requeue, and the broker dead-letters it through the queue's
//! dead-letter exchange, which is the dead-letter topic's exchange.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use contract::pubsub::{
    BulkHandler, BulkPublishRequest, BulkPublishResponse, BulkSubscribeConfig, CONSUMER_ID, Handler, Message,
    PublishRequest, SubscribeRequest, Subscription,
};
use contract::pubsub_batching::batching_handler;
use contract::pubsub_delivery::{self, DeliveryConfig, Settle};
use contract::{Error, FeatureSet, Metadata, MetadataError, Properties, PubSub, PubSubFeature, Result, system_clock};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};

/// How long one publish may wait for the broker's confirm before it fails.
pub(crate) const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a subscription waits between attempts to consume again after losing the broker.
pub(crate) const RECONNECT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Header carrying the expiry (Unix milliseconds), checked again at delivery.
const EXPIRES_AT: &str = "x-certify-expires-at";

/// Settings of the RabbitMQ broker.
#[derive(Debug, Clone)]
pub struct RabbitSettings {
    /// `connectionString`: `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// Attempts and backoff.
    pub delivery: DeliveryConfig,
    /// `prefetchCount`: unacknowledged deliveries per subscription.
    pub prefetch: u16,
}

impl RabbitSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        let url = match (p.get("connectionString"), p.get("host")) {
            (Some(url), _) | (None, Some(url)) => url.to_owned(),
            (None, None) => p.required("connectionString")?.to_owned(),
        };
        Ok(Self {
            url,
            delivery: DeliveryConfig::from_properties(p)?,
            prefetch: p.parse::<u16>("prefetchCount")?.unwrap_or(32),
        })
    }
}

/// The connection to the broker and its publishing channel, opened again after the broker
/// went away (a restart, a cut network).
pub(crate) struct Link {
    url: String,
    current: tokio::sync::Mutex<Option<(Arc<Connection>, Channel)>>,
}

impl Link {
    /// Connects to `url`.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let (connection, publisher) = open(url).await?;
        Ok(Self { url: url.to_owned(), current: tokio::sync::Mutex::new(Some((Arc::new(connection), publisher))) })
    }

    /// The live connection and publishing channel, reconnecting when they are gone.
    pub(crate) async fn get(&self) -> Result<(Arc<Connection>, Channel)> {
        let mut current = self.current.lock().await;
        if let Some((connection, channel)) = current.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok((Arc::clone(connection), channel.clone()));
        }
        *current = None;
        let (connection, channel) = open(&self.url).await?;
        let fresh = (Arc::new(connection), channel);
        *current = Some(fresh.clone());
        tracing::info!("rabbitmq: connected to the broker again");
        Ok(fresh)
    }

    /// Drops the connection, so the next call opens another.
    pub(crate) async fn forget(&self) {
        if let Some((connection, _)) = self.current.lock().await.take() {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(PUBLISH_TIMEOUT, connection.close(200, "presumed dead".into())).await;
            });
        }
    }

    /// True when the connection is open now.
    pub(crate) async fn connected(&self) -> bool {
        self.current.lock().await.as_ref().is_some_and(|(c, _)| c.status().connected())
    }
}

/// The RabbitMQ broker.
#[derive(Clone)]
pub struct RabbitPubSub {
    link: Arc<Link>,
    declared: Arc<Mutex<HashSet<String>>>,
    settings: RabbitSettings,
}

impl std::fmt::Debug for RabbitPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitPubSub").finish_non_exhaustive()
    }
}

pub(crate) fn backend(what: &str, e: lapin::Error) -> Error {
    Error::Backend(format!("rabbitmq: {what}: {e}"))
}

pub(crate) fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::LongLongInt(n) => Some(n.to_string()),
        AMQPValue::LongInt(n) => Some(n.to_string()),
        AMQPValue::LongUInt(n) => Some(n.to_string()),
        AMQPValue::ShortInt(n) => Some(n.to_string()),
        _ => None,
    }
}

impl RabbitPubSub {
    /// Connects, opens a confirming publish channel, and checks the broker answers.
    pub async fn connect(settings: RabbitSettings) -> Result<Self> {
        let link = Arc::new(Link::open(&settings.url).await?);
        Ok(Self { link, declared: Arc::default(), settings })
    }

    /// Declares `topic`'s exchange once per broker instance.
    async fn exchange(&self, channel: &Channel, topic: &str) -> Result<()> {
        if topic.is_empty() {
            return Err(Error::InvalidArgument("the topic must not be empty".into()));
        }
        if self.declared.lock().unwrap_or_else(PoisonError::into_inner).contains(topic) {
            return Ok(());
        }
        let options = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        channel
            .exchange_declare(topic.into(), ExchangeKind::Fanout, options, FieldTable::default())
            .await
            .map_err(|e| backend(&format!("declaring exchange `{topic}`"), e))?;
        self.declared.lock().unwrap_or_else(PoisonError::into_inner).insert(topic.to_owned());
        Ok(())
    }

    /// Declares the group's queue (bound to the topic, dead-lettering to `dlq`) on a fresh
    /// channel and starts consuming it as `tag`.
    async fn consume(
        &self,
        topic: &str,
        dlq: Option<&str>,
        queue: &str,
        tag: &str,
    ) -> Result<(Channel, lapin::Consumer)> {
        let (connection, _) = self.link.get().await?;
        let channel = connection.create_channel().await.map_err(|e| backend("cannot open a channel", e))?;
        self.exchange(&channel, topic).await?;
        let mut arguments = FieldTable::default();
        arguments.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        if let Some(dlq) = dlq {
            self.exchange(&channel, dlq).await?;
            arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dlq.into()));
        }
        let options = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel.queue_declare(queue.into(), options, arguments).await.map_err(|e| {
            backend(
                &format!("declaring queue `{queue}` (an earlier declaration with another dead-letter topic conflicts)"),
                e,
            )
        })?;
        channel
            .queue_bind(queue.into(), topic.into(), "".into(), QueueBindOptions::default(), FieldTable::default())
            .await
            .map_err(|e| backend("queue.bind", e))?;
        channel
            .basic_qos(self.settings.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| backend("basic.qos", e))?;
        let consumer = channel
            .basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(|e| backend("basic.consume", e))?;
        Ok((channel, consumer))
    }

    async fn send(&self, topic: &str, data: &[u8], properties: BasicProperties) -> Result<()> {
        // One retry on a fresh connection when a call fails: the broker may have restarted since
        // the last call.
        let mut last = None;
        for _ in 0..2 {
            let (_, publisher) = self.link.get().await?;
            let attempt = async {
                self.exchange(&publisher, topic).await?;
                let publish = publisher
                    .basic_publish(topic.into(), "".into(), BasicPublishOptions::default(), data, properties.clone())
                    .await;
                confirmed(publish, topic).await
            };
            match tokio::time::timeout(PUBLISH_TIMEOUT, attempt).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    // No confirm in time: the connection is presumed dead; the next call opens
                    // another. Not retried here: a broker that went silent would only make the
                    // caller wait twice as long for the same failure.
                    self.link.forget().await;
                    return Err(Error::Backend(format!(
                        "rabbitmq: the broker did not confirm a publish to `{topic}` within {PUBLISH_TIMEOUT:?}"
                    )));
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Backend("rabbitmq: publishing failed".into())))
    }
}

/// Connects to `url` and opens a channel with publisher confirms.
pub(crate) async fn open(url: &str) -> Result<(Connection, Channel)> {
    let connect = Connection::connect(url, ConnectionProperties::default());
    let connection = tokio::time::timeout(std::time::Duration::from_secs(10), connect)
        .await
        .map_err(|_| Error::Backend("rabbitmq: the broker did not answer within 10 s".into()))?
        .map_err(|e| backend("cannot connect", e))?;
    let publisher = connection.create_channel().await.map_err(|e| backend("cannot open a channel", e))?;
    publisher.confirm_select(ConfirmSelectOptions::default()).await.map_err(|e| backend("confirm.select", e))?;
    Ok((connection, publisher))
}

/// Waits for the broker's publisher confirm of one publish.
pub(crate) async fn confirmed(
    publish: std::result::Result<lapin::PublisherConfirm, lapin::Error>,
    destination: &str,
) -> Result<()> {
    let confirm =
        publish.map_err(|e| backend("basic.publish", e))?.await.map_err(|e| backend("publisher confirm", e))?;
    match confirm {
        Confirmation::Ack(_) => Ok(()),
        Confirmation::Nack(_) => {
            Err(Error::Backend(format!("rabbitmq: the broker refused the message to `{destination}`")))
        }
        Confirmation::NotRequested => Err(Error::Backend("rabbitmq: publisher confirms are off".into())),
    }
}

fn properties_of(request: &PublishRequest, expires_at: Option<SystemTime>) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (k, v) in &request.metadata {
        headers.insert(k.as_str().into(), AMQPValue::LongString(LongString::from(v.as_bytes())));
    }
    let mut properties =
        BasicProperties::default().with_message_id(uuid::Uuid::new_v4().to_string().into()).with_delivery_mode(2);
    if let Some(at) = expires_at {
        let ms = pubsub_delivery::unix_millis(at);
        headers.insert(EXPIRES_AT.into(), AMQPValue::LongLongInt(ms as i64));
        let ttl = ms.saturating_sub(pubsub_delivery::unix_millis(SystemTime::now()));
        properties = properties.with_expiration(ShortString::from(ttl.to_string()));
    }
    if let Some(ct) = &request.content_type {
        properties = properties.with_content_type(ct.as_str().into());
    }
    properties.with_headers(headers)
}

/// The message of a delivery, its attempt number and its expiry.
fn message_of(topic: &str, delivery: &lapin::message::Delivery) -> (Message, Option<u64>) {
    let props = &delivery.properties;
    let mut metadata = Metadata::new();
    let mut expires_at = None;
    let mut returned = 0u32;
    if let Some(headers) = props.headers() {
        for (k, v) in headers.inner() {
            match k.as_str() {
                EXPIRES_AT => expires_at = text(v).and_then(|t| t.parse().ok()),
                // The quorum queue's count of earlier returns.
                "x-delivery-count" => returned = text(v).and_then(|t| t.parse().ok()).unwrap_or(0),
                key if key.starts_with("x-") => {}
                key => {
                    if let Some(v) = text(v) {
                        metadata.insert(key.to_owned(), v);
                    }
                }
            }
        }
    }
    let message = Message {
        id: props.message_id().as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default(),
        topic: topic.to_owned(),
        data: delivery.data.clone(),
        metadata,
        content_type: props.content_type().as_ref().map(|c| c.as_str().to_owned()),
        attempt: returned + 1,
    };
    (message, expires_at)
}

async fn deliver(delivery: lapin::message::Delivery, topic: &str, handler: &Handler, config: &DeliveryConfig) {
    let (message, expires_at) = message_of(topic, &delivery);
    let settle = if pubsub_delivery::expired(expires_at, SystemTime::now()) {
        Settle::DeadLetter
    } else {
        let attempt = message.attempt;
        config.settle(&pubsub_delivery::handle(handler, message).await, attempt)
    };
    let result = match settle {
        Settle::Ack => delivery.ack(BasicAckOptions::default()).await,
        Settle::Redeliver(wait) => {
            tokio::time::sleep(wait).await;
            delivery.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await
        }
        // Without requeue the broker dead-letters it through the queue's exchange, if any.
        Settle::DeadLetter => delivery.nack(BasicNackOptions { requeue: false, ..BasicNackOptions::default() }).await,
    };
    if let Err(e) = result {
        tracing::warn!(%topic, error = %e, "rabbitmq pubsub: settling a delivery failed; the broker will redeliver");
    }
}

#[async_trait]
impl PubSub for RabbitPubSub {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        [PubSubFeature::MessageTtl, PubSubFeature::BulkPublish, PubSubFeature::BulkSubscribe, PubSubFeature::DeadLetter]
            .into()
    }

    async fn ping(&self) -> Result<()> {
        if self.link.connected().await {
            Ok(())
        } else {
            Err(Error::Backend("rabbitmq: the connection to the broker is not open".into()))
        }
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let expires_at = pubsub_delivery::expiry(&request.metadata, SystemTime::now())?;
        self.send(&request.topic, &request.data, properties_of(&request, expires_at)).await
    }

    async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        pubsub_delivery::publish_each(request, |one| self.publish(one)).await
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        let topic = request.topic.clone();
        let group =
            request.metadata.get(CONSUMER_ID).cloned().unwrap_or_else(|| self.settings.delivery.default_group.clone());
        let dlq = request.dead_letter_topic.clone().filter(|d| !d.is_empty());
        let queue = format!("{group}-{topic}");
        let tag = format!("certify-{}", uuid::Uuid::new_v4());
        let (channel, mut consumer) = self.consume(&topic, dlq.as_deref(), &queue, &tag).await?;
        let current = Arc::new(Mutex::new(Some(channel)));
        let (config, this, live, consumer_tag) =
            (self.settings.delivery.clone(), self.clone(), Arc::clone(&current), tag.clone());
        let task = tokio::spawn(async move {
            loop {
                while let Some(next) = consumer.next().await {
                    match next {
                        Ok(delivery) => {
                            let (handler, config, topic) = (Arc::clone(&handler), config.clone(), topic.clone());
                            // Concurrent handling, bounded by the prefetch count.
                            tokio::spawn(async move { deliver(delivery, &topic, &handler, &config).await });
                        }
                        Err(e) => {
                            tracing::warn!(%topic, error = %e, "rabbitmq pubsub: the consumer stopped; consuming again once the broker is back");
                            break;
                        }
                    }
                }
                // The connection or channel went away: consume again when the broker is back.
                loop {
                    tokio::time::sleep(RECONNECT_WAIT).await;
                    match this.consume(&topic, dlq.as_deref(), &queue, &consumer_tag).await {
                        Ok((channel, fresh)) => {
                            *live.lock().unwrap_or_else(PoisonError::into_inner) = Some(channel);
                            consumer = fresh;
                            break;
                        }
                        Err(e) => tracing::debug!(%topic, error = %e, "rabbitmq pubsub: not consuming yet"),
                    }
                }
            }
        });
        Ok(Subscription::new(tag.clone(), move || {
            task.abort();
            // Cancel, then close: deliveries not yet acknowledged go back to the queue.
            if let Some(channel) = current.lock().unwrap_or_else(PoisonError::into_inner).take() {
                tokio::spawn(async move {
                    let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                    let _ = channel.close(200, "unsubscribed".into()).await;
                });
            }
        }))
    }

    async fn bulk_subscribe(
        &self,
        request: SubscribeRequest,
        config: BulkSubscribeConfig,
        handler: BulkHandler,
    ) -> Result<Subscription> {
        self.subscribe(request, batching_handler(config, handler, system_clock())).await
    }
}
