//! `configuration.redis`: configuration items as Redis strings holding `value||version`
//! (Dapr's format), with Dapr's metadata names (`redisHost`, `redisPassword`, `redisUsername`,
//! `redisDB`).
//!
//! Subscriptions listen to Redis keyspace notifications: a subscription to listed keys
//! subscribes to each key's channel, one to all keys to the pattern of every key. A change
//! reads the key again (so the update carries the value now stored); a key that is gone is
//! reported deleted. Notifications must be on (`notify-keyspace-events` with `K`, `$`, `g` and
//! `x`): the store turns them on when it may, and a subscription fails saying so when it may not.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, ConfigurationUpdate, DELETED, GetConfigurationRequest,
    SubscribeConfigurationRequest,
};
use contract::{ConfigurationStore, ConfigurationUpdater, Error, Metadata, Result};
use futures::StreamExt;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::state_redis::{RedisSettings, backend, open};

/// The keyspace event classes subscriptions need: keyspace channels, strings, generic
/// commands (DEL) and expiries.
const NEEDED_EVENTS: [char; 4] = ['K', '$', 'g', 'x'];

/// The Redis configuration store.
#[derive(Clone)]
pub struct RedisConfigurationStore {
    client: redis::Client,
    conn: ConnectionManager,
    db: i64,
    notifications_on: Arc<AtomicBool>,
    subscriptions: Arc<Listeners>,
}

/// The listener task of each live subscription, stopped when the store goes.
#[derive(Default)]
pub(crate) struct Listeners(Mutex<HashMap<String, tokio::task::AbortHandle>>);

impl Listeners {
    pub(crate) fn add(&self, id: &str, task: tokio::task::AbortHandle) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), task);
    }

    /// Stops subscription `id`; an unknown id is not found.
    pub(crate) fn stop(&self, id: &str) -> Result<()> {
        match self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(id) {
            Some(task) => {
                task.abort();
                Ok(())
            }
            None => Err(Error::NotFound { what: format!("configuration subscription `{id}`") }),
        }
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, task) in self.0.lock().unwrap_or_else(PoisonError::into_inner).drain() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for RedisConfigurationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisConfigurationStore")
    }
}

/// An item from its stored form `value||version`.
fn item_of(stored: &str) -> ConfigurationItem {
    let (value, version) = stored.rsplit_once("||").unwrap_or((stored, ""));
    ConfigurationItem { value: value.to_owned(), version: version.to_owned(), metadata: Metadata::new() }
}

fn deleted() -> ConfigurationItem {
    ConfigurationItem { metadata: Metadata::from([(DELETED.to_owned(), "true".to_owned())]), ..Default::default() }
}

impl RedisConfigurationStore {
    /// Connects and checks Redis answers.
    pub async fn connect(settings: &RedisSettings) -> Result<Self> {
        let (client, conn) = open(settings).await?;
        Ok(Self { client, conn, db: settings.db, notifications_on: Arc::default(), subscriptions: Arc::default() })
    }

    /// Makes sure keyspace notifications are on, turning on what is missing.
    async fn ensure_notifications(&self) -> Result<()> {
        if self.notifications_on.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let current: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("notify-keyspace-events")
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let flags = current.get(1).cloned().unwrap_or_default();
        let has = |c: char| flags.contains(c) || (flags.contains('A') && c != 'K');
        if !NEEDED_EVENTS.iter().all(|c| has(*c)) {
            let wanted: String = flags.chars().chain(NEEDED_EVENTS.iter().copied().filter(|c| !has(*c))).collect();
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("notify-keyspace-events")
                .arg(&wanted)
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| {
                    Error::Backend(format!(
                        "redis: keyspace notifications are off (`notify-keyspace-events` is `{flags}`) and cannot be turned on ({e}); set it to include `K$gx`"
                    ))
                })?;
        }
        self.notifications_on.store(true, Ordering::Release);
        Ok(())
    }
}

#[async_trait]
impl ConfigurationStore for RedisConfigurationStore {
    async fn get(&self, request: GetConfigurationRequest) -> Result<BTreeMap<String, ConfigurationItem>> {
        let mut conn = self.conn.clone();
        let all = request.keys.is_empty();
        let keys: Vec<Vec<u8>> = if all {
            let mut keys = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("TYPE")
                    .arg("string")
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend)?;
                keys.extend(batch);
                if next == 0 {
                    break keys;
                }
                cursor = next;
            }
        } else {
            request.keys.into_iter().map(String::into_bytes).collect()
        };
        if keys.is_empty() {
            return Ok(BTreeMap::new());
        }
        let values: Vec<Option<Vec<u8>>> =
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await.map_err(backend)?;
        Ok(keys
            .into_iter()
            .zip(values)
            .filter_map(|(key, value)| {
                let (key, value) = (String::from_utf8(key).ok()?, value?);
                // Reading every key meets other strings too; only text can be an item.
                let text = match all {
                    true => String::from_utf8(value).ok()?,
                    false => String::from_utf8_lossy(&value).into_owned(),
                };
                Some((key, item_of(&text)))
            })
            .collect())
    }

    async fn subscribe(&self, request: SubscribeConfigurationRequest) -> Result<ConfigurationSubscription> {
        self.ensure_notifications().await?;
        let prefix = format!("__keyspace@{}__:", self.db);
        let mut pubsub = self.client.get_async_pubsub().await.map_err(backend)?;
        if request.keys.is_empty() {
            pubsub.psubscribe(format!("{prefix}*")).await.map_err(backend)?;
        } else {
            for key in &request.keys {
                pubsub.subscribe(format!("{prefix}{key}")).await.map_err(backend)?;
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, updates) = mpsc::unbounded_channel();
        let (sub_id, mut conn) = (id.clone(), self.conn.clone());
        let task = tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let Some(key) = message.get_channel_name().strip_prefix(&prefix).map(str::to_owned) else { continue };
                // Whatever the event, the update carries what the key holds now.
                let item = match redis::cmd("GET").arg(&key).query_async::<Option<Vec<u8>>>(&mut conn).await {
                    Ok(Some(stored)) => item_of(&String::from_utf8_lossy(&stored)),
                    Ok(None) => deleted(),
                    // Not a string (another kind of key under the all-keys pattern).
                    Err(e) if e.code() == Some("WRONGTYPE") => continue,
                    Err(e) => {
                        tracing::warn!(%key, error = %e, "redis configuration: reading a changed key failed");
                        continue;
                    }
                };
                let update = ConfigurationUpdate { id: sub_id.clone(), items: BTreeMap::from([(key, item)]) };
                if tx.send(update).is_err() {
                    break;
                }
            }
        });
        self.subscriptions.add(&id, task.abort_handle());
        Ok(ConfigurationSubscription { id, updates })
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        self.subscriptions.stop(id)
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(drop).map_err(backend)
    }
}

#[async_trait]
impl ConfigurationUpdater for RedisConfigurationStore {
    async fn set(&self, items: BTreeMap<String, ConfigurationItem>) -> Result<()> {
        let mut pipe = redis::pipe();
        for (key, item) in &items {
            pipe.cmd("SET").arg(key).arg(format!("{}||{}", item.value, item.version)).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await.map_err(backend)
    }

    async fn delete(&self, keys: Vec<String>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        redis::cmd("DEL").arg(&keys).query_async::<i64>(&mut self.conn.clone()).await.map(drop).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_stored_as_value_and_version() {
        assert_eq!(item_of("on||3").value, "on");
        assert_eq!(item_of("on||3").version, "3");
        assert_eq!(item_of("plain").value, "plain");
        assert_eq!(item_of("a||b||7").value, "a||b");
    }
}
