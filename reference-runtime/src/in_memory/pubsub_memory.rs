//! `pubsub.in-memory`: the reference broker.
//!
//! Each topic has consumer groups; a message goes to every group (fan-out) and to one
//! subscriber within a group (competing consumers). Within a group, messages with the same
//! `partitionKey` form a lane that is delivered strictly in order: the next message waits
//! until the one before it succeeded, was dropped, or used up its attempts. Messages without a
//! key each get their own lane, so they are delivered concurrently. A group keeps its pending
//! messages while it has no subscriber, like a durable broker subscription.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use async_trait::async_trait;
use contract::clock::SharedClock;
use contract::pubsub::{
    self, BulkHandler, BulkPublishRequest, BulkPublishResponse, BulkSubscribeConfig, Handler, Message, Outcome,
    PublishRequest, SubscribeRequest, Subscription,
};
use contract::pubsub_batching::batching_handler;
use contract::pubsub_delivery;
pub use contract::pubsub_delivery::DeliveryConfig;
use contract::{Error, FeatureSet, PubSub, PubSubFeature, Result};
use futures::FutureExt;

#[derive(Clone)]
struct Envelope {
    message: Message,
    expires_at: Option<SystemTime>,
}

struct Subscriber {
    id: u64,
    handler: Handler,
    dead_letter_topic: Option<String>,
}

#[derive(Default)]
struct Group {
    subscribers: Vec<Subscriber>,
    next_subscriber: usize,
    lanes: HashMap<String, VecDeque<Envelope>>,
    /// Lanes a worker is draining right now.
    active: std::collections::HashSet<String>,
}

type Topics = HashMap<String, BTreeMap<String, Group>>;

struct Broker {
    config: DeliveryConfig,
    clock: SharedClock,
    topics: Mutex<Topics>,
    next_subscription: AtomicU64,
}

/// The in-memory broker.
#[derive(Clone)]
pub struct InMemoryPubSub {
    broker: Arc<Broker>,
}

impl std::fmt::Debug for InMemoryPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryPubSub").field("config", &self.broker.config).finish()
    }
}

impl InMemoryPubSub {
    /// A broker with `config` on `clock`.
    pub fn new(config: DeliveryConfig, clock: SharedClock) -> Self {
        Self {
            broker: Arc::new(Broker {
                config,
                clock,
                topics: Mutex::new(Topics::new()),
                next_subscription: AtomicU64::new(1),
            }),
        }
    }
}

impl Broker {
    fn lock(&self) -> MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(self: &Arc<Self>, request: PublishRequest) -> Result<()> {
        if request.topic.is_empty() {
            return Err(Error::InvalidArgument("the topic must not be empty".into()));
        }
        let expires_at = pubsub_delivery::expiry(&request.metadata, self.clock.now())?;
        let message = Message {
            id: uuid::Uuid::new_v4().to_string(),
            topic: request.topic.clone(),
            data: request.data,
            metadata: request.metadata,
            content_type: request.content_type,
            attempt: 0,
        };
        let lane = message
            .metadata
            .get(pubsub::PARTITION_KEY)
            .map(|k| format!("key:{k}"))
            .unwrap_or_else(|| format!("id:{}", message.id));
        let mut to_start = Vec::new();
        {
            let mut topics = self.lock();
            let Some(groups) = topics.get_mut(&request.topic) else {
                return Ok(()); // Nobody has ever subscribed: there is no one to keep it for.
            };
            for (name, group) in groups.iter_mut() {
                group
                    .lanes
                    .entry(lane.clone())
                    .or_default()
                    .push_back(Envelope { message: message.clone(), expires_at });
                if !group.subscribers.is_empty() && group.active.insert(lane.clone()) {
                    to_start.push(name.clone());
                }
            }
        }
        for group in to_start {
            self.start_lane(request.topic.clone(), group, lane.clone());
        }
        Ok(())
    }

    fn start_lane(self: &Arc<Self>, topic: String, group: String, lane: String) {
        let this = Arc::clone(self);
        tokio::spawn(async move { this.drain_lane(topic, group, lane).await });
    }

    /// Delivers a lane's messages one at a time until it is empty or the group has no
    /// subscriber left.
    async fn drain_lane(self: Arc<Self>, topic: String, group: String, lane: String) {
        loop {
            let next = {
                let mut topics = self.lock();
                let Some(g) = topics.get_mut(&topic).and_then(|gs| gs.get_mut(&group)) else { return };
                let has_subscribers = !g.subscribers.is_empty();
                let front = g.lanes.get_mut(&lane).and_then(|q| q.front_mut()).map(|e| {
                    // Counted on the queued copy, so a redelivery carries the next number.
                    if has_subscribers {
                        e.message.attempt += 1;
                    }
                    e.clone()
                });
                match front {
                    None => {
                        g.lanes.remove(&lane);
                        g.active.remove(&lane);
                        return;
                    }
                    Some(_) if g.subscribers.is_empty() => {
                        // Kept for the next subscriber of this group, which restarts the lane.
                        g.active.remove(&lane);
                        return;
                    }
                    Some(envelope) => {
                        let index = g.next_subscriber % g.subscribers.len();
                        g.next_subscriber = g.next_subscriber.wrapping_add(1);
                        let s = &g.subscribers[index];
                        (envelope, Arc::clone(&s.handler), s.dead_letter_topic.clone())
                    }
                }
            };
            let (envelope, handler, dead_letter) = next;
            let done = self.deliver(envelope, handler, dead_letter.as_deref()).await;
            if done {
                let mut topics = self.lock();
                if let Some(q) =
                    topics.get_mut(&topic).and_then(|gs| gs.get_mut(&group)).and_then(|g| g.lanes.get_mut(&lane))
                {
                    q.pop_front();
                }
            }
        }
    }

