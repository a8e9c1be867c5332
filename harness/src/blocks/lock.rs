//! Lock stores: in-process as built, over HTTP through `/v1.0-alpha1/lock`.

use std::sync::Arc;

use async_trait::async_trait;
use contract::{Block, Component, LockStore, Parts};

use super::{BlockDriver, GrpcLink, HttpLink};
use crate::grpc::GrpcLockStore;
use crate::http::{ConnectError, HttpLockStore};

/// The lock block.
pub(super) struct Lock;

#[async_trait]
impl BlockDriver for Lock {
    fn block(&self) -> Block {
        Block::LOCK
    }

    async fn http(
        &self,
        link: &HttpLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = HttpLockStore::connect(link.url, name, link.token.clone()).await;
        Some(super::one(store.map(|s| Arc::new(s) as Arc<dyn LockStore>)))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        name: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let store = GrpcLockStore::connect(link.sidecar, name).await;
        Some(super::one(store.map(|s| Arc::new(s) as Arc<dyn LockStore>)))
    }
}
