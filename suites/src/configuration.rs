//! The configuration suite: the C-rules Dapr's suite has not run since 2023, made to run.
//! Items are written through the store's updater (behind the store's back, as an operator
//! would), then read and watched through the driver.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::configuration::{
    ConfigurationItem, ConfigurationSubscription, ConfigurationUpdate, GetConfigurationRequest,
    SubscribeConfigurationRequest,
};

use contract::{Block, ConfigurationStore, ConfigurationUpdater};

use crate::case::{Case, CaseResult, Ctx, Finding, Must, Reach, Requirement};
use crate::suite::Suite;
use crate::{case, ensure, ensure_eq};

const BLOCK: Block = Block::CONFIGURATION;
/// The store every configuration case reads and watches through.
pub const STORE: Reach = Reach::of::<dyn ConfigurationStore>("configuration store");
/// Writes items behind the store's back.
pub const WRITER: Reach = Reach::of::<dyn ConfigurationUpdater>("way to write items into the store")
    .hinted("give --configuration-writer FILE, a Component YAML of the same store");
pub(crate) const WRITES: Requirement = Requirement::Reach(WRITER);

/// The configuration suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[STORE], cases, prepare: None };

impl Ctx {
    /// The configuration store, through the driver.
    pub fn configuration(&self) -> Result<&Arc<dyn ConfigurationStore>, Finding> {
        self.reach(STORE)
    }

    /// What writes items behind the store's back.
    pub fn configuration_writer(&self) -> Result<&Arc<dyn ConfigurationUpdater>, Finding> {
        self.reach(WRITER)
    }
}

/// Every configuration case.
fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "configuration.get.listed-keys",
            "C2",
            "Reading listed keys MUST answer exactly those items: value, version and metadata.",
            [WRITES],
            [],
            15,
            get_listed
        ),
        case!(
            BLOCK,
            "configuration.get.all-keys",
            "C3",
            "Reading with no keys MUST answer every item, each exactly as written.",
            [WRITES],
            [],
            15,
            get_all
        ),
        case!(
            BLOCK,
            "configuration.get.missing-keys",
            "C4",
            "Reading keys that do not exist MUST answer no items and no error.",
            [],
            [],
            15,
            get_missing
        ),
        case!(
            BLOCK,
            "configuration.subscribe.updates",
            "C5,C7",
            "A subscriber MUST receive every update of its keys, exactly, and nothing of other keys.",
            [WRITES],
            [],
            40,
            subscribe_updates
        ),
        case!(
            BLOCK,
            "configuration.subscribe.all-keys-sees-new-keys",
            "C7",
            "A subscription to no keys MUST receive new keys as they are added.",
            [WRITES],
            [],
            40,
            subscribe_new_keys
        ),
        case!(
            BLOCK,
            "configuration.subscribe.deletes",
            "C8",
            "A subscriber MUST be told when one of its keys is deleted.",
            [WRITES],
            [],
            40,
            subscribe_deletes
        ),
        case!(
            BLOCK,
            "configuration.subscribe.unsubscribe-stops-updates",
            "C9",
            "After unsubscribing, a subscriber MUST receive nothing more, and other subscribers MUST go on.",
            [WRITES],
            [],
            40,
            unsubscribe_stops
        ),
    ]
    .into_iter()
    .chain(crate::http_api::configuration::cases())
    .collect()
}

fn item(value: &str) -> ConfigurationItem {
    ConfigurationItem { value: value.to_owned(), version: "1.0.0".to_owned(), metadata: Default::default() }
}

/// `n` items `{namespace}-{group}-{i}` → `{group}-value-{i}-{round}`.
fn items(ctx: &Ctx, group: &str, n: usize, round: u32) -> BTreeMap<String, ConfigurationItem> {
    (0..n).map(|i| (ctx.key(&format!("{group}-{i}")), item(&format!("{group}-value-{i}-{round}")))).collect()
}

async fn write(ctx: &Ctx, items: &BTreeMap<String, ConfigurationItem>) -> CaseResult {
    ctx.configuration_writer()?.set(items.clone()).await.must("writing items through the updater")
}

async fn get(ctx: &Ctx, keys: Vec<String>) -> Result<BTreeMap<String, ConfigurationItem>, Finding> {
    ctx.configuration()?.get(GetConfigurationRequest { keys, metadata: Default::default() }).await.must("get")
}

async fn get_listed(ctx: Ctx) -> CaseResult {
    let written = items(&ctx, "listed", 5, 0);
    write(&ctx, &written).await?;
    write(&ctx, &items(&ctx, "other", 3, 0)).await?;
    let seen = get(&ctx, written.keys().cloned().collect()).await?;
    ensure_eq!(seen, written, "the items of the listed keys");
    Ok(())
}

async fn get_all(ctx: Ctx) -> CaseResult {
    let mut written = items(&ctx, "all-a", 4, 0);
    written.extend(items(&ctx, "all-b", 4, 0));
    write(&ctx, &written).await?;
    let seen = get(&ctx, Vec::new()).await?;
    // The store may hold other trials' items; this trial's must be exactly what it wrote.
    let mine: BTreeMap<String, ConfigurationItem> =
        seen.into_iter().filter(|(k, _)| k.starts_with(&format!("{}-", ctx.namespace))).collect();
    ensure_eq!(mine, written, "this trial's items in a read of all keys");
    Ok(())
}

async fn get_missing(ctx: Ctx) -> CaseResult {
    let keys: Vec<String> = (0..5).map(|i| ctx.key(&format!("missing-{i}"))).collect();
    let seen = get(&ctx, keys).await?;
    ensure!(seen.is_empty(), "keys that do not exist answered {seen:?}");
    Ok(())
}