    /// One delivery attempt; true when the message is finished with (acked, dropped, expired
    /// or out of attempts), false when it must be delivered again.
    async fn deliver(self: &Arc<Self>, envelope: Envelope, handler: Handler, dead_letter: Option<&str>) -> bool {
        if envelope.expires_at.is_some_and(|at| at <= self.clock.now()) {
            tracing::debug!(id = %envelope.message.id, "message expired before delivery");
            self.dead_letter(&envelope.message, dead_letter);
            return true;
        }
        let attempt = envelope.message.attempt;
        let message = envelope.message.clone();
        // A panicking handler is a failed delivery, not a stuck lane.
        let outcome = AssertUnwindSafe(handler(message))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Outcome::Retry("the handler panicked".into()));
        match outcome {
            Outcome::Success => true,
            Outcome::Drop(reason) => {
                tracing::debug!(id = %envelope.message.id, %reason, "message dropped by handler");
                self.dead_letter(&envelope.message, dead_letter);
                true
            }
            Outcome::Retry(reason) if attempt >= self.config.max_attempts => {
                tracing::warn!(id = %envelope.message.id, %reason, attempt, "delivery attempts used up");
                self.dead_letter(&envelope.message, dead_letter);
                true
            }
            Outcome::Retry(_) => {
                self.clock.sleep(self.config.backoff_after(attempt)).await;
                false
            }
        }
    }

    fn dead_letter(self: &Arc<Self>, message: &Message, topic: Option<&str>) {
        let Some(topic) = topic.filter(|t| !t.is_empty()) else { return };
        let request = PublishRequest {
            topic: topic.to_owned(),
            data: message.data.clone(),
            metadata: message.metadata.clone(),
            content_type: message.content_type.clone(),
        };
        if let Err(e) = self.enqueue(request) {
            tracing::warn!(id = %message.id, error = %e, "dead-lettering failed");
        }
    }

    fn add_subscriber(self: &Arc<Self>, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        if request.topic.is_empty() {
            return Err(Error::InvalidArgument("the topic must not be empty".into()));
        }
        let group =
            request.metadata.get(pubsub::CONSUMER_ID).cloned().unwrap_or_else(|| self.config.default_group.clone());
        let id = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        let idle_lanes: Vec<String> = {
            let mut topics = self.lock();
            let g = topics.entry(request.topic.clone()).or_default().entry(group.clone()).or_default();
            g.subscribers.push(Subscriber { id, handler, dead_letter_topic: request.dead_letter_topic.clone() });
            let idle: Vec<String> = g.lanes.keys().filter(|l| !g.active.contains(*l)).cloned().collect();
            g.active.extend(idle.iter().cloned());
            idle
        };
        for lane in idle_lanes {
            self.start_lane(request.topic.clone(), group.clone(), lane);
        }
        let broker = Arc::downgrade(self);
        let topic = request.topic;
        Ok(Subscription::new(format!("in-memory-{id}"), move || {
            if let Some(broker) = broker.upgrade() {
                let mut topics = broker.lock();
                if let Some(g) = topics.get_mut(&topic).and_then(|gs| gs.get_mut(&group)) {
                    g.subscribers.retain(|s| s.id != id);
                }
            }
        }))
    }
}

#[async_trait]
impl PubSub for InMemoryPubSub {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        [
            PubSubFeature::MessageTtl,
            PubSubFeature::BulkPublish,
            PubSubFeature::BulkSubscribe,
            PubSubFeature::OrderedByKey,
            PubSubFeature::DeadLetter,
        ]
        .into()
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        self.broker.enqueue(request)
    }

    async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        let broker = &self.broker;
        pubsub_delivery::publish_each(request, |one| std::future::ready(broker.enqueue(one))).await
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        self.broker.add_subscriber(request, handler)
    }

    async fn bulk_subscribe(
        &self,
        request: SubscribeRequest,
        config: BulkSubscribeConfig,
        handler: BulkHandler,
    ) -> Result<Subscription> {
        let single = batching_handler(config, handler, self.broker.clock.clone());
        self.broker.add_subscriber(request, single)
    }
}
