//! `bindings.postgresql`: an output binding that runs SQL, with Dapr's metadata name
//! (`connectionString`, or the older `url`; `timeoutInSeconds`, the longest one call may take,
//! 20 s by default) and operations:
//! - `exec`: runs the request metadata `sql` with `params` (a JSON array) and answers the
//!   metadata `rows-affected`;
//! - `query`: answers the rows as a JSON array of arrays, one value per column;
//! - `close`: closes the pool; later calls fail.
//!
//! Parameters are converted to the types PostgreSQL infers for them, so `$1` compared with an
//! integer column takes a JSON number and one compared with text takes a string.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use contract::bindings::{InvokeRequest, InvokeResponse};
use contract::clock::rfc3339;
use contract::registry::FactoryError;
use contract::{Error, Metadata, MetadataError, OutputBinding, Properties, Result};
use deadpool_postgres::Pool;
use serde_json::Value;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, SimpleQueryMessage};

use crate::postgres_common::{backend, client, pool};

const OPERATIONS: [&str; 3] = ["exec", "query", "close"];
/// The longest one operation may take by default (`timeoutInSeconds`): a server that stops
/// answering fails the call.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The PostgreSQL output binding.
pub struct PostgresBinding {
    pool: Pool,
    closed: AtomicBool,
    timeout: Duration,
}

impl std::fmt::Debug for PostgresBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresBinding")
    }
}

impl PostgresBinding {
    /// Connects and checks PostgreSQL answers.
    pub async fn connect(p: &Properties) -> std::result::Result<Self, FactoryError> {
        let url = match (p.get("connectionString"), p.get("url")) {
            (Some(c), _) | (None, Some(c)) => c.to_owned(),
            (None, None) => {
                let hint = Some("a PostgreSQL URL, e.g. `postgres://user:pass@127.0.0.1:5432/db`".into());
                return Err(MetadataError::Missing { field: "connectionString".into(), hint }.into());
            }
        };
        let timeout = match p.parse::<u64>("timeoutInSeconds")? {
            Some(0) => {
                let reason = "a call needs some time: give a whole number of seconds above 0, e.g. `20`".into();
                return Err(
                    MetadataError::Invalid { field: "timeoutInSeconds".into(), value: "0".into(), reason }.into()
                );
            }
            seconds => seconds.map_or(CALL_TIMEOUT, Duration::from_secs),
        };
        let binding = Self { pool: pool(&url)?, closed: AtomicBool::new(false), timeout };
        binding.ping().await?;
        Ok(binding)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Backend("bindings.postgresql: the component is closed".into()));
        }
        client(&self.pool, self.timeout).await
    }
}

type Param = Box<dyn ToSql + Sync + Send>;

/// `value` as a parameter of PostgreSQL type `ty`.
fn param(index: usize, ty: &Type, value: &Value) -> Result<Param> {
    let wrong = || Error::InvalidArgument(format!("params[{index}]: {value} does not fit the parameter's type `{ty}`"));
    let int = |v: &Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let float = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let null = value.is_null();
    Ok(match *ty {
        Type::BOOL => Box::new(if null { None } else { Some(value.as_bool().ok_or_else(wrong)?) }),
        Type::INT2 => {
            Box::new(if null { None } else { Some(i16::try_from(int(value).ok_or_else(wrong)?).map_err(|_| wrong())?) })
        }
        Type::INT4 => {
            Box::new(if null { None } else { Some(i32::try_from(int(value).ok_or_else(wrong)?).map_err(|_| wrong())?) })
        }
        Type::INT8 => Box::new(if null { None } else { Some(int(value).ok_or_else(wrong)?) }),
        Type::FLOAT4 => Box::new(if null { None } else { Some(float(value).ok_or_else(wrong)? as f32) }),
        Type::FLOAT8 => Box::new(if null { None } else { Some(float(value).ok_or_else(wrong)?) }),
        Type::JSON | Type::JSONB => Box::new(value.clone()),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            Box::new(if null { None } else { Some(text(value).ok_or_else(wrong)?) })
        }
        _ => {
            return Err(Error::InvalidArgument(format!(
                "params[{index}]: parameters of type `{ty}` are not supported; cast it in the SQL, e.g. `$1::text::{ty}`"
            )));
        }
    })
}

