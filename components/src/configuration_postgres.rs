//! `configuration.postgresql`: configuration items as rows of a table (`key`, `value`,
//! `version`, `metadata` JSON), with Dapr's metadata names (`connectionString`, `table`).
//!
//! Changes are pushed with LISTEN/NOTIFY: the store creates the table when it is missing, and
//! a trigger that sends every insert, update and delete as
//! `{"table", "action", "data": row}` (the payload Dapr's documentation asks users' triggers
//! for) on the channel named like the table. A subscription listens on that channel, or on
//! the one its `pgNotifyChannel` metadata names, over a connection of its own, and passes
//! on the changes of its keys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, ConfigurationUpdate, DELETED, GetConfigurationRequest,
    SubscribeConfigurationRequest,
};
use contract::{ConfigurationStore, ConfigurationUpdater, Metadata, MetadataError, Properties, Result};
use deadpool_postgres::Pool;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::configuration_redis::Listeners;
use crate::postgres_common::{backend, client, create_once, pool};

/// Subscription metadata naming the channel to listen on (Dapr's name).
pub const NOTIFY_CHANNEL: &str = "pgNotifyChannel";

/// Settings of the PostgreSQL configuration store.
#[derive(Debug, Clone)]
pub struct PostgresConfigSettings {
    /// `connectionString`.
    pub connection_string: String,
    /// `table`, default `configuration`.
    pub table: String,
}

impl PostgresConfigSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        let table = p.get("table").unwrap_or("configuration").to_owned();
        let valid = table.len() <= 63
            && table.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(MetadataError::Invalid {
                field: "table".into(),
                value: table,
                reason: "must be an SQL identifier: letters, digits and `_`".into(),
            });
        }
        Ok(Self { connection_string: p.required("connectionString")?.to_owned(), table })
    }
}

/// The PostgreSQL configuration store.
#[derive(Clone)]
pub struct PostgresConfigurationStore {
    pool: Pool,
    settings: PostgresConfigSettings,
    subscriptions: Arc<Listeners>,
}

impl std::fmt::Debug for PostgresConfigurationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfigurationStore").field("table", &self.settings.table).finish()
    }
}

/// `"name"`, quoted for SQL.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn metadata_of(value: Option<&Value>) -> Metadata {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect()
        })
        .unwrap_or_default()
}

/// The change a notification payload describes: the key and its item (deleted for DELETE).
fn change_of(payload: &str) -> Option<(String, ConfigurationItem)> {
    let parsed: Value = serde_json::from_str(payload).ok()?;
    let data = parsed.get("data")?;
    let key = data.get("key")?.as_str()?.to_owned();
    let text = |field: &str| data.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
    let item = match parsed.get("action").and_then(Value::as_str) {
        Some("DELETE") => ConfigurationItem {
            metadata: Metadata::from([(DELETED.to_owned(), "true".to_owned())]),
            ..ConfigurationItem::default()
        },
        _ => ConfigurationItem {
            value: text("value"),
            version: text("version"),
            metadata: metadata_of(data.get("metadata")),
        },
    };
    Some((key, item))
}

impl PostgresConfigurationStore {
    /// Connects, and creates the table and its notifying trigger when missing.
    pub async fn connect(settings: PostgresConfigSettings) -> Result<Self> {
        let store = Self { pool: pool(&settings.connection_string)?, settings, subscriptions: Arc::default() };
        let table = quoted(&store.settings.table);
        let function = quoted(&format!("{}_notify", store.settings.table));
        let channel = store.settings.table.replace('\'', "''");
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL, version TEXT NOT NULL, metadata JSON);
             CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
             DECLARE row RECORD;
             BEGIN
               IF TG_OP = 'DELETE' THEN row := OLD; ELSE row := NEW; END IF;
               PERFORM pg_notify('{channel}', json_build_object('table', TG_TABLE_NAME, 'action', TG_OP, 'data', row_to_json(row))::text);
               RETURN NULL;
             END $$ LANGUAGE plpgsql;
             DROP TRIGGER IF EXISTS {function} ON {table};
             CREATE TRIGGER {function} AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {function}();"
        );
        create_once(&store.pool, &store.settings.table, &ddl, Duration::from_secs(20)).await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        client(&self.pool, Duration::from_secs(20)).await
    }
}

