//! `state.redis`: a state store on Redis, with Dapr's metadata names (`redisHost`,
//! `redisPassword`, `redisUsername`, `redisDB`).
//!
//! Each key is a hash `{data, version}`. The version is a fresh UUID on every write (numeric
//! versions restart after a delete, so an old ETag could match again). Conditional writes and
//! transactions run as one Lua script: every ETag is checked before anything is written, so a
//! transaction is atomic. TTLs are native Redis expiries.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use contract::clock::rfc3339;
use contract::state::{
    self, Concurrency, DeleteRequest, GetRequest, Item, SetRequest, TransactionOperation, TransactionRequest,
};
use contract::{Error, FeatureSet, MetadataError, Properties, Result, StateFeature, StateStore};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Checks every operation's ETag against the state before the script, then applies them all.
/// Per operation, ARGV holds: kind (`set`/`del`), expected ETag (`""`: none), first-write
/// (`1`/`0`), new ETag, data, TTL in ms (`-1`: none).
const APPLY: &str = r#"
local n = #KEYS
for i = 1, n do
  local b = (i - 1) * 6
  local expected, first_write = ARGV[b + 2], ARGV[b + 3]
  local current = redis.call('HGET', KEYS[i], 'version')
  if expected ~= '' then
    if current ~= expected then return redis.error_reply('ETAG_MISMATCH ' .. KEYS[i]) end
  elseif first_write == '1' and current then
    return redis.error_reply('ETAG_MISMATCH ' .. KEYS[i])
  end
end
for i = 1, n do
  local b = (i - 1) * 6
  if ARGV[b + 1] == 'set' then
    redis.call('HSET', KEYS[i], 'data', ARGV[b + 5], 'version', ARGV[b + 4])
    local ttl = tonumber(ARGV[b + 6])
    if ttl >= 0 then redis.call('PEXPIRE', KEYS[i], ttl) else redis.call('PERSIST', KEYS[i]) end
  else
    redis.call('DEL', KEYS[i])
  end
end
return n
"#;

/// How the store reaches Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redisHost`: `host:port`.
    pub host: String,
    /// `redisUsername`.
    pub username: Option<String>,
    /// `redisPassword`.
    pub password: Option<String>,
    /// `redisDB`.
    pub db: i64,
    /// `timeout`-like settings: how long one call may take.
    pub timeout: Duration,
}

impl RedisSettings {
    /// Reads Dapr's metadata names.
    pub fn from_properties(p: &Properties) -> std::result::Result<Self, MetadataError> {
        if p.bool_or("enableTLS", false)? {
            return Err(MetadataError::Invalid {
                field: "enableTLS".into(),
                value: "true".into(),
                reason: "TLS to Redis is not supported by this build; connect over loopback or a tunnel".into(),
            });
        }
        Ok(Self {
            host: p.required("redisHost")?.to_owned(),
            username: p.get("redisUsername").map(str::to_owned),
            password: p.get("redisPassword").map(str::to_owned),
            db: p.parse::<i64>("redisDB")?.unwrap_or(0),
            timeout: p.duration("timeout", Duration::from_millis(1))?.unwrap_or(Duration::from_secs(5)),
        })
    }

    fn url(&self) -> String {
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(p)) => format!("{u}:{p}@"),
            (None, Some(p)) => format!(":{p}@"),
            _ => String::new(),
        };
        format!("redis://{auth}{}/{}", self.host, self.db)
    }
}

/// The Redis state store.
#[derive(Clone)]
pub struct RedisStateStore {
    conn: ConnectionManager,
    apply: redis::Script,
}

impl std::fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStateStore")
    }
}

pub(crate) fn backend(e: redis::RedisError) -> Error {
    Error::Backend(format!("redis: {e}"))
}

/// Connects a self-healing connection to Redis and checks it answers PING, within the
/// configured timeout; the client is kept for dedicated connections (blocking reads).
pub(crate) async fn open(settings: &RedisSettings) -> Result<(redis::Client, ConnectionManager)> {
    let client = redis::Client::open(settings.url())
        .map_err(|e| Error::Backend(format!("invalid Redis address `{}`: {e}", settings.host)))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(settings.timeout))
        .set_number_of_retries(2);
    let connect = ConnectionManager::new_with_config(client.clone(), config);
    let mut conn = tokio::time::timeout(settings.timeout, connect)
        .await
        .map_err(|_| {
            Error::Backend(format!("Redis at `{}` did not answer within {:?}", settings.host, settings.timeout))
        })?
        .map_err(|e| Error::Backend(format!("cannot connect to Redis at `{}`: {e}", settings.host)))?;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.map_err(backend)?;
    if pong != "PONG" {
        return Err(Error::Backend(format!("Redis at `{}` answered PING with `{pong}`", settings.host)));
    }
    Ok((client, conn))
}

