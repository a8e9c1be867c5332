//! The app certify plays for a sidecar: it declares subscriptions on `GET /dapr/subscribe`
//! (a fixed set of topic slots per pub/sub component, since a sidecar reads them once), takes
//! deliveries, hands them to whichever case holds the topic now, and answers with the case's
//! outcome in the app response contract (SUCCESS, RETRY, DROP, 500, 404).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use contract::Metadata;
use contract::bindings::BindingEvent;
use contract::configuration::{ConfigurationItem, ConfigurationUpdate};
use contract::pubsub::{BulkHandler, Handler, Message, Outcome};
use serde_json::{Value, json};
use suites::bindings::BindingInbox;
use suites::invocation::{ECHO_MODE, ECHO_PREFIX, ECHO_REPLY, ECHO_REPLY_WITH, ECHO_STATUS, Echoed};
use suites::pubsub::{HANDLER_ERROR, NOT_FOUND, TopicSet};

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

/// Where configuration updates for one subscription id go; updates that arrive before the
/// subscriber has its id (the sidecar may send them first) wait here.
enum ConfigSink {
    Waiting(Vec<ConfigurationUpdate>),
    Open(tokio::sync::mpsc::UnboundedSender<ConfigurationUpdate>),
}

#[derive(Default)]
struct Routes {
    by_topic: HashMap<(String, String), Registered>,
    next_token: u64,
    /// By store and subscription id (ids are only unique within a store).
    configuration: HashMap<(String, String), ConfigSink>,
    /// Input bindings by name (their route).
    bindings: HashMap<String, Arc<BindingInbox>>,
}

/// The app: its declared subscriptions and the handlers registered on them now.
#[derive(Clone)]
pub struct App {
    pubsubs: Vec<String>,
    routes: Arc<Mutex<Routes>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("pubsubs", &self.pubsubs).finish()
    }
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
    /// An app declaring topic slots for each of `pubsubs`.
    pub fn new(pubsubs: Vec<String>) -> Self {
        Self { pubsubs, routes: Arc::default() }
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The subscriptions the app declares.
    pub fn declarations(&self) -> Value {
        let mut out = Vec::new();
        for pubsub in &self.pubsubs {
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
        self.pubsubs.iter().any(|p| p == pubsub)
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
        let mut routes = self.routes();
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
        let mut routes = self.routes();
        let key = (pubsub.to_owned(), topic.to_owned());
        if routes.by_topic.get(&key).is_some_and(|r| r.token == token) {
            routes.by_topic.remove(&key);
        }
    }

    /// The next attempt number of `id` on a topic, or `None` when nobody listens there.
    fn attempt(&self, pubsub: &str, topic: &str, id: &str) -> Option<(u32, Receiver)> {
        let mut routes = self.routes();
        let registered = routes.by_topic.get_mut(&(pubsub.to_owned(), topic.to_owned()))?;
        let n = registered.attempts.entry(id.to_owned()).or_insert(0);
        *n += 1;
        let receiver = match &registered.receiver {
            Receiver::Single(h) => Receiver::Single(Arc::clone(h)),
            Receiver::Bulk(h) => Receiver::Bulk(Arc::clone(h)),
        };
        Some((*n, receiver))
    }

    /// Delivers the configuration updates of subscription `id` to `updates`, starting with any
    /// that arrived before. Kept after an unsubscribe, so a sidecar that goes on sending is
    /// seen doing so.
    pub fn register_configuration(
        &self,
        store: &str,
        id: &str,
        updates: tokio::sync::mpsc::UnboundedSender<ConfigurationUpdate>,
    ) {
        let key = (store.to_owned(), id.to_owned());
        let mut routes = self.routes();
        if let Some(ConfigSink::Waiting(early)) = routes.configuration.remove(&key) {
            for update in early {
                let _ = updates.send(update);
            }
        }
        routes.configuration.insert(key, ConfigSink::Open(updates));
    }

    fn configuration_update(&self, store: String, update: ConfigurationUpdate) {
        let mut routes = self.routes();
        let key = (store, update.id.clone());
        match routes.configuration.entry(key).or_insert_with(|| ConfigSink::Waiting(Vec::new())) {
            ConfigSink::Open(tx) => {
                let _ = tx.send(update);
            }
            ConfigSink::Waiting(early) => early.push(update),
        }
    }

    /// Takes the input events of binding `name` (posted to `/{name}`, the binding's default
    /// route) into the returned inbox.
    pub fn add_binding(&self, name: &str) -> Arc<BindingInbox> {
        Arc::clone(self.routes().bindings.entry(name.to_owned()).or_default())
    }

    fn binding(&self, name: &str) -> Option<Arc<BindingInbox>> {
        self.routes().bindings.get(name).cloned()
    }

    /// The app's HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/dapr/subscribe", get(|State(app): State<App>| async move { axum::Json(app.declarations()) }))
            .route("/dapr/config", get(|| async { axum::Json(json!({})) }))
            .route("/certify/{pubsub}/{topic}", post(deliver))
            .route("/configuration/{store}/{key}", post(configuration_update))
            .route("/{binding}", post(binding_event).options(binding_wanted))
            .route(&format!("{ECHO_PREFIX}/{{*method}}"), any(echo))
            .with_state(self.clone())
    }

    /// Serves the app on a free loopback port; it stops when the runtime does.
    pub async fn serve(&self) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        self.serve_on(listener)
    }

    /// Serves the app on `listener`.
    pub fn serve_on(&self, listener: tokio::net::TcpListener) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(addr)
    }
}

