//! Publish routes: single and bulk publish with the CloudEvent envelope (dapr-http-api.md §2.1–2.2).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use contract::pubsub::{BulkMessageEntry, BulkPublishRequest, PublishRequest};
use contract::{Block, Clock, Component, Metadata, PubSub, PubSubFeature, SystemClock};
use serde_json::Value;

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use super::cloudevents::{self, CLOUDEVENT_CONTENT_TYPE, Publication};
use super::request::{Body, json, query_metadata};

type Params = Query<Vec<(String, String)>>;

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    Router::new()
        .route("/v1.0/publish/{pubsub}/{*topic}", post(publish).put(publish))
        .route("/v1.0-alpha1/publish/bulk/{pubsub}/{*topic}", post(bulk_publish).put(bulk_publish))
        .route("/v1.0/publish/bulk/{pubsub}/{*topic}", post(bulk_publish).put(bulk_publish))
}

fn pubsub(sc: &Sidecar, name: &str, topic: &str) -> ApiResult<Arc<dyn PubSub>> {
    if name.is_empty() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "ERR_PUBSUB_EMPTY", "pubsub name is empty"));
    }
    if topic.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
            format!("topic is empty in pubsub {name}"),
        ));
    }
    if !sc.components.has_block(Block::PUBSUB) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "ERR_PUBSUB_NOT_CONFIGURED", "no pubsub is configured"));
    }
    match sc.components.get(name, Block::PUBSUB).and_then(Component::as_pubsub) {
        Some(p) => Ok(Arc::clone(p)),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "ERR_PUBSUB_NOT_FOUND", format!("pubsub {name} is not found"))),
    }
}

pub(crate) fn raw_payload(metadata: &Metadata) -> ApiResult<bool> {
    match metadata.get("rawPayload").map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" || v == "1" || v == "t" => Ok(true),
        Some(v) if v == "false" || v == "0" || v == "f" || v.is_empty() => Ok(false),
        Some(v) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_REQUEST_METADATA",
            format!("metadata property rawPayload should be a boolean, got `{v}`"),
        )),
    }
}

/// When the sidecar itself must stamp an expiration: TTL asked for and the component does not
/// expire messages itself.
pub(crate) fn expiration(p: &dyn PubSub, metadata: &Metadata) -> ApiResult<Option<std::time::SystemTime>> {
    let Some(raw) = metadata.get("ttlInSeconds") else { return Ok(None) };
    let secs: i64 = raw.trim().parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_REQUEST_METADATA",
            format!("metadata ttlInSeconds must be an integer, got `{raw}`"),
        )
    })?;
    if p.features().contains(&PubSubFeature::MessageTtl) || secs < 0 {
        return Ok(None);
    }
    Ok(Some(SystemClock.now() + Duration::from_secs(secs.unsigned_abs())))
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn publish_failed(pubsub: &str, topic: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_PUBSUB_PUBLISH_MESSAGE",
        format!("error when publishing to topic {topic} in pubsub {pubsub}: {e}"),
    )
}

async fn publish(
    State(sc): State<Arc<Sidecar>>,
    Path((name, topic)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    let p = pubsub(&sc, &name, &topic)?;
    let metadata = query_metadata(&q);
    let content_type = header_str(&headers, header::CONTENT_TYPE.as_str());
    let (data, content_type) = if raw_payload(&metadata)? {
        (body.to_vec(), content_type.map(str::to_owned))
    } else {
        let publication = Publication {
            app_id: &sc.config.app_id,
            pubsub: &name,
            topic: &topic,
            content_type,
            body: &body,
            metadata: &metadata,
            traceparent: header_str(&headers, "traceparent"),
            tracestate: header_str(&headers, "tracestate"),
            expiration: expiration(&*p, &metadata)?,
            now: SystemClock.now(),
        };
        let envelope = cloudevents::envelope(&publication).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_PUBSUB_CLOUD_EVENTS_SER", e.to_string())
        })?;
        (envelope, Some(CLOUDEVENT_CONTENT_TYPE.to_owned()))
    };
    let request = PublishRequest { topic: topic.clone(), data, metadata, content_type };
    publish_one(&sc, &*p, &name, request).await.map_err(|e| publish_failed(&name, &topic, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn events_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ERR_PUBSUB_EVENTS_SER", message)
}

/// Turns one bulk entry's `event` into bytes per its content type (dapr-http-api.md §2.2).
fn entry_bytes(entry_id: &str, content_type: &str, event: &Value) -> ApiResult<Vec<u8>> {
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "" => Err(events_error(format!("entry `{entry_id}` has no contentType"))),
        "application/json" | CLOUDEVENT_CONTENT_TYPE => Ok(serde_json::to_vec(event).unwrap_or_default()),
        "application/octet-stream" => match event {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| events_error(format!("entry `{entry_id}`: event is not valid base64: {e}"))),
            _ => {
                Err(events_error(format!("entry `{entry_id}`: application/octet-stream events must be base64 strings")))
            }
        },
        t if t.starts_with("text/") || t == "application/xml" => match event {
            Value::String(s) => Ok(s.clone().into_bytes()),
            _ => Err(events_error(format!("entry `{entry_id}`: {t} events must be JSON strings"))),
        },
        _ => Ok(match event {
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap_or_default(),
        }),
    }
}

