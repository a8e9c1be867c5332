//! Subscriptions over the sidecar's streaming subscription (`SubscribeTopicEventsAlpha1`): no
//! app is needed. Each subscription is one bidirectional stream; every event is handed to the
//! handler as the app would see it (the CloudEvent's data, its attributes as `cloudevent.*`
//! metadata) and settled with the handler's outcome. Closing the subscription closes the
//! stream.

use std::collections::HashMap;
use std::sync::Arc;

use contract::pubsub::{Handler, Message, Outcome, SubscribeRequest, Subscription};
use contract::{Error, Metadata, Result};
use runtime_api::runtime::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as In;
use runtime_api::runtime::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Out;
use runtime_api::runtime::topic_event_response::TopicEventResponseStatus;
use runtime_api::runtime::*;
use runtime_api::tonic::Streaming;
use tokio::sync::mpsc;

use super::GrpcSidecar;

fn initial(pubsub: &str, request: &SubscribeRequest) -> SubscribeTopicEventsRequestAlpha1 {
    let initial = SubscribeTopicEventsRequestInitialAlpha1 {
        pubsub_name: pubsub.to_owned(),
        topic: request.topic.clone(),
        metadata: request.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        dead_letter_topic: request.dead_letter_topic.clone(),
    };
    SubscribeTopicEventsRequestAlpha1 { subscribe_topic_events_request_type: Some(In::InitialRequest(initial)) }
}

fn processed(id: String, outcome: &Outcome) -> SubscribeTopicEventsRequestAlpha1 {
    let status = match outcome {
        Outcome::Success => TopicEventResponseStatus::Success,
        Outcome::Retry(_) => TopicEventResponseStatus::Retry,
        Outcome::Drop(_) => TopicEventResponseStatus::Drop,
    };
    let done =
        SubscribeTopicEventsRequestProcessedAlpha1 { id, status: Some(TopicEventResponse { status: status as i32 }) };
    SubscribeTopicEventsRequestAlpha1 { subscribe_topic_events_request_type: Some(In::EventProcessed(done)) }
}

/// An event as a handler receives it (the CloudEvent's data, its attributes as `cloudevent.*`
/// metadata), whichever way it came: a streaming subscription or the app's `OnTopicEvent`.
/// Its attempt is the caller's to count.
pub(crate) fn event_message(event: TopicEventRequest) -> Message {
    let mut metadata = Metadata::new();
    for (key, value) in [
        ("id", &event.id),
        ("source", &event.source),
        ("type", &event.r#type),
        ("specversion", &event.spec_version),
        ("datacontenttype", &event.data_content_type),
        ("topic", &event.topic),
        ("pubsubname", &event.pubsub_name),
    ] {
        if !value.is_empty() {
            metadata.insert(format!("cloudevent.{key}"), value.clone());
        }
    }
    for (key, value) in event.extensions.map(|s| s.fields).unwrap_or_default() {
        if let Some(runtime_api::prost_types::value::Kind::StringValue(text)) = value.kind {
            metadata.insert(format!("cloudevent.{key}"), text);
        }
    }
    Message {
        id: event.id,
        topic: event.topic,
        data: event.data,
        content_type: Some(event.data_content_type).filter(|c| !c.is_empty()),
        metadata,
        attempt: 0,
    }
}

/// An event as the handler receives it; `attempts` counts what this stream saw of each id.
fn message_of(event: TopicEventRequest, attempts: &mut HashMap<String, u32>) -> Message {
    let attempt = attempts.entry(event.id.clone()).or_default();
    *attempt += 1;
    Message { attempt: *attempt, ..event_message(event) }
}

/// Subscribes to `request.topic` of `pubsub` over a stream of its own.
pub(super) async fn subscribe(
    sidecar: &GrpcSidecar,
    pubsub: &str,
    request: SubscribeRequest,
    handler: Handler,
) -> Result<Subscription> {
    let (tx, rx) = mpsc::channel(16);
    let _ = tx.send(initial(pubsub, &request)).await;
    let call = sidecar.request(tokio_stream::wrappers::ReceiverStream::new(rx));
    let answer = sidecar.client().subscribe_topic_events_alpha1(call).await;
    let mut events = answer.map_err(|s| sidecar.error(&request.topic, s))?.into_inner();
    match events.message().await.map_err(|s| sidecar.error(&request.topic, s))? {
        Some(SubscribeTopicEventsResponseAlpha1 {
            subscribe_topic_events_response_type: Some(Out::InitialResponse(_)),
        }) => {}
        other => {
            let why = format!("the subscription stream must open with `initial_response`, it sent {other:?}");
            return Err(Error::Backend(why));
        }
    }
    let task = tokio::spawn(settle(events, tx, handler));
    let id = format!("{pubsub}/{}", request.topic);
    Ok(Subscription::new(id, move || task.abort()))
}

/// Hands each event to the handler and answers with its outcome, until the stream ends. Events
/// are handled concurrently, as the sidecar sends them (a batching handler needs several at
/// once); the sidecar keeps per-key order by waiting for each verdict.
async fn settle(
    mut events: Streaming<SubscribeTopicEventsResponseAlpha1>,
    tx: mpsc::Sender<SubscribeTopicEventsRequestAlpha1>,
    handler: Handler,
) {
    let mut attempts = HashMap::new();
    let mut handling = tokio::task::JoinSet::new();
    loop {
        let event = match events.message().await {
            Ok(Some(SubscribeTopicEventsResponseAlpha1 {
                subscribe_topic_events_response_type: Some(Out::EventMessage(e)),
            })) => e,
            Ok(Some(_)) => continue,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(%status, "the subscription stream ended");
                return;
            }
        };
        let (id, message) = (event.id.clone(), message_of(event, &mut attempts));
        let (tx, handler) = (tx.clone(), Arc::clone(&handler));
        handling.spawn(async move {
            let outcome = handler(message).await;
            let _ = tx.send(processed(id, &outcome)).await;
        });
        while handling.try_join_next().is_some() {}
    }
}
