//! `state.in-memory`: the reference state store. Every rule of the state contract holds here
//! exactly; suites are proven against it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use contract::clock::{SharedClock, rfc3339};
use contract::state::{
    self, BulkGetItem, Concurrency, DeleteRequest, DeleteWithPrefixRequest, GetRequest, Item, KeysLikeRequest,
    KeysLikeResponse, QueryItem, QueryRequest, QueryResponse, SetRequest, TransactionOperation, TransactionRequest,
};
use contract::{Error, FeatureSet, Result, StateFeature, StateStore};

use super::keys_like::LikePattern;
use super::query_eval;

/// How often expired items are purged from memory; reads never see them either way.
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Entry {
    data: Vec<u8>,
    etag: String,
    expires_at: Option<SystemTime>,
    content_type: Option<String>,
}

impl Entry {
    fn live_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    fn to_item(&self) -> Item {
        let mut metadata = contract::Metadata::new();
        if let Some(at) = self.expires_at {
            metadata.insert(state::TTL_EXPIRE_TIME.to_owned(), rfc3339(at));
        }
        Item {
            data: self.data.clone(),
            etag: Some(self.etag.clone()),
            metadata,
            content_type: self.content_type.clone(),
        }
    }
}

type Table = BTreeMap<String, Entry>;

/// The in-memory state store.
#[derive(Debug)]
pub struct InMemoryStateStore {
    table: Arc<Mutex<Table>>,
    clock: SharedClock,
}

impl InMemoryStateStore {
    /// An empty store on `clock`. Inside a tokio runtime it also starts a purge task that ends
    /// when the store is dropped.
    pub fn new(clock: SharedClock) -> Self {
        let table = Arc::new(Mutex::new(Table::new()));
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(purge_expired(Arc::downgrade(&table), clock.clone()));
        }
        Self { table, clock }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn live<'t>(&self, table: &'t Table, key: &str, now: SystemTime) -> Option<&'t Entry> {
        table.get(key).filter(|e| e.live_at(now))
    }

    /// Checks a write's ETag and concurrency rules against the current entry.
    fn check_write(current: Option<&Entry>, key: &str, etag: Option<&str>, concurrency: Concurrency) -> Result<()> {
        match (etag, current) {
            (Some(given), Some(entry)) if given == entry.etag => Ok(()),
            (Some(given), Some(_)) => Err(Error::etag_mismatch(key, format!("etag `{given}` is not the current one"))),
            (Some(given), None) => {
                Err(Error::etag_mismatch(key, format!("etag `{given}` given but the key does not exist")))
            }
            (None, Some(_)) if concurrency == Concurrency::FirstWrite => {
                Err(Error::etag_mismatch(key, "first-write: item already exists and no etag was passed"))
            }
            (None, _) => Ok(()),
        }
    }

    fn prepared_entry(&self, request: &SetRequest, now: SystemTime) -> Result<Entry> {
        // An overwrite without a TTL clears any earlier one, as does `-1`.
        let expires_at = match state::parse_ttl(&request.metadata)? {
            Some(Some(secs)) => Some(now + Duration::from_secs(secs)),
            Some(None) | None => None,
        };
        let content_type = request.content_type.clone().or_else(|| request.metadata.get(state::CONTENT_TYPE).cloned());
        Ok(Entry { data: request.value.clone(), etag: uuid::Uuid::new_v4().to_string(), expires_at, content_type })
    }

    fn validate_key(key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::InvalidArgument("the key must not be empty".into()));
        }
        Ok(())
    }
}

async fn purge_expired(table: Weak<Mutex<Table>>, clock: SharedClock) {
    loop {
        clock.sleep(PURGE_INTERVAL).await;
        let Some(table) = table.upgrade() else { return };
        let now = clock.now();
        table.lock().unwrap_or_else(PoisonError::into_inner).retain(|_, e| e.live_at(now));
    }
}

