//! The sidecar driven over loopback HTTP with reqwest, with a small axum app receiving
//! deliveries, binding events, configuration updates and invocations.

mod common;

use std::time::Duration;

use common::sidecar_env::{Env, start};
use serde_json::{Value, json};

fn subs(extra: Value) -> Value {
    let mut list = vec![
        json!({"pubsubname": "pubsub", "topic": "orders", "route": "/orders"}),
        json!({"pubsubname": "pubsub", "topic": "flaky", "route": "/flaky"}),
        json!({"pubsubname": "pubsub", "topic": "poison", "route": "/poison", "deadLetterTopic": "dead"}),
        json!({"pubsubname": "pubsub", "topic": "dead", "route": "/dead"}),
        json!({"pubsubname": "pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"}}),
        json!({"pubsubname": "pubsub", "topic": "routed", "routes": {"rules": [{"match": "event.type == \"widget\"", "path": "/widgets"}], "default": "/others"}}),
        json!({"pubsubname": "pubsub", "topic": "batch", "route": "/batch", "bulkSubscribe": {"enabled": true, "maxMessagesCount": 10, "maxAwaitDurationMs": 50}}),
    ];
    if let Value::Array(more) = extra {
        list.extend(more);
    }
    Value::Array(list)
}

async fn env() -> Env {
    start(Some(subs(json!([]))), "", None).await
}

