//! Pub/sub deliveries: `GET /dapr/subscribe` declares a fixed set of topic slots per pub/sub
//! component (a sidecar reads subscriptions once), deliveries go to whichever trial holds the
//! topic now, and the trial's outcome is answered in the app contract (SUCCESS, RETRY, DROP,
//! 500, 404).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use contract::Metadata;
use contract::pubsub::{BulkHandler, CONSUMER_ID, Handler, Message, Outcome, SubscribeRequest, Subscription};
use contract::{Error, Result};
use serde_json::{Value, json};
use suites::pubsub::{HANDLER_ERROR, NOT_FOUND, TopicSet};

use super::{App, header_metadata};

/// Topic sets declared per pub/sub component: how many pub/sub trials run at once over HTTP.
pub const SLOTS: usize = 6;
/// The bulk subscription's batch limits, as the bulk case expects them.
const BULK_MAX_MESSAGES: usize = 5;
const BULK_MAX_AWAIT_MS: u64 = 500;

/// The topic set of slot `slot` of `pubsub`; the same names for every run, so a sidecar
/// started before certify (black-box) subscribes to them too.
pub fn slot_topics(slot: usize, lease: Option<Arc<dyn Send + Sync>>) -> TopicSet {
    TopicSet::named(&format!("certify-slot{slot}"), lease)
}

enum Receiver {
    Single(Handler),
    Bulk(BulkHandler),
}

struct Registered {
    receiver: Receiver,
    /// Deliveries seen per message id: the attempt count as the app observes it.
    attempts: HashMap<String, u32>,
    token: u64,
}

/// The pub/sub part of the app: the components it declares topic slots for, and who holds
/// each topic now.
#[derive(Default)]
pub(crate) struct PubSubRoutes {
    inner: Mutex<Topics>,
}

#[derive(Default)]
struct Topics {
    pubsubs: Vec<String>,
    by_topic: HashMap<(String, String), Registered>,
    next_token: u64,
}

/// Registering a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The topic is not among the declared ones.
    #[error(
        "topic `{topic}` of `{pubsub}` was not declared to the sidecar (it reads an app's subscriptions once, at start; over HTTP only leased topic sets can be subscribed)"
    )]
    Undeclared {
        /// The pub/sub component.
        pubsub: String,
        /// The topic.
        topic: String,
    },
    /// Someone already listens there.
    #[error("topic `{topic}` of `{pubsub}` already has a subscriber in this app (one app is one subscriber)")]
    Taken {
        /// The pub/sub component.
        pubsub: String,
        /// The topic.
        topic: String,
    },
}

impl App {
    fn topics(&self) -> Arc<PubSubRoutes> {
        self.part::<PubSubRoutes>()
    }

    /// Declares topic slots for pub/sub component `name` (before the sidecar reads them).
    pub fn declare_pubsub(&self, name: &str) {
        let routes = self.topics();
        let mut topics = lock(&routes);
        if !topics.pubsubs.iter().any(|p| p == name) {
            topics.pubsubs.push(name.to_owned());
        }
    }

    /// True when some pub/sub component is declared.
    pub fn declares_pubsub(&self) -> bool {
        !lock(&self.topics()).pubsubs.is_empty()
    }

    /// The subscriptions the app declares.
    pub fn declarations(&self) -> Value {
        let mut out = Vec::new();
        for pubsub in &lock(&self.topics()).pubsubs {
            for slot in 0..SLOTS {
                let t = slot_topics(slot, None);
                let route = |topic: &str| format!("/certify/{pubsub}/{topic}");
                out.push(json!({"pubsubname": pubsub, "topic": t.main, "route": route(&t.main), "deadLetterTopic": t.dead_letter}));
                out.push(json!({"pubsubname": pubsub, "topic": t.dead_letter, "route": route(&t.dead_letter)}));
                out.push(json!({"pubsubname": pubsub, "topic": t.other, "route": route(&t.other)}));
                out.push(json!({"pubsubname": pubsub, "topic": t.raw, "route": route(&t.raw), "metadata": {"rawPayload": "true"}}));
                out.push(json!({
                    "pubsubname": pubsub, "topic": t.bulk, "route": route(&t.bulk),
                    "bulkSubscribe": {"enabled": true, "maxMessagesCount": BULK_MAX_MESSAGES, "maxAwaitDurationMs": BULK_MAX_AWAIT_MS},
                }));
            }
        }
        Value::Array(out)
    }

    fn declared(&self, pubsub: &str, topic: &str) -> bool {
        lock(&self.topics()).pubsubs.iter().any(|p| p == pubsub)
            && (0..SLOTS).any(|slot| {
                let t = slot_topics(slot, None);
                [&t.main, &t.dead_letter, &t.other, &t.raw, &t.bulk].iter().any(|n| *n == topic)
            })
    }

