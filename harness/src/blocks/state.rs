//! State stores: in-process as built, over HTTP through `/v1.0/state`, over gRPC through the
//! pluggable `StateStore` service; the claims a store advertises are its features.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, Parts, StateStore};
use suites::Claim;

use super::{BlockDriver, GrpcLink, HttpLink, PluggableSocket};
use crate::grpc::GrpcStateStore;
use crate::http::{ConnectError, HttpStateStore};

/// The state block.
pub(super) struct State;

#[async_trait]
impl BlockDriver for State {
    fn block(&self) -> Block {
        Block::STATE
    }

    async fn http(
        &self,
        link: &HttpLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = HttpStateStore::connect(link.url, name, link.token.clone()).await;
        Some(super::one(store.map(|s| Arc::new(s) as Arc<dyn StateStore>)))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = GrpcStateStore::connect(link.sidecar, name).await;
        Some(super::one(store.map(|s| Arc::new(s) as Arc<dyn StateStore>)))
    }

    fn pluggable_services(&self) -> &'static [&'static str] {
        &[pluggable::services::STATE]
    }

    async fn pluggable(&self, socket: &PluggableSocket<'_>, instance: &str) -> Result<Parts, String> {
        let init =
            pluggable::state::PluggableStateStore::init(socket.channel.clone(), instance, socket.metadata.clone());
        super::pluggable_part(instance, init, |s| &s.unknown_features, |s| Arc::new(s) as Arc<dyn StateStore>).await
    }

    fn advertised(&self, handles: &Parts) -> BTreeSet<Claim> {
        let Some(store) = handles.get::<dyn StateStore>() else { return BTreeSet::new() };
        let mut claims: BTreeSet<Claim> = store.features().iter().filter_map(|f| Claim::for_feature(*f)).collect();
        // Dapr has no feature flag for first-write; stores with ETags are expected to honour it.
        if claims.contains(&Claim::Etag) {
            claims.insert(Claim::FirstWrite);
        }
        claims
    }
}
