//! `lock.in-memory`: leases with an owner and an expiry; not re-entrant.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use contract::clock::SharedClock;
use contract::lock::{TryLockRequest, UnlockRequest, UnlockStatus};
use contract::{LockStore, Result};

/// The in-memory lock store.
#[derive(Debug)]
pub struct InMemoryLockStore {
    leases: Mutex<HashMap<String, (String, SystemTime)>>,
    clock: SharedClock,
}

impl InMemoryLockStore {
    /// An empty store on `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self { leases: Mutex::new(HashMap::new()), clock }
    }
}

#[async_trait]
impl LockStore for InMemoryLockStore {
    async fn try_lock(&self, request: TryLockRequest) -> Result<bool> {
        request.validate()?;
        let now = self.clock.now();
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        if leases.get(&request.resource_id).is_some_and(|(_, until)| *until > now) {
            return Ok(false);
        }
        let until = now + Duration::from_secs(request.expiry_in_seconds.unsigned_abs().into());
        leases.insert(request.resource_id, (request.lock_owner, until));
        Ok(true)
    }

    async fn unlock(&self, request: UnlockRequest) -> Result<UnlockStatus> {
        request.validate()?;
        let now = self.clock.now();
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        match leases.get(&request.resource_id) {
            Some((_, until)) if *until <= now => {
                leases.remove(&request.resource_id);
                Ok(UnlockStatus::LockDoesNotExist)
            }
            None => Ok(UnlockStatus::LockDoesNotExist),
            Some((owner, _)) if *owner != request.lock_owner => Ok(UnlockStatus::LockBelongsToOthers),
            Some(_) => {
                leases.remove(&request.resource_id);
                Ok(UnlockStatus::Success)
            }
        }
    }
}
