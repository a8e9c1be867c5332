//! `bindings.redis`: an output binding on Redis strings, with Dapr's metadata names
//! (`redisHost`, `redisPassword`, `redisUsername`, `redisDB`) and operations: `create` (SET,
//! with `ttlInSeconds` as an expiry), `get` (GET; with `delete: "true"` GETDEL), `delete` (DEL)
//! and `increment` (INCR). Every request names its item with the metadata `key`.

use async_trait::async_trait;
use contract::bindings::{InvokeRequest, InvokeResponse};
use contract::{Error, OutputBinding, Result};
use redis::aio::ConnectionManager;

use crate::state_redis::{RedisSettings, backend, open};

const OPERATIONS: [&str; 4] = ["create", "get", "delete", "increment"];

/// The Redis output binding.
#[derive(Clone)]
pub struct RedisBinding {
    conn: ConnectionManager,
    /// How long one call may take, reconnecting included.
    timeout: std::time::Duration,
}

impl std::fmt::Debug for RedisBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisBinding")
    }
}

impl RedisBinding {
    /// Connects and checks Redis answers.
    pub async fn connect(settings: &RedisSettings) -> Result<Self> {
        let (_, conn) = open(settings).await?;
        Ok(Self { conn, timeout: settings.timeout })
    }

    /// `call`, bounded by the configured timeout: the client's own response timeout does not
    /// cover a reconnect in progress, and a caller must get an answer either way.
    async fn bounded<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or_else(|_| Err(Error::Backend(format!("Redis did not answer within {:?}", self.timeout))))
    }
}

/// The request's `ttlInSeconds`, if it sets one.
fn ttl(request: &InvokeRequest) -> Result<Option<u64>> {
    let Some(raw) = request.metadata.get(contract::state::TTL_IN_SECONDS) else { return Ok(None) };
    match raw.parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Some(seconds)),
        _ => Err(Error::InvalidArgument(format!("metadata `ttlInSeconds` must be a positive integer, got `{raw}`"))),
    }
}

#[async_trait]
impl OutputBinding for RedisBinding {
    fn operations(&self) -> Vec<String> {
        OPERATIONS.iter().map(|s| (*s).to_owned()).collect()
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        self.bounded(self.run(request)).await
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        self.bounded(async { redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(backend) })
            .await
    }
}

impl RedisBinding {
    async fn run(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let operation = request.operation.to_ascii_lowercase();
        if !OPERATIONS.contains(&operation.as_str()) {
            return Err(Error::unsupported(format!(
                "binding operation `{}` (bindings.redis has {})",
                request.operation,
                OPERATIONS.join(", ")
            )));
        }
        let key = match request.metadata.get("key") {
            Some(k) if !k.is_empty() => k.clone(),
            _ => return Err(Error::InvalidArgument("bindings.redis: the request metadata must name a `key`".into())),
        };
        let mut conn = self.conn.clone();
        let expire = |seconds: Option<u64>, cmd: &mut redis::Pipeline| {
            if let Some(s) = seconds {
                cmd.cmd("EXPIRE").arg(&key).arg(s).ignore();
            }
        };
        match operation.as_str() {
            "get" => {
                let command =
                    if request.metadata.get("delete").is_some_and(|d| d == "true") { "GETDEL" } else { "GET" };
                let value: Option<Vec<u8>> =
                    redis::cmd(command).arg(&key).query_async(&mut conn).await.map_err(backend)?;
                // A missing key answers an empty response, as Dapr's does.
                return Ok(InvokeResponse { data: value, ..InvokeResponse::default() });
            }
            "delete" => {
                redis::cmd("DEL").arg(&key).query_async::<i64>(&mut conn).await.map_err(backend)?;
            }
            "create" => {
                let mut pipe = redis::pipe();
                pipe.atomic().cmd("SET").arg(&key).arg(&request.data).ignore();
                expire(ttl(&request)?, &mut pipe);
                pipe.query_async::<()>(&mut conn).await.map_err(backend)?;
            }
            _ => {
                let mut pipe = redis::pipe();
                pipe.atomic().cmd("INCR").arg(&key).ignore();
                expire(ttl(&request)?, &mut pipe);
                pipe.query_async::<()>(&mut conn).await.map_err(backend)?;
            }
        }
        Ok(InvokeResponse::default())
    }
}
