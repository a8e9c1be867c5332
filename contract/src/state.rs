//! The state-store contract: key/value items with ETags, TTL, transactions and queries.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::errors::{Error, Result};
use crate::features::{FeatureSet, StateFeature};
use crate::metadata::Metadata;
use crate::state_query::Query;

/// Metadata key that sets an item's time to live, in seconds (`-1`: never expire).
pub const TTL_IN_SECONDS: &str = "ttlInSeconds";
/// Response-metadata key carrying an item's expiry time (RFC 3339, UTC).
pub const TTL_EXPIRE_TIME: &str = "ttlExpireTime";
/// Metadata key naming a partition, for stores with [`StateFeature::PartitionKey`].
pub const PARTITION_KEY: &str = "partitionKey";
/// Metadata key naming the content type of a value.
pub const CONTENT_TYPE: &str = "contentType";

/// How concurrent writes to one key are resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concurrency {
    /// The write must carry the current ETag; without one it only creates the key.
    FirstWrite,
    /// Without an ETag, the write simply replaces the value.
    #[default]
    LastWrite,
}

impl Concurrency {
    /// The wire name: `first-write` or `last-write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstWrite => "first-write",
            Self::LastWrite => "last-write",
        }
    }
}

impl Consistency {
    /// The wire name: `eventual` or `strong`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eventual => "eventual",
            Self::Strong => "strong",
        }
    }
}

impl std::str::FromStr for Concurrency {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "first-write" => Ok(Self::FirstWrite),
            "last-write" | "" => Ok(Self::LastWrite),
            other => Err(Error::InvalidArgument(format!(
                "unrecognized concurrency model `{other}` (expected `first-write` or `last-write`)"
            ))),
        }
    }
}

/// The consistency a read or write asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consistency {
    /// The store may answer from a replica.
    #[default]
    Eventual,
    /// The store must answer from the primary.
    Strong,
}

impl std::str::FromStr for Consistency {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "eventual" | "" => Ok(Self::Eventual),
            "strong" => Ok(Self::Strong),
            other => Err(Error::InvalidArgument(format!(
                "unrecognized consistency model `{other}` (expected `eventual` or `strong`)"
            ))),
        }
    }
}

/// Options of a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateOptions {
    /// How concurrent writes are resolved.
    pub concurrency: Concurrency,
    /// The consistency asked for.
    pub consistency: Consistency,
}

/// Read one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetRequest {
    /// The key.
    pub key: String,
    /// Request metadata (`partitionKey`, `contentType`, ...).
    pub metadata: Metadata,
    /// The consistency asked for.
    pub consistency: Consistency,
}

impl GetRequest {
    /// A plain read of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into(), ..Self::default() }
    }
}

/// An item that exists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    /// The stored bytes, exactly as written.
    pub data: Vec<u8>,
    /// The item's current ETag, for stores with [`StateFeature::Etag`].
    pub etag: Option<String>,
    /// Response metadata, e.g. `ttlExpireTime`.
    pub metadata: Metadata,
    /// The content type the value was written with, if the store keeps it.
    pub content_type: Option<String>,
}

/// Write one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRequest {
    /// The key.
    pub key: String,
    /// The bytes to store.
    pub value: Vec<u8>,
    /// The ETag the write is conditional on; `None` and `Some("")` both mean none.
    pub etag: Option<String>,
    /// Request metadata (`ttlInSeconds`, `contentType`, ...).
    pub metadata: Metadata,
    /// Concurrency and consistency.
    pub options: StateOptions,
    /// The value's content type.
    pub content_type: Option<String>,
}

impl SetRequest {
    /// An unconditional write of `value` to `key`.
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into(), value: value.into(), ..Self::default() }
    }

    /// The same write, conditional on `etag`.
    pub fn with_etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }

    /// The same write, with one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The same write, with first-write concurrency.
    pub fn first_write(mut self) -> Self {
        self.options.concurrency = Concurrency::FirstWrite;
        self
    }

    /// The ETag, with an empty string treated as none.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref().filter(|e| !e.is_empty())
    }
}

/// Delete one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    /// The key.
    pub key: String,
    /// The ETag the delete is conditional on; `None` and `Some("")` both mean none.
    pub etag: Option<String>,
    /// Request metadata.
    pub metadata: Metadata,
    /// Concurrency and consistency.
    pub options: StateOptions,
}

impl DeleteRequest {
    /// An unconditional delete of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into(), ..Self::default() }
    }

    /// The same delete, conditional on `etag`.
    pub fn with_etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }

    /// The ETag, with an empty string treated as none.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref().filter(|e| !e.is_empty())
    }
}

/// One answer of a bulk get: every requested key gets one, present or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkGetItem {
    /// The key asked for.
    pub key: String,
    /// The item, or `None` when the key does not exist.
    pub item: Option<Item>,
    /// A per-key failure; the other keys are still answered.
    pub error: Option<String>,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionOperation {
    /// Upsert a key.
    Set(SetRequest),
    /// Delete a key.
    Delete(DeleteRequest),
}

impl TransactionOperation {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Self::Set(r) => &r.key,
            Self::Delete(r) => &r.key,
        }
    }
}

/// Several operations applied atomically, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionRequest {
    /// The operations, applied in this order.
    pub operations: Vec<TransactionOperation>,
    /// Request-level metadata.
    pub metadata: Metadata,
}

/// A query over the stored JSON values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryRequest {
    /// The filter, sort and page.
    pub query: Query,
    /// Request metadata.
    pub metadata: Metadata,
}

/// One match of a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryItem {
    /// The key.
    pub key: String,
    /// The stored bytes.
    pub data: Vec<u8>,
    /// The item's ETag.
    pub etag: Option<String>,
    /// A per-item failure.
    pub error: Option<String>,
}

