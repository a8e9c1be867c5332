//! `state.postgresql`: a state store on PostgreSQL, with Dapr's metadata names
//! (`connectionString`, `tableName`, `timeoutInSeconds`, `cleanupIntervalInSeconds`).
//!
//! One row per key: the bytes, the value as JSONB when it is JSON (for queries), a UUID ETag
//! replaced on every write, and an expiry. Conditional writes are single statements whose
//! `WHERE` holds the condition; transactions run in a database transaction and roll back on
//! the first refused operation. Expired rows read as absent and are deleted periodically.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use contract::clock::rfc3339;
use contract::state::{
    self, Concurrency, DeleteRequest, GetRequest, Item, QueryItem, QueryRequest, QueryResponse, SetRequest,
    TransactionOperation, TransactionRequest,
};
use contract::state_query::{Filter, Order};
use contract::{Error, FeatureSet, MetadataError, Properties, Result, StateFeature, StateStore};
use deadpool_postgres::{GenericClient, Pool};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use crate::postgres_common::{backend, client, create_once, pool};

/// How the store reaches PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// `connectionString`: a URL or `key=value` pairs.
    pub connection_string: String,
    /// `tableName`, default `state` (optionally schema-qualified).
    pub table: String,
    /// `timeoutInSeconds`: the longest one call may take, default 20 s.
    pub timeout: Duration,
    /// `cleanupIntervalInSeconds`: how often expired rows are deleted; `None` disables.
    pub cleanup_interval: Option<Duration>,
}

fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').count() <= 2
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            part.len() <= 63
                && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

impl PostgresSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        let table = p.get("tableName").unwrap_or("state").to_owned();
        if !valid_identifier(&table) {
            return Err(MetadataError::Invalid {
                field: "tableName".into(),
                value: table,
                reason: "must be an SQL identifier (letters, digits, `_`), optionally `schema.table`".into(),
            });
        }
        let cleanup = match p.parse::<u64>("cleanupIntervalInSeconds")? {
            Some(0) => None,
            Some(secs) => Some(Duration::from_secs(secs)),
            None => Some(Duration::from_secs(3600)),
        };
        Ok(Self {
            connection_string: p.required("connectionString")?.to_owned(),
            table,
            timeout: Duration::from_secs(p.parse::<u64>("timeoutInSeconds")?.unwrap_or(20)),
            cleanup_interval: cleanup,
        })
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The PostgreSQL state store.
#[derive(Clone)]
pub struct PostgresStateStore {
    pool: Pool,
    table: String,
    timeout: Duration,
    _cleanup: Option<Arc<AbortOnDrop>>,
}

impl std::fmt::Debug for PostgresStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStateStore").field("table", &self.table).finish()
    }
}

