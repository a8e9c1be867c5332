//! `bindings.rabbitmq`: a RabbitMQ queue as an output binding (`create` publishes to it) and
//! an input binding (reads it), with Dapr's metadata names: `host` (an AMQP URL; also
//! `connectionString`), `queueName`, `durable`, `deleteWhenUnused`, `ttlInSeconds`,
//! `prefetchCount` and `contentType`.
//!
//! The queue is declared when the binding starts, so what is created before anyone reads is
//! kept. Publishing waits for the broker's publisher confirm (at most 10 s). An event is
//! acknowledged after the handler succeeded; when it fails, the event is returned to the queue
//! and delivered again, as Dapr's binding does. After the broker went away (a restart, a cut
//! network) the binding connects again: the next `create` on a fresh connection, the reader
//! once the broker answers.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use contract::bindings::{BindingEvent, BindingHandler, InvokeRequest, InvokeResponse};
use contract::pubsub::Subscription;
use contract::{Error, InputBinding, Metadata, MetadataError, OutputBinding, Properties, Result};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};

use crate::pubsub_rabbitmq::{Link, PUBLISH_TIMEOUT, RECONNECT_WAIT, backend, confirmed, text};

/// A failing event waits this long before it goes back to the queue, so a handler that
/// always fails does not spin.
const RETURN_DELAY: Duration = Duration::from_millis(50);

/// Settings of the RabbitMQ binding.
#[derive(Debug, Clone)]
pub struct RabbitBindingSettings {
    /// `host` (or `connectionString`): `amqp://user:password@host:port/vhost`.
    pub url: String,
    /// `queueName`.
    pub queue: String,
    /// `durable`: the queue and its messages survive a broker restart (default false, as Dapr).
    pub durable: bool,
    /// `deleteWhenUnused`: the broker deletes the queue when its last consumer leaves.
    pub delete_when_unused: bool,
    /// `ttlInSeconds`: the queue's message expiry.
    pub ttl_seconds: Option<u64>,
    /// `prefetchCount`: unacknowledged events at a time (0: no limit).
    pub prefetch: u16,
    /// `contentType` of published messages.
    pub content_type: Option<String>,
}

impl RabbitBindingSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        let url = match (p.get("host"), p.get("connectionString")) {
            (Some(url), _) | (None, Some(url)) => url.to_owned(),
            (None, None) => p.required("host")?.to_owned(),
        };
        Ok(Self {
            url,
            queue: p.required("queueName")?.to_owned(),
            durable: p.parse::<bool>("durable")?.unwrap_or(false),
            delete_when_unused: p.parse::<bool>("deleteWhenUnused")?.unwrap_or(false),
            ttl_seconds: p.parse::<u64>("ttlInSeconds")?,
            prefetch: p.parse::<u16>("prefetchCount")?.unwrap_or(0),
            content_type: p.get("contentType").map(str::to_owned),
        })
    }
}

/// The RabbitMQ binding.
#[derive(Clone)]
pub struct RabbitBinding {
    link: Arc<Link>,
    settings: RabbitBindingSettings,
}

impl std::fmt::Debug for RabbitBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitBinding").field("queue", &self.settings.queue).finish()
    }
}

impl RabbitBinding {
    /// Connects and declares the queue.
    pub async fn connect(settings: RabbitBindingSettings) -> Result<Self> {
        let link = Arc::new(Link::open(&settings.url).await?);
        let binding = Self { link, settings };
        let (_, publisher) = binding.link.get().await?;
        binding.declare(&publisher).await?;
        Ok(binding)
    }

    /// Publishes one message to the queue and waits for its confirm; a publish on a connection
    /// that died is tried once more on a fresh one.
    async fn send(&self, data: &[u8], properties: BasicProperties) -> Result<()> {
        let queue = self.settings.queue.as_str();
        let mut last = None;
        for _ in 0..2 {
            let (_, publisher) = self.link.get().await?;
            let attempt = async {
                let publish = publisher
                    .basic_publish("".into(), queue.into(), BasicPublishOptions::default(), data, properties.clone())
                    .await;
                confirmed(publish, queue).await
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
                        "rabbitmq: the broker did not confirm a message to `{queue}` within {PUBLISH_TIMEOUT:?}"
                    )));
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Backend("rabbitmq: publishing failed".into())))
    }

    /// Declares the queue on a fresh channel and starts consuming it as `tag`.
    async fn consume(&self, tag: &str) -> Result<(Channel, lapin::Consumer)> {
        let (connection, _) = self.link.get().await?;
        let channel = connection.create_channel().await.map_err(|e| backend("cannot open a channel", e))?;
        self.declare(&channel).await?;
        if self.settings.prefetch > 0 {
            channel
                .basic_qos(self.settings.prefetch, BasicQosOptions::default())
                .await
                .map_err(|e| backend("basic.qos", e))?;
        }
        let queue = self.settings.queue.as_str();
        let consumer = channel
            .basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(|e| backend("basic.consume", e))?;
        Ok((channel, consumer))
    }

    async fn declare(&self, channel: &Channel) -> Result<()> {
        let s = &self.settings;
        let mut arguments = FieldTable::default();
        if let Some(ttl) = s.ttl_seconds {
            arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt((ttl * 1000) as i64));
        }
        let options = QueueDeclareOptions {
            durable: s.durable,
            auto_delete: s.delete_when_unused,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(s.queue.as_str().into(), options, arguments)
            .await
            .map(drop)
            .map_err(|e| backend(&format!("declaring queue `{}` (does it exist with other settings?)", s.queue), e))
    }
}

