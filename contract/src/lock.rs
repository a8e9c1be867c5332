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