/// Prepares `sql` once per pooled connection, so the hot statements skip a parse-and-plan round
/// trip on every call.
async fn prepared<C: GenericClient + Sync>(c: &C, sql: &str) -> Result<tokio_postgres::Statement> {
    c.prepare_cached(sql).await.map_err(backend)
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

fn refs(params: &Params) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

impl PostgresStateStore {
    /// Connects, creates the table if missing, and starts the cleanup of expired rows.
    pub async fn connect(settings: PostgresSettings) -> Result<Self> {
        let pool = pool(&settings.connection_string)?;
        let store = Self { pool, table: settings.table.clone(), timeout: settings.timeout, _cleanup: None };
        let table = &settings.table;
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value BYTEA NOT NULL, value_json JSONB, \
             etag TEXT NOT NULL, expires_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        );
        create_once(&store.pool, table, &ddl, settings.timeout).await?;
        let cleanup = settings.cleanup_interval.map(|every| {
            let (pool, sql) = (
                store.pool.clone(),
                format!("DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= now()"),
            );
            let task = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Ok(client) = pool.get().await
                        && let Err(e) = client.execute(sql.as_str(), &[]).await
                    {
                        tracing::warn!(error = %e, "expired-row cleanup failed");
                    }
                }
            });
            Arc::new(AbortOnDrop(task.abort_handle()))
        });
        Ok(Self { _cleanup: cleanup, ..store })
    }

    /// Runs one call within the configured timeout: a server that stops answering (a network
    /// black hole) makes the call fail instead of hanging.
    async fn bounded<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Error::Backend(format!("PostgreSQL did not answer within {:?}", self.timeout)))?
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        client(&self.pool, self.timeout).await
    }

    async fn set_in<C: GenericClient + Sync>(&self, c: &C, r: &SetRequest) -> Result<()> {
        let ttl: Option<i64> = match state::parse_ttl(&r.metadata)? {
            Some(Some(secs)) => Some(i64::try_from(secs).unwrap_or(i64::MAX)),
            _ => None,
        };
        let json: Option<String> = serde_json::from_slice::<Value>(&r.value).ok().map(|v| v.to_string());
        let etag = uuid::Uuid::new_v4().to_string();
        let t = &self.table;
        let expiry = "CASE WHEN $5::bigint IS NULL THEN NULL ELSE now() + $5::bigint * interval '1 second' END";
        let rows = if let Some(expected) = r.etag() {
            let sql = format!(
                "UPDATE {t} SET value = $2, value_json = $3::text::jsonb, etag = $4, expires_at = {expiry}, updated_at = now() \
                 WHERE key = $1 AND etag = $6 AND (expires_at IS NULL OR expires_at > now())"
            );
            c.execute(&prepared(c, &sql).await?, &[&r.key, &r.value, &json, &etag, &ttl, &expected])
                .await
                .map_err(backend)?
        } else {
            // First-write may only replace a row that has expired.
            let only_expired = if r.options.concurrency == Concurrency::FirstWrite {
                format!(" WHERE {t}.expires_at IS NOT NULL AND {t}.expires_at <= now()")
            } else {
                String::new()
            };
            let sql = format!(
                "INSERT INTO {t} (key, value, value_json, etag, expires_at) VALUES ($1, $2, $3::text::jsonb, $4, {expiry}) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, value_json = EXCLUDED.value_json, etag = EXCLUDED.etag, \
                 expires_at = EXCLUDED.expires_at, updated_at = now(){only_expired}"
            );
            c.execute(&prepared(c, &sql).await?, &[&r.key, &r.value, &json, &etag, &ttl]).await.map_err(backend)?
        };
        if rows == 0 {
            return Err(Error::etag_mismatch(&r.key, "the ETag is not current (or first-write found the key)"));
        }
        Ok(())
    }

    async fn delete_in<C: GenericClient + Sync>(&self, c: &C, r: &DeleteRequest) -> Result<()> {
        let t = &self.table;
        match r.etag() {
            Some(expected) => {
                let sql = format!(
                    "DELETE FROM {t} WHERE key = $1 AND etag = $2 AND (expires_at IS NULL OR expires_at > now())"
                );
                if c.execute(&prepared(c, &sql).await?, &[&r.key, &expected]).await.map_err(backend)? == 0 {
                    return Err(Error::etag_mismatch(&r.key, "the ETag is not current"));
                }
            }
            None => {
                let sql = format!("DELETE FROM {t} WHERE key = $1");
                c.execute(&prepared(c, &sql).await?, &[&r.key]).await.map_err(backend)?;
            }
        }
        Ok(())
    }
}

/// Translates a filter to SQL over `value_json`, pushing its parameters.
fn filter_sql(filter: &Filter, params: &mut Params) -> String {
    let path = |p: &str, params: &mut Params| {
        params.push(Box::new(p.split('.').map(str::to_owned).collect::<Vec<String>>()));
        format!("(value_json #> ${}::text[])", params.len())
    };
    let value = |v: &Value, params: &mut Params| {
        params.push(Box::new(v.to_string()));
        format!("${}::text::jsonb", params.len())
    };
    let compare = |p: &str, v: &Value, op: &str, params: &mut Params| -> String {
        let at = {
            params.push(Box::new(p.split('.').map(str::to_owned).collect::<Vec<String>>()));
            format!("(value_json #> ${}::text[])", params.len())
        };
        match v {
            Value::Number(n) => {
                params.push(Box::new(n.as_f64().unwrap_or(f64::NAN)));
                format!("(jsonb_typeof({at}) = 'number' AND ({at} #>> '{{}}')::float8 {op} ${}::float8)", params.len())
            }
            Value::String(s) => {
                params.push(Box::new(s.clone()));
                format!(
                    "(jsonb_typeof({at}) = 'string' AND ({at} #>> '{{}}') COLLATE \"C\" {op} ${}::text)",
                    params.len()
                )
            }
            Value::Bool(_) => {
                params.push(Box::new(v.to_string()));
                format!("(jsonb_typeof({at}) = 'boolean' AND {at} {op} ${}::text::jsonb)", params.len())
            }
            _ => "FALSE".to_owned(),
        }
    };
    match filter {
        Filter::Eq(p, v) => {
            let (a, b) = (path(p, params), value(v, params));
            format!("({a} = {b})")
        }
        Filter::Neq(p, v) => {
            let (a, b) = (path(p, params), value(v, params));
            format!("({a} IS DISTINCT FROM {b})")
        }
        Filter::Gt(p, v) => compare(p, v, ">", params),
        Filter::Gte(p, v) => compare(p, v, ">=", params),
        Filter::Lt(p, v) => compare(p, v, "<", params),
        Filter::Lte(p, v) => compare(p, v, "<=", params),
        Filter::In(p, vs) => {
            let a = path(p, params);
            params.push(Box::new(vs.iter().map(Value::to_string).collect::<Vec<String>>()));
            format!("({a} = ANY(${}::text[]::jsonb[]))", params.len())
        }
        Filter::And(fs) => format!("({})", fs.iter().map(|f| filter_sql(f, params)).collect::<Vec<_>>().join(" AND ")),
        Filter::Or(fs) => format!("({})", fs.iter().map(|f| filter_sql(f, params)).collect::<Vec<_>>().join(" OR ")),
    }
}

