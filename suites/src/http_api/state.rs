//! The state routes of the Dapr HTTP API on the wire (`dapr-http-api.md` §1): the status and
//! `errorCode` of every answer with a definite one, and the fields a body leaves out.

use serde_json::{Value, json};

use super::{HTTP_API, Request, segment};
use crate::case::{Case, CaseResult, Claim, Ctx, Requirement};
use crate::state::{BLOCK, ETAG, QUERY, TRANSACTION, TTL, get, set};
use crate::{case, ensure, ensure_eq};

const NO_TRANSACTION: Requirement = Requirement::NotClaimed(Claim::Transaction);
const NO_QUERY: Requirement = Requirement::NotClaimed(Claim::Query);

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "state.http-api.unknown-store",
            "HTTP 1.1",
            "A state call naming no configured store MUST be answered 400 `ERR_STATE_STORE_NOT_FOUND`.",
            [HTTP_API],
            ["http-api"],
            10,
            unknown_store
        ),
        case!(
            BLOCK,
            "state.http-api.illegal-key",
            "HTTP 1.1",
            "A key containing `||` MUST be answered 400 `ERR_MALFORMED_REQUEST`, on save and on get, and nothing stored.",
            [HTTP_API],
            ["http-api"],
            10,
            illegal_key
        ),
        case!(
            BLOCK,
            "state.http-api.key-required",
            "HTTP 1.3",
            "A saved item with no key or an empty key MUST be answered 400 `ERR_MALFORMED_REQUEST`.",
            [HTTP_API],
            ["http-api"],
            10,
            key_required
        ),
        case!(
            BLOCK,
            "state.http-api.save-body-malformed",
            "HTTP 1.3",
            "A save whose body is not a JSON array MUST be answered 400 `ERR_MALFORMED_REQUEST`.",
            [HTTP_API],
            ["http-api"],
            10,
            save_malformed
        ),
        case!(
            BLOCK,
            "state.http-api.save-answers-204",
            "HTTP 1.3",
            "A save, and a save of an empty array, MUST be answered 204 with no body.",
            [HTTP_API],
            ["http-api"],
            10,
            save_204
        ),
        case!(
            BLOCK,
            "state.http-api.get-answers",
            "HTTP 1.4",
            "A get MUST answer 200 with the value and `Content-Type: application/json` (and its `ETag` header where the store has ETags), and 204 with no body for a missing key.",
            [HTTP_API],
            ["http-api"],
            10,
            get_answers
        ),
        case!(
            BLOCK,
            "state.http-api.bad-ttl-is-save-error",
            "HTTP 1.9, S37",
            "A save with a non-numeric `ttlInSeconds` MUST be answered 500 `ERR_STATE_SAVE` (the store's error, not the request's) and store nothing.",
            [HTTP_API, TTL],
            ["http-api", "ttl"],
            10,
            bad_ttl
        ),
        case!(
            BLOCK,
            "state.http-api.etag-mismatch-409",
            "HTTP 1.3, 1.6",
            "A stale ETag MUST be answered 409, `ERR_STATE_SAVE` on save and `ERR_STATE_DELETE` on delete.",
            [HTTP_API, ETAG],
            ["http-api", "etag"],
            10,
            etag_409
        ),
        case!(
            BLOCK,
            "state.http-api.delete-answers-204",
            "HTTP 1.6",
            "A delete, of a missing key too, MUST be answered 204; an empty `If-Match` MUST count as no ETag.",
            [HTTP_API],
            ["http-api"],
            10,
            delete_204
        ),
        case!(
            BLOCK,
            "state.http-api.bulk-get-shape",
            "HTTP 1.5",
            "Bulk get MUST answer 200 with one object per key in key order, `data` for a present key and only `key` for a missing one; empty `keys` MUST give `[]`, a malformed body 400 `ERR_MALFORMED_REQUEST`.",
            [HTTP_API],
            ["http-api"],
            10,
            bulk_get
        ),
        case!(
            BLOCK,
            "state.http-api.transaction-answers",
            "HTTP 1.7",
            "A transaction MUST be answered 204, with empty `operations` too; an unknown operation 400 `ERR_NOT_SUPPORTED_STATE_OPERATION`.",
            [HTTP_API, TRANSACTION],
            ["http-api"],
            10,
            transaction_answers
        ),
        case!(
            BLOCK,
            "state.http-api.transaction-etag-is-500",
            "HTTP 1.7",
            "An ETag mismatch inside a transaction MUST be answered 500 `ERR_STATE_TRANSACTION` (daprd does not map it to 409 there), and nothing applied.",
            [HTTP_API, TRANSACTION, ETAG],
            ["http-api", "etag"],
            10,
            transaction_etag
        ),
        case!(
            BLOCK,
            "state.http-api.transaction-unsupported",
            "HTTP 1.7",
            "A transaction on a store without `TRANSACTIONAL` MUST be answered 500 `ERR_STATE_STORE_NOT_SUPPORTED`.",
            [HTTP_API, NO_TRANSACTION],
            ["http-api"],
            10,
            transaction_unsupported
        ),
        case!(
            BLOCK,
            "state.http-api.query-answers",
            "HTTP 1.8",
            "A query MUST answer 200 with `results` whose items carry `key` and `data` and no empty `etag`, `error` or `metadata` (nor an empty `token` or `metadata` beside them), 204 when nothing matches, and 500 `ERR_STATE_QUERY` for a malformed query.",
            [HTTP_API, QUERY],
            ["http-api", "query"],
            10,
            query_answers
        ),
        case!(
            BLOCK,
            "state.http-api.metadata",
            "HTTP 8",
            "`/v1.0/metadata` MUST answer 200 with the sidecar's `id`, `runtimeVersion` and `extended.daprRuntimeVersion`, and the store under `components` with its `type`, `version` and capabilities (`ACTOR` exactly when it has ETAG and TRANSACTIONAL); `PUT /v1.0/metadata/{key}` MUST answer 204 and its value show under `extended`.",
            [HTTP_API],
            ["http-api"],
            10,
            metadata
        ),
        case!(
            BLOCK,
            "state.http-api.query-unsupported",
            "HTTP 1.8",
            "A query on a store without `QUERY_API` MUST be answered 500 `ERR_STATE_STORE_NOT_SUPPORTED`.",
            [HTTP_API, NO_QUERY],
            ["http-api"],
            10,
            query_unsupported
        ),
    ]
}

