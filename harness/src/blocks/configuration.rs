//! Configuration stores: in-process as built (with the updater that writes behind them), over
//! HTTP through `/v1.0/configuration` with updates delivered to the app; items are written
//! through the sidecar's own instance when certify started it.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, ConfigurationStore, ConfigurationUpdater, Parts};

use super::{BlockDriver, HttpLink};
use crate::app::App;
use crate::http::{ConnectError, HttpConfigurationStore};

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
        Some(store.map(|s| {
            let handles = Parts::default().with(Arc::new(s) as Arc<dyn ConfigurationStore>);
            // Items are written behind the store's back: through the sidecar's own instance.
            match served.and_then(Component::as_configuration_updater) {
                Some(updater) => handles.with(Arc::clone(updater) as Arc<dyn ConfigurationUpdater>),
                None => handles,
            }
        }))
    }
}
