//! The streaming subscription `SubscribeTopicEventsAlpha1` (dapr-grpc-api.md §3.4): the
//! client's first message names the topic, the server answers `initial_response` and then
//! streams events, each settled by the client's `event_processed` with its id. A closed stream
//! closes the subscription and makes events in flight retryable; the subscription shows in
//! metadata as `STREAMING` while it lives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use contract::pubsub::{Handler, Message, Outcome, SubscribeRequest};
use contract::{Block, Component};
use runtime_api::runtime::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as In;
use runtime_api::runtime::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Out;
use runtime_api::runtime::*;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tonic::{Code, Request, Response, Status, Streaming};

use super::status::about;
use super::{Answer, Stream};
use crate::sidecar::delivery::event_of;
use crate::sidecar::subscriptions::{Origin, Rule, SubscriptionSpec};
use crate::sidecar::{Sidecar, locked};

type Sent = mpsc::Sender<Result<SubscribeTopicEventsResponseAlpha1, Status>>;
/// Events sent and not yet settled, by id: the client's status for each.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<i32>>>>;

fn initial(
    first: Option<SubscribeTopicEventsRequestAlpha1>,
) -> Result<SubscribeTopicEventsRequestInitialAlpha1, Status> {
    let Some(In::InitialRequest(initial)) = first.and_then(|m| m.subscribe_topic_events_request_type) else {
        return Err(Status::unknown("initial request is required"));
    };
    if initial.pubsub_name.is_empty() {
        return Err(Status::unknown("pubsubName is required"));
    }
    if initial.topic.is_empty() {
        return Err(Status::unknown("topic is required"));
    }
    Ok(initial)
}

pub(super) async fn subscribe(
    sc: &Arc<Sidecar>,
    r: Request<Streaming<SubscribeTopicEventsRequestAlpha1>>,
) -> Answer<Stream<SubscribeTopicEventsResponseAlpha1>> {
    let mut inbound = r.into_inner();
    let initial = initial(inbound.message().await?)?;
    let Some(pubsub) = sc.components.get(&initial.pubsub_name, Block::PUBSUB).and_then(Component::as_pubsub) else {
        let message = format!("pubsub {} is not found", initial.pubsub_name);
        return Err(about(Code::InvalidArgument, "DAPR_PUBSUB_NOT_FOUND", message, "pubsub", &initial.pubsub_name));
    };
    let spec = Arc::new(SubscriptionSpec {
        pubsub: initial.pubsub_name,
        topic: initial.topic,
        rules: vec![Rule { text: String::new(), expr: None, path: String::new() }],
        dead_letter_topic: initial.dead_letter_topic.filter(|t| !t.is_empty()),
        metadata: initial.metadata.into_iter().collect(),
        bulk: None,
        origin: Origin::Streaming,
        scopes: Vec::new(),
    });
    let (tx, rx) = mpsc::channel(64);
    let pending: Pending = Arc::default();
    let request = SubscribeRequest {
        topic: spec.topic.clone(),
        metadata: spec.metadata.clone(),
        dead_letter_topic: spec.dead_letter_topic.clone(),
    };
    // The answer to the initial request goes first: a broker may deliver kept messages as soon
    // as the subscription exists.
    let _ = tx
        .send(Ok(SubscribeTopicEventsResponseAlpha1 {
            subscribe_topic_events_response_type: Some(Out::InitialResponse(
                SubscribeTopicEventsResponseInitialAlpha1 {},
            )),
        }))
        .await;
    let subscription = pubsub
        .subscribe(request, handler(Arc::clone(&spec), tx.clone(), Arc::clone(&pending)))
        .await
        .map_err(|e| Status::internal(format!("failed to subscribe to topic {}: {e}", spec.topic)))?;
    let key = sc.add_stream(SubscriptionSpec::clone(&spec));
    let (sc2, stopped) = (Arc::clone(sc), sc.stopped());
    tokio::spawn(async move {
        tokio::select! {
            () = settle(&mut inbound, &pending, &tx) => {}
            () = stopped => {}
        }
        // The stream is over: nothing more is delivered, and what was in flight is retried.
        drop(subscription);
        pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        sc2.remove_stream(key);
    });
    let stream = futures::StreamExt::take_until(tokio_stream::wrappers::ReceiverStream::new(rx), sc.stopped());
    Ok(Response::new(Box::pin(stream)))
}