fn store(ctx: &Ctx) -> String {
    format!("/v1.0/state/{}", ctx.component_segment())
}

fn save(ctx: &Ctx, items: &Value) -> Request {
    Request::new("POST", store(ctx)).json(items)
}

async fn unknown_store(ctx: Ctx) -> CaseResult {
    let missing = segment(&format!("{}-certify-absent", ctx.component));
    ctx.exchange(Request::new("GET", format!("/v1.0/state/{missing}/k"))).await?.error(400, "ERR_STATE_STORE_NOT_FOUND")
}

async fn illegal_key(ctx: Ctx) -> CaseResult {
    let key = format!("{}||illegal", ctx.namespace);
    ctx.exchange(save(&ctx, &json!([{"key": key, "value": 1}]))).await?.error(400, "ERR_MALFORMED_REQUEST")?;
    let read = Request::new("GET", format!("{}/{}", store(&ctx), segment(&key)));
    ctx.exchange(read).await?.error(400, "ERR_MALFORMED_REQUEST")
}

async fn key_required(ctx: Ctx) -> CaseResult {
    ctx.exchange(save(&ctx, &json!([{"key": "", "value": 1}]))).await?.error(400, "ERR_MALFORMED_REQUEST")?;
    ctx.exchange(save(&ctx, &json!([{"value": 1}]))).await?.error(400, "ERR_MALFORMED_REQUEST")
}

async fn save_malformed(ctx: Ctx) -> CaseResult {
    let not_an_array = json!({"key": ctx.key("object"), "value": 1});
    ctx.exchange(save(&ctx, &not_an_array)).await?.error(400, "ERR_MALFORMED_REQUEST")?;
    let cut_short = Request::new("POST", store(&ctx)).body("[{\"key\":", "application/json");
    ctx.exchange(cut_short).await?.error(400, "ERR_MALFORMED_REQUEST")?;
    ensure!(get(&ctx, &ctx.key("object")).await?.is_none(), "an item was stored from a malformed body");
    Ok(())
}

async fn save_204(ctx: Ctx) -> CaseResult {
    ctx.exchange(save(&ctx, &json!([{"key": ctx.key("k"), "value": {"n": 1}}]))).await?.empty(204)?;
    ctx.exchange(save(&ctx, &json!([]))).await?.empty(204)
}

