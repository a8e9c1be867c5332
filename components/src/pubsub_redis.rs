//! `pubsub.redis`: pub/sub on Redis Streams, with Dapr's metadata names (`redisHost`,
//! `redisPassword`, `redisUsername`, `redisDB`, `consumerID`, `maxLenApprox`) and the shared
//! delivery settings (`maxDeliveryAttempts`, `redeliveryBackoff`, `maxRedeliveryBackoff`).
//!
//! A topic is a stream; a consumer group is a Redis consumer group, created at the stream's
//! end on first subscribe (a new group does not replay history) and kept while nobody reads,
//! so messages wait for the group's next subscriber. Each subscription is one consumer. A
//! message is acknowledged (`XACK`) only after its handler succeeded, was dropped or used up
//! its attempts; a retried one stays pending and is claimed again (`XPENDING` for its delivery
//! count, then `XCLAIM`) once it has been idle for its backoff, so the attempt count is Redis's
//! own delivery counter. Entries carry `data`, `contentType`, `expiresAt` and `meta.*` fields.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use contract::pubsub::{
    BulkHandler, BulkPublishRequest, BulkPublishResponse, BulkSubscribeConfig, CONSUMER_ID, Handler, Message,
    PublishRequest, SubscribeRequest, Subscription,
};
use contract::pubsub_batching::batching_handler;
use contract::pubsub_delivery::{self, DeliveryConfig, Settle};
use contract::{Error, FeatureSet, Metadata, MetadataError, Properties, PubSub, PubSubFeature, Result, system_clock};
use redis::Value;
use redis::aio::{ConnectionManager, MultiplexedConnection};

use crate::state_redis::{RedisSettings, backend, open};

/// How long one blocking read waits for new entries before looking again.
const READ_BLOCK_MS: u64 = 500;
/// Entries read or claimed at once.
const BATCH: usize = 32;
/// Handlers running at once per subscription.
const IN_FLIGHT: usize = 64;

/// Settings of the Redis Streams broker.
#[derive(Debug, Clone)]
pub struct RedisPubSubSettings {
    /// How to reach Redis.
    pub redis: RedisSettings,
    /// Attempts and backoff.
    pub delivery: DeliveryConfig,
    /// `maxLenApprox`: streams are trimmed to about this many entries.
    pub max_len: Option<u64>,
}

impl RedisPubSubSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        Ok(Self {
            redis: RedisSettings::from_properties(p)?,
            delivery: DeliveryConfig::from_properties(p)?,
            max_len: p.parse::<u64>("maxLenApprox")?,
        })
    }
}

/// The Redis Streams broker.
#[derive(Clone)]
pub struct RedisPubSub {
    client: redis::Client,
    conn: ConnectionManager,
    settings: RedisPubSubSettings,
}

impl std::fmt::Debug for RedisPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPubSub").field("host", &self.settings.redis.host).finish()
    }
}

/// The stream fields of a message.
fn fields_of(request: &PublishRequest, expires_at: Option<SystemTime>) -> Vec<(String, Vec<u8>)> {
    let mut fields = vec![("data".to_owned(), request.data.clone())];
    if let Some(ct) = &request.content_type {
        fields.push(("contentType".into(), ct.clone().into_bytes()));
    }
    if let Some(at) = expires_at {
        fields.push(("expiresAt".into(), pubsub_delivery::unix_millis(at).to_string().into_bytes()));
    }
    for (k, v) in &request.metadata {
        fields.push((format!("meta.{k}"), v.clone().into_bytes()));
    }
    fields
}

/// A stream entry: its id and its message, with its expiry.
struct Entry {
    id: String,
    message: Message,
    expires_at_ms: Option<u64>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn entry_of(topic: &str, v: &Value) -> Option<Entry> {
    let Value::Array(parts) = v else { return None };
    let id = text(parts.first()?)?;
    let Some(Value::Array(kv)) = parts.get(1) else { return None };
    let mut message = Message { id: id.clone(), topic: topic.to_owned(), ..Message::default() };
    let mut metadata = Metadata::new();
    let mut expires_at_ms = None;
    for pair in kv.chunks(2) {
        let (Some(k), Some(Value::BulkString(value))) = (pair.first().and_then(text), pair.get(1)) else { continue };
        match k.as_str() {
            "data" => message.data = value.clone(),
            "contentType" => message.content_type = Some(String::from_utf8_lossy(value).into_owned()),
            "expiresAt" => expires_at_ms = String::from_utf8_lossy(value).parse().ok(),
            other => {
                if let Some(name) = other.strip_prefix("meta.") {
                    metadata.insert(name.to_owned(), String::from_utf8_lossy(value).into_owned());
                }
            }
        }
    }
    message.metadata = metadata;
    Some(Entry { id, message, expires_at_ms })
}

/// The entries of an `XCLAIM` reply: `[[id, [field, value, …]], …]`.
fn claimed_entries(topic: &str, reply: &Value) -> Vec<Entry> {
    let Value::Array(list) = reply else { return Vec::new() };
    list.iter().filter_map(|e| entry_of(topic, e)).collect()
}

/// The entries of an `XREADGROUP` reply on one stream: `[[stream, [entries]]]`, or nil.
fn read_entries(topic: &str, reply: &Value) -> Vec<Entry> {
    let Value::Array(streams) = reply else { return Vec::new() };
    streams
        .iter()
        .filter_map(|s| match s {
            Value::Array(pair) if pair.len() == 2 => Some(claimed_entries(topic, &pair[1])),
            _ => None,
        })
        .flatten()
        .collect()
}

impl RedisPubSub {
    /// Connects and checks Redis answers.
    pub async fn connect(settings: RedisPubSubSettings) -> Result<Self> {
        let (client, conn) = open(&settings.redis).await?;
        Ok(Self { client, conn, settings })
    }