#[async_trait]
impl StateStore for InMemoryStateStore {
    fn features(&self) -> FeatureSet<StateFeature> {
        [
            StateFeature::Etag,
            StateFeature::Transactional,
            StateFeature::QueryApi,
            StateFeature::Ttl,
            StateFeature::DeleteWithPrefix,
            StateFeature::KeysLike,
        ]
        .into()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>> {
        Self::validate_key(&request.key)?;
        let now = self.clock.now();
        Ok(self.live(&self.lock(), &request.key, now).map(Entry::to_item))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        Self::validate_key(&request.key)?;
        let now = self.clock.now();
        let entry = self.prepared_entry(&request, now)?;
        let mut table = self.lock();
        Self::check_write(
            self.live(&table, &request.key, now),
            &request.key,
            request.etag(),
            request.options.concurrency,
        )?;
        table.insert(request.key, entry);
        Ok(())
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        Self::validate_key(&request.key)?;
        let now = self.clock.now();
        let mut table = self.lock();
        // First-write has no meaning for a delete: only the ETag, if any, is checked.
        Self::check_write(self.live(&table, &request.key, now), &request.key, request.etag(), Concurrency::LastWrite)?;
        table.remove(&request.key);
        Ok(())
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkGetItem>> {
        let now = self.clock.now();
        let table = self.lock();
        Ok(requests
            .into_iter()
            .map(|r| BulkGetItem { item: self.live(&table, &r.key, now).map(Entry::to_item), key: r.key, error: None })
            .collect())
    }

    async fn transact(&self, request: TransactionRequest) -> Result<()> {
        let now = self.clock.now();
        // Everything that can fail is checked before anything is applied, against the state
        // before the transaction, so a failure leaves every key unchanged.
        let mut prepared = Vec::with_capacity(request.operations.len());
        let mut table = self.lock();
        for op in &request.operations {
            Self::validate_key(op.key())?;
            match op {
                TransactionOperation::Set(set) => {
                    Self::check_write(self.live(&table, &set.key, now), &set.key, set.etag(), set.options.concurrency)?;
                    prepared.push((set.key.clone(), Some(self.prepared_entry(set, now)?)));
                }
                TransactionOperation::Delete(delete) => {
                    Self::check_write(
                        self.live(&table, &delete.key, now),
                        &delete.key,
                        delete.etag(),
                        Concurrency::LastWrite,
                    )?;
                    prepared.push((delete.key.clone(), None));
                }
            }
        }
        for (key, entry) in prepared {
            match entry {
                Some(entry) => table.insert(key, entry),
                None => table.remove(&key),
            };
        }
        Ok(())
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse> {
        let now = self.clock.now();
        let rows: Vec<_> = self
            .lock()
            .iter()
            .filter(|(_, e)| e.live_at(now))
            .filter_map(|(k, e)| {
                // Values that are not JSON cannot match a query; skip them.
                let value = serde_json::from_slice(&e.data).ok()?;
                Some((k.clone(), value, e.clone()))
            })
            .collect();
        let (page, token) = query_eval::run(&request.query, rows)?;
        Ok(QueryResponse {
            results: page
                .into_iter()
                .map(|(key, _, entry)| QueryItem { key, data: entry.data, etag: Some(entry.etag), error: None })
                .collect(),
            token,
            metadata: contract::Metadata::new(),
        })
    }

    async fn delete_with_prefix(&self, request: DeleteWithPrefixRequest) -> Result<u64> {
        let prefix = request.prefix;
        if prefix.is_empty() || prefix == "||" {
            return Err(Error::InvalidArgument("prefix is required".into()));
        }
        let prefix = if prefix.ends_with("||") { prefix } else { format!("{prefix}||") };
        let now = self.clock.now();
        let mut table = self.lock();
        // Only keys directly under the prefix: deeper `||` levels are left alone.
        let doomed: Vec<String> = table
            .iter()
            .filter(|(k, e)| e.live_at(now) && k.strip_prefix(&prefix).is_some_and(|rest| !rest.contains("||")))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &doomed {
            table.remove(key);
        }
        Ok(doomed.len() as u64)
    }

    async fn keys_like(&self, request: KeysLikeRequest) -> Result<KeysLikeResponse> {
        if request.pattern.is_empty() {
            return Err(Error::InvalidArgument("keys-like pattern must not be empty".into()));
        }
        let pattern = LikePattern::new(&request.pattern);
        let now = self.clock.now();
        let table = self.lock();
        // The token is the last key returned; keys sort, so the next page starts after it and
        // stays correct when keys are added or removed between pages.
        let start = match &request.continuation_token {
            Some(token) => std::ops::Bound::Excluded(token.clone()),
            None => std::ops::Bound::Unbounded,
        };
        let limit = request.page_size.filter(|n| *n > 0).map(|n| n as usize);
        let mut matching = table
            .range((start, std::ops::Bound::Unbounded))
            .filter(|(k, e)| e.live_at(now) && pattern.matches(k))
            .map(|(k, _)| k.clone());
        let keys: Vec<String> = match limit {
            Some(n) => matching.by_ref().take(n).collect(),
            None => matching.by_ref().collect(),
        };
        let more = matching.next().is_some();
        Ok(KeysLikeResponse { continuation_token: if more { keys.last().cloned() } else { None }, keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::ManualClock;

    #[tokio::test]
    async fn expired_items_are_purged_from_memory() {
        let clock = ManualClock::new();
        let store = InMemoryStateStore::new(clock.shared());
        store.set(SetRequest::new("short", "v").with_metadata(state::TTL_IN_SECONDS, "1")).await.expect("set");
        store.set(SetRequest::new("long", "v")).await.expect("set");
        tokio::task::yield_now().await; // Let the purge task start waiting on the clock.
        assert_eq!(store.lock().len(), 2);
        clock.advance(PURGE_INTERVAL + Duration::from_secs(1));
        for _ in 0..100 {
            if store.lock().len() == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(store.lock().keys().collect::<Vec<_>>(), ["long"], "the expired item left memory");
    }
}
