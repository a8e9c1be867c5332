//! Brokers: in-process as built (topics named after each trial), over HTTP through the sidecar's
//! publish API with certify as the subscribing app (topics leased from the slots the app
//! declares), over the Dapr gRPC API with streaming subscriptions (topics named after each
//! trial) or, when certify serves the app, deliveries to it (leased topics again), over the
//! pluggable `PubSub` service.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Parts, PubSub as Broker, PubSubFeature};
use suites::Claim;
use suites::pubsub::{AppDeliveries, TopicSource};

use super::{BlockDriver, GrpcLink, HttpLink, PluggableSocket};
use crate::app::App;
use crate::grpc::GrpcPubSub;
use crate::http::{ConnectError, HttpPubSub, TopicPool};

/// The pub/sub block.
pub(super) struct PubSub;

#[async_trait]
impl BlockDriver for PubSub {
    fn block(&self) -> Block {
        Block::PUBSUB
    }

    fn declare(&self, app: &App, name: &str, _: Option<&Component>) -> bool {
        app.declare_pubsub(name);
        true
    }

    async fn http(
        &self,
        link: &HttpLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let broker = HttpPubSub::connect(link.url, name, link.token.clone(), link.app.clone()).await;
        Some(broker.map(|b| {
            Parts::default()
                .with(Arc::new(b) as Arc<dyn Broker>)
                .with(Arc::new(TopicPool::default()) as Arc<dyn TopicSource>)
                .with(Arc::new(AppDeliveries))
        }))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let broker = GrpcPubSub::connect(link.sidecar, name).await;
        if link.app_delivers {
            // Through the app: topics leased from the slots it declares, as over HTTP.
            return Some(broker.map(|b| {
                Parts::default()
                    .with(Arc::new(b.through(link.app)) as Arc<dyn Broker>)
                    .with(Arc::new(TopicPool::default()) as Arc<dyn TopicSource>)
                    .with(Arc::new(AppDeliveries))
            }));
        }
        // Streaming subscriptions: topics are named after each trial, as in-process.
        Some(super::one(broker.map(|b| Arc::new(b) as Arc<dyn Broker>)))
    }

    fn pluggable_services(&self) -> &'static [&'static str] {
        &[pluggable::services::PUBSUB]
    }

    async fn pluggable(&self, socket: &PluggableSocket<'_>, instance: &str) -> Result<Parts, String> {
        let init = pluggable::pubsub::PluggablePubSub::init(socket.channel.clone(), instance, socket.metadata.clone());
        super::pluggable_part(instance, init, |b| &b.unknown_features, |b| Arc::new(b) as Arc<dyn Broker>).await
    }

    fn advertised(&self, handles: &Parts) -> BTreeSet<Claim> {
        let Some(broker) = handles.get::<dyn Broker>() else { return BTreeSet::new() };
        broker
            .features()
            .iter()
            .filter_map(|f| match f {
                PubSubFeature::BulkPublish => Some(Claim::BulkPublish),
                PubSubFeature::BulkSubscribe => Some(Claim::BulkSubscribe),
                PubSubFeature::OrderedByKey => Some(Claim::Ordering),
                PubSubFeature::MessageTtl => Some(Claim::Ttl),
                _ => None,
            })
            .collect()
    }
}