    async fn add(&self, topic: &str, fields: &[(String, Vec<u8>)]) -> Result<()> {
        if topic.is_empty() {
            return Err(Error::InvalidArgument("the topic must not be empty".into()));
        }
        let mut cmd = redis::cmd("XADD");
        cmd.arg(topic);
        if let Some(n) = self.settings.max_len {
            cmd.arg("MAXLEN").arg("~").arg(n);
        }
        cmd.arg("*");
        for (k, v) in fields {
            cmd.arg(k).arg(v.as_slice());
        }
        let mut conn = self.conn.clone();
        cmd.query_async::<String>(&mut conn).await.map(|_| ()).map_err(backend)
    }

    async fn reader(&self) -> Result<MultiplexedConnection> {
        // Blocking reads get their own connection: a BLOCK would stall every other command
        // multiplexed on a shared one.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.settings.redis.timeout))
            .set_response_timeout(Some(self.settings.redis.timeout + Duration::from_millis(READ_BLOCK_MS)));
        self.client.get_multiplexed_async_connection_with_config(&config).await.map_err(backend)
    }
}

/// One subscription: a consumer in a group.
struct Consumer {
    topic: String,
    group: String,
    name: String,
    dead_letter: Option<String>,
    handler: Handler,
    broker: RedisPubSub,
    in_flight: Mutex<HashSet<String>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Consumer {
    fn claim_in_flight(&self, id: &str) -> bool {
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned())
    }

