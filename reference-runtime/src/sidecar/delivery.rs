//! Delivery to the app: pub/sub messages (single and bulk) with the app's response contract
//! (SUCCESS, RETRY, DROP; 404 drops; other statuses retry), and input binding events.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use axum::http::{Method, StatusCode};
use contract::bindings::{BindingEvent, BindingHandler};
use contract::pubsub::{BulkHandler, Handler, Message, Outcome, SubscribeRequest, Subscription};
use contract::{Block, Clock, Component, ComponentManifest, Error, InputBinding, SystemClock};
use serde_json::Value;

use super::Sidecar;
use super::cloudevents::{self, CLOUDEVENT_CONTENT_TYPE};
use super::subscriptions::SubscriptionSpec;

/// The event an app sees for a message, or why it cannot be delivered.
pub(crate) fn event_of(spec: &SubscriptionSpec, message: &Message) -> Result<(Value, Vec<u8>), String> {
    if spec.raw_payload() {
        let event = cloudevents::wrap_raw(&spec.pubsub, &spec.topic, &message.data, &message.metadata);
        let bytes = serde_json::to_vec(&event).unwrap_or_default();
        return Ok((event, bytes));
    }
    match serde_json::from_slice::<Value>(&message.data) {
        Ok(event @ Value::Object(_)) => {
            let expired = event
                .get("expiration")
                .and_then(Value::as_str)
                .and_then(|at| humantime::parse_rfc3339_weak(at).ok())
                .is_some_and(|at| at <= SystemClock.now());
            if expired {
                return Err("the event expired before delivery".into());
            }
            // The bytes as they sit in the broker, not re-serialised.
            Ok((event, message.data.clone()))
        }
        _ => {
            Err("the message is not a CloudEvent (a JSON object); subscribe with rawPayload to receive raw messages"
                .into())
        }
    }
}