/// Column `index` of `row` as JSON.
fn column(row: &Row, index: usize) -> Result<Value> {
    let ty = row.columns()[index].type_();
    let get = |e: tokio_postgres::Error| Error::Backend(format!("postgres: reading column {index}: {e}"));
    Ok(match *ty {
        Type::BOOL => row.try_get::<_, Option<bool>>(index).map_err(get)?.map(Value::from).unwrap_or_default(),
        Type::INT2 => row.try_get::<_, Option<i16>>(index).map_err(get)?.map(Value::from).unwrap_or_default(),
        Type::INT4 => row.try_get::<_, Option<i32>>(index).map_err(get)?.map(Value::from).unwrap_or_default(),
        Type::INT8 => row.try_get::<_, Option<i64>>(index).map_err(get)?.map(Value::from).unwrap_or_default(),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(index).map_err(get)?.map(Value::from).unwrap_or_default(),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index).map_err(get)?.map(Value::from).unwrap_or_default(),
        Type::JSON | Type::JSONB => row.try_get::<_, Option<Value>>(index).map_err(get)?.unwrap_or_default(),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => row
            .try_get::<_, Option<SystemTime>>(index)
            .map_err(get)?
            .map(|t| Value::from(rfc3339(t)))
            .unwrap_or_default(),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            row.try_get::<_, Option<String>>(index).map_err(get)?.map(Value::from).unwrap_or_default()
        }
        _ => {
            return Err(Error::InvalidArgument(format!(
                "column `{}` has type `{ty}`, which this binding cannot put into JSON; cast it in the SQL, e.g. `::text`",
                row.columns()[index].name()
            )));
        }
    })
}

#[async_trait]
impl OutputBinding for PostgresBinding {
    fn operations(&self) -> Vec<String> {
        OPERATIONS.iter().map(|s| (*s).to_owned()).collect()
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        tokio::time::timeout(self.timeout, self.run(request))
            .await
            .map_err(|_| Error::Backend(format!("PostgreSQL did not answer within {:?}", self.timeout)))?
    }

    async fn ping(&self) -> Result<()> {
        self.client().await?.simple_query("SELECT 1").await.map(drop).map_err(backend)
    }
}

impl PostgresBinding {
    /// One operation, unbounded.
    async fn run(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let operation = request.operation.to_ascii_lowercase();
        if operation == "close" {
            self.closed.store(true, Ordering::Release);
            self.pool.close();
            return Ok(InvokeResponse::default());
        }
        if !OPERATIONS.contains(&operation.as_str()) {
            return Err(Error::unsupported(format!(
                "binding operation `{}` (bindings.postgresql has {})",
                request.operation,
                OPERATIONS.join(", ")
            )));
        }
        let sql = match request.metadata.get("sql") {
            Some(s) if !s.trim().is_empty() => s.clone(),
            _ => return Err(Error::InvalidArgument("the request metadata must hold the statement as `sql`".into())),
        };
        let args: Vec<Value> = match request.metadata.get("params").map(String::as_str) {
            None | Some("") => Vec::new(),
            Some(raw) => serde_json::from_str(raw).map_err(|e| {
                Error::InvalidArgument(format!("metadata `params` must be a JSON array ({e}): `{raw}`"))
            })?,
        };
        let started = (SystemTime::now(), Instant::now());
        let client = self.client().await?;
        let mut metadata =
            Metadata::from([("operation".to_owned(), operation.clone()), ("sql".to_owned(), sql.clone())]);
        let data = if operation == "exec" && args.is_empty() {
            // Without parameters, the simple protocol: DDL and several statements work too.
            let messages = client.simple_query(&sql).await.map_err(backend)?;
            let affected: u64 = messages
                .iter()
                .map(|m| match m {
                    SimpleQueryMessage::CommandComplete(n) => *n,
                    _ => 0,
                })
                .sum();
            metadata.insert("rows-affected".into(), affected.to_string());
            None
        } else {
            let statement = client.prepare(&sql).await.map_err(backend)?;
            let types = statement.params();
            if types.len() != args.len() {
                return Err(Error::InvalidArgument(format!(
                    "the statement takes {} parameters, `params` holds {}",
                    types.len(),
                    args.len()
                )));
            }
            let params: Vec<Param> =
                types.iter().zip(&args).enumerate().map(|(i, (ty, v))| param(i, ty, v)).collect::<Result<_>>()?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            if operation == "exec" {
                let affected = client.execute(&statement, &refs).await.map_err(backend)?;
                metadata.insert("rows-affected".into(), affected.to_string());
                None
            } else {
                let rows = client.query(&statement, &refs).await.map_err(backend)?;
                let table: Vec<Value> = rows
                    .iter()
                    .map(|row| (0..row.len()).map(|i| column(row, i)).collect::<Result<Vec<_>>>().map(Value::Array))
                    .collect::<Result<_>>()?;
                Some(Value::Array(table).to_string().into_bytes())
            }
        };
        metadata.insert("start-time".into(), rfc3339(started.0));
        metadata.insert("end-time".into(), rfc3339(SystemTime::now()));
        metadata.insert("duration".into(), format!("{:?}", started.1.elapsed()));
        Ok(InvokeResponse { data, metadata, content_type: None })
    }
}
