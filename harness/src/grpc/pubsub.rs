//! Pub/sub through a sidecar's gRPC API: `PublishEvent` and `BulkPublishEvent`, with the trace
//! context as call metadata (as an SDK sends it). Subscriptions are streaming subscriptions
//! (`SubscribeTopicEventsAlpha1`), so no app is involved, or, when certify serves the app on
//! the sidecar's app port, deliveries to the app (over HTTP or `AppCallback`).

use async_trait::async_trait;
use contract::pubsub::{
    BulkHandler, BulkPublishRequest, BulkPublishResponse, BulkSubscribeConfig, FailedEntry, Handler, PublishRequest,
    SubscribeRequest, Subscription,
};
use contract::{FeatureSet, PubSub, PubSubFeature, Result};
use runtime_api::runtime::{self as api, BulkPublishRequestEntry};

use super::{GrpcSidecar, map};
use crate::app::App;
use crate::http::{ConnectError, content_type_of};

/// A pub/sub component reached through a sidecar's gRPC API.
#[derive(Clone)]
pub struct GrpcPubSub {
    sidecar: GrpcSidecar,
    name: String,
    features: FeatureSet<PubSubFeature>,
    /// The app the sidecar delivers to, when subscriptions go through it.
    app: Option<App>,
}

impl std::fmt::Debug for GrpcPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcPubSub").field("name", &self.name).finish()
    }
}

impl GrpcPubSub {
    /// The pub/sub component `name` of `sidecar`.
    pub async fn connect(sidecar: &GrpcSidecar, name: &str) -> std::result::Result<Self, ConnectError> {
        let found = sidecar.find("pubsub", name).await?;
        let features = found.capabilities.iter().filter_map(|c| c.parse::<PubSubFeature>().ok()).collect();
        Ok(Self { sidecar: sidecar.clone(), name: name.to_owned(), features, app: None })
    }

    /// Subscriptions through `app`, which the sidecar delivers to, instead of streams.
    pub fn through(self, app: &App) -> Self {
        Self { app: Some(app.clone()), ..self }
    }
}

#[async_trait]
impl PubSub for GrpcPubSub {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        self.features.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("pubsub", &self.name).await
    }

    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let mut metadata = request.metadata;
        let trace: Vec<(&str, String)> =
            ["traceparent", "tracestate"].into_iter().filter_map(|h| metadata.remove(h).map(|v| (h, v))).collect();
        let call = api::PublishEventRequest {
            pubsub_name: self.name.clone(),
            topic: request.topic.clone(),
            data_content_type: content_type_of(request.content_type.as_deref(), &request.data),
            data: request.data,
            metadata: map(&metadata),
        };
        let mut call = self.sidecar.request(call);
        for (key, value) in trace {
            if let Ok(value) = value.parse() {
                call.metadata_mut().insert(key, value);
            }
        }
        let answer = self.sidecar.client().publish_event(call).await;
        answer.map(drop).map_err(|s| self.sidecar.error(&request.topic, s))
    }

    async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<BulkPublishResponse> {
        let entries = request
            .entries
            .into_iter()
            .map(|e| BulkPublishRequestEntry {
                entry_id: e.entry_id,
                content_type: content_type_of(e.content_type.as_deref(), &e.event),
                event: e.event,
                metadata: map(&e.metadata),
            })
            .collect();
        let call = api::BulkPublishRequest {
            pubsub_name: self.name.clone(),
            topic: request.topic.clone(),
            entries,
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().bulk_publish_event(self.sidecar.request(call)).await;
        let failed = answer.map_err(|s| self.sidecar.error(&request.topic, s))?.into_inner().failed_entries;
        Ok(BulkPublishResponse {
            failed_entries: failed.into_iter().map(|f| FailedEntry { entry_id: f.entry_id, error: f.error }).collect(),
        })
    }

    async fn subscribe(&self, request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        match &self.app {
            Some(app) => crate::app::subscribe_through(app, &self.name, request, handler),
            None => super::streaming::subscribe(&self.sidecar, &self.name, request, handler).await,
        }
    }

    /// The app declares its bulk topics to the sidecar; the streaming subscription delivers one
    /// event at a time: batches are made on this side, as daprd makes them for a component
    /// without native batching.
    async fn bulk_subscribe(
        &self,
        request: SubscribeRequest,
        config: BulkSubscribeConfig,
        handler: BulkHandler,
    ) -> Result<Subscription> {
        if let Some(app) = &self.app {
            return crate::app::bulk_subscribe_through(app, &self.name, request, handler);
        }
        let single = contract::pubsub_batching::batching_handler(config, handler, contract::system_clock());
        self.subscribe(request, single).await
    }
}