async fn subscribe(ctx: &Ctx, keys: Vec<String>) -> Result<ConfigurationSubscription, Finding> {
    ctx.configuration()?
        .subscribe(SubscribeConfigurationRequest { keys, metadata: Default::default() })
        .await
        .must("subscribe")
}

/// Collects updates until every expected key has shown up with its expected item, or the
/// deadline passes; answers what was seen, last item per key.
async fn collect(
    sub: &mut ConfigurationSubscription,
    expected: &BTreeMap<String, ConfigurationItem>,
    within: Duration,
) -> BTreeMap<String, ConfigurationItem> {
    let deadline = Instant::now() + within;
    let mut seen = BTreeMap::new();
    loop {
        if expected.iter().all(|(k, v)| seen.get(k) == Some(v)) {
            return seen;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, sub.updates.recv()).await {
            Ok(Some(ConfigurationUpdate { items, .. })) => seen.extend(items),
            Ok(None) | Err(_) => return seen,
        }
    }
}

/// Everything that arrives within `within`.
async fn drain(sub: &mut ConfigurationSubscription, within: Duration) -> BTreeMap<String, ConfigurationItem> {
    let deadline = Instant::now() + within;
    let mut seen = BTreeMap::new();
    while let Ok(Some(update)) =
        tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), sub.updates.recv()).await
    {
        seen.extend(update.items);
    }
    seen
}

const PATIENCE: Duration = Duration::from_secs(15);

/// How long a subscription is watched, once its own updates arrived, for updates of keys it
/// did not ask for.
const STRAY_WATCH: Duration = Duration::from_secs(1);

async fn subscribe_updates(ctx: Ctx) -> CaseResult {
    write(&ctx, &items(&ctx, "watched", 3, 0)).await?;
    write(&ctx, &items(&ctx, "unwatched", 3, 0)).await?;
    let mut sub = subscribe(&ctx, items(&ctx, "watched", 3, 0).into_keys().collect()).await?;
    // The other keys change first: a store that tells every subscriber of every key has sent
    // them by the time the watched keys' updates arrive.
    write(&ctx, &items(&ctx, "unwatched", 3, 1)).await?;
    let updated = items(&ctx, "watched", 3, 1);
    write(&ctx, &updated).await?;
    let mut seen = collect(&mut sub, &updated, PATIENCE).await;
    seen.extend(drain(&mut sub, STRAY_WATCH).await);
    let _ = ctx.configuration()?.unsubscribe(&sub.id).await;
    for (key, value) in &updated {
        ensure_eq!(seen.get(key), Some(value), "the update of watched key `{key}`");
    }
    let stray: Vec<&String> = seen.keys().filter(|k| !updated.contains_key(*k)).collect();
    ensure!(stray.is_empty(), "the subscriber received keys it did not subscribe to: {stray:?}");
    Ok(())
}

async fn subscribe_new_keys(ctx: Ctx) -> CaseResult {
    let mut sub = subscribe(&ctx, Vec::new()).await?;
    let added = items(&ctx, "added", 3, 0);
    write(&ctx, &added).await?;
    let seen = collect(&mut sub, &added, PATIENCE).await;
    let _ = ctx.configuration()?.unsubscribe(&sub.id).await;
    for (key, value) in &added {
        ensure_eq!(seen.get(key), Some(value), "new key `{key}` seen by the all-keys subscription");
    }
    Ok(())
}

async fn subscribe_deletes(ctx: Ctx) -> CaseResult {
    let updater = ctx.configuration_writer()?;
    let written = items(&ctx, "doomed", 2, 0);
    write(&ctx, &written).await?;
    let mut sub = subscribe(&ctx, written.keys().cloned().collect()).await?;
    updater.delete(written.keys().cloned().collect()).await.must("deleting items through the updater")?;
    let deadline = Instant::now() + PATIENCE;
    let mut told: Vec<String> = Vec::new();
    while told.len() < written.len() && Instant::now() < deadline {
        match tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), sub.updates.recv()).await {
            Ok(Some(update)) => told.extend(update.items.into_keys().filter(|k| written.contains_key(k))),
            _ => break,
        }
    }
    let _ = ctx.configuration()?.unsubscribe(&sub.id).await;
    told.sort();
    told.dedup();
    ensure_eq!(told.len(), written.len(), "deleted keys the subscriber was told about ({told:?})");
    let left = get(&ctx, written.keys().cloned().collect()).await?;
    ensure!(left.is_empty(), "deleted keys are still read: {left:?}");
    Ok(())
}

async fn unsubscribe_stops(ctx: Ctx) -> CaseResult {
    let keys: Vec<String> = items(&ctx, "u", 2, 0).into_keys().collect();
    write(&ctx, &items(&ctx, "u", 2, 0)).await?;
    let mut first = subscribe(&ctx, keys.clone()).await?;
    let mut second = subscribe(&ctx, keys.clone()).await?;
    ctx.configuration()?.unsubscribe(&first.id).await.must("unsubscribe")?;
    // Whatever was in flight before the unsubscribe is not held against it.
    let _ = drain(&mut first, Duration::from_millis(200)).await;
    let updated = items(&ctx, "u", 2, 1);
    write(&ctx, &updated).await?;
    let seen = collect(&mut second, &updated, PATIENCE).await;
    let _ = ctx.configuration()?.unsubscribe(&second.id).await;
    for (key, value) in &updated {
        ensure_eq!(seen.get(key), Some(value), "the remaining subscriber's update of `{key}`");
    }
    let late = drain(&mut first, ctx.settings.quiet()).await;
    ensure!(
        late.is_empty(),
        "the unsubscribed subscriber still received {late:?} (watched {:?} after the other subscriber's update)",
        ctx.settings.quiet()
    );
    Ok(())
}