/// A page of query results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResponse {
    /// The matches of this page, in sort order.
    pub results: Vec<QueryItem>,
    /// The token for the next page; `None` when this is the last one.
    pub token: Option<String>,
    /// Response metadata.
    pub metadata: Metadata,
}

/// Delete every key directly under a `||`-separated prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteWithPrefixRequest {
    /// The prefix; `||` is appended when missing.
    pub prefix: String,
}

/// List keys matching an SQL LIKE pattern (`%` any run, `_` one character, `\` escapes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysLikeRequest {
    /// The pattern; must not be empty.
    pub pattern: String,
    /// The most keys to return; `None` returns all.
    pub page_size: Option<u32>,
    /// Where the previous page ended; `None` starts from the beginning.
    pub continuation_token: Option<String>,
}

/// A page of keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysLikeResponse {
    /// The keys of this page.
    pub keys: Vec<String>,
    /// The token for the next page; `None` when this is the last one.
    pub continuation_token: Option<String>,
}

/// A key/value store with optional ETags, TTL, transactions, queries and key listing.
///
/// The optional operations answer [`Error::Unsupported`] unless the store advertises the
/// matching feature; suites check both directions.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The features this store advertises.
    fn features(&self) -> FeatureSet<StateFeature>;

    /// Checks the store can reach its backend.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// Reads a key; `Ok(None)` when it does not exist (or has expired).
    async fn get(&self, request: GetRequest) -> Result<Option<Item>>;

    /// Writes a key.
    async fn set(&self, request: SetRequest) -> Result<()>;

    /// Deletes a key; deleting an absent key without an ETag succeeds.
    async fn delete(&self, request: DeleteRequest) -> Result<()>;

    /// Reads several keys; one answer per requested key, in request order.
    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkGetItem>> {
        let mut items = Vec::with_capacity(requests.len());
        for request in requests {
            let key = request.key.clone();
            match self.get(request).await {
                Ok(item) => items.push(BulkGetItem { key, item, error: None }),
                Err(e) => items.push(BulkGetItem { key, item: None, error: Some(e.to_string()) }),
            }
        }
        Ok(items)
    }

    /// Writes several keys, not atomically: every item is tried, and the failures come back
    /// together as [`Error::Bulk`].
    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        let mut failures = Vec::new();
        for request in requests {
            let key = request.key.clone();
            if let Err(error) = self.set(request).await {
                failures.push(crate::errors::KeyedError { key, error });
            }
        }
        bulk_result(failures)
    }

    /// Deletes several keys, not atomically, like [`StateStore::bulk_set`].
    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        let mut failures = Vec::new();
        for request in requests {
            let key = request.key.clone();
            if let Err(error) = self.delete(request).await {
                failures.push(crate::errors::KeyedError { key, error });
            }
        }
        bulk_result(failures)
    }

    /// Applies operations atomically and in order ([`StateFeature::Transactional`]).
    async fn transact(&self, _request: TransactionRequest) -> Result<()> {
        Err(Error::unsupported("transaction"))
    }

    /// Queries stored JSON values ([`StateFeature::QueryApi`]).
    async fn query(&self, _request: QueryRequest) -> Result<QueryResponse> {
        Err(Error::unsupported("query"))
    }

    /// Deletes keys by prefix and returns how many ([`StateFeature::DeleteWithPrefix`]).
    async fn delete_with_prefix(&self, _request: DeleteWithPrefixRequest) -> Result<u64> {
        Err(Error::unsupported("delete-with-prefix"))
    }

    /// Lists keys by pattern ([`StateFeature::KeysLike`]).
    async fn keys_like(&self, _request: KeysLikeRequest) -> Result<KeysLikeResponse> {
        Err(Error::unsupported("keys-like"))
    }

    /// The most operations one transaction may hold, if limited.
    fn multi_max_size(&self) -> Option<usize> {
        None
    }
}

/// `Ok(())` when nothing failed, else [`Error::Bulk`].
pub fn bulk_result(failures: Vec<crate::errors::KeyedError>) -> Result<()> {
    if failures.is_empty() { Ok(()) } else { Err(Error::Bulk(failures)) }
}

/// Parses a `ttlInSeconds` metadata value: `None` when absent, `Some(None)` for a negative
/// value (never expire), `Some(Some(secs))` otherwise.
pub fn parse_ttl(metadata: &Metadata) -> Result<Option<Option<u64>>> {
    let Some(raw) = metadata.get(TTL_IN_SECONDS) else {
        return Ok(None);
    };
    let secs: i64 = raw.trim().parse().map_err(|_| {
        Error::InvalidArgument(format!("metadata `{TTL_IN_SECONDS}` must be an integer number of seconds, got `{raw}`"))
    })?;
    if secs > i64::from(i32::MAX) || secs < -1 {
        return Err(Error::InvalidArgument(format!(
            "metadata `{TTL_IN_SECONDS}` must be between -1 and {}, got `{raw}`",
            i32::MAX
        )));
    }
    Ok(Some(u64::try_from(secs).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl(raw: &str) -> Result<Option<Option<u64>>> {
        parse_ttl(&Metadata::from([(TTL_IN_SECONDS.to_owned(), raw.to_owned())]))
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl(&Metadata::new()), Ok(None));
        assert_eq!(ttl("2"), Ok(Some(Some(2))));
        assert_eq!(ttl("-1"), Ok(Some(None)));
        assert!(ttl("foo").is_err());
        assert!(ttl("-2").is_err());
        assert!(ttl("3000000000").is_err());
    }
}
