//! The state and lock operations: gets, sets, bulk gets and transactions over 256 prepared
//! keys, a lock taken and released, the no-op store that measures the harness itself, and a
//! sidecar's state get beside its protocol's floor.

use std::sync::Arc;

use async_trait::async_trait;
use contract::lock::{TryLockRequest, UnlockRequest};
use contract::state::{GetRequest, Item, SetRequest, TransactionOperation, TransactionRequest};
use contract::{FeatureSet, LockStore, StateFeature, StateStore};
use futures::FutureExt;
use futures::future::BoxFuture;

use super::floor::Floor;
use super::load::{Measured, drive, drive_alternating};
use super::{BenchProfile, KEYS, Operation};

/// A component that does nothing: what is left is the harness's own cost per operation.
#[derive(Debug)]
pub(super) struct NoOp;

#[async_trait]
impl StateStore for NoOp {
    fn features(&self) -> FeatureSet<StateFeature> {
        FeatureSet::new()
    }

    async fn get(&self, _: GetRequest) -> contract::Result<Option<Item>> {
        Ok(None)
    }

    async fn set(&self, _: SetRequest) -> contract::Result<()> {
        Ok(())
    }

    async fn delete(&self, _: contract::state::DeleteRequest) -> contract::Result<()> {
        Ok(())
    }
}

/// Writes the keys a state operation reads and writes, with `profile`'s payload.
pub(super) async fn prepare_state(
    store: &dyn StateStore,
    profile: &BenchProfile,
    prefix: &str,
) -> Result<(Arc<Vec<String>>, Arc<String>), String> {
    let value = format!("\"{}\"", "x".repeat(profile.payload_bytes.saturating_sub(2)));
    let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("{prefix}-{i}")).collect());
    for key in keys.iter() {
        store.set(SetRequest::new(key.clone(), value.clone())).await.map_err(|e| format!("preparing `{key}`: {e}"))?;
    }
    Ok((keys, Arc::new(value)))
}

/// A get of key `i` of `keys`, as the load generator takes it.
pub(super) fn state_get(
    store: Arc<dyn StateStore>,
    keys: Arc<Vec<String>>,
) -> impl Fn(u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static {
    move |i| {
        let (store, k) = (Arc::clone(&store), keys[(i % KEYS) as usize].clone());
        async move { store.get(GetRequest::new(k)).await.map(|_| ()).map_err(|e| e.to_string()) }.boxed()
    }
}

/// A sidecar's state get and its protocol's floor, measured in alternating slices: the floor's
/// figures first.
pub(super) async fn measure_state_get_beside(
    store: Arc<dyn StateStore>,
    floor: &Floor,
    profile: &BenchProfile,
    prefix: &str,
) -> Result<(Measured, Measured), String> {
    let (keys, _) = prepare_state(store.as_ref(), profile, prefix).await?;
    Ok(drive_alternating(profile.load, floor.op(), state_get(store, keys)).await)
}

/// Measures state operation `op` over [`KEYS`] prepared keys.
pub(super) async fn measure_state(
    store: Arc<dyn StateStore>,
    op: Operation,
    profile: &BenchProfile,
    prefix: &str,
) -> Result<Measured, String> {
    let (keys, value) = prepare_state(store.as_ref(), profile, prefix).await?;
    let key = move |i: u64, keys: &Arc<Vec<String>>| keys[(i % KEYS) as usize].clone();
    Ok(match op {
        Operation::StateGet => drive(profile.load, state_get(store, keys)).await,
        Operation::StateSet => {
            drive(profile.load, move |i| {
                let (store, k, v) = (Arc::clone(&store), key(i, &keys), Arc::clone(&value));
                async move { store.set(SetRequest::new(k, v.as_str())).await.map_err(|e| e.to_string()) }
            })
            .await
        }
        Operation::StateBulkGet => {
            drive(profile.load, move |i| {
                let store = Arc::clone(&store);
                let batch: Vec<GetRequest> = (0..10).map(|j| GetRequest::new(key(i + j, &keys))).collect();
                async move { store.bulk_get(batch).await.map(|_| ()).map_err(|e| e.to_string()) }
            })
            .await
        }
        Operation::StateTransaction => {
            drive(profile.load, move |i| {
                let (store, v) = (Arc::clone(&store), Arc::clone(&value));
                let operations = (0..2)
                    .map(|j| TransactionOperation::Set(SetRequest::new(key(i * 2 + j, &keys), v.as_str())))
                    .collect();
                async move {
                    store
                        .transact(TransactionRequest { operations, metadata: Default::default() })
                        .await
                        .map_err(|e| e.to_string())
                }
            })
            .await
        }
        Operation::LockUnlock | Operation::PublishToDelivery | Operation::ActorCall | Operation::WorkflowChain => {
            return Err("not a state operation".into());
        }
    })
}

pub(super) async fn measure_lock(store: Arc<dyn LockStore>, profile: &BenchProfile, prefix: &str) -> Measured {
    let prefix = prefix.to_owned();
    drive(profile.load, move |i| {
        let (store, resource) = (Arc::clone(&store), format!("{prefix}-lock-{}", i % KEYS));
        async move {
            let owner = format!("owner-{i}");
            if !store
                .try_lock(TryLockRequest {
                    resource_id: resource.clone(),
                    lock_owner: owner.clone(),
                    expiry_in_seconds: 10,
                })
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("`{resource}` was not granted"));
            }
            store
                .unlock(UnlockRequest { resource_id: resource, lock_owner: owner })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await
}