#[async_trait]
impl StateStore for PostgresStateStore {
    fn features(&self) -> FeatureSet<StateFeature> {
        [StateFeature::Etag, StateFeature::Transactional, StateFeature::QueryApi, StateFeature::Ttl].into()
    }

    async fn ping(&self) -> Result<()> {
        self.bounded(async move { self.client().await?.execute("SELECT 1", &[]).await.map(|_| ()).map_err(backend) })
            .await
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        self.bounded(async move {
            let sql = format!(
                "SELECT value, etag, expires_at FROM {} WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())",
                self.table
            );
            let client = self.client().await?;
            let row = client.query_opt(&prepared(&client, &sql).await?, &[&request.key]).await.map_err(backend)?;
            Ok(row.map(|row| {
                let mut metadata = contract::Metadata::new();
                if let Some(at) = row.get::<_, Option<SystemTime>>(2) {
                    metadata.insert(state::TTL_EXPIRE_TIME.to_owned(), rfc3339(at));
                }
                Item { data: row.get(0), etag: Some(row.get(1)), metadata, content_type: None }
            }))
        })
        .await
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.bounded(async move {
            let client = self.client().await?;
            self.set_in(&client, &request).await
        })
        .await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.bounded(async move {
            let client = self.client().await?;
            self.delete_in(&client, &request).await
        })
        .await
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        self.bounded(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(backend)?;
            for op in &request.operations {
                // Dropping `tx` on an error rolls everything back.
                match op {
                    TransactionOperation::Set(s) => self.set_in(&tx, s).await?,
                    TransactionOperation::Delete(d) => self.delete_in(&tx, d).await?,
                }
            }
            tx.commit().await.map_err(backend)
        })
        .await
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse> {
        self.bounded(async move {
            let query = &request.query;
            let mut params: Params = Vec::new();
            let filter = query.filter.as_ref().map_or("TRUE".to_owned(), |f| filter_sql(f, &mut params));
            let mut order: Vec<String> = query
                .sort
                .iter()
                .map(|s| {
                    params.push(Box::new(s.key.split('.').map(str::to_owned).collect::<Vec<String>>()));
                    let dir = if s.order == Order::Desc { "DESC NULLS LAST" } else { "ASC NULLS FIRST" };
                    format!("(value_json #> ${}::text[]) {dir}", params.len())
                })
                .collect();
            order.push("key COLLATE \"C\" ASC".to_owned());
            let offset: i64 = match &query.page.token {
                None => 0,
                Some(t) => t
                    .parse()
                    .map_err(|_| Error::InvalidArgument(format!("page token `{t}` was not issued by this store")))?,
            };
            let limit = query.page.limit.map(|l| l as i64);
            let sql = format!(
                "SELECT key, value, etag FROM {} WHERE value_json IS NOT NULL AND (expires_at IS NULL OR expires_at > now()) AND {filter} \
                 ORDER BY {} OFFSET {offset} LIMIT {}",
                self.table,
                order.join(", "),
                limit.map_or("ALL".to_owned(), |l| (l + 1).to_string())
            );
            let rows = self.client().await?.query(sql.as_str(), &refs(&params)).await.map_err(backend)?;
            let mut results: Vec<QueryItem> = rows
                .iter()
                .map(|r| QueryItem { key: r.get(0), data: r.get(1), etag: Some(r.get(2)), error: None })
                .collect();
            let more = limit.is_some_and(|l| results.len() as i64 > l);
            if let Some(l) = limit {
                results.truncate(l as usize);
            }
            let token = more.then(|| (offset + results.len() as i64).to_string());
            Ok(QueryResponse { results, token, metadata: Default::default() })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers() {
        for ok in ["state", "public.state", "_s1"] {
            assert!(valid_identifier(ok), "{ok}");
        }
        for bad in ["", "1state", "st-ate", "a.b.c", "x; DROP TABLE y", "\"q\""] {
            assert!(!valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn filters_become_parameterised_sql() {
        let q = contract::state_query::Query::from_json(&serde_json::json!({"filter": {"AND": [
            {"EQ": {"a.b": "x'; DROP"}}, {"GT": {"n": 1.5}}, {"IN": {"s": ["p", "q"]}}]}}))
        .expect("query");
        let mut params = Params::new();
        let sql = filter_sql(q.filter.as_ref().expect("filter"), &mut params);
        assert!(!sql.contains("DROP"), "values are parameters, never SQL: {sql}");
        assert_eq!(params.len(), 6);
    }
}
