//! Publishing over gRPC (dapr-grpc-api.md §3.3): the envelope rules are the HTTP API's; the
//! trace context comes from the call's metadata; errors carry daprd's `DAPR_PUBSUB_*` reasons.

use std::collections::HashSet;
use std::sync::Arc;

use contract::pubsub::{BulkMessageEntry, PublishRequest};
use contract::{Block, Clock, Component, Metadata, PubSub, SystemClock};
use runtime_api::runtime::*;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

use super::Answer;
use super::status::{about, rich};
use crate::sidecar::Sidecar;
use crate::sidecar::api_error::ApiError;
use crate::sidecar::cloudevents::{self, CLOUDEVENT_CONTENT_TYPE, Publication};
use crate::sidecar::pubsub_routes::{expiration, publish_entries, publish_one, raw_payload};

fn pubsub(sc: &Sidecar, name: &str, topic: &str) -> Result<Arc<dyn PubSub>, Status> {
    if name.is_empty() {
        return Err(rich(Code::InvalidArgument, "DAPR_PUBSUB_NAME_EMPTY", "pubsub name is empty", &[]));
    }
    if topic.is_empty() {
        let message = format!("topic is empty in pubsub {name}");
        return Err(about(Code::InvalidArgument, "DAPR_PUBSUB_TOPIC_NAME_EMPTY", message, "pubsub", name));
    }
    if !sc.components.has_block(Block::PUBSUB) {
        return Err(rich(Code::FailedPrecondition, "DAPR_PUBSUB_NOT_CONFIGURED", "no pubsub is configured", &[]));
    }
    match sc.components.get(name, Block::PUBSUB).and_then(Component::as_pubsub) {
        Some(p) => Ok(Arc::clone(p)),
        None => {
            let message = format!("pubsub {name} is not found");
            Err(about(Code::InvalidArgument, "DAPR_PUBSUB_NOT_FOUND", message, "pubsub", name))
        }
    }
}

fn bad_metadata(e: ApiError) -> Status {
    rich(Code::InvalidArgument, "DAPR_PUBSUB_METADATA_DESERIALIZATION", e.message, &[])
}

fn text<'m>(metadata: &'m MetadataMap, key: &str) -> Option<&'m str> {
    metadata.get(key).and_then(|v| v.to_str().ok())
}

/// What one event becomes on the topic: as given with `rawPayload`, else its CloudEvent.
struct Event<'a> {
    sc: &'a Sidecar,
    p: &'a dyn PubSub,
    name: &'a str,
    topic: &'a str,
    call: &'a MetadataMap,
}

impl Event<'_> {
    fn encode(
        &self,
        data: &[u8],
        content_type: &str,
        metadata: &Metadata,
    ) -> Result<(Vec<u8>, Option<String>), Status> {
        let content_type = Some(content_type).filter(|c| !c.is_empty());
        if raw_payload(metadata).map_err(bad_metadata)? {
            return Ok((data.to_vec(), content_type.map(str::to_owned)));
        }
        let publication = Publication {
            app_id: &self.sc.config.app_id,
            pubsub: self.name,
            topic: self.topic,
            content_type,
            body: data,
            metadata,
            traceparent: text(self.call, "traceparent"),
            tracestate: text(self.call, "tracestate"),
            expiration: expiration(self.p, metadata).map_err(bad_metadata)?,
            now: SystemClock.now(),
        };
        let envelope = cloudevents::envelope(&publication)
            .map_err(|e| rich(Code::InvalidArgument, "DAPR_PUBSUB_CLOUD_EVENT_CREATION", e.to_string(), &[]))?;
        Ok((envelope, Some(CLOUDEVENT_CONTENT_TYPE.to_owned())))
    }
}

pub(super) async fn publish(sc: &Sidecar, r: Request<PublishEventRequest>) -> Answer<()> {
    let (call, _, r) = r.into_parts();
    let p = pubsub(sc, &r.pubsub_name, &r.topic)?;
    let metadata: Metadata = r.metadata.into_iter().collect();
    let event = Event { sc, p: &*p, name: &r.pubsub_name, topic: &r.topic, call: &call };
    let (data, content_type) = event.encode(&r.data, &r.data_content_type, &metadata)?;
    let request = PublishRequest { topic: r.topic.clone(), data, metadata, content_type };
    publish_one(sc, &*p, &r.pubsub_name, request).await.map_err(|e| {
        let message = format!("error when publishing to topic {} in pubsub {}: {e}", r.topic, r.pubsub_name);
        rich(Code::Internal, "DAPR_PUBSUB_PUBLISH_MESSAGE", message, &[])
    })?;
    Ok(Response::new(()))
}

pub(super) async fn bulk_publish(sc: &Sidecar, r: Request<BulkPublishRequest>) -> Answer<BulkPublishResponse> {
    let (call, _, r) = r.into_parts();
    let p = pubsub(sc, &r.pubsub_name, &r.topic)?;
    let request_md: Metadata = r.metadata.into_iter().collect();
    let event = Event { sc, p: &*p, name: &r.pubsub_name, topic: &r.topic, call: &call };
    let mut seen = HashSet::new();
    let mut entries = Vec::with_capacity(r.entries.len());
    for entry in r.entries {
        if entry.entry_id.is_empty() || !seen.insert(entry.entry_id.clone()) {
            let message = "entryId is duplicated or not present for entry";
            return Err(rich(Code::InvalidArgument, "DAPR_PUBSUB_EVENTS_SER", message, &[]));
        }
        let mut metadata = request_md.clone();
        metadata.extend(entry.metadata);
        let (data, content_type) = event.encode(&entry.event, &entry.content_type, &metadata)?;
        entries.push(BulkMessageEntry { entry_id: entry.entry_id, event: data, content_type, metadata });
    }
    let failed = publish_entries(sc, &*p, &r.pubsub_name, &r.topic, entries, request_md).await;
    let failed_entries =
        failed.into_iter().map(|(entry_id, error)| BulkPublishResponseFailedEntry { entry_id, error }).collect();
    Ok(Response::new(BulkPublishResponse { failed_entries }))
}
