//! Configuration through a sidecar: `/v1.0/configuration/{store}` get, subscribe and
//! unsubscribe; a subscription's updates come to the app certify plays.

use async_trait::async_trait;
use contract::{Error, Metadata, Result};
use serde_json::Value;

use super::{ConnectError, SidecarClient, encode, query_string};

/// A configuration store reached through a sidecar; subscription updates come to `app`.
#[derive(Debug, Clone)]
pub struct HttpConfigurationStore {
    sidecar: SidecarClient,
    store: String,
    app: crate::app::App,
}

impl HttpConfigurationStore {
    /// Connects to the sidecar at `base` and its configuration store `store`.
    pub async fn connect(
        base: &str,
        store: &str,
        token: Option<String>,
        app: crate::app::App,
    ) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = SidecarClient::find(base, "configuration", store, token).await?;
        Ok(Self { sidecar, store: store.to_owned(), app })
    }

    async fn call(&self, path: &str, keys: &[String]) -> Result<reqwest::Response> {
        let query: Vec<(&str, String)> = keys.iter().map(|k| ("key", k.clone())).collect();
        let path =
            format!("/v1.0/configuration/{}{path}{}", encode(&self.store), query_string(&Metadata::new(), &query));
        let response = self.sidecar.send(self.sidecar.get(&path)).await?;
        if response.status().is_success() { Ok(response) } else { Err(self.sidecar.error(&path, response).await) }
    }
}

#[async_trait]
impl contract::ConfigurationStore for HttpConfigurationStore {
    async fn get(
        &self,
        request: contract::configuration::GetConfigurationRequest,
    ) -> Result<std::collections::BTreeMap<String, contract::configuration::ConfigurationItem>> {
        let response = self.call("", &request.keys).await?;
        if response.status().as_u16() == 204 {
            return Ok(Default::default());
        }
        let body: Value =
            response.json().await.map_err(|e| Error::Backend(format!("the configuration answer is not JSON: {e}")))?;
        Ok(crate::app::configuration_items(&body))
    }

    async fn subscribe(
        &self,
        request: contract::configuration::SubscribeConfigurationRequest,
    ) -> Result<contract::configuration::ConfigurationSubscription> {
        let body: Value = self
            .call("/subscribe", &request.keys)
            .await?
            .json()
            .await
            .map_err(|e| Error::Backend(format!("the subscribe answer is not JSON: {e}")))?;
        let id = body["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Error::Backend(format!("the subscribe answer has no id: {body}")))?
            .to_owned();
        let (tx, updates) = tokio::sync::mpsc::unbounded_channel();
        self.app.register_configuration(&self.store, &id, tx);
        Ok(contract::configuration::ConfigurationSubscription { id, updates })
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        // The app keeps listening for `id`: anything the sidecar sends after this is seen.
        self.call(&format!("/{}/unsubscribe", encode(id)), &[]).await.map(|_| ())
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("configuration", &self.store).await
    }
}