/// Headers of a delivery: the message metadata, the pub/sub name and the trace context.
fn delivery_headers(spec: &SubscriptionSpec, message: &Message, event: &Value) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = message
        .metadata
        .iter()
        .filter(|(k, _)| !k.starts_with("cloudevent."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.push(("pubsubname".into(), spec.pubsub.clone()));
    // O6: `traceparent`, else `traceid`; a value that is not a string is ignored.
    let field = |key: &str| event.get(key).and_then(Value::as_str).filter(|v| !v.is_empty());
    if let Some(parent) = field("traceparent").or_else(|| field("traceid")) {
        headers.push(("traceparent".into(), parent.into()));
        if let Some(state) = field("tracestate") {
            headers.push(("tracestate".into(), state.into()));
        }
    }
    headers
}

/// The app's answer to one delivery, per the response contract.
fn outcome_of(status: StatusCode, body: &[u8]) -> Outcome {
    if status == StatusCode::NOT_FOUND {
        return Outcome::Drop("the app answered 404".into());
    }
    if !status.is_success() {
        return Outcome::Retry(format!("the app answered {status}"));
    }
    let reply = serde_json::from_slice::<Value>(body).ok();
    match reply.as_ref().and_then(|r| r.get("status")).and_then(Value::as_str).map(str::to_ascii_uppercase) {
        None => Outcome::Success,
        Some(s) if s.is_empty() || s == "SUCCESS" => Outcome::Success,
        Some(s) if s == "DROP" => Outcome::Drop("the app answered DROP".into()),
        Some(s) if s == "RETRY" => Outcome::Retry("the app answered RETRY".into()),
        Some(other) => Outcome::Retry(format!("the app answered the unknown status `{other}`")),
    }
}

async fn deliver_one(sc: &Sidecar, spec: &SubscriptionSpec, message: Message) -> Outcome {
    let _in_flight = sc.in_flight.start();
    let (event, body) = match event_of(spec, &message) {
        Ok(x) => x,
        Err(reason) => return Outcome::Drop(reason),
    };
    let Some(path) = spec.route(&event) else {
        return Outcome::Drop("no routing rule matched the event".into());
    };
    if let Some(app) = sc.grpc_app() {
        return app.deliver(crate::grpc::subscribe::topic_event(spec, &event, path), &message).await;
    }
    let Some(app) = sc.app() else { return Outcome::Retry("no app channel".into()) };
    let headers = delivery_headers(spec, &message, &event);
    match app.post(path, CLOUDEVENT_CONTENT_TYPE, &headers, body).await {
        Ok(r) => outcome_of(r.status, &r.body),
        Err(e) => Outcome::Retry(e),
    }
}

async fn deliver_bulk(sc: &Sidecar, spec: &SubscriptionSpec, messages: Vec<Message>) -> Vec<(String, Outcome)> {
    if sc.app().is_none() && sc.grpc_app().is_none() {
        return messages.into_iter().map(|m| (m.id, Outcome::Retry("no app channel".into()))).collect();
    }
    let _in_flight = sc.in_flight.start();
    let mut outcomes = Vec::new();
    // Entries are grouped by the path their event routes to; each group is one request.
    let mut groups: BTreeMap<String, Vec<(Message, Value)>> = BTreeMap::new();
    for message in messages {
        match event_of(spec, &message) {
            Err(reason) => outcomes.push((message.id, Outcome::Drop(reason))),
            Ok((event, _)) => match spec.route(&event) {
                None => outcomes.push((message.id, Outcome::Drop("no routing rule matched the event".into()))),
                Some(path) => groups.entry(path.to_owned()).or_default().push((message, event)),
            },
        }
    }
    for (path, entries) in groups {
        if let Some(app) = sc.grpc_app() {
            outcomes.extend(deliver_bulk_grpc(app, spec, &path, entries).await);
            continue;
        }
        let Some(app) = sc.app() else { continue };
        let body = serde_json::json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "type": "com.dapr.event.sent.bulk",
            "topic": spec.topic,
            "pubsubname": spec.pubsub,
            "metadata": {},
            "entries": entries.iter().map(|(m, e)| serde_json::json!({
                "entryId": m.id,
                "event": e,
                "metadata": m.metadata,
                "contentType": CLOUDEVENT_CONTENT_TYPE,
            })).collect::<Vec<_>>(),
        });
        let answer = app
            .post(
                &path,
                "application/json",
                &[("pubsubname".into(), spec.pubsub.clone())],
                body.to_string().into_bytes(),
            )
            .await;
        let statuses: BTreeMap<String, String> = match &answer {
            Ok(r) if r.status.is_success() => serde_json::from_slice::<Value>(&r.body)
                .ok()
                .and_then(|v| v.get("statuses").and_then(Value::as_array).cloned())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|s| {
                    Some((s.get("entryId")?.as_str()?.to_owned(), s.get("status")?.as_str()?.to_ascii_uppercase()))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        for (message, _) in entries {
            let outcome = match &answer {
                Err(e) => Outcome::Retry(e.clone()),
                Ok(r) if r.status == StatusCode::NOT_FOUND => Outcome::Drop("the app answered 404".into()),
                Ok(r) if !r.status.is_success() => Outcome::Retry(format!("the app answered {}", r.status)),
                // Unlike single delivery, a missing or empty status means RETRY.
                Ok(_) => match statuses.get(&message.id).map(String::as_str) {
                    Some("SUCCESS") => Outcome::Success,
                    Some("DROP") => Outcome::Drop("the app answered DROP".into()),
                    _ => Outcome::Retry("the app gave this entry no SUCCESS or DROP status".into()),
                },
            };
            outcomes.push((message.id, outcome));
        }
    }
    outcomes
}

/// One batch for one path, to a gRPC app's `OnBulkTopicEvent`.
async fn deliver_bulk_grpc(
    app: &crate::grpc::app_callback::GrpcApp,
    spec: &SubscriptionSpec,
    path: &str,
    entries: Vec<(Message, Value)>,
) -> Vec<(String, Outcome)> {
    use crate::grpc::app_callback::cloud_event_entry;
    let batch = runtime_api::runtime::TopicEventBulkRequest {
        id: uuid::Uuid::new_v4().to_string(),
        entries: entries.iter().map(|(m, e)| cloud_event_entry(&m.id, e, &m.metadata)).collect(),
        metadata: Default::default(),
        topic: spec.topic.clone(),
        pubsub_name: spec.pubsub.clone(),
        r#type: "com.dapr.event.sent.bulk".into(),
        path: path.to_owned(),
    };
    match app.deliver_bulk(batch).await {
        Ok(outcomes) => outcomes,
        Err(e) => entries.into_iter().map(|(m, _)| (m.id, Outcome::Retry(e.clone()))).collect(),
    }
}

/// Subscribes `spec` on its pub/sub component, delivering to the app.
pub(super) async fn subscribe(sc: &Arc<Sidecar>, spec: SubscriptionSpec) -> Result<Subscription, Error> {
    let Some(pubsub) = sc.components.get(&spec.pubsub, Block::PUBSUB).and_then(Component::as_pubsub) else {
        return Err(Error::NotFound { what: format!("pubsub `{}`", spec.pubsub) });
    };
    let request = SubscribeRequest {
        topic: spec.topic.clone(),
        metadata: spec.metadata.clone(),
        dead_letter_topic: spec.dead_letter_topic.clone(),
    };
    // The component's handler holds the sidecar weakly, so a dropped sidecar is not kept alive.
    let weak: Weak<Sidecar> = Arc::downgrade(sc);
    let spec = Arc::new(spec);
    match spec.bulk {
        Some(config) => {
            let s = Arc::clone(&spec);
            let handler: BulkHandler = Arc::new(move |messages: Vec<Message>| {
                let (weak, s) = (weak.clone(), Arc::clone(&s));
                Box::pin(async move {
                    match weak.upgrade() {
                        Some(sc) => {
                            let outcomes = deliver_bulk(&sc, &s, messages).await;
                            for (_, outcome) in &outcomes {
                                sc.metrics.delivered(&s.pubsub, &s.topic, outcome);
                            }
                            outcomes
                        }
                        None => {
                            messages.into_iter().map(|m| (m.id, Outcome::Retry("the sidecar stopped".into()))).collect()
                        }
                    }
                })
            });
            match pubsub.bulk_subscribe(request.clone(), config, Arc::clone(&handler)).await {
                // As daprd: a component without native batching gets the batching adapter.
                Err(Error::Unsupported { .. }) => {
                    let single = contract::pubsub_batching::batching_handler(config, handler, contract::system_clock());
                    pubsub.subscribe(request, single).await
                }
                other => other,
            }
        }
        None => {
            let s = Arc::clone(&spec);
            let handler: Handler = Arc::new(move |message: Message| {
                let (weak, s) = (weak.clone(), Arc::clone(&s));
                Box::pin(async move {
                    match weak.upgrade() {
                        Some(sc) => {
                            let outcome = deliver_one(&sc, &s, message).await;
                            sc.metrics.delivered(&s.pubsub, &s.topic, &outcome);
                            outcome
                        }
                        None => Outcome::Retry("the sidecar stopped".into()),
                    }
                })
            });
            pubsub.subscribe(request, handler).await
        }
    }
}

/// Starts an input binding if the app wants it: `OPTIONS /<route>` answered with 2xx or 405.
pub(super) async fn start_input_binding(
    sc: &Arc<Sidecar>,
    name: &str,
    manifest: &ComponentManifest,
    input: Arc<dyn InputBinding>,
) -> Result<Option<Subscription>, Error> {
    if sc.grpc_app().is_some() {
        // The app listed it in `ListInputBindings`.
        return input.read(grpc_binding_handler(sc, name)).await.map(Some);
    }
    let Some(app) = sc.app() else { return Ok(None) };
    let setting = |field: &str| {
        manifest.metadata.iter().find(|m| m.name.eq_ignore_ascii_case(field)).and_then(|m| match &m.value {
            contract::manifest::MetadataValue::Plain(v) => Some(v.clone()),
            contract::manifest::MetadataValue::SecretRef { .. } => None,
        })
    };
    if setting("direction").is_some_and(|d| d.eq_ignore_ascii_case("output")) {
        return Ok(None);
    }
    let route = setting("route").filter(|r| !r.is_empty()).unwrap_or_else(|| name.to_owned());
    let route = if route.starts_with('/') { route } else { format!("/{route}") };
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    let wanted = match app.call(Method::OPTIONS, &route, headers, Default::default()).await {
        Ok(r) => r.status.is_success() || r.status == StatusCode::METHOD_NOT_ALLOWED,
        Err(e) => {
            tracing::warn!(binding = %name, error = %e, "cannot ask the app about the input binding");
            false
        }
    };
    if !wanted {
        tracing::info!(binding = %name, %route, "the app does not listen for this input binding");
        return Ok(None);
    }
    let weak = Arc::downgrade(sc);
    let handler: BindingHandler = Arc::new(move |event: BindingEvent| {
        let (weak, route) = (weak.clone(), route.clone());
        Box::pin(async move {
            let Some(sc) = weak.upgrade() else { return Err("the sidecar stopped".to_owned()) };
            let Some(app) = sc.app() else { return Err("no app channel".to_owned()) };
            let _in_flight = sc.in_flight.start();
            let headers: Vec<(String, String)> = event.metadata.into_iter().collect();
            match app.post(&route, "application/json", &headers, event.data).await {
                Ok(r) if r.status.is_success() => Ok(r.body.to_vec()),
                Ok(r) => Err(format!("the app answered {}", r.status)),
                Err(e) => Err(e),
            }
        })
    });
    input.read(handler).await.map(Some)
}

/// Input binding events to a gRPC app's `OnBindingEvent`.
fn grpc_binding_handler(sc: &Arc<Sidecar>, name: &str) -> BindingHandler {
    let (weak, name) = (Arc::downgrade(sc), name.to_owned());
    Arc::new(move |event: BindingEvent| {
        let (weak, name) = (weak.clone(), name.clone());
        Box::pin(async move {
            let Some(sc) = weak.upgrade() else { return Err("the sidecar stopped".to_owned()) };
            let Some(app) = sc.grpc_app() else { return Err("no app channel".to_owned()) };
            let _in_flight = sc.in_flight.start();
            app.binding_event(&name, event.data, event.metadata).await
        })
    })
}

/// The JSON an app receives for a configuration update.
pub(super) fn configuration_update_body(update: &contract::configuration::ConfigurationUpdate) -> Value {
    let items: serde_json::Map<String, Value> = update
        .items
        .iter()
        .map(|(k, item)| {
            let mut v = serde_json::Map::new();
            v.insert("value".into(), Value::String(item.value.clone()));
            if !item.version.is_empty() {
                v.insert("version".into(), Value::String(item.version.clone()));
            }
            if !item.metadata.is_empty() {
                v.insert("metadata".into(), serde_json::json!(item.metadata));
            }
            (k.clone(), Value::Object(v))
        })
        .collect();
    serde_json::json!({ "id": update.id, "items": items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_response_contract() {
        let check =
            |status: u16, body: &str| outcome_of(StatusCode::from_u16(status).expect("status"), body.as_bytes());
        assert_eq!(check(200, ""), Outcome::Success);
        assert_eq!(check(200, "not json"), Outcome::Success);
        assert_eq!(check(200, "{}"), Outcome::Success);
        assert_eq!(check(204, r#"{"status":""}"#), Outcome::Success);
        assert_eq!(check(200, r#"{"status":"SUCCESS"}"#), Outcome::Success);
        assert!(matches!(check(200, r#"{"status":"RETRY"}"#), Outcome::Retry(_)));
        assert!(matches!(check(200, r#"{"status":"DROP"}"#), Outcome::Drop(_)));
        assert!(matches!(check(200, r#"{"status":"MAYBE"}"#), Outcome::Retry(_)));
        assert!(matches!(check(404, ""), Outcome::Drop(_)));
        assert!(matches!(check(500, ""), Outcome::Retry(_)));
        assert!(matches!(check(429, r#"{"status":"SUCCESS"}"#), Outcome::Retry(_)));
    }
}