fn metadata_of(delivery: &lapin::message::Delivery) -> Metadata {
    let mut metadata = Metadata::new();
    if let Some(headers) = delivery.properties.headers() {
        for (k, v) in headers.inner() {
            if let Some(v) = text(v) {
                metadata.insert(k.as_str().to_owned(), v);
            }
        }
    }
    metadata
}

#[async_trait]
impl OutputBinding for RabbitBinding {
    fn operations(&self) -> Vec<String> {
        vec!["create".to_owned()]
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        if !request.operation.eq_ignore_ascii_case("create") {
            return Err(Error::unsupported(format!(
                "binding operation `{}` (bindings.rabbitmq has create)",
                request.operation
            )));
        }
        let mut properties = BasicProperties::default().with_delivery_mode(if self.settings.durable { 2 } else { 1 });
        if let Some(ct) = &self.settings.content_type {
            properties = properties.with_content_type(ct.as_str().into());
        }
        if let Some(raw) = request.metadata.get(contract::state::TTL_IN_SECONDS) {
            let seconds: u64 = raw.parse().map_err(|_| {
                Error::InvalidArgument(format!(
                    "metadata `ttlInSeconds` must be a whole number of seconds, got `{raw}`"
                ))
            })?;
            properties = properties.with_expiration(ShortString::from((seconds * 1000).to_string()));
        }
        let mut headers = FieldTable::default();
        for (k, v) in request.metadata.iter().filter(|(k, _)| k.as_str() != contract::state::TTL_IN_SECONDS) {
            headers.insert(k.as_str().into(), AMQPValue::LongString(LongString::from(v.as_bytes())));
        }
        self.send(&request.data, properties.with_headers(headers)).await?;
        Ok(InvokeResponse::default())
    }

    async fn ping(&self) -> Result<()> {
        match self.link.connected().await {
            true => Ok(()),
            false => Err(Error::Backend("rabbitmq: the connection to the broker is not open".into())),
        }
    }
}

#[async_trait]
impl InputBinding for RabbitBinding {
    async fn read(&self, handler: BindingHandler) -> Result<Subscription> {
        let tag = format!("certify-binding-{}", uuid::Uuid::new_v4());
        let (channel, mut consumer) = self.consume(&tag).await?;
        let current = Arc::new(Mutex::new(Some(channel)));
        let (this, live, consumer_tag, queue) =
            (self.clone(), Arc::clone(&current), tag.clone(), self.settings.queue.clone());
        let task = tokio::spawn(async move {
            loop {
                // One event at a time, in queue order, as Dapr's binding handles them.
                while let Some(next) = consumer.next().await {
                    match next {
                        Ok(delivery) => settle(delivery, &handler, &queue).await,
                        Err(e) => {
                            tracing::warn!(%queue, error = %e, "rabbitmq binding: the consumer stopped; reading again once the broker is back");
                            break;
                        }
                    }
                }
                // The connection or channel went away: consume again when the broker is back.
                loop {
                    tokio::time::sleep(RECONNECT_WAIT).await;
                    match this.consume(&consumer_tag).await {
                        Ok((channel, fresh)) => {
                            *live.lock().unwrap_or_else(PoisonError::into_inner) = Some(channel);
                            consumer = fresh;
                            break;
                        }
                        Err(e) => tracing::debug!(%queue, error = %e, "rabbitmq binding: not reading yet"),
                    }
                }
            }
        });
        Ok(Subscription::new(tag.clone(), move || {
            task.abort();
            // Cancel, then close: events not yet acknowledged go back to the queue.
            if let Some(channel) = current.lock().unwrap_or_else(PoisonError::into_inner).take() {
                tokio::spawn(async move {
                    let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                    let _ = channel.close(200, "stopped reading".into()).await;
                });
            }
        }))
    }
}

/// Hands one event to the handler: acknowledged when it succeeded, returned to the queue
/// (after a short delay) when it failed.
async fn settle(delivery: lapin::message::Delivery, handler: &BindingHandler, queue: &str) {
    let event = BindingEvent { data: delivery.data.clone(), metadata: metadata_of(&delivery) };
    let settled = match handler(event).await {
        Ok(_) => delivery.ack(BasicAckOptions::default()).await,
        Err(reason) => {
            tracing::debug!(%queue, %reason, "rabbitmq binding: the handler failed; returning the event");
            tokio::time::sleep(RETURN_DELAY).await;
            delivery.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await
        }
    };
    if let Err(e) = settled {
        tracing::warn!(%queue, error = %e, "rabbitmq binding: settling an event failed; the broker will redeliver");
    }
}
