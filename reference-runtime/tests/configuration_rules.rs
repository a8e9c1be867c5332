//! `configuration.in-memory` against the C-rules of conformance-rules.md (a suite that runs,
//! unlike upstream's): get, subscribe, updates, deletes, new keys, unsubscribe.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use contract::configuration::{
    ConfigurationItem, ConfigurationUpdate, DELETED, GetConfigurationRequest, SubscribeConfigurationRequest,
};
use contract::{ConfigurationStore, ConfigurationUpdater, Error, ManualClock};
use tokio::sync::mpsc::UnboundedReceiver;

async fn store() -> (Arc<dyn ConfigurationStore>, Arc<dyn ConfigurationUpdater>) {
    let c = common::build("configuration.in-memory", &[], &ManualClock::new()).await;
    (c.as_configuration().cloned().expect("a store"), c.as_configuration_updater().cloned().expect("updater"))
}

fn item(value: &str, version: &str) -> ConfigurationItem {
    ConfigurationItem { value: value.into(), version: version.into(), metadata: Default::default() }
}

fn items(prefix: &str, range: std::ops::Range<u32>, version: &str) -> BTreeMap<String, ConfigurationItem> {
    range.map(|i| (format!("{prefix}{i}"), item(&format!("val{i}"), version))).collect()
}

async fn get(store: &dyn ConfigurationStore, keys: &[String]) -> BTreeMap<String, ConfigurationItem> {
    store.get(GetConfigurationRequest { keys: keys.to_vec(), metadata: Default::default() }).await.expect("get")
}

async fn next(rx: &mut UnboundedReceiver<ConfigurationUpdate>) -> Option<ConfigurationUpdate> {
    tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.ok().flatten()
}

async fn drain_keys(rx: &mut UnboundedReceiver<ConfigurationUpdate>, n: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for _ in 0..n {
        let update = next(rx).await.expect("an update");
        keys.extend(update.items.into_keys());
    }
    keys.sort();
    keys
}

fn nothing_pending(rx: &mut UnboundedReceiver<ConfigurationUpdate>) -> bool {
    rx.try_recv().is_err()
}

#[tokio::test]
async fn c02_c03_c04_get_listed_all_and_missing() {
    let (store, updater) = store().await;
    updater.set(items("k", 0..20, "1.0.0")).await.expect("seed");
    let listed: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let got = get(&*store, &listed).await;
    assert_eq!(got, items("k", 0..10, "1.0.0"), "value, version and metadata exact");
    assert_eq!(get(&*store, &[]).await, items("k", 0..20, "1.0.0"));
    let missing: Vec<String> = (0..10).map(|i| format!("missing{i}")).collect();
    assert!(get(&*store, &missing).await.is_empty(), "missing keys are absent, not an error");
}

#[tokio::test]
async fn versions_are_assigned_when_none_is_given() {
    let (store, updater) = store().await;
    updater.set([("a".to_owned(), item("1", ""))].into()).await.expect("set");
    let first = get(&*store, &[]).await["a"].version.clone();
    updater.set([("a".to_owned(), item("2", ""))].into()).await.expect("set");
    let second = get(&*store, &[]).await["a"].version.clone();
    assert!(!first.is_empty() && first != second, "{first} then {second}");
}

#[tokio::test]
async fn c05_c07_c08_c09_subscriptions_see_exactly_their_keys() {
    let (store, updater) = store().await;
    updater.set(items("g1-", 0..3, "1").into_iter().chain(items("g2-", 0..3, "1")).collect()).await.expect("seed");
    let g1: Vec<String> = (0..3).map(|i| format!("g1-{i}")).collect();
    let both: Vec<String> = g1.iter().cloned().chain((0..3).map(|i| format!("g2-{i}"))).collect();
    let subscribe = |keys: Vec<String>| {
        let store = Arc::clone(&store);
        async move {
            store
                .subscribe(SubscribeConfigurationRequest { keys, metadata: Default::default() })
                .await
                .expect("subscribe")
        }
    };
    let mut s1 = subscribe(g1.clone()).await;
    let mut s2 = subscribe(both.clone()).await;
    let mut s3 = subscribe(Vec::new()).await;
    assert!(!s1.id.is_empty() && s1.id != s2.id && s2.id != s3.id);

    // Updating group 1 reaches all three subscribers, with the new item exactly.
    updater.set(items("g1-", 0..3, "2")).await.expect("update g1");
    for rx in [&mut s1.updates, &mut s2.updates, &mut s3.updates] {
        assert_eq!(drain_keys(rx, 3).await, g1);
    }
    // Group 2 reaches subscribers 2 and 3 only.
    updater.set(items("g2-", 0..3, "2")).await.expect("update g2");
    assert_eq!(drain_keys(&mut s2.updates, 3).await.len(), 3);
    assert_eq!(drain_keys(&mut s3.updates, 3).await.len(), 3);
    assert!(nothing_pending(&mut s1.updates));
    // New keys reach only the all-keys subscription, and carry the item.
    updater.set([("new".to_owned(), item("fresh", "7"))].into()).await.expect("new key");
    let update = next(&mut s3.updates).await.expect("new key update");
    assert_eq!((update.id.as_str(), update.items.get("new")), (s3.id.as_str(), Some(&item("fresh", "7"))));
    assert!(nothing_pending(&mut s1.updates) && nothing_pending(&mut s2.updates));
    // Deletes are pushed, marked as deletions.
    updater.delete(vec!["g2-0".into()]).await.expect("delete");
    for rx in [&mut s2.updates, &mut s3.updates] {
        let update = next(rx).await.expect("delete update");
        let deleted = &update.items["g2-0"];
        assert_eq!(deleted.metadata.get(DELETED).map(String::as_str), Some("true"));
        assert!(deleted.value.is_empty());
    }
    // Unsubscribed: nothing more, while the others still get updates.
    store.unsubscribe(&s1.id).await.expect("unsubscribe");
    updater.set(items("g1-", 0..1, "3")).await.expect("update");
    assert!(next(&mut s1.updates).await.is_none(), "channel closed, no update");
    assert_eq!(drain_keys(&mut s2.updates, 1).await, ["g1-0"]);
    assert!(matches!(store.unsubscribe(&s1.id).await, Err(Error::NotFound { .. })), "unknown id");
}
