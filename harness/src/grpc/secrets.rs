//! Secrets through a sidecar's gRPC API: `GetSecret` and `GetBulkSecret`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use contract::secrets::{GetSecretRequest, SecretData};
use contract::{FeatureSet, Metadata, Result, SecretFeature};
use runtime_api::runtime as api;

use super::{GrpcSidecar, map};
use crate::http::ConnectError;

/// A secret store reached through a sidecar's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcSecretStore {
    sidecar: GrpcSidecar,
    store: String,
}

impl GrpcSecretStore {
    /// The secret store `store` of `sidecar`.
    pub async fn connect(sidecar: &GrpcSidecar, store: &str) -> std::result::Result<Self, ConnectError> {
        sidecar.find("secretstores", store).await?;
        Ok(Self { sidecar: sidecar.clone(), store: store.to_owned() })
    }
}

#[async_trait]
impl contract::SecretStore for GrpcSecretStore {
    fn features(&self) -> FeatureSet<SecretFeature> {
        FeatureSet::new()
    }

    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("secretstores", &self.store).await
    }

    async fn get(&self, request: GetSecretRequest) -> Result<SecretData> {
        let call = api::GetSecretRequest {
            store_name: self.store.clone(),
            key: request.name.clone(),
            metadata: map(&request.metadata),
        };
        let answer = self.sidecar.client().get_secret(self.sidecar.request(call)).await;
        Ok(answer.map_err(|s| self.sidecar.error(&request.name, s))?.into_inner().data.into_iter().collect())
    }

    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, SecretData>> {
        let call = api::GetBulkSecretRequest { store_name: self.store.clone(), metadata: map(&metadata) };
        let answer = self.sidecar.client().get_bulk_secret(self.sidecar.request(call)).await;
        let data = answer.map_err(|s| self.sidecar.error("<bulk>", s))?.into_inner().data;
        Ok(data.into_iter().map(|(name, s)| (name, s.secrets.into_iter().collect())).collect())
    }
}
