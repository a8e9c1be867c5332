//! Secret stores: in-process as built, over HTTP through `/v1.0/secrets`, over gRPC through the
//! pluggable `SecretStore` service; a store advertising multiple keys per secret claims it.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Parts, SecretFeature, SecretStore};
use suites::Claim;

use super::{BlockDriver, GrpcLink, HttpLink, PluggableSocket};
use crate::grpc::GrpcSecretStore;
use crate::http::{ConnectError, HttpSecretStore};

/// The secret-store block.
pub(super) struct Secrets;

#[async_trait]
impl BlockDriver for Secrets {
    fn block(&self) -> Block {
        Block::SECRET_STORES
    }

    async fn http(
        &self,
        link: &HttpLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = HttpSecretStore::connect(link.url, name, link.token.clone()).await;
        Some(super::one(store.map(|s| Arc::new(s) as Arc<dyn SecretStore>)))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = GrpcSecretStore::connect(link.sidecar, name).await;
        Some(super::one(store.map(|s| Arc::new(s) as Arc<dyn SecretStore>)))
    }

    fn pluggable_services(&self) -> &'static [&'static str] {
        &[pluggable::services::SECRET_STORE]
    }

    async fn pluggable(&self, socket: &PluggableSocket<'_>, instance: &str) -> Result<Parts, String> {
        let init =
            pluggable::secrets::PluggableSecretStore::init(socket.channel.clone(), instance, socket.metadata.clone());
        super::pluggable_part(instance, init, |s| &s.unknown_features, |s| Arc::new(s) as Arc<dyn SecretStore>).await
    }

    fn advertised(&self, handles: &Parts) -> BTreeSet<Claim> {
        let multi = handles
            .get::<dyn SecretStore>()
            .is_some_and(|s| s.features().contains(&SecretFeature::MultipleKeyValuesPerSecret));
        multi.then_some(Claim::MultiKeySecrets).into_iter().collect()
    }
}
