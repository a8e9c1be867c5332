//! `state.in-memory` against the TTL (S37–S44), delete-with-prefix (S47–S50) and keys-like
//! (S52–S59) rules of conformance-rules.md; the other state rules are in `state_rules.rs`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::state_store::{get, store};
use contract::state::{
    DeleteRequest, DeleteWithPrefixRequest, GetRequest, KeysLikeRequest, SetRequest, TTL_EXPIRE_TIME, TTL_IN_SECONDS,
};
use contract::{Clock, Error, StateStore};

#[tokio::test]
async fn s37_non_numeric_ttl_is_an_error() {
    let (s, _) = store().await;
    let r = s.set(SetRequest::new("k", "v").with_metadata(TTL_IN_SECONDS, "foo")).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(get(&*s, "k").await, None);
}

#[tokio::test]
async fn s39_item_expires_after_its_ttl() {
    let (s, clock) = store().await;
    s.set(SetRequest::new("k", "⏱️").with_metadata(TTL_IN_SECONDS, "2")).await.expect("set");
    assert!(get(&*s, "k").await.is_some(), "readable at once");
    clock.advance(Duration::from_millis(1999));
    assert!(get(&*s, "k").await.is_some(), "still there just before expiry");
    clock.advance(Duration::from_millis(1));
    assert_eq!(get(&*s, "k").await, None, "gone at expiry");
}

#[tokio::test]
async fn s41_no_ttl_means_no_expire_time() {
    let (s, _) = store().await;
    s.set(SetRequest::new("k", "v")).await.expect("set");
    assert!(!get(&*s, "k").await.expect("item").metadata.contains_key(TTL_EXPIRE_TIME));
}

#[tokio::test]
async fn s42_ttl_expire_time_is_reported() {
    let (s, clock) = store().await;
    s.set(SetRequest::new("k", "v").with_metadata(TTL_IN_SECONDS, "3600")).await.expect("set");
    let item = get(&*s, "k").await.expect("item");
    let expected = contract::clock::rfc3339(clock.now() + Duration::from_secs(3600));
    assert_eq!(item.metadata.get(TTL_EXPIRE_TIME), Some(&expected));
}

#[tokio::test]
async fn s43_minus_one_and_overwrite_without_ttl_clear_the_ttl() {
    let (s, clock) = store().await;
    s.set(SetRequest::new("k", "v").with_metadata(TTL_IN_SECONDS, "2")).await.expect("set");
    s.set(SetRequest::new("k", "v").with_metadata(TTL_IN_SECONDS, "-1")).await.expect("set -1");
    assert!(!get(&*s, "k").await.expect("item").metadata.contains_key(TTL_EXPIRE_TIME));
    clock.advance(Duration::from_secs(3));
    assert!(get(&*s, "k").await.is_some(), "-1 never expires");
    s.set(SetRequest::new("k", "v").with_metadata(TTL_IN_SECONDS, "2")).await.expect("set");
    s.set(SetRequest::new("k", "v")).await.expect("overwrite without ttl");
    assert!(!get(&*s, "k").await.expect("item").metadata.contains_key(TTL_EXPIRE_TIME));
    clock.advance(Duration::from_secs(3));
    assert!(get(&*s, "k").await.is_some(), "overwrite cleared the ttl");
}

#[tokio::test]
async fn s44_bulk_get_reports_expire_times() {
    let (s, clock) = store().await;
    for (k, v) in [("a", "\"123\""), ("b", "\"234\"")] {
        s.set(SetRequest::new(k, v).with_metadata(TTL_IN_SECONDS, "3600")).await.expect("set");
    }
    let expected = contract::clock::rfc3339(clock.now() + Duration::from_secs(3600));
    let items = s.bulk_get(vec![GetRequest::new("a"), GetRequest::new("b")]).await.expect("bulk get");
    for (item, value) in items.iter().zip(["\"123\"", "\"234\""]) {
        let item = item.item.as_ref().expect("present");
        assert_eq!(item.data, value.as_bytes());
        assert_eq!(item.metadata.get(TTL_EXPIRE_TIME), Some(&expected));
    }
}

#[tokio::test]
async fn s47_s48_s49_delete_with_prefix_only_direct_children() {
    let (s, _) = store().await;
    let keys = ["prefix||key1", "prefix||key2", "prefix||prefix2||key3", "other-prefix||key1", "no-prefix"];
    s.bulk_set(keys.iter().map(|k| SetRequest::new(*k, "v")).collect()).await.expect("bulk set");
    let count = s.delete_with_prefix(DeleteWithPrefixRequest { prefix: "prefix||".into() }).await.expect("delete");
    assert_eq!(count, 2);
    assert_eq!(get(&*s, "prefix||key1").await, None);
    assert_eq!(get(&*s, "prefix||key2").await, None);
    assert!(get(&*s, "prefix||prefix2||key3").await.is_some(), "deeper keys stay");
    assert!(get(&*s, "no-prefix").await.is_some());
    let count = s.delete_with_prefix(DeleteWithPrefixRequest { prefix: "other-prefix".into() }).await.expect("delete");
    assert_eq!(count, 1, "`||` is appended");
    assert_eq!(get(&*s, "other-prefix||key1").await, None);
}