    fn register(&self, pubsub: &str, topic: &str, receiver: Receiver) -> Result<u64, RegisterError> {
        let (p, t) = (pubsub.to_owned(), topic.to_owned());
        if !self.declared(pubsub, topic) {
            return Err(RegisterError::Undeclared { pubsub: p, topic: t });
        }
        let routes = self.topics();
        let mut routes = lock(&routes);
        if routes.by_topic.contains_key(&(p.clone(), t.clone())) {
            return Err(RegisterError::Taken { pubsub: p, topic: t });
        }
        routes.next_token += 1;
        let token = routes.next_token;
        routes.by_topic.insert((p, t), Registered { receiver, attempts: HashMap::new(), token });
        Ok(token)
    }

    /// Delivers `topic`'s messages to `handler` until [`App::unregister`].
    pub fn register_handler(&self, pubsub: &str, topic: &str, handler: Handler) -> Result<u64, RegisterError> {
        self.register(pubsub, topic, Receiver::Single(handler))
    }

    /// Delivers `topic`'s batches to `handler` until [`App::unregister`].
    pub fn register_bulk(&self, pubsub: &str, topic: &str, handler: BulkHandler) -> Result<u64, RegisterError> {
        self.register(pubsub, topic, Receiver::Bulk(handler))
    }

    /// Stops delivering to the registration `token` (a later one on the topic stays).
    pub fn unregister(&self, pubsub: &str, topic: &str, token: u64) {
        let routes = self.topics();
        let mut routes = lock(&routes);
        let key = (pubsub.to_owned(), topic.to_owned());
        if routes.by_topic.get(&key).is_some_and(|r| r.token == token) {
            routes.by_topic.remove(&key);
        }
    }

    /// The next attempt number of `id` on a topic, or `None` when nobody listens there.
    fn attempt(&self, pubsub: &str, topic: &str, id: &str) -> Option<(u32, Receiver)> {
        let routes = self.topics();
        let mut routes = lock(&routes);
        let registered = routes.by_topic.get_mut(&(pubsub.to_owned(), topic.to_owned()))?;
        let n = registered.attempts.entry(id.to_owned()).or_insert(0);
        *n += 1;
        let receiver = match &registered.receiver {
            Receiver::Single(h) => Receiver::Single(Arc::clone(h)),
            Receiver::Bulk(h) => Receiver::Bulk(Arc::clone(h)),
        };
        Some((*n, receiver))
    }
}

/// A subscription of `pubsub` served by `app`: the sidecar delivers to the app, which hands
/// the topic's deliveries to `handler` until the subscription closes.
pub(crate) fn subscribe_through(
    app: &App,
    pubsub: &str,
    request: SubscribeRequest,
    handler: Handler,
) -> Result<Subscription> {
    if request.metadata.contains_key(CONSUMER_ID) {
        return Err(Error::unsupported("consumer groups of a case's choosing (one app is one consumer group)"));
    }
    let token = app.register_handler(pubsub, &request.topic, handler).map_err(|e| Error::unsupported(e.to_string()))?;
    let (app, name, topic) = (app.clone(), pubsub.to_owned(), request.topic);
    Ok(Subscription::new(format!("{name}/{topic}"), move || app.unregister(&name, &topic, token)))
}

/// [`subscribe_through`] for bulk deliveries.
pub(crate) fn bulk_subscribe_through(
    app: &App,
    pubsub: &str,
    request: SubscribeRequest,
    handler: BulkHandler,
) -> Result<Subscription> {
    let token = app.register_bulk(pubsub, &request.topic, handler).map_err(|e| Error::unsupported(e.to_string()))?;
    let (app, name, topic) = (app.clone(), pubsub.to_owned(), request.topic);
    Ok(Subscription::new(format!("{name}/{topic}"), move || app.unregister(&name, &topic, token)))
}

fn lock(routes: &PubSubRoutes) -> MutexGuard<'_, Topics> {
    routes.inner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pub/sub routes.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/dapr/subscribe", get(|State(app): State<App>| async move { axum::Json(app.declarations()) }))
        .route("/certify/{pubsub}/{topic}", post(deliver))
}