impl RedisStateStore {
    /// Connects and checks Redis answers, within the configured timeout.
    pub async fn connect(settings: &RedisSettings) -> Result<Self> {
        let (_, conn) = open(settings).await?;
        Ok(Self { conn, apply: redis::Script::new(APPLY) })
    }

    async fn run(&self, ops: Vec<ScriptOp>) -> Result<()> {
        let mut invocation = self.apply.prepare_invoke();
        for (key, args) in &ops {
            invocation.key(key);
            for arg in args {
                invocation.arg(arg.as_slice());
            }
        }
        let mut conn = self.conn.clone();
        match invocation.invoke_async::<i64>(&mut conn).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("ETAG_MISMATCH") => {
                let key = e
                    .to_string()
                    .split("ETAG_MISMATCH")
                    .nth(1)
                    .map(|k| {
                        k.split_whitespace().next().unwrap_or_default().trim_end_matches(['"', '\'', ')']).to_owned()
                    })
                    .unwrap_or_default();
                Err(Error::etag_mismatch(key, "the ETag is not current (or first-write found the key)"))
            }
            Err(e) => Err(backend(e)),
        }
    }
}

/// One operation of the script: its key and its six arguments.
type ScriptOp = (String, [Vec<u8>; 6]);

fn encode(kind: &str, expected: Option<&str>, first_write: bool, data: &[u8], ttl_ms: i64) -> [Vec<u8>; 6] {
    [
        kind.as_bytes().to_vec(),
        expected.unwrap_or_default().as_bytes().to_vec(),
        if first_write { b"1".to_vec() } else { b"0".to_vec() },
        uuid::Uuid::new_v4().to_string().into_bytes(),
        data.to_vec(),
        ttl_ms.to_string().into_bytes(),
    ]
}

fn set_op(request: &SetRequest) -> Result<ScriptOp> {
    let ttl_ms = match state::parse_ttl(&request.metadata)? {
        Some(Some(secs)) => i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX),
        _ => -1,
    };
    let first_write = request.options.concurrency == Concurrency::FirstWrite && request.etag().is_none();
    Ok((request.key.clone(), encode("set", request.etag(), first_write, &request.value, ttl_ms)))
}

fn del_op(request: &DeleteRequest) -> ScriptOp {
    (request.key.clone(), encode("del", request.etag(), false, &[], -1))
}

#[async_trait]
impl StateStore for RedisStateStore {
    fn features(&self) -> FeatureSet<StateFeature> {
        [StateFeature::Etag, StateFeature::Transactional, StateFeature::Ttl].into()
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(backend)
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        let mut conn = self.conn.clone();
        let ((data, version), pttl): ((Option<Vec<u8>>, Option<String>), i64) = redis::pipe()
            .atomic()
            .cmd("HMGET")
            .arg(&request.key)
            .arg("data")
            .arg("version")
            .cmd("PTTL")
            .arg(&request.key)
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        let (Some(data), Some(version)) = (data, version) else { return Ok(None) };
        let mut metadata = contract::Metadata::new();
        if pttl >= 0 {
            let at = SystemTime::now() + Duration::from_millis(pttl.unsigned_abs());
            metadata.insert(state::TTL_EXPIRE_TIME.to_owned(), rfc3339(at));
        }
        Ok(Some(Item { data, etag: Some(version), metadata, content_type: None }))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.run(vec![set_op(&request)?]).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        if request.etag().is_none() {
            let mut conn = self.conn.clone();
            return redis::cmd("DEL")
                .arg(&request.key)
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
                .map_err(backend);
        }
        self.run(vec![del_op(&request)]).await
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        let ops = request
            .operations
            .iter()
            .map(|op| match op {
                TransactionOperation::Set(s) => set_op(s),
                TransactionOperation::Delete(d) => Ok(del_op(d)),
            })
            .collect::<Result<Vec<_>>>()?;
        if ops.is_empty() {
            return Ok(());
        }
        self.run(ops).await
    }
}
