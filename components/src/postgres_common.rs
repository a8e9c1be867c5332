//! What the PostgreSQL components share: the pool, error mapping, and DDL run once under an
//! advisory lock.

use std::time::Duration;

use contract::{Error, Result};
use deadpool_postgres::{Pool, Runtime};
use tokio_postgres::NoTls;

/// A PostgreSQL error as the contract's: the SQLSTATE and message when the server sent one.
pub(crate) fn backend(e: tokio_postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => Error::Backend(format!("postgres: {}: {}", db.code().code(), db.message())),
        None => Error::Backend(format!("postgres: {e}")),
    }
}

/// A connection pool for `connection_string` (a URL or `key=value` pairs); connects lazily.
pub(crate) fn pool(connection_string: &str) -> Result<Pool> {
    let mut config = deadpool_postgres::Config::new();
    config.url = Some(connection_string.to_owned());
    config
        .create_pool(Some(Runtime::Tokio1), NoTls)
        .map_err(|e| Error::Backend(format!("invalid connectionString: {e}")))
}

/// A pooled connection within `timeout`.
pub(crate) async fn client(pool: &Pool, timeout: Duration) -> Result<deadpool_postgres::Object> {
    tokio::time::timeout(timeout, pool.get())
        .await
        .map_err(|_| Error::Backend(format!("no PostgreSQL connection within {timeout:?}")))?
        .map_err(|e| Error::Backend(format!("cannot connect to PostgreSQL: {e}")))
}

/// Runs `ddl` (one or more statements) in a transaction holding the advisory lock `name`, so
/// components starting at once do not race on `CREATE … IF NOT EXISTS`; within `timeout`.
pub(crate) async fn create_once(pool: &Pool, name: &str, ddl: &str, timeout: Duration) -> Result<()> {
    let init = async {
        let mut client = client(pool, timeout).await?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&name]).await.map_err(backend)?;
        tx.batch_execute(ddl).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    };
    tokio::time::timeout(timeout, init)
        .await
        .map_err(|_| Error::Backend(format!("PostgreSQL did not answer within {timeout:?}")))?
}