/// A delivered CloudEvent (or raw body) as the contract's message.
fn message_of(topic: &str, id_fallback: &str, event: &Value, body: &[u8], mut metadata: Metadata) -> Message {
    let Some(fields) = event.as_object() else {
        return Message {
            id: id_fallback.to_owned(),
            topic: topic.to_owned(),
            data: body.to_vec(),
            metadata,
            ..Message::default()
        };
    };
    for (k, v) in fields {
        if let (Some(v), false) = (v.as_str(), k == "data" || k == "data_base64") {
            metadata.insert(format!("cloudevent.{k}"), v.to_owned());
        }
    }
    let data = match (fields.get("data_base64").and_then(Value::as_str), fields.get("data")) {
        (Some(b64), _) => base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default(),
        (None, Some(Value::String(s))) => s.clone().into_bytes(),
        (None, Some(other)) => serde_json::to_vec(other).unwrap_or_default(),
        (None, None) => Vec::new(),
    };
    Message {
        id: fields.get("id").and_then(Value::as_str).unwrap_or(id_fallback).to_owned(),
        topic: fields.get("topic").and_then(Value::as_str).unwrap_or(topic).to_owned(),
        data,
        content_type: fields.get("datacontenttype").and_then(Value::as_str).map(str::to_owned),
        metadata,
        attempt: 0,
    }
}

fn body_id(body: &[u8]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("body-{:016x}", hasher.finish())
}

/// The app's answer to one delivery.
fn answer(outcome: &Outcome) -> Response {
    match outcome {
        Outcome::Success => axum::Json(json!({"status": "SUCCESS"})).into_response(),
        Outcome::Retry(reason) if reason == HANDLER_ERROR => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Outcome::Retry(_) => axum::Json(json!({"status": "RETRY"})).into_response(),
        Outcome::Drop(reason) if reason == NOT_FOUND => StatusCode::NOT_FOUND.into_response(),
        Outcome::Drop(_) => axum::Json(json!({"status": "DROP"})).into_response(),
    }
}

fn status_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "SUCCESS",
        Outcome::Retry(_) => "RETRY",
        Outcome::Drop(_) => "DROP",
    }
}

async fn deliver(
    State(app): State<App>,
    Path((pubsub, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metadata = header_metadata(&headers);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if let Some(entries) = parsed.get("entries").and_then(Value::as_array) {
        return deliver_bulk(&app, &pubsub, &topic, entries).await;
    }
    let message = message_of(&topic, &body_id(&body), &parsed, &body, metadata);
    answer(&app.deliver_message(&pubsub, &topic, message).await)
}

impl App {
    /// Hands one delivery to whoever holds the topic; nobody holding it (a leftover of an
    /// earlier trial) acknowledges it, to take it off the topic. Either protocol's app calls
    /// this.
    pub(super) async fn deliver_message(&self, pubsub: &str, topic: &str, mut message: Message) -> Outcome {
        let Some((attempt, receiver)) = self.attempt(pubsub, topic, &message.id) else {
            return Outcome::Success;
        };
        message.attempt = attempt;
        match receiver {
            Receiver::Single(handler) => handler(message).await,
            Receiver::Bulk(handler) => {
                let id = message.id.clone();
                let outcomes = handler(vec![message]).await;
                let outcome = outcomes.into_iter().find(|(i, _)| *i == id).map(|(_, o)| o);
                outcome.unwrap_or(Outcome::Retry("no answer".into()))
            }
        }
    }

    /// Hands a batch (messages keyed by entry id) to whoever holds the topic; with nobody
    /// there, every entry is acknowledged.
    pub(super) async fn deliver_batch(&self, pubsub: &str, topic: &str, batch: Vec<Message>) -> Vec<(String, Outcome)> {
        let mut messages = Vec::new();
        let mut receiver = None;
        for mut message in batch.iter().cloned() {
            let Some((attempt, r)) = self.attempt(pubsub, topic, &message.id) else {
                return batch.into_iter().map(|m| (m.id, Outcome::Success)).collect();
            };
            message.attempt = attempt;
            receiver = Some(r);
            messages.push(message);
        }
        match receiver {
            Some(Receiver::Bulk(handler)) => handler(messages).await,
            Some(Receiver::Single(handler)) => {
                let mut out = Vec::new();
                for m in messages {
                    let id = m.id.clone();
                    out.push((id, handler(m).await));
                }
                out
            }
            None => Vec::new(),
        }
    }
}

async fn deliver_bulk(app: &App, pubsub: &str, topic: &str, entries: &[Value]) -> Response {
    let messages = entries
        .iter()
        .map(|entry| {
            let entry_id = entry.get("entryId").and_then(Value::as_str).unwrap_or_default().to_owned();
            let event = entry.get("event").cloned().unwrap_or(Value::Null);
            let metadata: Metadata = entry
                .get("metadata")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default();
            // Statuses are keyed by entry id.
            Message { id: entry_id.clone(), ..message_of(topic, &entry_id, &event, &[], metadata) }
        })
        .collect();
    let outcomes = app.deliver_batch(pubsub, topic, messages).await;
    let statuses: Vec<Value> =
        outcomes.iter().map(|(id, o)| json!({"entryId": id, "status": status_word(o)})).collect();
    axum::Json(json!({ "statuses": statuses })).into_response()
}
