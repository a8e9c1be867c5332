//! Configuration through a sidecar's gRPC API: get, and subscriptions as the server stream
//! `SubscribeConfiguration` (its first message names the subscription; no app is needed).

use std::collections::BTreeMap;

use async_trait::async_trait;
use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, ConfigurationUpdate, GetConfigurationRequest,
    SubscribeConfigurationRequest,
};
use contract::{Error, Result};
use runtime_api::common;
use runtime_api::runtime as api;

use super::{GrpcSidecar, map};
use crate::http::ConnectError;

/// A configuration store reached through a sidecar's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcConfigurationStore {
    sidecar: GrpcSidecar,
    store: String,
}

impl GrpcConfigurationStore {
    /// The configuration store `store` of `sidecar`.
    pub async fn connect(sidecar: &GrpcSidecar, store: &str) -> std::result::Result<Self, ConnectError> {
        sidecar.find("configuration", store).await?;
        Ok(Self { sidecar: sidecar.clone(), store: store.to_owned() })
    }
}

fn items(items: std::collections::HashMap<String, common::ConfigurationItem>) -> BTreeMap<String, ConfigurationItem> {
    items
        .into_iter()
        .map(|(key, i)| {
            (key, ConfigurationItem { value: i.value, version: i.version, metadata: i.metadata.into_iter().collect() })
        })
        .collect()
}

#[async_trait]
impl contract::ConfigurationStore for GrpcConfigurationStore {
    async fn get(&self, request: GetConfigurationRequest) -> Result<BTreeMap<String, ConfigurationItem>> {
        let call = api::GetConfigurationRequest {
            store_name: self.store.clone(),
            keys: request.keys,
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().get_configuration(self.sidecar.request(call)).await;
        Ok(items(answer.map_err(|s| self.sidecar.error(&self.store, s))?.into_inner().items))
    }

    async fn subscribe(&self, request: SubscribeConfigurationRequest) -> Result<ConfigurationSubscription> {
        let call = api::SubscribeConfigurationRequest {
            store_name: self.store.clone(),
            keys: request.keys,
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().subscribe_configuration(self.sidecar.request(call)).await;
        let mut stream = answer.map_err(|s| self.sidecar.error(&self.store, s))?.into_inner();
        let first = stream.message().await.map_err(|s| self.sidecar.error(&self.store, s))?;
        let id = match first {
            Some(m) if !m.id.is_empty() && m.items.is_empty() => m.id,
            other => {
                let why = format!("the first message of the subscription stream must carry only its id, got {other:?}");
                return Err(Error::Backend(why));
            }
        };
        let (tx, updates) = tokio::sync::mpsc::unbounded_channel();
        let store = self.store.clone();
        tokio::spawn(async move {
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        if tx.send(ConfigurationUpdate { id: m.id, items: items(m.items) }).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%store, %status, "the configuration stream ended");
                        return;
                    }
                }
            }
        });
        Ok(ConfigurationSubscription { id, updates })
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        let call = api::UnsubscribeConfigurationRequest { store_name: self.store.clone(), id: id.to_owned() };
        let answer = self.sidecar.client().unsubscribe_configuration(self.sidecar.request(call)).await;
        let answer = answer.map_err(|s| self.sidecar.error(id, s))?.into_inner();
        match answer.ok {
            true => Ok(()),
            false => Err(Error::Backend(format!("UnsubscribeConfiguration answered not ok: {}", answer.message))),
        }
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("configuration", &self.store).await
    }
}