    /// Reads new entries until the subscription is closed; a lost connection is reopened.
    async fn read_loop(self: Arc<Self>) {
        let mut conn = None;
        loop {
            if conn.is_none() {
                match self.broker.reader().await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, error = %e, "redis pubsub: cannot open a reader; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let reply: redis::RedisResult<Value> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&self.group)
                .arg(&self.name)
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(READ_BLOCK_MS)
                .arg("STREAMS")
                .arg(&self.topic)
                .arg(">")
                .query_async(c)
                .await;
            match reply {
                Ok(reply) => {
                    for entry in read_entries(&self.topic, &reply) {
                        self.spawn(entry, 1).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(topic = %self.topic, error = %e, "redis pubsub: read failed; reconnecting");
                    if e.to_string().contains("NOGROUP") {
                        // The stream or group was deleted under us: make them again.
                        let _ = create_group(&self.broker, &self.topic, &self.group).await;
                    }
                    conn = None;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Claims entries that waited out their backoff (theirs or a closed consumer's).
    async fn reclaim_loop(self: Arc<Self>) {
        let delivery = &self.broker.settings.delivery;
        let tick = (delivery.backoff / 2).clamp(Duration::from_millis(10), Duration::from_millis(500));
        loop {
            tokio::time::sleep(tick).await;
            if let Err(e) = self.reclaim_once().await {
                tracing::warn!(topic = %self.topic, error = %e, "redis pubsub: reclaiming failed");
            }
        }
    }

    async fn reclaim_once(self: &Arc<Self>) -> Result<()> {
        let delivery = &self.broker.settings.delivery;
        let min_idle = delivery.backoff.as_millis() as u64;
        let mut conn = self.broker.conn.clone();
        let pending: Value = redis::cmd("XPENDING")
            .arg(&self.topic)
            .arg(&self.group)
            .arg("IDLE")
            .arg(min_idle)
            .arg("-")
            .arg("+")
            .arg(BATCH)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let Value::Array(rows) = pending else { return Ok(()) };
        for row in rows {
            let Value::Array(cols) = row else { continue };
            let (Some(id), Some(idle), Some(count)) = (
                cols.first().and_then(text),
                cols.get(2).and_then(text).and_then(|s| s.parse::<u64>().ok()),
                cols.get(3).and_then(text).and_then(|s| s.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let wait = delivery.backoff_after(count).as_millis() as u64;
            if idle < wait || self.in_flight.lock().unwrap_or_else(PoisonError::into_inner).contains(&id) {
                continue;
            }
            // The idle condition again in XCLAIM, so two consumers never both claim it.
            let claimed: Value = redis::cmd("XCLAIM")
                .arg(&self.topic)
                .arg(&self.group)
                .arg(&self.name)
                .arg(wait)
                .arg(&id)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            let entries = claimed_entries(&self.topic, &claimed);
            if entries.is_empty() {
                // Trimmed away or deleted: nothing left to deliver.
                let _: redis::RedisResult<i64> =
                    redis::cmd("XACK").arg(&self.topic).arg(&self.group).arg(&id).query_async(&mut conn).await;
            }
            for entry in entries {
                self.spawn(entry, count + 1).await;
            }
        }
        Ok(())
    }

    async fn spawn(self: &Arc<Self>, mut entry: Entry, attempt: u32) {
        if !self.claim_in_flight(&entry.id) {
            return;
        }
        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else { return };
        entry.message.attempt = attempt;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _permit = permit;
            let id = entry.id.clone();
            if let Err(e) = this.deliver(entry).await {
                tracing::warn!(topic = %this.topic, %id, error = %e, "redis pubsub: settling a delivery failed");
            }
            this.in_flight.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        });
    }

    async fn deliver(&self, entry: Entry) -> Result<()> {
        let delivery = &self.broker.settings.delivery;
        let settle = if pubsub_delivery::expired(entry.expires_at_ms, SystemTime::now()) {
            Settle::DeadLetter
        } else {
            let attempt = entry.message.attempt;
            let outcome = pubsub_delivery::handle(&self.handler, entry.message.clone()).await;
            delivery.settle(&outcome, attempt)
        };
        match settle {
            // Stays pending; the reclaimer delivers it again after its backoff.
            Settle::Redeliver(_) => return Ok(()),
            Settle::DeadLetter => {
                if let Some(dlq) = &self.dead_letter {
                    let request = PublishRequest {
                        topic: dlq.clone(),
                        data: entry.message.data,
                        metadata: entry.message.metadata,
                        content_type: entry.message.content_type,
                    };
                    self.broker.add(dlq, &fields_of(&request, None)).await?;
                }
            }
            Settle::Ack => {}
        }
        let mut conn = self.broker.conn.clone();
        redis::cmd("XACK")
            .arg(&self.topic)
            .arg(&self.group)
            .arg(&entry.id)
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(backend)
    }
}

async fn create_group(broker: &RedisPubSub, topic: &str, group: &str) -> Result<()> {
    let mut conn = broker.conn.clone();
    let created: redis::RedisResult<String> =
        redis::cmd("XGROUP").arg("CREATE").arg(topic).arg(group).arg("$").arg("MKSTREAM").query_async(&mut conn).await;
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.to_string().contains("BUSYGROUP") => Ok(()),
        Err(e) => Err(backend(e)),
    }
}

#[async_trait]
impl PubSub for RedisPubSub {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        [PubSubFeature::MessageTtl, PubSubFeature::BulkPublish, PubSubFeature::BulkSubscribe, PubSubFeature::DeadLetter]
            .into()
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(backend)
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let expires_at = pubsub_delivery::expiry(&request.metadata, SystemTime::now())?;
        self.add(&request.topic, &fields_of(&request, expires_at)).await
    }

    async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        pubsub_delivery::publish_each(request, |one| self.publish(one)).await
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        if request.topic.is_empty() {
            return Err(Error::InvalidArgument("the topic must not be empty".into()));
        }
        let group =
            request.metadata.get(CONSUMER_ID).cloned().unwrap_or_else(|| self.settings.delivery.default_group.clone());
        create_group(self, &request.topic, &group).await?;
        let consumer = Arc::new(Consumer {
            topic: request.topic.clone(),
            group,
            name: uuid::Uuid::new_v4().to_string(),
            dead_letter: request.dead_letter_topic.clone().filter(|d| !d.is_empty()),
            handler,
            broker: self.clone(),
            in_flight: Mutex::new(HashSet::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT)),
        });
        let reader = tokio::spawn(Arc::clone(&consumer).read_loop());
        let reclaimer = tokio::spawn(Arc::clone(&consumer).reclaim_loop());
        Ok(Subscription::new(format!("redis-{}", consumer.name), move || {
            reader.abort();
            reclaimer.abort();
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
