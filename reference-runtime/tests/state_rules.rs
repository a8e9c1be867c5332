//! `state.in-memory` against every state rule of conformance-rules.md (S1–S60) and the holes
//! the upstream suite leaves. Test names start with the rule they check.

mod common;

use std::collections::BTreeSet;

use contract::state::{
    DeleteRequest, GetRequest, QueryRequest, SetRequest, TTL_IN_SECONDS, TransactionOperation, TransactionRequest,
};
use contract::state_query::Query;
use contract::{Error, StateFeature, StateStore};
use serde_json::json;

use common::state_store::{data, etag, get, store};

fn set_op(key: &str, value: &str) -> TransactionOperation {
    TransactionOperation::Set(SetRequest::new(key, value))
}

fn delete_op(key: &str) -> TransactionOperation {
    TransactionOperation::Delete(DeleteRequest::new(key))
}

#[tokio::test]
async fn s01_s02_builds_from_yaml_and_pings() {
    let (s, _) = store().await;
    s.ping().await.expect("ping");
}

#[tokio::test]
async fn s03_s04_s05_values_of_every_kind_round_trip_byte_exact() {
    let (s, _) = store().await;
    let mut big = vec![0u8; 1 << 20];
    big.iter_mut().enumerate().for_each(|(i, b)| *b = (i % 251) as u8);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("int", b"123".to_vec()),
        ("bool", b"true".to_vec()),
        ("bytes", vec![0x01]),
        ("binary", vec![0x00, 0xff, 0xfe, 0x80, 0x0a]),
        ("string-with-json", br#""{\"a\":\"b\"}""#.to_vec()),
        ("string", br#""hello world""#.to_vec()),
        ("empty-string", br#""""#.to_vec()),
        ("empty", Vec::new()),
        ("struct", br#"{"message":"test"}"#.to_vec()),
        ("null", b"null".to_vec()),
        ("array", b"[1,\"two\",{\"three\":3}]".to_vec()),
        ("float", b"1.5e300".to_vec()),
        ("unicode", "\"⏱️ ü 漢字\"".as_bytes().to_vec()),
        ("one-mebibyte", big),
    ];
    for (key, value) in &cases {
        s.set(SetRequest::new(*key, value.clone()).with_metadata("contentType", "application/json"))
            .await
            .expect("set");
    }
    for (key, value) in &cases {
        assert_eq!(data(&*s, key).await.as_ref(), Some(value), "key `{key}`");
    }
}

#[tokio::test]
async fn keys_with_spaces_slashes_unicode_percent_underscore_and_1kib_round_trip() {
    let (s, _) = store().await;
    let long = "k".repeat(1024);
    for key in ["with space", "a/b/c", "ключ-🔑", "100%", "snake_case", "a\\b", long.as_str()] {
        s.set(SetRequest::new(key, key.as_bytes().to_vec())).await.expect("set");
        assert_eq!(data(&*s, key).await.as_deref(), Some(key.as_bytes()), "key `{key}`");
        s.delete(DeleteRequest::new(key)).await.expect("delete");
        assert_eq!(get(&*s, key).await, None);
    }
}

#[tokio::test]
async fn empty_key_is_rejected() {
    let (s, _) = store().await;
    assert!(matches!(s.set(SetRequest::new("", "x")).await, Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn s06_s07_delete_existing_and_never_written_keys() {
    let (s, _) = store().await;
    s.set(SetRequest::new("k", "v")).await.expect("set");
    s.delete(DeleteRequest::new("k")).await.expect("delete existing");
    assert_eq!(get(&*s, "k").await, None);
    s.delete(DeleteRequest::new("never-written")).await.expect("delete missing");
    assert_eq!(get(&*s, "never-written").await, None);
}

#[tokio::test]
async fn s08_s09_s10_s11_bulk_set_get_delete() {
    let (s, _) = store().await;
    let items: Vec<_> = (0..7).map(|i| SetRequest::new(format!("bulk-{i}"), format!("v{i}"))).collect();
    s.bulk_set(items).await.expect("bulk set");
    for i in 0..7 {
        assert_eq!(data(&*s, &format!("bulk-{i}")).await, Some(format!("v{i}").into_bytes()));
    }
    let mut keys: Vec<_> = (0..7).map(|i| GetRequest::new(format!("bulk-{i}"))).collect();
    keys.push(GetRequest::new("doesnotexist"));
    let got = s.bulk_get(keys).await.expect("bulk get");
    assert_eq!(got.len(), 8, "one answer per requested key");
    for (i, item) in got.iter().take(7).enumerate() {
        assert_eq!(item.key, format!("bulk-{i}"));
        assert_eq!(item.error, None);
        assert_eq!(item.item.as_ref().map(|x| x.data.clone()), Some(format!("v{i}").into_bytes()));
    }
    assert_eq!((got[7].key.as_str(), &got[7].item, &got[7].error), ("doesnotexist", &None, &None));
    s.bulk_delete(vec![DeleteRequest::new("bulk-0"), DeleteRequest::new("bulk-1")]).await.expect("bulk delete");
    assert_eq!(get(&*s, "bulk-0").await, None);
    assert_eq!(get(&*s, "bulk-1").await, None);
}

#[tokio::test]
async fn s12_s19_s24_s38_s46_s51_features_are_advertised() {
    let (s, _) = store().await;
    let expected: BTreeSet<_> = [
        StateFeature::Etag,
        StateFeature::Transactional,
        StateFeature::QueryApi,
        StateFeature::Ttl,
        StateFeature::DeleteWithPrefix,
        StateFeature::KeysLike,
    ]
    .into();
    assert_eq!(s.features(), expected);
    assert!(!s.features().contains(&StateFeature::PartitionKey), "partition keys are not claimed");
}

async fn query_keys(s: &dyn StateStore, q: serde_json::Value) -> Vec<String> {
    let query = Query::from_json(&q).expect("query");
    let response = s.query(QueryRequest { query, metadata: Default::default() }).await.expect("query");
    response.results.into_iter().map(|r| r.key).collect()
}

async fn seed_query_data(s: &dyn StateStore) {
    let docs = [
        ("k-struct", json!({"message": "testk"})),
        ("k-struct-2", json!({"message": "ktest"})),
        ("k-struct-operations", json!({"product": {"value": 15}, "status": "ACTIVE", "message": "kmessage"})),
        (
            "k-struct-operations-inactive",
            json!({"product": {"value": 12}, "status": "INACTIVE", "message": "kmessage"}),
        ),
        ("k-binary", json!(null)),
    ];
    for (key, doc) in docs {
        s.set(SetRequest::new(key, doc.to_string())).await.expect("set");
    }
    s.set(SetRequest::new("k-not-json", vec![0xff, 0x00])).await.expect("set");
}

#[tokio::test]
async fn s13_to_s17_query_filters() {
    let (s, _) = store().await;
    seed_query_data(&*s).await;
    assert_eq!(
        query_keys(
            &*s,
            json!({"filter": {"OR": [{"EQ": {"message": "dummy"}}, {"IN": {"message": ["testk", "dummy"]}}]}})
        )
        .await,
        ["k-struct"]
    );
    assert_eq!(
        query_keys(
            &*s,
            json!({"filter": {"AND": [{"EQ": {"message": "kmessage"}}, {"GTE": {"product.value": 10}},
            {"LT": {"product.value": 20}}, {"NEQ": {"status": "INACTIVE"}}]}})
        )
        .await,
        ["k-struct-operations"]
    );
    assert_eq!(
        query_keys(&*s, json!({"filter": {"OR": [
            {"AND": [{"EQ": {"message": "kmessage"}}, {"GT": {"product.value": 11.1}}, {"EQ": {"status": "INACTIVE"}}]},
            {"AND": [{"EQ": {"message": "kmessage"}}, {"LTE": {"product.value": 0.5}}, {"EQ": {"status": "ACTIVE"}}]}]}}))
        .await,
        ["k-struct-operations-inactive"]
    );
    assert_eq!(
        query_keys(
            &*s,
            json!({"filter": {"OR": [{"EQ": {"message": "ktest"}}, {"IN": {"message": ["testk", "dummy"]}}]}})
        )
        .await,
        ["k-struct", "k-struct-2"]
    );
}

#[tokio::test]
async fn query_sort_and_pagination() {
    let (s, _) = store().await;
    for (key, n, group) in [("a", 3, "x"), ("b", 1, "y"), ("c", 2, "x"), ("d", 5, "y"), ("e", 4, "x")] {
        s.set(SetRequest::new(key, json!({"n": n, "g": group}).to_string())).await.expect("set");
    }
    assert_eq!(query_keys(&*s, json!({"sort": [{"key": "n", "order": "DESC"}]})).await, ["d", "e", "a", "c", "b"]);
    assert_eq!(
        query_keys(&*s, json!({"sort": [{"key": "g"}, {"key": "n", "order": "DESC"}]})).await,
        ["e", "a", "c", "d", "b"]
    );
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = json!({"sort": [{"key": "n"}], "page": {"limit": 2}});
        if let Some(t) = &token {
            q["page"]["token"] = json!(t);
        }
        let response = s
            .query(QueryRequest { query: Query::from_json(&q).expect("query"), metadata: Default::default() })
            .await
            .expect("page");
        assert!(response.results.len() <= 2);
        seen.extend(response.results.into_iter().map(|r| r.key));
        token = response.token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["b", "c", "a", "e", "d"], "pages cover every match once, in order");
}

#[tokio::test]
async fn query_with_bad_token_is_an_error() {
    let (s, _) = store().await;
    let q = Query::from_json(&json!({"page": {"limit": 1, "token": "not-a-token"}})).expect("query");
    let r = s.query(QueryRequest { query: q, metadata: Default::default() }).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}

#[tokio::test]
async fn s20_s21_transactions_apply_groups_in_order() {
    let (s, _) = store().await;
    s.transact(TransactionRequest {
        operations: vec![set_op("trx-int", "123"), set_op("trx-bool", "true"), set_op("trx-to-be-deleted", "\"x\"")],
        metadata: Default::default(),
    })
    .await
    .expect("group 1");
    s.transact(TransactionRequest {
        operations: vec![set_op("trx-struct", "{}"), delete_op("trx-to-be-deleted")],
        metadata: Default::default(),
    })
    .await
    .expect("group 2");
    assert_eq!(data(&*s, "trx-int").await, Some(b"123".to_vec()));
    assert_eq!(data(&*s, "trx-struct").await, Some(b"{}".to_vec()));
    assert_eq!(get(&*s, "trx-to-be-deleted").await, None);
    s.transact(TransactionRequest { operations: vec![delete_op("non-existent-key")], metadata: Default::default() })
        .await
        .expect("S21: deleting a missing key inside a transaction is not an error");
}

#[tokio::test]
async fn s22_operation_order_inside_a_transaction() {
    let (s, _) = store().await;
    s.set(SetRequest::new("key1", "\"value1\"")).await.expect("set");
    s.transact(TransactionRequest {
        operations: vec![
            delete_op("key1"),
            set_op("key2", "\"value2\""),
            delete_op("key2"),
            set_op("key3", "\"value3\""),
        ],
        metadata: Default::default(),
    })
    .await
    .expect("transaction");
    assert_eq!(get(&*s, "key1").await, None);
    assert_eq!(get(&*s, "key2").await, None);
    assert_eq!(data(&*s, "key3").await, Some(b"\"value3\"".to_vec()));
}

#[tokio::test]
async fn transactions_are_atomic_when_an_etag_fails() {
    let (s, _) = store().await;
    s.set(SetRequest::new("a", "a0")).await.expect("set");
    s.set(SetRequest::new("b", "b0")).await.expect("set");
    let a_etag = etag(&*s, "a").await;
    let b_etag = etag(&*s, "b").await;
    let result = s
        .transact(TransactionRequest {
            operations: vec![
                TransactionOperation::Set(SetRequest::new("a", "a1").with_etag(a_etag.clone())),
                set_op("c", "c1"),
                TransactionOperation::Delete(DeleteRequest::new("b")),
                TransactionOperation::Set(SetRequest::new("b", "b1").with_etag("stale")),
            ],
            metadata: Default::default(),
        })
        .await;
    assert!(matches!(result, Err(Error::EtagMismatch { ref key, .. }) if key == "b"), "{result:?}");
    assert_eq!(data(&*s, "a").await, Some(b"a0".to_vec()), "nothing applied");
    assert_eq!(etag(&*s, "a").await, a_etag, "etag unchanged");
    assert_eq!(data(&*s, "b").await, Some(b"b0".to_vec()));
    assert_eq!(etag(&*s, "b").await, b_etag);
    assert_eq!(get(&*s, "c").await, None);
}

#[tokio::test]
async fn transactions_are_atomic_when_a_ttl_is_invalid() {
    let (s, _) = store().await;
    let result = s
        .transact(TransactionRequest {
            operations: vec![
                set_op("x", "1"),
                TransactionOperation::Set(SetRequest::new("y", "2").with_metadata(TTL_IN_SECONDS, "soon")),
            ],
            metadata: Default::default(),
        })
        .await;
    assert!(matches!(result, Err(Error::InvalidArgument(_))));
    assert_eq!(get(&*s, "x").await, None);
}

#[tokio::test]
async fn s25_every_item_has_an_etag_in_get_and_bulk_get() {
    let (s, _) = store().await;
    s.bulk_set((1..=4).map(|i| SetRequest::new(format!("etag{i}"), "first-value")).collect()).await.expect("bulk set");
    for i in 1..=4 {
        assert!(!etag(&*s, &format!("etag{i}")).await.is_empty());
    }
    let items = s.bulk_get((1..=3).map(|i| GetRequest::new(format!("etag{i}"))).collect()).await.expect("bulk get");
    assert!(items.iter().all(|i| i.item.as_ref().and_then(|x| x.etag.as_ref()).is_some_and(|e| !e.is_empty())));
}

#[tokio::test]
async fn s26_s27_stale_etag_rejected_current_etag_accepted_and_changes() {
    let (s, _) = store().await;
    s.set(SetRequest::new("k", "first-value")).await.expect("set");
    let first = etag(&*s, "k").await;
    let stale = s.set(SetRequest::new("k", "x").with_etag("bad-etag")).await;
    assert!(matches!(stale, Err(Error::EtagMismatch { .. })), "{stale:?}");
    assert_eq!(data(&*s, "k").await, Some(b"first-value".to_vec()));
    s.set(SetRequest::new("k", "second-value").with_etag(first.clone())).await.expect("current etag");
    let second = etag(&*s, "k").await;
    assert_eq!(data(&*s, "k").await, Some(b"second-value".to_vec()));
    assert_ne!(first, second, "every write changes the etag");
    let reused = s.set(SetRequest::new("k", "third-value").with_etag(first)).await;
    assert!(matches!(reused, Err(Error::EtagMismatch { .. })), "the old etag is stale now");
}

#[tokio::test]
async fn etag_changes_on_every_write_and_never_names_two_values() {
    let (s, _) = store().await;
    let mut seen = std::collections::HashMap::new();
    for i in 0..50 {
        let value = format!("v{}", i % 3); // Values repeat; ETags must not.
        s.set(SetRequest::new("k", value.clone())).await.expect("set");
        let e = etag(&*s, "k").await;
        assert!(seen.insert(e, value).is_none(), "an etag was reused");
        if i % 10 == 9 {
            s.delete(DeleteRequest::new("k")).await.expect("delete");
        }
    }
}

#[tokio::test]
async fn s28_bulk_set_partial_success_with_one_bad_etag() {
    let (s, _) = store().await;
    s.set(SetRequest::new("good", "v1")).await.expect("set");
    s.set(SetRequest::new("bad", "v1")).await.expect("set");
    let good_etag = etag(&*s, "good").await;
    let bad_etag = etag(&*s, "bad").await;
    let result = s
        .bulk_set(vec![
            SetRequest::new("good", "v2").with_etag(good_etag.clone()),
            SetRequest::new("bad", "v2").with_etag("bad-etag"),
        ])
        .await;
    match result {
        Err(Error::Bulk(failures)) => {
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].key, "bad");
            assert!(matches!(failures[0].error, Error::EtagMismatch { .. }));
        }
        other => panic!("expected one bulk failure, got {other:?}"),
    }
    assert_eq!(data(&*s, "good").await, Some(b"v2".to_vec()));
    assert_ne!(etag(&*s, "good").await, good_etag);
    assert_eq!(data(&*s, "bad").await, Some(b"v1".to_vec()));
    assert_eq!(etag(&*s, "bad").await, bad_etag, "the failed key keeps its etag");
}

#[tokio::test]
async fn s29_bulk_set_with_valid_etags() {
    let (s, _) = store().await;
    s.bulk_set(vec![SetRequest::new("a", "1"), SetRequest::new("b", "1")]).await.expect("set");
    let (ea, eb) = (etag(&*s, "a").await, etag(&*s, "b").await);
    s.bulk_set(vec![SetRequest::new("a", "2").with_etag(ea.clone()), SetRequest::new("b", "2").with_etag(eb.clone())])
        .await
        .expect("valid etags");
    assert_eq!(data(&*s, "a").await, Some(b"2".to_vec()));
    assert_ne!(etag(&*s, "a").await, ea);
    assert_ne!(etag(&*s, "b").await, eb);
}

#[tokio::test]
async fn s30_s31_delete_with_bad_then_current_etag() {
    let (s, _) = store().await;
    s.set(SetRequest::new("k", "v")).await.expect("set");
    let bad = s.delete(DeleteRequest::new("k").with_etag("bad-etag")).await;
    assert!(bad.as_ref().is_err_and(Error::is_etag_error), "{bad:?}");
    assert!(get(&*s, "k").await.is_some(), "not deleted");
    let current = etag(&*s, "k").await;
    s.delete(DeleteRequest::new("k").with_etag(current)).await.expect("delete");
    assert_eq!(get(&*s, "k").await, None, "no data and no etag");
}

#[tokio::test]
async fn etag_on_a_missing_key_is_a_mismatch() {
    let (s, _) = store().await;
    assert!(matches!(s.set(SetRequest::new("nope", "v").with_etag("e")).await, Err(Error::EtagMismatch { .. })));
    assert!(matches!(s.delete(DeleteRequest::new("nope").with_etag("e")).await, Err(Error::EtagMismatch { .. })));
}

#[tokio::test]
async fn s32_s33_bulk_delete_partial_then_full() {
    let (s, _) = store().await;
    s.bulk_set(vec![SetRequest::new("a", "1"), SetRequest::new("b", "1")]).await.expect("set");
    let (ea, eb) = (etag(&*s, "a").await, etag(&*s, "b").await);
    let result =
        s.bulk_delete(vec![DeleteRequest::new("a").with_etag(ea), DeleteRequest::new("b").with_etag("bad")]).await;
    assert!(matches!(result, Err(Error::Bulk(ref f)) if f.len() == 1 && f[0].key == "b"), "{result:?}");
    assert_eq!(get(&*s, "a").await, None);
    assert_eq!(etag(&*s, "b").await, eb, "b unchanged");
    s.set(SetRequest::new("a", "1")).await.expect("set");
    let ea = etag(&*s, "a").await;
    s.bulk_delete(vec![DeleteRequest::new("a").with_etag(ea), DeleteRequest::new("b").with_etag(eb)])
        .await
        .expect("valid etags");
    let items = s.bulk_get(vec![GetRequest::new("a"), GetRequest::new("b")]).await.expect("bulk get");
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.item.is_none()));
}

#[tokio::test]
async fn s34_s35_first_write_without_etag_only_creates() {
    for empty_etag in [false, true] {
        let (s, _) = store().await;
        let mut request = SetRequest::new("fw", "v1").first_write();
        if empty_etag {
            request.etag = Some(String::new());
        }
        s.set(request.clone()).await.expect("first write creates");
        assert_eq!(data(&*s, "fw").await, Some(b"v1".to_vec()));
        let again = s.set(request).await;
        assert!(matches!(again, Err(Error::EtagMismatch { .. })), "second first-write fails: {again:?}");
    }
}

#[tokio::test]
async fn s36_first_write_with_current_then_old_etag() {
    let (s, _) = store().await;
    s.set(SetRequest::new("fw", "v1")).await.expect("set");
    let old = etag(&*s, "fw").await;
    s.set(SetRequest::new("fw", "v2").first_write().with_etag(old.clone())).await.expect("current etag");
    assert_ne!(etag(&*s, "fw").await, old);
    let stale = s.set(SetRequest::new("fw", "v3").first_write().with_etag(old)).await;
    assert!(matches!(stale, Err(Error::EtagMismatch { .. })));
}

#[tokio::test]
async fn s23_transaction_json_with_and_without_content_type() {
    let (s, _) = store().await;
    let doc = br#"{"id":1223,"name":"test"}"#.to_vec();
    let mut with = SetRequest::new("json-with", doc.clone());
    with.content_type = Some("application/json".into());
    s.transact(TransactionRequest {
        operations: vec![
            TransactionOperation::Set(with),
            TransactionOperation::Set(SetRequest::new("json-without", doc.clone())),
        ],
        metadata: Default::default(),
    })
    .await
    .expect("transaction");
    for key in ["json-with", "json-without"] {
        let got: serde_json::Value = serde_json::from_slice(&data(&*s, key).await.expect("present")).expect("json");
        assert_eq!(got, json!({"id": 1223, "name": "test"}), "{key}");
    }
    assert_eq!(get(&*s, "json-with").await.expect("item").content_type.as_deref(), Some("application/json"));
}
