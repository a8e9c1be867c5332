//! Distributed lock over gRPC (dapr-grpc-api.md §3.5): daprd's validation order, legacy
//! statuses.

use std::sync::Arc;

use contract::lock::{TryLockRequest as ContractTryLock, UnlockRequest as ContractUnlock};
use contract::{Block, Component, LockStore};
use runtime_api::runtime::*;
use tonic::{Code, Response, Status};

use super::Answer;
use super::status::legacy;
use crate::sidecar::Sidecar;

/// Configured, a resource, an owner, a known store: in daprd's order.
fn validated(sc: &Sidecar, name: &str, resource: &str, owner: &str) -> Result<Arc<dyn LockStore>, Status> {
    if !sc.components.has_block(Block::LOCK) {
        return Err(legacy(Code::FailedPrecondition, "lock store is not configured"));
    }
    if resource.is_empty() {
        return Err(legacy(Code::InvalidArgument, format!("ResourceId is empty in lock store {name}")));
    }
    if owner.is_empty() {
        return Err(legacy(Code::InvalidArgument, format!("LockOwner is empty in lock store {name}")));
    }
    match sc.components.get(name, Block::LOCK).and_then(Component::as_lock) {
        Some(l) => Ok(Arc::clone(l)),
        None => Err(legacy(Code::InvalidArgument, format!("lock store {name} not found"))),
    }
}

pub(super) async fn try_lock(sc: &Sidecar, r: TryLockRequest) -> Answer<TryLockResponse> {
    if r.expiry_in_seconds <= 0 {
        let message = format!("ExpiryInSeconds is not positive in lock store {}", r.store_name);
        return Err(legacy(Code::InvalidArgument, message));
    }
    let store = validated(sc, &r.store_name, &r.resource_id, &r.lock_owner)?;
    let request = ContractTryLock {
        resource_id: r.resource_id,
        lock_owner: r.lock_owner,
        expiry_in_seconds: r.expiry_in_seconds,
    };
    let success = store
        .try_lock(request)
        .await
        .map_err(|e| legacy(Code::Internal, format!("failed to try acquiring lock: {e}")))?;
    Ok(Response::new(TryLockResponse { success }))
}

pub(super) async fn unlock(sc: &Sidecar, r: UnlockRequest) -> Answer<UnlockResponse> {
    let store = validated(sc, &r.store_name, &r.resource_id, &r.lock_owner)?;
    let request = ContractUnlock { resource_id: r.resource_id, lock_owner: r.lock_owner };
    let status =
        store.unlock(request).await.map_err(|e| legacy(Code::Internal, format!("failed to release lock: {e}")))?;
    Ok(Response::new(UnlockResponse { status: status as i32 }))
}
