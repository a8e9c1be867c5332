//! Secrets through a sidecar: `/v1.0/secrets/{store}/{name}` and `/bulk`.

use async_trait::async_trait;
use contract::{Error, FeatureSet, Metadata, Result};
use serde_json::Value;

use super::{ConnectError, SidecarClient, encode, query_string};

/// A secret store reached through a sidecar.
#[derive(Debug, Clone)]
pub struct HttpSecretStore {
    sidecar: SidecarClient,
    store: String,
}

impl HttpSecretStore {
    /// Connects to the sidecar at `base` and its secret store `store`.
    pub async fn connect(base: &str, store: &str, token: Option<String>) -> std::result::Result<Self, ConnectError> {
        let (sidecar, _) = SidecarClient::find(base, "secretstores", store, token).await?;
        Ok(Self { sidecar, store: store.to_owned() })
    }

    async fn read(&self, path: &str, metadata: &Metadata) -> Result<Value> {
        let path = format!("/v1.0/secrets/{}/{path}{}", encode(&self.store), query_string(metadata, &[]));
        let response = self.sidecar.send(self.sidecar.get(&path)).await?;
        if !response.status().is_success() {
            return Err(self.sidecar.error(path.as_str(), response).await);
        }
        response.json().await.map_err(|e| Error::Backend(format!("the secret answer is not JSON: {e}")))
    }
}

fn secret_data(value: &Value) -> Result<contract::secrets::SecretData> {
    let object = value.as_object().ok_or_else(|| Error::Backend(format!("a secret is not a JSON object: {value}")))?;
    object
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_owned())),
            None => Err(Error::Backend(format!("secret key `{k}` is not a string: {v}"))),
        })
        .collect()
}

#[async_trait]
impl contract::SecretStore for HttpSecretStore {
    fn features(&self) -> FeatureSet<contract::SecretFeature> {
        FeatureSet::new()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("secretstores", &self.store).await
    }

    async fn get(&self, request: contract::secrets::GetSecretRequest) -> Result<contract::secrets::SecretData> {
        secret_data(&self.read(&encode(&request.name), &request.metadata).await?)
    }

    async fn bulk_get(
        &self,
        metadata: Metadata,
    ) -> Result<std::collections::BTreeMap<String, contract::secrets::SecretData>> {
        let answer = self.read("bulk", &metadata).await?;
        let object =
            answer.as_object().ok_or_else(|| Error::Backend(format!("the bulk answer is not an object: {answer}")))?;
        object.iter().map(|(name, data)| Ok((name.clone(), secret_data(data)?))).collect()
    }
}