async fn get_answers(ctx: Ctx) -> CaseResult {
    set(&ctx, &ctx.key("k"), r#"{"n":1}"#).await?;
    let read = ctx.exchange(Request::new("GET", format!("{}/{}", store(&ctx), segment(&ctx.key("k"))))).await?;
    read.status(200)?;
    ensure_eq!(read.answer.body, br#"{"n":1}"#.to_vec(), "the body");
    let content_type = read.answer.header("content-type").unwrap_or_default();
    read.check(content_type.starts_with("application/json"), "the `Content-Type` is not application/json")?;
    if ctx.claims.contains(&Claim::Etag) {
        read.check(read.answer.header("etag").is_some_and(|e| !e.is_empty()), "no `ETag` header")?;
    }
    let missing = Request::new("GET", format!("{}/{}", store(&ctx), segment(&ctx.key("never"))));
    ctx.exchange(missing).await?.empty(204)
}

async fn bad_ttl(ctx: Ctx) -> CaseResult {
    let item = json!([{"key": ctx.key("k"), "value": 1, "metadata": {"ttlInSeconds": "soon"}}]);
    ctx.exchange(save(&ctx, &item)).await?.error(500, "ERR_STATE_SAVE")?;
    ensure!(get(&ctx, &ctx.key("k")).await?.is_none(), "the item was stored despite its bad TTL");
    Ok(())
}

async fn etag_409(ctx: Ctx) -> CaseResult {
    let key = ctx.key("k");
    set(&ctx, &key, "1").await?;
    let stale = ctx.settings.bad_etag.as_str();
    ctx.exchange(save(&ctx, &json!([{"key": key, "value": 2, "etag": stale}]))).await?.error(409, "ERR_STATE_SAVE")?;
    let delete = Request::new("DELETE", format!("{}/{}", store(&ctx), segment(&key))).header("If-Match", stale);
    ctx.exchange(delete).await?.error(409, "ERR_STATE_DELETE")
}

async fn delete_204(ctx: Ctx) -> CaseResult {
    let path = |name: &str| format!("{}/{}", store(&ctx), segment(&ctx.key(name)));
    ctx.exchange(Request::new("DELETE", path("never"))).await?.empty(204)?;
    set(&ctx, &ctx.key("k"), "1").await?;
    ctx.exchange(Request::new("DELETE", path("k")).header("If-Match", "")).await?.empty(204)?;
    ensure!(get(&ctx, &ctx.key("k")).await?.is_none(), "`{}` is still there after a delete", ctx.key("k"));
    Ok(())
}

async fn bulk_get(ctx: Ctx) -> CaseResult {
    let (present, missing) = (ctx.key("present"), ctx.key("missing"));
    set(&ctx, &present, r#"{"n":1}"#).await?;
    let bulk = format!("{}/bulk", store(&ctx));
    let read = ctx.exchange(Request::new("POST", &bulk).json(&json!({"keys": [present, missing]}))).await?;
    read.status(200)?;
    let items = read.json()?;
    ensure_eq!(items[0]["key"], json!(present), "the first item's key");
    ensure_eq!(items[0]["data"], json!({"n": 1}), "the present key's `data`");
    ensure_eq!(items[1], json!({"key": missing}), "the missing key's item");
    read.check(items.as_array().is_some_and(|a| a.len() == 2), "not one item per key")?;
    let none = ctx.exchange(Request::new("POST", &bulk).json(&json!({"keys": []}))).await?;
    none.status(200)?;
    ensure_eq!(none.json()?, json!([]), "the answer to empty `keys`");
    let malformed = Request::new("POST", &bulk).body("{\"keys\":", "application/json");
    ctx.exchange(malformed).await?.error(400, "ERR_MALFORMED_REQUEST")
}

fn transaction(ctx: &Ctx, operations: Value) -> Request {
    Request::new("POST", format!("{}/transaction", store(ctx))).json(&json!({"operations": operations}))
}

async fn transaction_answers(ctx: Ctx) -> CaseResult {
    let upsert = json!([{"operation": "upsert", "request": {"key": ctx.key("k"), "value": 1}}]);
    ctx.exchange(transaction(&ctx, upsert)).await?.empty(204)?;
    ctx.exchange(transaction(&ctx, json!([]))).await?.empty(204)?;
    let unknown = json!([{"operation": "merge", "request": {"key": ctx.key("u"), "value": 1}}]);
    ctx.exchange(transaction(&ctx, unknown)).await?.error(400, "ERR_NOT_SUPPORTED_STATE_OPERATION")
}

async fn transaction_etag(ctx: Ctx) -> CaseResult {
    let (kept, other) = (ctx.key("kept"), ctx.key("other"));
    set(&ctx, &kept, "1").await?;
    let operations = json!([
        {"operation": "upsert", "request": {"key": other, "value": 2}},
        {"operation": "upsert", "request": {"key": kept, "value": 2, "etag": ctx.settings.bad_etag}},
    ]);
    ctx.exchange(transaction(&ctx, operations)).await?.error(500, "ERR_STATE_TRANSACTION")?;
    ensure!(get(&ctx, &other).await?.is_none(), "the failed transaction's other upsert was applied");
    Ok(())
}

async fn transaction_unsupported(ctx: Ctx) -> CaseResult {
    let upsert = json!([{"operation": "upsert", "request": {"key": ctx.key("k"), "value": 1}}]);
    ctx.exchange(transaction(&ctx, upsert)).await?.error(500, "ERR_STATE_STORE_NOT_SUPPORTED")
}

fn query(ctx: &Ctx, body: &Value) -> Request {
    Request::new("POST", format!("/v1.0-alpha1/state/{}/query", ctx.component_segment())).json(body)
}

async fn query_answers(ctx: Ctx) -> CaseResult {
    set(&ctx, &ctx.key("k"), &json!({"run": ctx.namespace}).to_string()).await?;
    let found = ctx.exchange(query(&ctx, &json!({"filter": {"EQ": {"run": ctx.namespace}}}))).await?;
    found.status(200)?;
    let body = found.json()?;
    for absent in ["token", "metadata"] {
        found.check(body.get(absent).is_none_or(|v| !is_empty(v)), &format!("an empty `{absent}`"))?;
    }
    let results = body["results"].as_array().ok_or_else(|| found.fail("no `results` array"))?;
    ensure_eq!(results.len(), 1, "the number of results");
    ensure_eq!(results[0]["key"], json!(ctx.key("k")), "the result's key");
    ensure_eq!(results[0]["data"], json!({"run": ctx.namespace}), "the result's data");
    for absent in ["etag", "error", "metadata"] {
        let field = results[0].get(absent);
        found.check(field.is_none_or(|v| !is_empty(v)), &format!("a result with an empty `{absent}`"))?;
    }
    let nothing = json!({"filter": {"EQ": {"run": format!("{}-nobody", ctx.namespace)}}});
    ctx.exchange(query(&ctx, &nothing)).await?.empty(204)?;
    ctx.exchange(query(&ctx, &json!({"filter": {"LIKE": {"run": "x"}}}))).await?.error(500, "ERR_STATE_QUERY")
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

async fn query_unsupported(ctx: Ctx) -> CaseResult {
    let nothing = json!({"filter": {"EQ": {"run": ctx.namespace}}});
    ctx.exchange(query(&ctx, &nothing)).await?.error(500, "ERR_STATE_STORE_NOT_SUPPORTED")
}

async fn metadata(ctx: Ctx) -> CaseResult {
    let (key, value) = (ctx.key("attribute"), format!("{}-value", ctx.namespace));
    let put = Request::new("PUT", format!("/v1.0/metadata/{}", segment(&key))).body(value.clone(), "text/plain");
    ctx.exchange(put).await?.empty(204)?;
    let read = ctx.exchange(Request::new("GET", "/v1.0/metadata")).await?;
    read.status(200)?;
    let body = read.json()?;
    let text = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    for field in ["id", "runtimeVersion"] {
        read.check(text(&body[field]), &format!("no `{field}`"))?;
    }
    read.check(text(&body["extended"]["daprRuntimeVersion"]), "no `extended.daprRuntimeVersion`")?;
    ensure_eq!(body["extended"][&key], json!(value), "`extended.{key}` after the PUT");
    let components = body["components"].as_array().cloned().unwrap_or_default();
    let store = components.iter().find(|c| c["name"] == json!(ctx.component));
    let store = store.ok_or_else(|| read.fail(&format!("`{}` is not under `components`", ctx.component)))?;
    read.check(store["type"].as_str().is_some_and(|t| t.starts_with("state.")), "the store's `type` is not `state.*`")?;
    read.check(text(&store["version"]), "the store has no `version`")?;
    let capabilities: Vec<&str> =
        store["capabilities"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let actor = capabilities.contains(&"ETAG") && capabilities.contains(&"TRANSACTIONAL");
    ensure_eq!(capabilities.contains(&"ACTOR"), actor, "`ACTOR` among the store's capabilities {capabilities:?}");
    Ok(())
}
