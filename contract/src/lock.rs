//! The distributed-lock contract: try-lock with an owner and an expiry, owner-checked unlock.

use async_trait::async_trait;

use crate::errors::Result;

/// Try to take a lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TryLockRequest {
    /// The resource the lock is for.
    pub resource_id: String,
    /// Who asks.
    pub lock_owner: String,
    /// How long the lock lasts unless released; must be positive.
    pub expiry_in_seconds: i32,
}

/// Release a lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnlockRequest {
    /// The resource.
    pub resource_id: String,
    /// Who asks; only the holder may release.
    pub lock_owner: String,
}

fn require(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(crate::Error::InvalidArgument(format!("{field} must not be empty")));
    }
    Ok(())
}

impl TryLockRequest {
    /// Checks what every lock store rejects: an empty resource or owner, a non-positive expiry.
    pub fn validate(&self) -> Result<()> {
        if self.expiry_in_seconds <= 0 {
            return Err(crate::Error::InvalidArgument(format!(
                "expiryInSeconds must be positive, got {}",
                self.expiry_in_seconds
            )));
        }
        require("resourceId", &self.resource_id)?;
        require("lockOwner", &self.lock_owner)
    }
}

impl UnlockRequest {
    /// Checks what every lock store rejects: an empty resource or owner.
    pub fn validate(&self) -> Result<()> {
        require("resourceId", &self.resource_id)?;
        require("lockOwner", &self.lock_owner)
    }
}

/// What an unlock did; the numbers are Dapr's wire values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockStatus {
    /// Released.
    Success = 0,
    /// Nobody holds the lock.
    LockDoesNotExist = 1,
    /// Someone else holds the lock.
    LockBelongsToOthers = 2,
    /// The store failed.
    InternalError = 3,
}

/// A store of leases.
#[async_trait]
pub trait LockStore: Send + Sync {
    /// Takes the lock if nobody holds it: `Ok(true)` when taken, `Ok(false)` when held
    /// (also by the same owner: locks are not re-entrant). A non-positive expiry is
    /// [`crate::Error::InvalidArgument`].
    async fn try_lock(&self, request: TryLockRequest) -> Result<bool>;

    /// Releases the lock if `lock_owner` holds it.
    async fn unlock(&self, request: UnlockRequest) -> Result<UnlockStatus>;

    /// Checks the store can reach its backend.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
