//! The state-store suite: every S-rule of Dapr's conformance suite and the holes it leaves.
//!
//! Values are canonical JSON (compact, keys sorted) unless a case is about raw bytes, so the
//! same bytes come back through the in-process driver and through the Dapr HTTP API, which
//! re-serialises JSON values.

pub(crate) mod concurrency;
mod crud;
mod etag;
mod features;
mod keys;
mod query;
mod transaction;
mod ttl;

use std::sync::Arc;
use std::time::Duration;

use contract::state::{DeleteRequest, GetRequest, Item, SetRequest};
use contract::{Block, StateStore};

use crate::case::{Case, Claim, Ctx, DriverCapability, Finding, Must, Reach, Requirement};
use crate::suite::Suite;

pub(crate) const BLOCK: Block = Block::STATE;
/// The store every state case calls.
pub const STORE: Reach = Reach::of::<dyn StateStore>("state store");

/// The state suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[STORE], cases, prepare: None };

impl Ctx {
    /// The state store, through the driver.
    pub fn state(&self) -> Result<&Arc<dyn StateStore>, Finding> {
        self.reach(STORE)
    }
}

pub(crate) const ETAG: Requirement = Requirement::Claimed(Claim::Etag);
pub(crate) const FIRST_WRITE: Requirement = Requirement::Claimed(Claim::FirstWrite);
pub(crate) const TRANSACTION: Requirement = Requirement::Claimed(Claim::Transaction);
pub(crate) const TTL: Requirement = Requirement::Claimed(Claim::Ttl);
pub(crate) const QUERY: Requirement = Requirement::Claimed(Claim::Query);
pub(crate) const PREFIX: Requirement = Requirement::Claimed(Claim::DeleteWithPrefix);
pub(crate) const KEYS_LIKE: Requirement = Requirement::Claimed(Claim::KeysLike);
pub(crate) const BINARY: Requirement = Requirement::Driver(DriverCapability::BinaryValues);
pub(crate) const KEYED_BULK: Requirement = Requirement::Driver(DriverCapability::KeyedStateBulkErrors);
pub(crate) const CALL_PREFIX: Requirement = Requirement::Driver(DriverCapability::DeleteWithPrefix);
pub(crate) const CALL_KEYS_LIKE: Requirement = Requirement::Driver(DriverCapability::KeysLike);

/// Every state case, in a stable order.
fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(crud::cases());
    all.extend(features::cases());
    all.extend(etag::cases());
    all.extend(transaction::cases());
    all.extend(ttl::cases());
    all.extend(query::cases());
    all.extend(keys::cases());
    all.extend(concurrency::cases());
    all.extend(crate::http_api::state::cases());
    all
}

pub(crate) async fn get(ctx: &Ctx, key: &str) -> Result<Option<Item>, Finding> {
    ctx.state()?.get(GetRequest::new(key)).await.must(&format!("get `{key}`"))
}

pub(crate) async fn data(ctx: &Ctx, key: &str) -> Result<Option<Vec<u8>>, Finding> {
    Ok(get(ctx, key).await?.map(|i| i.data))
}

pub(crate) async fn etag(ctx: &Ctx, key: &str) -> Result<String, Finding> {
    let item =
        get(ctx, key).await?.ok_or_else(|| Finding::Fail(format!("`{key}` is missing right after it was written")))?;
    item.etag.filter(|e| !e.is_empty()).ok_or_else(|| Finding::Fail(format!("`{key}` has no ETag")))
}

pub(crate) async fn set(ctx: &Ctx, key: &str, value: &str) -> Result<(), Finding> {
    ctx.state()?.set(SetRequest::new(key, value)).await.must(&format!("set `{key}`"))
}

pub(crate) async fn delete(ctx: &Ctx, key: &str) -> Result<(), Finding> {
    ctx.state()?.delete(DeleteRequest::new(key)).await.must(&format!("delete `{key}`"))
}

/// Renders bytes for a failure message: text when printable, else hex, cut at 80 characters.
pub(crate) fn show(bytes: &[u8]) -> String {
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => format!("{s:?}"),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    };
    if text.len() > 80 { format!("{}… ({} bytes)", &text[..text.floor_char_boundary(80)], bytes.len()) } else { text }
}

pub(crate) fn ensure_data(key: &str, seen: Option<Vec<u8>>, expected: Option<&[u8]>) -> Result<(), Finding> {
    if seen.as_deref() == expected {
        return Ok(());
    }
    Err(Finding::Fail(format!(
        "`{key}`: expected {}, saw {}",
        expected.map_or("no item".into(), show),
        seen.as_deref().map_or("no item".into(), show)
    )))
}

/// Adds context to a failure: `seen x` becomes `seen x {context}`.
pub(crate) fn context(context: &'static str) -> impl FnOnce(Finding) -> Finding {
    move |f| match f {
        Finding::Fail(m) => Finding::Fail(format!("{m} {context}")),
        other => other,
    }
}

/// Polls `check` every 100 ms until it holds or `within` passes.
pub(crate) async fn poll<F, Fut>(within: Duration, mut check: F) -> Result<bool, Finding>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Finding>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