/// Reads the client's messages, settling each event by its id, until the stream ends or the
/// client breaks the protocol.
async fn settle(inbound: &mut Streaming<SubscribeTopicEventsRequestAlpha1>, pending: &Pending, tx: &Sent) {
    loop {
        match inbound.message().await {
            Ok(Some(m)) => match m.subscribe_topic_events_request_type {
                Some(In::EventProcessed(done)) => {
                    let status = done.status.map_or(0, |s| s.status);
                    let waiting = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&done.id);
                    if let Some(waiting) = waiting {
                        let _ = waiting.send(status);
                    }
                }
                Some(In::InitialRequest(_)) => {
                    let _ = tx.send(Err(Status::unknown("duplicate initial request received"))).await;
                    return;
                }
                None => {}
            },
            Ok(None) | Err(_) => return,
        }
    }
}

/// Delivers each message on the stream and waits for the client's verdict.
fn handler(spec: Arc<SubscriptionSpec>, tx: Sent, pending: Pending) -> Handler {
    Arc::new(move |message: Message| {
        let (spec, tx, pending) = (Arc::clone(&spec), tx.clone(), Arc::clone(&pending));
        Box::pin(async move {
            let event = match event_of(&spec, &message) {
                Ok((event, _)) => topic_event(&spec, &event, ""),
                Err(reason) => return Outcome::Drop(reason),
            };
            let (settled, verdict) = oneshot::channel();
            {
                let mut pending = pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if pending.contains_key(&event.id) {
                    return Outcome::Retry(format!("an event with id {} is already in flight", event.id));
                }
                pending.insert(event.id.clone(), settled);
            }
            let sent = SubscribeTopicEventsResponseAlpha1 {
                subscribe_topic_events_response_type: Some(Out::EventMessage(event)),
            };
            if tx.send(Ok(sent)).await.is_err() {
                return Outcome::Retry("the subscription stream closed".into());
            }
            match verdict.await.map(topic_event_response::TopicEventResponseStatus::try_from) {
                Ok(Ok(topic_event_response::TopicEventResponseStatus::Success)) => Outcome::Success,
                Ok(Ok(topic_event_response::TopicEventResponseStatus::Drop)) => {
                    Outcome::Drop("the client answered DROP".into())
                }
                Ok(Ok(topic_event_response::TopicEventResponseStatus::Retry)) => {
                    Outcome::Retry("the client answered RETRY".into())
                }
                Ok(Err(_)) => Outcome::Retry("the client answered an unknown status".into()),
                Err(_) => Outcome::Retry("the subscription stream closed before the event was settled".into()),
            }
        })
    })
}

/// A CloudEvent delivered for `spec` on `path` as `TopicEventRequest`.
pub(crate) fn topic_event(spec: &SubscriptionSpec, event: &Value, path: &str) -> TopicEventRequest {
    TopicEventRequest {
        topic: spec.topic.clone(),
        pubsub_name: spec.pubsub.clone(),
        path: path.to_owned(),
        ..topic_event_fields(event)
    }
}

/// A CloudEvent as `TopicEventRequest`: the envelope's fields, its data as bytes, and every
/// other attribute as an extension.
pub(crate) fn topic_event_fields(event: &Value) -> TopicEventRequest {
    let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let data = match (event.get("data_base64").and_then(Value::as_str), event.get("data")) {
        (Some(b64), _) => base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap_or_default(),
        (None, Some(Value::String(s))) => s.clone().into_bytes(),
        (None, Some(Value::Null) | None) => Vec::new(),
        (None, Some(other)) => serde_json::to_vec(other).unwrap_or_default(),
    };
    const ENVELOPE: &[&str] =
        &["id", "source", "type", "specversion", "datacontenttype", "data", "data_base64", "topic", "pubsubname"];
    let extensions = event.as_object().map(|o| prost_types::Struct {
        fields: o
            .iter()
            .filter(|(k, _)| !ENVELOPE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), proto_value(v)))
            .collect(),
    });
    TopicEventRequest {
        id: text("id"),
        source: text("source"),
        r#type: text("type"),
        spec_version: text("specversion"),
        data_content_type: text("datacontenttype"),
        data,
        topic: text("topic"),
        pubsub_name: text("pubsubname"),
        path: String::new(),
        extensions,
    }
}

/// A JSON value as `google.protobuf.Value`.
pub(crate) fn proto_value(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue { values: a.iter().map(proto_value).collect() }),
        Value::Object(o) => Kind::StructValue(prost_types::Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), proto_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

impl Sidecar {
    /// Lists a streaming subscription in metadata; answers its key.
    fn add_stream(&self, spec: SubscriptionSpec) -> u64 {
        let mut streams = locked(&self.streams);
        let key = streams.keys().next_back().map_or(0, |k| k + 1);
        streams.insert(key, spec);
        key
    }

    fn remove_stream(&self, key: u64) {
        locked(&self.streams).remove(&key);
    }
}
