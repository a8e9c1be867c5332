//! Configuration stores: in-process as built (with the updater that writes behind them), over
//! HTTP through `/v1.0/configuration` with updates delivered to the app; items are written
//! through the sidecar's own instance when certify started it.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, ConfigurationStore, ConfigurationUpdater, Parts};

use super::{BlockDriver, GrpcLink, HttpLink};
use crate::app::App;
use crate::grpc::GrpcConfigurationStore;
use crate::http::{ConnectError, HttpConfigurationStore};

/// A store reached through a sidecar; items are written behind its back, through the
/// sidecar's own instance (`served`) when certify started it.
fn with_updater(store: Arc<dyn ConfigurationStore>, served: Option<&Component>) -> Parts {
    let handles = Parts::default().with(store);
    match served.and_then(Component::as_configuration_updater) {
        Some(updater) => handles.with(Arc::clone(updater) as Arc<dyn ConfigurationUpdater>),
        None => handles,
    }
}

/// The configuration block.
pub(super) struct Configuration;

#[async_trait]
impl BlockDriver for Configuration {
    fn block(&self) -> Block {
        Block::CONFIGURATION
    }

    fn declare(&self, _: &App, _: &str, _: Option<&Component>) -> bool {
        true
    }

    async fn http(
        &self,
        link: &HttpLink<'_>,
        name: &str,
        served: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = HttpConfigurationStore::connect(link.url, name, link.token.clone(), link.app.clone()).await;
        Some(store.map(|s| with_updater(Arc::new(s), served)))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        name: &str,
        served: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = GrpcConfigurationStore::connect(link.sidecar, name).await;
        Some(store.map(|s| with_updater(Arc::new(s), served)))
    }
}
