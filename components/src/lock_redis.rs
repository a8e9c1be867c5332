//! `lock.redis`: distributed locks on Redis, with Dapr's metadata names (`redisHost`,
//! `redisPassword`, `redisUsername`, `redisDB`).
//!
//! A lock is the key `{resource}` holding its owner, taken with `SET NX PX` (so the expiry is
//! Redis's own, to the millisecond) and released by one Lua script that compares the owner
//! and deletes in the same step: no other owner's lock can be released between the check and
//! the delete.

use async_trait::async_trait;
use contract::lock::{TryLockRequest, UnlockRequest, UnlockStatus};
use contract::{LockStore, Result};
use redis::aio::ConnectionManager;

use crate::state_redis::{RedisSettings, backend, open};

/// 1 released, 0 absent, -1 held by someone else.
const UNLOCK: &str = r#"
local holder = redis.call('GET', KEYS[1])
if not holder then return 0 end
if holder ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1
"#;

/// The Redis lock store.
#[derive(Clone)]
pub struct RedisLockStore {
    conn: ConnectionManager,
    unlock: redis::Script,
}

impl std::fmt::Debug for RedisLockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLockStore")
    }
}

impl RedisLockStore {
    /// Connects and checks Redis answers.
    pub async fn connect(settings: &RedisSettings) -> Result<Self> {
        let (_, conn) = open(settings).await?;
        Ok(Self { conn, unlock: redis::Script::new(UNLOCK) })
    }
}

fn key(resource: &str) -> String {
    format!("lock||{resource}")
}

#[async_trait]
impl LockStore for RedisLockStore {
    async fn try_lock(&self, request: TryLockRequest) -> Result<bool> {
        request.validate()?;
        let mut conn = self.conn.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(key(&request.resource_id))
            .arg(&request.lock_owner)
            .arg("NX")
            .arg("PX")
            .arg(i64::from(request.expiry_in_seconds) * 1000)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(taken.is_some())
    }

    async fn unlock(&self, request: UnlockRequest) -> Result<UnlockStatus> {
        request.validate()?;
        let mut conn = self.conn.clone();
        let result: i64 = self
            .unlock
            .key(key(&request.resource_id))
            .arg(&request.lock_owner)
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        Ok(match result {
            1 => UnlockStatus::Success,
            0 => UnlockStatus::LockDoesNotExist,
            _ => UnlockStatus::LockBelongsToOthers,
        })
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(backend)
    }
}