#[tokio::test]
async fn s50_empty_prefix_is_rejected() {
    let (s, _) = store().await;
    for prefix in ["", "||"] {
        let r = s.delete_with_prefix(DeleteWithPrefixRequest { prefix: prefix.into() }).await;
        assert!(
            matches!(r, Err(Error::InvalidArgument(ref m)) if m.contains("prefix is required")),
            "{prefix:?}: {r:?}"
        );
    }
}

async fn like(
    s: &dyn StateStore,
    pattern: &str,
    page: Option<u32>,
    token: Option<String>,
) -> (Vec<String>, Option<String>) {
    let r = s
        .keys_like(KeysLikeRequest { pattern: pattern.into(), page_size: page, continuation_token: token })
        .await
        .expect("keys like");
    (r.keys, r.continuation_token)
}

#[tokio::test]
async fn s52_empty_pattern_is_rejected() {
    let (s, _) = store().await;
    let r = s.keys_like(KeysLikeRequest::default()).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

const TWELVE: [&str; 12] = [
    "prefix||key1",
    "prefix||key2",
    "prefix||prefix2||key3",
    "other-prefix||key1",
    "no-prefix",
    "abc1",
    "abc2",
    "abc3",
    "abc33",
    "x||y",
    "plain",
    "zz",
];

#[tokio::test]
async fn s53_s54_listing_and_patterns() {
    let (s, _) = store().await;
    s.bulk_set(TWELVE.iter().map(|k| SetRequest::new(*k, "v")).collect()).await.expect("bulk set");
    let (all, token) = like(&*s, "%", None, None).await;
    assert_eq!(all.iter().map(String::as_str).collect::<BTreeSet<_>>(), TWELVE.into_iter().collect());
    assert_eq!(token, None);
    assert_eq!(like(&*s, "prefix||%", None, None).await.0.len(), 3);
    assert_eq!(like(&*s, "%key1", None, None).await.0, ["other-prefix||key1", "prefix||key1"]);
    assert_eq!(like(&*s, "%||%", None, None).await.0.len(), 5);
    assert_eq!(like(&*s, "%||%||%", None, None).await.0, ["prefix||prefix2||key3"]);
    assert_eq!(like(&*s, "abc_", None, None).await.0, ["abc1", "abc2", "abc3"]);
}

#[tokio::test]
async fn s55_paging_covers_every_key_once() {
    let (s, _) = store().await;
    s.bulk_set(TWELVE.iter().map(|k| SetRequest::new(*k, "v")).collect()).await.expect("bulk set");
    let (p1, t1) = like(&*s, "%", Some(6), None).await;
    assert_eq!(p1.len(), 6);
    assert!(t1.is_some());
    let (p2, t2) = like(&*s, "%", Some(5), t1).await;
    assert_eq!(p2.len(), 5);
    assert!(t2.is_some());
    let (p3, t3) = like(&*s, "%", Some(100), t2).await;
    assert_eq!(p3.len(), 1);
    assert_eq!(t3, None);
    let union: BTreeSet<_> = p1.into_iter().chain(p2).chain(p3).collect();
    assert_eq!(union.len(), 12);
}

#[tokio::test]
async fn s56_no_implicit_page_limit() {
    let (s, _) = store().await;
    s.bulk_set((0..=1024).map(|i| SetRequest::new(i.to_string(), Vec::new())).collect()).await.expect("bulk set");
    for page in [None, Some(100_000)] {
        let (keys, token) = like(&*s, "%", page, None).await;
        assert_eq!((keys.len(), token), (1025, None));
    }
}

#[tokio::test]
async fn s58_paging_survives_concurrent_changes() {
    let (s, _) = store().await;
    for k in ["key1", "key2", "key3", "key4"] {
        s.set(SetRequest::new(k, "v")).await.expect("set");
    }
    let (first, token) = like(&*s, "%", Some(3), None).await;
    assert_eq!(first.len(), 3);
    assert!(token.is_some());
    s.delete(DeleteRequest::new("key1")).await.expect("delete");
    s.delete(DeleteRequest::new("key3")).await.expect("delete");
    s.set(SetRequest::new("key5", "v")).await.expect("set");
    s.set(SetRequest::new("key0", "v")).await.expect("set");
    let (rest, token) = like(&*s, "%", None, token).await;
    assert!(!rest.is_empty());
    assert_eq!(token, None);
    assert_eq!(like(&*s, "%", Some(3), None).await.0.len(), 3, "no token starts from the beginning");
    let (two, t) = like(&*s, "%", Some(2), None).await;
    assert_eq!(two.len(), 2);
    assert!(t.is_some());
    assert_eq!(
        like(&*s, "%", None, None).await,
        (vec!["key0".into(), "key2".into(), "key4".into(), "key5".into()], None)
    );
}

#[tokio::test]
async fn s59_expired_keys_are_not_listed() {
    let (s, clock) = store().await;
    s.set(SetRequest::new("1", "v").with_metadata(TTL_IN_SECONDS, "1")).await.expect("set");
    s.set(SetRequest::new("2", "v")).await.expect("set");
    s.set(SetRequest::new("3", "v").with_metadata(TTL_IN_SECONDS, "1")).await.expect("set");
    clock.advance(Duration::from_secs(1));
    assert_eq!(like(&*s, "%", None, None).await, (vec!["2".to_owned()], None));
}
