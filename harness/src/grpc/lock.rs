//! Locks through a sidecar's gRPC API: `TryLockAlpha1` and `UnlockAlpha1`.

use async_trait::async_trait;
use contract::Result;
use contract::lock::{TryLockRequest, UnlockRequest, UnlockStatus};
use runtime_api::runtime::{self as api, unlock_response::Status};

use super::GrpcSidecar;
use crate::http::ConnectError;

/// A lock store reached through a sidecar's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcLockStore {
    sidecar: GrpcSidecar,
    store: String,
}

impl GrpcLockStore {
    /// The lock store `store` of `sidecar`.
    pub async fn connect(sidecar: &GrpcSidecar, store: &str) -> std::result::Result<Self, ConnectError> {
        sidecar.find("lock", store).await?;
        Ok(Self { sidecar: sidecar.clone(), store: store.to_owned() })
    }
}

#[async_trait]
impl contract::LockStore for GrpcLockStore {
    async fn ping(&self) -> Result<()> {
        self.sidecar.ping_component("lock", &self.store).await
    }

    async fn try_lock(&self, request: TryLockRequest) -> Result<bool> {
        let call = api::TryLockRequest {
            store_name: self.store.clone(),
            resource_id: request.resource_id,
            lock_owner: request.lock_owner,
            expiry_in_seconds: request.expiry_in_seconds,
        };
        let answer = self.sidecar.client().try_lock_alpha1(self.sidecar.request(call)).await;
        Ok(answer.map_err(|s| self.sidecar.error(&self.store, s))?.into_inner().success)
    }

    async fn unlock(&self, request: UnlockRequest) -> Result<UnlockStatus> {
        let call = api::UnlockRequest {
            store_name: self.store.clone(),
            resource_id: request.resource_id,
            lock_owner: request.lock_owner,
        };
        let answer = self.sidecar.client().unlock_alpha1(self.sidecar.request(call)).await;
        let status = answer.map_err(|s| self.sidecar.error(&self.store, s))?.into_inner().status;
        match Status::try_from(status) {
            Ok(Status::Success) => Ok(UnlockStatus::Success),
            Ok(Status::LockDoesNotExist) => Ok(UnlockStatus::LockDoesNotExist),
            Ok(Status::LockBelongsToOthers) => Ok(UnlockStatus::LockBelongsToOthers),
            Ok(Status::InternalError) => Ok(UnlockStatus::InternalError),
            Err(_) => Err(contract::Error::Backend(format!("the unlock answer has an unknown status {status}"))),
        }
    }
}