#[async_trait]
impl ConfigurationStore for PostgresConfigurationStore {
    async fn get(&self, request: GetConfigurationRequest) -> Result<BTreeMap<String, ConfigurationItem>> {
        let client = self.client().await?;
        let table = quoted(&self.settings.table);
        let rows = if request.keys.is_empty() {
            client.query(&format!("SELECT key, value, version, metadata FROM {table}"), &[]).await
        } else {
            let sql = format!("SELECT key, value, version, metadata FROM {table} WHERE key = ANY($1)");
            client.query(&sql, &[&request.keys]).await
        }
        .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| {
                let metadata: Option<Value> = row.get(3);
                let item = ConfigurationItem {
                    value: row.get(1),
                    version: row.get(2),
                    metadata: metadata_of(metadata.as_ref()),
                };
                (row.get::<_, String>(0), item)
            })
            .collect())
    }

    async fn subscribe(&self, request: SubscribeConfigurationRequest) -> Result<ConfigurationSubscription> {
        let channel = request.metadata.get(NOTIFY_CHANNEL).cloned().unwrap_or_else(|| self.settings.table.clone());
        let (client, mut connection) =
            tokio_postgres::connect(&self.settings.connection_string, NoTls).await.map_err(backend)?;
        let (notes_tx, mut notes) = mpsc::unbounded_channel();
        // The connection must be polled for the client to work; notifications come out of it.
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = futures::StreamExt::next(&mut messages).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if notes_tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "postgres configuration: the listening connection failed");
                        break;
                    }
                }
            }
        });
        if let Err(e) = client.batch_execute(&format!("LISTEN {}", quoted(&channel))).await {
            driver.abort();
            return Err(backend(e));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, updates) = mpsc::unbounded_channel();
        let (sub_id, keys) = (id.clone(), request.keys);
        let task = tokio::spawn(async move {
            let _client = client; // Kept: dropping it ends the session and its LISTEN.
            while let Some(payload) = notes.recv().await {
                let Some((key, item)) = change_of(&payload) else {
                    tracing::warn!(%payload, "postgres configuration: a notification is not a row change");
                    continue;
                };
                if !keys.is_empty() && !keys.contains(&key) {
                    continue;
                }
                if tx.send(ConfigurationUpdate { id: sub_id.clone(), items: BTreeMap::from([(key, item)]) }).is_err() {
                    break;
                }
            }
            driver.abort();
        });
        self.subscriptions.add(&id, task.abort_handle());
        Ok(ConfigurationSubscription { id, updates })
    }

    async fn unsubscribe(&self, id: &str) -> Result<()> {
        self.subscriptions.stop(id)
    }

    async fn ping(&self) -> Result<()> {
        self.client().await?.simple_query("SELECT 1").await.map(drop).map_err(backend)
    }
}

#[async_trait]
impl ConfigurationUpdater for PostgresConfigurationStore {
    async fn set(&self, items: BTreeMap<String, ConfigurationItem>) -> Result<()> {
        let mut client = self.client().await?;
        let sql = format!(
            "INSERT INTO {} (key, value, version, metadata) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, metadata = EXCLUDED.metadata",
            quoted(&self.settings.table)
        );
        let tx = client.transaction().await.map_err(backend)?;
        for (key, item) in &items {
            let metadata: Value = item.metadata.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
            tx.execute(&sql, &[key, &item.value, &item.version, &metadata]).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn delete(&self, keys: Vec<String>) -> Result<()> {
        let sql = format!("DELETE FROM {} WHERE key = ANY($1)", quoted(&self.settings.table));
        self.client().await?.execute(&sql, &[&keys]).await.map(drop).map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_are_row_changes() {
        let (key, item) = change_of(
            r#"{"table":"t","action":"UPDATE","data":{"key":"k","value":"v","version":"2","metadata":null}}"#,
        )
        .expect("change");
        assert_eq!((key.as_str(), item.value.as_str(), item.version.as_str()), ("k", "v", "2"));
        let (_, gone) =
            change_of(r#"{"action":"DELETE","data":{"key":"k","value":"v","version":"2"}}"#).expect("change");
        assert_eq!(gone.metadata.get(DELETED).map(String::as_str), Some("true"));
        assert!(change_of("not json").is_none());
    }
}