/// How long a test watches for what must not arrive (a redelivery, an update after an
/// unsubscribe): long enough that a loaded machine does not hide one.
const QUIET: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_crud_etags_bulk_transaction_and_query() {
    let e = start(None, "", None).await;
    let save = |body: Value| e.http.post(e.url("/v1.0/state/statestore")).json(&body).send();
    assert_eq!(
        save(json!([{"key": "k1", "value": {"b": 1, "a": "x"}}, {"key": "k2", "value": "text"}]))
            .await
            .expect("save")
            .status(),
        204
    );
    let r = e.http.get(e.url("/v1.0/state/statestore/k1")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let etag = r.headers().get("etag").and_then(|v| v.to_str().ok()).expect("etag header").to_owned();
    assert_eq!(r.headers().get("content-type").map(|v| v.to_str().expect("ascii")), Some("application/json"));
    assert_eq!(r.text().await.expect("body"), r#"{"a":"x","b":1}"#, "compact, keys sorted");
    assert_eq!(
        e.http.get(e.url("/v1.0/state/statestore/k2")).send().await.expect("get").text().await.expect("body"),
        "\"text\""
    );
    assert_eq!(e.http.get(e.url("/v1.0/state/statestore/missing")).send().await.expect("get").status(), 204);

    // A stale ETag is 409 on save and on delete; the current one works.
    assert_eq!(save(json!([{"key": "k1", "value": 2, "etag": "stale"}])).await.expect("save").status(), 409);
    let del =
        e.http.delete(e.url("/v1.0/state/statestore/k1")).header("if-match", "stale").send().await.expect("delete");
    assert_eq!(del.status(), 409);
    assert_eq!(del.json::<Value>().await.expect("json")["errorCode"], "ERR_STATE_DELETE");
    assert_eq!(save(json!([{"key": "k1", "value": 2, "etag": etag}])).await.expect("save").status(), 204);
    // First-write on an existing key is a mismatch too.
    assert_eq!(
        save(json!([{"key": "k2", "value": 1, "options": {"concurrency": "first-write"}}]))
            .await
            .expect("save")
            .status(),
        409
    );

    // TTL from query metadata, visible as a metadata header.
    let r = e
        .http
        .post(e.url("/v1.0/state/statestore?metadata.ttlInSeconds=100"))
        .json(&json!([{"key": "ttl", "value": 1}]))
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 204);
    let r = e.http.get(e.url("/v1.0/state/statestore/ttl")).send().await.expect("get");
    assert!(r.headers().get("metadata.ttlExpireTime").is_some(), "{:?}", r.headers());
    // The store rejects it, so daprd answers as for any store error (reference §1.9).
    let bad_ttl =
        save(json!([{"key": "bad-ttl", "value": 1, "metadata": {"ttlInSeconds": "soon"}}])).await.expect("save");
    assert_eq!(bad_ttl.status(), 500);
    assert_eq!(bad_ttl.json::<Value>().await.expect("json")["errorCode"], "ERR_STATE_SAVE");

    let bulk: Value = e
        .http
        .post(e.url("/v1.0/state/statestore/bulk"))
        .json(&json!({"keys": ["k1", "k2", "nope"]}))
        .send()
        .await
        .expect("bulk")
        .json()
        .await
        .expect("json");
    assert_eq!(bulk[0]["data"], json!(2));
    assert_eq!(bulk[1]["data"], json!("text"));
    assert_eq!(bulk[2], json!({"key": "nope"}), "missing keys present and empty");

    let tx = json!({"operations": [
        {"operation": "upsert", "request": {"key": "t1", "value": "v1"}},
        {"operation": "delete", "request": {"key": "k2"}},
        {"operation": "upsert", "request": {"key": "t2", "value": {"n": 5}, "etag": "wrong"}},
    ]});
    let r = e.http.post(e.url("/v1.0/state/statestore/transaction")).json(&tx).send().await.expect("tx");
    assert_eq!(r.status(), 500, "an etag failure inside a transaction is 500");
    assert_eq!(
        e.http.get(e.url("/v1.0/state/statestore/t1")).send().await.expect("get").status(),
        204,
        "nothing applied"
    );
    let tx = json!({"operations": [
        {"operation": "upsert", "request": {"key": "t1", "value": {"n": 1, "kind": "a"}}},
        {"operation": "upsert", "request": {"KEY": "t2", "Value": {"n": 2, "kind": "b"}}},
        {"operation": "delete", "request": {"key": "k2"}},
    ]});
    assert_eq!(
        e.http.post(e.url("/v1.0/state/statestore/transaction")).json(&tx).send().await.expect("tx").status(),
        204
    );
    assert_eq!(e.http.get(e.url("/v1.0/state/statestore/k2")).send().await.expect("get").status(), 204);

    let q: Value = e
        .http
        .post(e.url("/v1.0-alpha1/state/statestore/query"))
        .json(&json!({"filter": {"IN": {"kind": ["a", "b"]}}, "sort": [{"key": "n", "order": "DESC"}], "page": {"limit": 1}}))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert_eq!(q["results"][0]["key"], "t2");
    assert_eq!(q["results"][0]["data"], json!({"kind": "b", "n": 2}));
    assert_eq!(q["token"], "1");
    let none = e
        .http
        .post(e.url("/v1.0-alpha1/state/statestore/query"))
        .json(&json!({"filter": {"EQ": {"kind": "zzz"}}}))
        .send()
        .await
        .expect("query");
    assert_eq!(none.status(), 204);

    // Keys live under the app id, as daprd stores them.
    let Some(store) = e.sidecar.components.get("statestore", contract::Block::STATE).and_then(|c| c.as_state()) else {
        panic!("store")
    };
    assert!(store.get(contract::state::GetRequest::new("testapp||t1")).await.expect("raw get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_unescaped_like_daprd() {
    let e = start(None, "", None).await;
    let r = e
        .http
        .post(e.url("/v1.0/state/statestore"))
        .json(&json!([{"key": "a b/c ü", "value": 1}]))
        .send()
        .await
        .expect("save");
    assert_eq!(r.status(), 204);
    let r = e.http.get(e.url("/v1.0/state/statestore/a+b%2Fc%20%C3%BC")).send().await.expect("get");
    assert_eq!(r.status(), 200, "`+` is a space, %2F a slash");
    let r = e.http.get(e.url("/v1.0/state/statestore/bad%zzkey")).send().await.expect("get");
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_delivers_a_cloudevent_with_retry_then_success() {
    let e = env().await;
    e.app().script("/flaky", &[(200, r#"{"status":"RETRY"}"#), (500, ""), (200, r#"{"status":"SUCCESS"}"#)]);
    let r = e
        .http
        .post(e.url("/v1.0/publish/pubsub/flaky"))
        .header("content-type", "application/json")
        .body(r#"{"order":7}"#)
        .send()
        .await
        .expect("publish");
    assert_eq!(r.status(), 204);
    let seen = e.app().wait_for("/flaky", 3).await;
    assert_eq!(seen.len(), 3, "RETRY and 500 are redelivered, SUCCESS ends it");
    tokio::time::sleep(QUIET).await;
    assert_eq!(e.app().seen("/flaky").len(), 3, "nothing after SUCCESS");
    let event = seen[0].json();
    assert_eq!(event["data"], json!({"order": 7}));
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(
        (event["topic"].as_str(), event["pubsubname"].as_str(), event["source"].as_str()),
        (Some("flaky"), Some("pubsub"), Some("testapp"))
    );
    assert_eq!((event["type"].as_str(), event["specversion"].as_str()), (Some("com.dapr.event.sent"), Some("1.0")));
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(seen[0].header("content-type"), Some("application/cloudevents+json"));
    assert_eq!(seen[0].header("pubsubname"), Some("pubsub"));
    assert_eq!(seen[0].header("dapr-api-token"), Some("app-secret"), "APP_API_TOKEN is sent to the app");
    assert_eq!(seen[0].body, seen[2].body, "the same event each time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_and_404_are_not_redelivered_and_dead_letter() {
    let e = env().await;
    e.app().script("/poison", &[(404, "")]);
    e.http.post(e.url("/v1.0/publish/pubsub/poison")).body("bad").send().await.expect("publish");
    let dead = e.app().wait_for("/dead", 1).await;
    assert_eq!(dead[0].json()["data"], "bad");
    assert_eq!(e.app().seen("/poison").len(), 1, "404 is not redelivered");
    e.app().script("/orders", &[(200, r#"{"status":"DROP"}"#)]);
    e.http.post(e.url("/v1.0/publish/pubsub/orders")).body("x").send().await.expect("publish");
    e.app().wait_for("/orders", 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(e.app().seen("/orders").len(), 1, "DROP is not redelivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_payload_routing_rules_overrides_and_bulk_publish() {
    let e = env().await;
    e.http
        .post(e.url("/v1.0/publish/pubsub/raw?metadata.rawPayload=true"))
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .expect("publish");
    let raw = e.app().wait_for("/raw", 1).await;
    assert_eq!(raw[0].json()["data_base64"], "AAEC/w==");
    let widget = json!({"specversion": "1.0", "id": "w1", "type": "widget", "source": "me", "data": 1});
    e.http
        .post(e.url("/v1.0/publish/pubsub/routed"))
        .header("content-type", "application/cloudevents+json")
        .body(widget.to_string())
        .send()
        .await
        .expect("publish");
    e.http
        .post(e.url("/v1.0/publish/pubsub/routed?metadata.cloudevent.type=gadget&metadata.cloudevent.id=g1"))
        .body("g")
        .send()
        .await
        .expect("publish");
    let widgets = e.app().wait_for("/widgets", 1).await;
    assert_eq!(
        (widgets[0].json()["id"].as_str(), widgets[0].json()["source"].as_str()),
        (Some("w1"), Some("me")),
        "the app's own CloudEvent is kept"
    );
    let others = e.app().wait_for("/others", 1).await;
    assert_eq!(others[0].json()["id"], "g1");
    let bad = e
        .http
        .post(e.url("/v1.0/publish/pubsub/raw?metadata.rawPayload=perhaps"))
        .body("x")
        .send()
        .await
        .expect("publish");
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.expect("json")["errorCode"], "ERR_PUBSUB_REQUEST_METADATA");

    let entries = json!([
        {"entryId": "1", "event": "first", "contentType": "text/plain"},
        {"entryId": "2", "event": {"second": true}, "contentType": "application/json"},
    ]);
    let r = e.http.post(e.url("/v1.0-alpha1/publish/bulk/pubsub/orders")).json(&entries).send().await.expect("bulk");
    assert_eq!(r.status(), 204);
    let orders = e.app().wait_for("/orders", 2).await;
    let mut data: Vec<Value> = orders.iter().map(|o| o.json()["data"].clone()).collect();
    data.sort_by_key(|v| v.to_string());
    assert_eq!(data, vec![json!("first"), json!({"second": true})]);
    let dup = json!([{"entryId": "1", "event": "a", "contentType": "text/plain"}, {"entryId": "1", "event": "b", "contentType": "text/plain"}]);
    let r = e.http.post(e.url("/v1.0/publish/bulk/pubsub/orders")).json(&dup).send().await.expect("bulk");
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["errorCode"], "ERR_PUBSUB_EVENTS_SER");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_subscribe_delivers_batches_with_per_entry_statuses() {
    let e = env().await;
    // Answer SUCCESS for nothing the first time (every entry retried), then for everything.
    e.app().script("/batch", &[(200, r#"{"statuses":[]}"#), (200, "ALL")]);
    for i in 0..5 {
        e.http.post(e.url("/v1.0/publish/pubsub/batch")).body(format!("m{i}")).send().await.expect("publish");
    }
    let batches = e.app().wait_for("/batch", 1).await;
    let body = batches[0].json();
    assert_eq!(body["type"], "com.dapr.event.sent.bulk");
    assert!(body["entries"].as_array().is_some_and(|e| !e.is_empty()));
    assert_eq!(body["entries"][0]["event"]["pubsubname"], "pubsub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_binding_create_reaches_the_app_as_an_input_event() {
    let e = env().await;
    let r = e
        .http
        .post(e.url("/v1.0/bindings/events"))
        .json(&json!({"operation": "create", "data": {"hello": "world"}, "metadata": {"key": "k"}}))
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 204);
    let events = e.app().wait_for("/events", 2).await;
    assert_eq!(events[0].method, axum::http::Method::OPTIONS, "the sidecar asked whether the app wants the binding");
    assert_eq!(events[1].json(), json!({"hello": "world"}));
    assert_eq!(events[1].header("key"), Some("k"), "event metadata as headers");
    // O7: the caller's trace context reaches the binding's metadata; its own value there wins.
    let traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for metadata in [json!({}), json!({"traceparent": "mine"})] {
        let r = e
            .http
            .post(e.url("/v1.0/bindings/events"))
            .header("traceparent", traced)
            .json(&json!({"operation": "create", "data": 1, "metadata": metadata}))
            .send()
            .await
            .expect("invoke");
        assert_eq!(r.status(), 204);
    }
    let events = e.app().wait_for("/events", 4).await;
    assert_eq!(events[2].header("traceparent"), Some(traced), "the binding's metadata carries the call's trace");
    assert_eq!(events[3].header("traceparent"), Some("mine"), "the caller's metadata wins");
    let r =
        e.http.post(e.url("/v1.0/bindings/events")).json(&json!({"operation": "delete"})).send().await.expect("invoke");
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.expect("json")["errorCode"], "ERR_INVOKE_OUTPUT_BINDING");
    let r =
        e.http.post(e.url("/v1.0/bindings/nope")).json(&json!({"operation": "create"})).send().await.expect("invoke");
    assert_eq!(r.status(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_get_subscribe_and_unsubscribe() {
    let e = env().await;
    let Some(updater) = e
        .sidecar
        .components
        .get("configstore", contract::Block::CONFIGURATION)
        .and_then(|c| c.as_configuration_updater())
    else {
        panic!("configstore")
    };
    let item = |v: &str| contract::configuration::ConfigurationItem {
        value: v.into(),
        version: "1".into(),
        metadata: Default::default(),
    };
    updater.set([("a".to_owned(), item("1")), ("b".to_owned(), item("2"))].into()).await.expect("seed");
    let got: Value = e
        .http
        .get(e.url("/v1.0/configuration/configstore?key=a&key=missing"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(got, json!({"a": {"value": "1", "version": "1"}}));
    assert_eq!(
        e.http.get(e.url("/v1.0/configuration/configstore?key=missing")).send().await.expect("get").status(),
        204
    );
    let sub: Value = e
        .http
        .get(e.url("/v1.0-alpha1/configuration/configstore/subscribe?key=a"))
        .send()
        .await
        .expect("sub")
        .json()
        .await
        .expect("json");
    let id = sub["id"].as_str().expect("id").to_owned();
    updater.set([("a".to_owned(), item("new"))].into()).await.expect("update");
    let updates = e.app().wait_for("/configuration/configstore/a", 1).await;
    assert_eq!(updates[0].json(), json!({"id": id, "items": {"a": {"value": "new", "version": "1"}}}));
    let r: Value = e
        .http
        .get(e.url(&format!("/v1.0/configuration/configstore/{id}/unsubscribe")))
        .send()
        .await
        .expect("unsub")
        .json()
        .await
        .expect("json");
    assert_eq!(r, json!({"ok": true}));
    updater.set([("a".to_owned(), item("after"))].into()).await.expect("update");
    tokio::time::sleep(QUIET).await;
    assert_eq!(e.app().seen("/configuration/configstore/a").len(), 1, "nothing after unsubscribe");
    let r = e.http.get(e.url("/v1.0/configuration/configstore/nope/unsubscribe")).send().await.expect("unsub");
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.expect("json")["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_secrets_and_metadata() {
    let e = env().await;
    let lock = |owner: &str, expiry: i64| {
        e.http
            .post(e.url("/v1.0-alpha1/lock/lockstore"))
            .json(&json!({"resourceId": "r", "lockOwner": owner, "expiryInSeconds": expiry}))
            .send()
    };
    assert_eq!(lock("a", 30).await.expect("lock").json::<Value>().await.expect("json"), json!({"success": true}));
    assert_eq!(lock("b", 30).await.expect("lock").json::<Value>().await.expect("json"), json!({"success": false}));
    let bad = lock("a", 0).await.expect("lock");
    assert_eq!(bad.status(), 400);
    let unlock = |owner: &str| {
        e.http
            .post(e.url("/v1.0-alpha1/unlock/lockstore"))
            .json(&json!({"resource_id": "r", "lock_owner": owner}))
            .send()
    };
    assert_eq!(unlock("b").await.expect("unlock").json::<Value>().await.expect("json"), json!({"status": 2}));
    assert_eq!(unlock("a").await.expect("unlock").json::<Value>().await.expect("json"), json!({"status": 0}));
    assert_eq!(unlock("a").await.expect("unlock").json::<Value>().await.expect("json"), json!({"status": 1}));

    let secret: Value =
        e.http.get(e.url("/v1.0/secrets/secretstore/NAME")).send().await.expect("secret").json().await.expect("json");
    assert_eq!(secret, json!({"NAME": "reference-runtime"}));
    let all: Value =
        e.http.get(e.url("/v1.0/secrets/secretstore/bulk")).send().await.expect("bulk").json().await.expect("json");
    assert_eq!(all["NAME"], json!({"NAME": "reference-runtime"}));
    let missing = e.http.get(e.url("/v1.0/secrets/secretstore/NOPE_NOT_SET")).send().await.expect("secret");
    assert_eq!(missing.status(), 500);
    assert_eq!(e.http.get(e.url("/v1.0/secrets/nostore/x")).send().await.expect("secret").status(), 401);

    let md: Value = e.http.get(e.url("/v1.0/metadata")).send().await.expect("metadata").json().await.expect("json");
    assert_eq!(md["id"], "testapp");
    let state = md["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|c| c["name"] == "statestore")
        .expect("statestore")
        .clone();
    assert_eq!(state["type"], "state.in-memory");
    assert!(state["capabilities"].as_array().expect("caps").contains(&json!("ETAG")));
    assert!(
        md["subscriptions"]
            .as_array()
            .expect("subs")
            .iter()
            .any(|s| s["topic"] == "orders" && s["type"] == "PROGRAMMATIC")
    );
    assert_eq!(md["appConnectionProperties"]["port"], e.app().port);
    assert_eq!(e.http.put(e.url("/v1.0/metadata/color")).body("blue").send().await.expect("put").status(), 204);
    let md: Value = e.http.get(e.url("/v1.0/metadata")).send().await.expect("metadata").json().await.expect("json");
    assert_eq!(md["extended"]["color"], "blue");
    assert_eq!(e.http.get(e.url("/v1.0/healthz?appid=other")).send().await.expect("health").status(), 500);
    assert_eq!(e.http.get(e.url("/v1.0/healthz/outbound")).send().await.expect("health").status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_passes_verbs_paths_queries_headers_status_and_bodies() {
    let e = env().await;
    e.app().script("/api/v1/add", &[(201, r#"{"sum":3}"#)]);
    let r = e
        .http
        .put(e.url("/v1.0/invoke/testapp/method/api/v1/add?x=1&y=2"))
        .header("x-custom", "yes")
        .header("dapr-caller-app-id", "spoofed")
        .body("payload")
        .send()
        .await
        .expect("invoke");
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers().get("x-app-header").map(|v| v.to_str().expect("ascii")), Some("from-app"));
    assert_eq!(r.text().await.expect("body"), r#"{"sum":3}"#);
    let call = &e.app().seen("/api/v1/add")[0];
    assert_eq!(
        (call.method.as_str(), call.query.as_deref(), &call.body[..]),
        ("PUT", Some("x=1&y=2"), &b"payload"[..])
    );
    assert_eq!(call.header("x-custom"), Some("yes"));
    assert_eq!(call.header("dapr-caller-app-id"), Some("testapp"), "replaced, not passed through");
    assert_eq!(call.header("dapr-callee-app-id"), Some("testapp"));

    let r = e
        .http
        .delete(e.url("/items/7?force=true"))
        .header("dapr-app-id", "testapp")
        .send()
        .await
        .expect("invoke by header");
    assert_eq!(r.status(), 200);
    let call = &e.app().seen("/items/7")[0];
    assert_eq!((call.method.as_str(), call.query.as_deref()), ("DELETE", Some("force=true")));
    assert!(call.header("dapr-app-id").is_none(), "the header is removed");

    let r = e.http.get(e.url("/v1.0/invoke/someone-else/method/x")).send().await.expect("invoke");
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.expect("json")["errorCode"], "ERR_DIRECT_INVOKE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_token_guards_everything_but_health() {
    let e = start(None, "", Some("s3cret")).await;
    let r = e.http.get(e.url("/v1.0/metadata")).send().await.expect("metadata");
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.expect("body"), "invalid api token");
    assert_eq!(
        e.http.get(e.url("/v1.0/metadata")).header("dapr-api-token", "wrong").send().await.expect("m").status(),
        401
    );
    assert_eq!(
        e.http.get(e.url("/v1.0/metadata")).header("dapr-api-token", "s3cret").send().await.expect("m").status(),
        200
    );
    assert_eq!(e.http.get(e.url("/v1.0/healthz")).send().await.expect("h").status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarative_subscriptions_are_served() {
    let yaml = "---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: decl}\nspec:\n  topic: decl\n  pubsubname: pubsub\n  routes: {default: /decl}\nscopes: [testapp]\n";
    let e = start(Some(json!([])), yaml, None).await;
    e.http.post(e.url("/v1.0/publish/pubsub/decl")).body("d").send().await.expect("publish");
    assert_eq!(e.app().wait_for("/decl", 1).await[0].json()["data"], "d");
    let md: Value = e.http.get(e.url("/v1.0/metadata")).send().await.expect("metadata").json().await.expect("json");
    assert_eq!(md["subscriptions"][0]["type"], "DECLARATIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_deliveries_finish() {
    let e = env().await;
    // The app holds the delivery far longer than it takes to arrive, even on a loaded machine.
    *e.app().state.delay.lock().expect("lock") = Duration::from_secs(2);
    e.http.post(e.url("/v1.0/publish/pubsub/orders")).body("slow").send().await.expect("publish");
    tokio::time::sleep(Duration::from_millis(300)).await; // The delivery is now inside the app.
    assert_eq!(e.http.post(e.url("/v1.0/shutdown")).send().await.expect("shutdown").status(), 204);
    let Env { server, app, .. } = e;
    let result = tokio::time::timeout(Duration::from_secs(5), server).await.expect("server stops").expect("task");
    assert!(result.is_ok());
    assert_eq!(
        app.expect("app").seen("/orders").len(),
        1,
        "the in-flight delivery completed before the server returned"
    );
}