/// Configuration items as the Dapr HTTP API writes them: `{key: {value, version, metadata}}`.
pub fn configuration_items(value: &Value) -> std::collections::BTreeMap<String, ConfigurationItem> {
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, item)| {
            let metadata = item
                .get("metadata")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default();
            (key.clone(), ConfigurationItem { value: text(item, "value"), version: text(item, "version"), metadata })
        })
        .collect()
}

/// `POST /configuration/{store}/{key}`: one configuration update from the sidecar.
async fn configuration_update(
    State(app): State<App>,
    Path((store, _key)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    let id = parsed.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let items = configuration_items(parsed.get("items").unwrap_or(&Value::Null));
    app.configuration_update(store, ConfigurationUpdate { id, items });
    StatusCode::OK
}

/// Any call under the echo route: answers with what arrived (or the body itself), with the
/// status and reply header the call asks for.
async fn echo(method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let status = headers
        .get(ECHO_STATUS)
        .and_then(|v| v.to_str().ok()?.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut reply = HeaderMap::new();
    if let Some(v) = headers.get(ECHO_REPLY_WITH) {
        reply.insert(ECHO_REPLY, v.clone());
    }
    if headers.get(ECHO_MODE).is_some_and(|m| m == "body") {
        return (status, reply, body).into_response();
    }
    let mut seen: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for (k, v) in &headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        seen.entry(k.as_str().to_owned()).and_modify(|all| *all = format!("{all}, {v}")).or_insert(v);
    }
    let echoed = Echoed {
        verb: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: seen,
        body_len: body.len(),
    };
    (status, reply, axum::Json(echoed)).into_response()
}

/// `OPTIONS /{binding}`: a sidecar asks whether the app wants a binding's events.
async fn binding_wanted(State(app): State<App>, Path(name): Path<String>) -> StatusCode {
    match app.binding(&name) {
        Some(_) => StatusCode::OK,
        None => StatusCode::NOT_FOUND,
    }
}

/// `POST /{binding}`: one input event.
async fn binding_event(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(inbox) = app.binding(&name) else { return StatusCode::NOT_FOUND };
    match inbox.deliver(BindingEvent { data: body.to_vec(), metadata: header_metadata(&headers) }) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn header_metadata(headers: &HeaderMap) -> Metadata {
    headers
        .iter()
        .filter(|(k, _)| !TRANSPORT_HEADERS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Headers that are transport, not message metadata.
const TRANSPORT_HEADERS: &[&str] =
    &["content-type", "content-length", "host", "user-agent", "accept", "accept-encoding", "connection"];

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
    let mut message = message_of(&topic, &body_id(&body), &parsed, &body, metadata);
    let Some((attempt, receiver)) = app.attempt(&pubsub, &topic, &message.id) else {
        // Nobody holds the topic now: a leftover of an earlier trial; take it off the topic.
        return answer(&Outcome::Success);
    };
    message.attempt = attempt;
    match receiver {
        Receiver::Single(handler) => answer(&handler(message).await),
        Receiver::Bulk(handler) => {
            let id = message.id.clone();
            let outcomes = handler(vec![message]).await;
            let outcome = outcomes.into_iter().find(|(i, _)| *i == id).map(|(_, o)| o);
            answer(&outcome.unwrap_or(Outcome::Retry("no answer".into())))
        }
    }
}

async fn deliver_bulk(app: &App, pubsub: &str, topic: &str, entries: &[Value]) -> Response {
    let mut messages = Vec::new();
    let mut receiver = None;
    for entry in entries {
        let entry_id = entry.get("entryId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let event = entry.get("event").cloned().unwrap_or(Value::Null);
        let metadata: Metadata = entry
            .get("metadata")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
            .unwrap_or_default();
        let mut message = message_of(topic, &entry_id, &event, &[], metadata);
        // Statuses are keyed by entry id.
        message.id = entry_id;
        let Some((attempt, r)) = app.attempt(pubsub, topic, &message.id) else {
            let statuses: Vec<Value> =
                entries.iter().map(|e| json!({"entryId": e.get("entryId"), "status": "SUCCESS"})).collect();
            return axum::Json(json!({ "statuses": statuses })).into_response();
        };
        message.attempt = attempt;
        receiver = Some(r);
        messages.push(message);
    }
    let outcomes: Vec<(String, Outcome)> = match receiver {
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
    };
    let statuses: Vec<Value> =
        outcomes.iter().map(|(id, o)| json!({"entryId": id, "status": status_word(o)})).collect();
    axum::Json(json!({ "statuses": statuses })).into_response()
}
