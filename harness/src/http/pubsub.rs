//! Pub/sub through a sidecar: the contract's `PubSub` over its publish API, with subscriptions
//! served by the app certify plays ([`crate::app`]), and the pool of topic sets trials lease.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use base64::Engine;
use contract::pubsub::{
    BulkHandler, BulkPublishRequest, BulkPublishResponse, BulkSubscribeConfig, FailedEntry, Handler, PublishRequest,
    SubscribeRequest, Subscription,
};
use contract::{Error, FeatureSet, PubSub, PubSubFeature, Result};
use serde_json::{Value, json};
use suites::pubsub::{TopicSet, TopicSource};

use super::{ConnectError, SidecarClient};
use crate::app::{App, SLOTS, bulk_subscribe_through, slot_topics, subscribe_through};

/// A pub/sub component reached through a sidecar; deliveries come to `app`.
#[derive(Clone)]
pub struct HttpPubSub {
    sidecar: SidecarClient,
    name: String,
    app: App,
    features: FeatureSet<PubSubFeature>,
}

impl std::fmt::Debug for HttpPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPubSub").field("name", &self.name).finish()
    }
}

impl HttpPubSub {
    /// Connects to the sidecar at `base` and its pub/sub component `name`.
    pub async fn connect(
        base: &str,
        name: &str,
        token: Option<String>,
        app: App,
    ) -> std::result::Result<Self, ConnectError> {
        let (sidecar, found) = SidecarClient::find(base, "pubsub", name, token).await?;
        let features = found["capabilities"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str()?.parse::<PubSubFeature>().ok())
            .collect();
        Ok(Self { sidecar, name: name.to_owned(), app, features })
    }

    fn text_like(content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        essence.starts_with("text/") || essence == "application/json"
    }
}

/// The content type to send `data` with when the request names none.
pub(crate) fn content_type_of(request_type: Option<&str>, data: &[u8]) -> String {
    match request_type {
        Some(t) => t.to_owned(),
        None if std::str::from_utf8(data).is_ok() => "text/plain".into(),
        None => "application/octet-stream".into(),
    }
}

#[async_trait]
impl PubSub for HttpPubSub {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        self.features.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("pubsub", &self.name).await
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let mut metadata = request.metadata.clone();
        // The trace context travels as a header, as an app's SDK sends it.
        let trace: Vec<(&str, String)> =
            ["traceparent", "tracestate"].into_iter().filter_map(|h| metadata.remove(h).map(|v| (h, v))).collect();
        let path = format!(
            "/v1.0/publish/{}/{}{}",
            super::encode(&self.name),
            super::encode(&request.topic),
            super::query_string(&metadata, &[])
        );
        let content_type = content_type_of(request.content_type.as_deref(), &request.data);
        let mut builder = self.sidecar.post(&path).header("content-type", content_type).body(request.data);
        for (header, value) in trace {
            builder = builder.header(header, value);
        }
        let response = self.sidecar.send(builder).await?;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(self.sidecar.error(&request.topic, response).await),
        }
    }

    async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        let entries: Vec<Value> = request
            .entries
            .iter()
            .map(|e| {
                let content_type = content_type_of(e.content_type.as_deref(), &e.event);
                let event = if Self::text_like(&content_type) && content_type.starts_with("text/") {
                    json!(String::from_utf8_lossy(&e.event))
                } else if content_type == "application/json" {
                    serde_json::from_slice(&e.event).unwrap_or_else(|_| json!(String::from_utf8_lossy(&e.event)))
                } else {
                    json!(base64::engine::general_purpose::STANDARD.encode(&e.event))
                };
                json!({"entryId": e.entry_id, "event": event, "contentType": content_type, "metadata": e.metadata})
            })
            .collect();
        let path = format!(
            "/v1.0-alpha1/publish/bulk/{}/{}{}",
            super::encode(&self.name),
            super::encode(&request.topic),
            super::query_string(&request.metadata, &[])
        );
        let response = self.sidecar.send(self.sidecar.post(&path).json(&entries)).await?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(BulkPublishResponse::default());
        }
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match body.get("failedEntries").and_then(Value::as_array) {
            Some(failed) if status == 500 => Ok(BulkPublishResponse {
                failed_entries: failed
                    .iter()
                    .map(|f| FailedEntry {
                        entry_id: f["entryId"].as_str().unwrap_or_default().to_owned(),
                        error: f["error"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect(),
            }),
            _ => Err(match status {
                400 => Error::InvalidArgument(format!("{status}: {text}")),
                _ => Error::Backend(format!("{status}: {text}")),
            }),
        }
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        subscribe_through(&self.app, &self.name, request, handler)
    }

    async fn bulk_subscribe(
        &self,
        request: SubscribeRequest,
        _config: BulkSubscribeConfig,
        handler: BulkHandler,
    ) -> Result<Subscription> {
        bulk_subscribe_through(&self.app, &self.name, request, handler)
    }
}

/// The topic sets the app declared for one pub/sub component; a trial holds one at a time.
#[derive(Debug)]
pub struct TopicPool {
    free: Arc<Mutex<Vec<usize>>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Default for TopicPool {
    fn default() -> Self {
        Self {
            free: Arc::new(Mutex::new((0..SLOTS).rev().collect())),
            permits: Arc::new(tokio::sync::Semaphore::new(SLOTS)),
        }
    }
}

struct Lease {
    slot: usize,
    free: Arc<Mutex<Vec<usize>>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.free.lock().unwrap_or_else(PoisonError::into_inner).push(self.slot);
    }
}

#[async_trait]
impl TopicSource for TopicPool {
    async fn lease(&self, _namespace: &str) -> std::result::Result<TopicSet, String> {
        let permit = Arc::clone(&self.permits).acquire_owned().await.map_err(|e| e.to_string())?;
        let slot = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or("no free topic set although a permit was granted")?;
        let lease = Lease { slot, free: Arc::clone(&self.free), _permit: permit };
        Ok(slot_topics(slot, Some(Arc::new(lease))))
    }
}