async fn bulk_publish(
    State(sc): State<Arc<Sidecar>>,
    Path((name, topic)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    let p = pubsub(&sc, &name, &topic)?;
    let request_md = query_metadata(&q);
    let raw = raw_payload(&request_md)?;
    let entries: Value = json(&body).map_err(|e| events_error(e.message))?;
    let Value::Array(entries) = entries else {
        return Err(events_error("the body must be a JSON array of entries"));
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for entry in &entries {
        let entry_id = entry.get("entryId").and_then(Value::as_str).unwrap_or_default().to_owned();
        if entry_id.is_empty() || !seen.insert(entry_id.clone()) {
            return Err(events_error("entryId is duplicated or not present for entry"));
        }
        let content_type = entry.get("contentType").and_then(Value::as_str).unwrap_or_default().to_owned();
        let event = entry.get("event").cloned().unwrap_or(Value::Null);
        let bytes = entry_bytes(&entry_id, &content_type, &event)?;
        let mut metadata = request_md.clone();
        if let Some(Value::Object(m)) = entry.get("metadata") {
            for (k, v) in m {
                metadata.insert(k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
            }
        }
        let (data, content_type) = if raw {
            (bytes, Some(content_type))
        } else {
            let publication = Publication {
                app_id: &sc.config.app_id,
                pubsub: &name,
                topic: &topic,
                content_type: Some(&content_type),
                body: &bytes,
                metadata: &metadata,
                traceparent: header_str(&headers, "traceparent"),
                tracestate: header_str(&headers, "tracestate"),
                expiration: expiration(&*p, &metadata)?,
                now: SystemClock.now(),
            };
            let envelope = cloudevents::envelope(&publication).map_err(|e| events_error(e.to_string()))?;
            (envelope, Some(CLOUDEVENT_CONTENT_TYPE.to_owned()))
        };
        out.push(BulkMessageEntry { entry_id, event: data, content_type, metadata });
    }
    let failed = publish_entries(&sc, &*p, &name, &topic, out, request_md).await;
    if failed.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let failed_json: Vec<Value> = failed.iter().map(|(id, e)| serde_json::json!({"entryId": id, "error": e})).collect();
    let answer = serde_json::json!({"failedEntries": failed_json, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE"});
    let response: Response =
        (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], answer.to_string())
            .into_response();
    Ok(response)
}

/// Publishes one message to `p` (the component `name`), counted.
pub(crate) async fn publish_one(
    sc: &Sidecar,
    p: &dyn PubSub,
    name: &str,
    request: PublishRequest,
) -> Result<(), contract::Error> {
    let topic = request.topic.clone();
    let published = p.publish(request).await;
    sc.metrics.published(name, &topic, published.is_ok(), 1);
    published
}

/// Publishes `entries` to `topic` of `p` (the component `name`) in one bulk call, or one by one
/// for components without bulk publish (as daprd does); answers the entries that failed, with
/// why.
pub(crate) async fn publish_entries(
    sc: &Sidecar,
    p: &dyn PubSub,
    name: &str,
    topic: &str,
    entries: Vec<BulkMessageEntry>,
    metadata: Metadata,
) -> Vec<(String, String)> {
    let count = entries.len();
    let failed = publish_all(p, topic, entries, metadata).await;
    sc.metrics.published(name, topic, true, count.saturating_sub(failed.len()));
    sc.metrics.published(name, topic, false, failed.len());
    failed
}

async fn publish_all(
    p: &dyn PubSub,
    topic: &str,
    entries: Vec<BulkMessageEntry>,
    metadata: Metadata,
) -> Vec<(String, String)> {
    let entry_ids: Vec<String> = entries.iter().map(|e| e.entry_id.clone()).collect();
    let request = BulkPublishRequest { topic: topic.to_owned(), entries: entries.clone(), metadata };
    match p.bulk_publish(request).await {
        Ok(response) => response.failed_entries.into_iter().map(|f| (f.entry_id, f.error)).collect(),
        Err(contract::Error::Unsupported { .. }) => {
            let mut failed = Vec::new();
            for entry in entries {
                let request = PublishRequest {
                    topic: topic.to_owned(),
                    data: entry.event,
                    metadata: entry.metadata,
                    content_type: entry.content_type,
                };
                if let Err(e) = p.publish(request).await {
                    failed.push((entry.entry_id, e.to_string()));
                }
            }
            failed
        }
        Err(e) => entry_ids.into_iter().map(|id| (id, e.to_string())).collect(),
    }
}
