//! State routes: get, save, delete, bulk get, transaction, query (dapr-http-api.md §1).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::Uri;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use contract::state::{
    Concurrency, Consistency, DeleteRequest, GetRequest, QueryRequest, SetRequest, StateOptions, TransactionOperation,
    TransactionRequest,
};
use contract::state_query::Query as StateQuery;
use contract::{Block, Component, Error, Metadata, StateFeature, StateStore};
use serde_json::Value;

use super::api_error::{ApiError, ApiResult};
use super::request::{Body, json, query_metadata, query_value, unescape};
use super::{KeyScheme, Sidecar};

type Params = Query<Vec<(String, String)>>;

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    Router::new()
        .route("/v1.0/state/{store}", post(save).put(save))
        .route("/v1.0/state/{store}/bulk", post(bulk_get).put(bulk_get))
        .route("/v1.0/state/{store}/transaction", post(transaction).put(transaction))
        .route("/v1.0/state/{store}/{key}", get(get_state).delete(delete_state))
        .route("/v1.0-alpha1/state/{store}/query", post(query).put(query))
}

/// Route parameters by position in the raw (still escaped) path, unescaped as daprd does
/// (`%XX`, and `+` as a space). axum's own parameters are already decoded, which would decode
/// `%25` twice and keep `+`.
struct RawSegments {
    segments: Vec<String>,
}

impl RawSegments {
    fn of(uri: &Uri) -> Self {
        Self { segments: uri.path().split('/').map(str::to_owned).collect() }
    }

    /// Segment `index` of `/v1.0/state/{store}/{key}`: 3 is the store, 4 the key.
    fn get(&self, index: usize) -> ApiResult<String> {
        unescape(self.segments.get(index).map(String::as_str).unwrap_or_default())
    }
}

struct Store<'s> {
    name: String,
    store: Arc<dyn StateStore>,
    keys: &'s KeyScheme,
}

impl Store<'_> {
    fn key(&self, key: &str) -> ApiResult<String> {
        if key.contains("||") {
            return Err(ApiError::malformed(format!("input key/keyPrefix '{key}' can't contain '||'")));
        }
        Ok(self.keys.wrap(key))
    }
}

fn store<'s>(sc: &'s Sidecar, name: String) -> ApiResult<Store<'s>> {
    if !sc.components.has_block(Block::STATE) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_STORE_NOT_CONFIGURED",
            format!("state store {name} is not configured"),
        ));
    }
    match (sc.components.get(&name, Block::STATE).and_then(Component::as_state), sc.key_schemes.get(&name)) {
        (Some(store), Some(keys)) => Ok(Store { name, store: Arc::clone(store), keys }),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_STATE_STORE_NOT_FOUND",
            format!("state store {name} is not found"),
        )),
    }
}

/// Maps a store error on a write to Dapr's status: 409 mismatch, 400 invalid ETag, else 500.
/// Bad input the store rejects (a non-numeric TTL, an unknown concurrency) is a store error to
/// daprd too: 500 `ERR_STATE_SAVE` (reference §1.9), not 400.
fn write_error(code: &'static str, what: String, error: Error) -> ApiError {
    let answer = match &error {
        Error::EtagMismatch { .. } => ApiError::new(
            StatusCode::CONFLICT,
            code,
            format!("{what}: possible etag mismatch. error from state store: {error}"),
        ),
        Error::EtagInvalid { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, code, format!("{what}: invalid etag value: {error}"))
        }
        Error::Bulk(failures) if !failures.is_empty() && failures.iter().all(|f| f.error.is_etag_error()) => {
            let invalid = failures.iter().any(|f| matches!(f.error, Error::EtagInvalid { .. }));
            let status = if invalid { StatusCode::BAD_REQUEST } else { StatusCode::CONFLICT };
            ApiError::new(status, code, format!("{what}: possible etag mismatch. error from state store: {error}"))
        }
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, format!("{what}: {error}")),
    };
    answer.unless_coded(&error)
}

/// Metadata values arrive as strings; numbers and booleans are accepted and rendered.
fn string_map(value: Option<&Value>, field: &str) -> ApiResult<Metadata> {
    match value {
        None | Some(Value::Null) => Ok(Metadata::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
                other => Err(ApiError::malformed(format!("`{field}.{k}` must be a string, got `{other}`"))),
            })
            .collect(),
        Some(other) => Err(ApiError::malformed(format!("`{field}` must be an object of strings, got `{other}`"))),
    }
}

/// Field lookup that ignores case, as Dapr's mapstructure decoding of transaction requests.
fn field<'v>(object: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn opt_string(value: Option<&Value>, field: &str) -> ApiResult<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::malformed(format!("`{field}` must be a string, got `{other}`"))),
    }
}

fn parse_options(value: Option<&Value>) -> ApiResult<StateOptions> {
    let Some(Value::Object(o)) = value else {
        return match value {
            None | Some(Value::Null) => Ok(StateOptions::default()),
            Some(other) => Err(ApiError::malformed(format!("`options` must be an object, got `{other}`"))),
        };
    };
    let concurrency = opt_string(field(o, "concurrency"), "options.concurrency")?.unwrap_or_default();
    let consistency = opt_string(field(o, "consistency"), "options.consistency")?.unwrap_or_default();
    Ok(StateOptions {
        concurrency: concurrency.parse::<Concurrency>().map_err(|e| ApiError::malformed(e.to_string()))?,
        consistency: consistency.parse::<Consistency>().map_err(|e| ApiError::malformed(e.to_string()))?,
    })
}

/// A save item or a transaction's upsert request, as JSON.
fn set_request(store: &Store<'_>, item: &Value, extra: &Metadata, what: &str) -> ApiResult<SetRequest> {
    let Value::Object(o) = item else {
        return Err(ApiError::malformed(format!("each {what} must be an object, got `{item}`")));
    };
    let key = opt_string(field(o, "key"), "key")?.filter(|k| !k.is_empty());
    let key = key.ok_or_else(|| ApiError::malformed("\"key\" is a required field"))?;
    let mut metadata = string_map(field(o, "metadata"), "metadata")?;
    metadata.extend(extra.clone());
    // Values are stored as their JSON text: a string keeps its quotes, objects are compact.
    let value = field(o, "value").cloned().unwrap_or(Value::Null);
    Ok(SetRequest {
        key: store.key(&key)?,
        value: serde_json::to_vec(&value).map_err(|e| ApiError::malformed(e.to_string()))?,
        etag: opt_string(field(o, "etag"), "etag")?,
        content_type: opt_string(field(o, "contentType"), "contentType")?,
        options: parse_options(field(o, "options"))?,
        metadata,
    })
}

async fn save(State(sc): State<Arc<Sidecar>>, uri: Uri, Query(q): Params, Body(body): Body) -> ApiResult {
    let store = store(&sc, RawSegments::of(&uri).get(3)?)?;
    let items: Value = json(&body)?;
    let Value::Array(items) = items else {
        return Err(ApiError::malformed("failed deserializing HTTP body: expected a JSON array of state items"));
    };
    let query_md = query_metadata(&q);
    let requests =
        items.iter().map(|i| set_request(&store, i, &query_md, "state item")).collect::<ApiResult<Vec<_>>>()?;
    let what = format!("failed saving state in state store {}", store.name);
    let result = match requests.len() {
        0 => Ok(()),
        1 => store.store.set(requests.into_iter().next().expect("one item")).await,
        _ => store.store.bulk_set(requests).await,
    };
    result.map_err(|e| write_error("ERR_STATE_SAVE", what, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn consistency(q: &[(String, String)]) -> ApiResult<Consistency> {
    query_value(q, "consistency").unwrap_or_default().parse().map_err(|e: Error| ApiError::malformed(e.to_string()))
}

async fn get_state(State(sc): State<Arc<Sidecar>>, uri: Uri, Query(q): Params) -> ApiResult {
    let segments = RawSegments::of(&uri);
    let store = store(&sc, segments.get(3)?)?;
    let key = segments.get(4)?;
    let request = GetRequest { key: store.key(&key)?, metadata: query_metadata(&q), consistency: consistency(&q)? };
    let item = store.store.get(request).await.map_err(|e| {
        let status = if matches!(e, Error::InvalidArgument(_)) {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError::new(status, "ERR_STATE_GET", format!("fail to get {key} from state store {}: {e}", store.name))
            .unless_coded(&e)
    })?;
    let Some(item) = item else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut headers = HeaderMap::new();
    let content_type = item.content_type.as_deref().unwrap_or("application/json");
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    if let Some(etag) = item.etag.as_deref().and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    for (k, v) in &item.metadata {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(format!("metadata.{k}").as_bytes()), HeaderValue::from_str(v))
        {
            headers.insert(name, value);
        }
    }
    Ok((StatusCode::OK, headers, item.data).into_response())
}

async fn delete_state(State(sc): State<Arc<Sidecar>>, uri: Uri, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let store = store(&sc, RawSegments::of(&uri).get(3)?)?;
    let key = RawSegments::of(&uri).get(4)?;
    let etag = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()).filter(|e| !e.is_empty()).map(str::to_owned);
    let options = StateOptions {
        concurrency: query_value(&q, "concurrency")
            .unwrap_or_default()
            .parse()
            .map_err(|e: Error| ApiError::malformed(e.to_string()))?,
        consistency: consistency(&q)?,
    };
    let request = DeleteRequest { key: store.key(&key)?, etag, metadata: query_metadata(&q), options };
    let what = format!("failed deleting state with key {key}");
    store.store.delete(request).await.map_err(|e| write_error("ERR_STATE_DELETE", what, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Stored bytes as JSON for bulk and query answers: raw when they are JSON, else a string.
fn raw_json(data: &[u8]) -> Value {
    serde_json::from_slice(data).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(data).into_owned()))
}

async fn bulk_get(State(sc): State<Arc<Sidecar>>, uri: Uri, Query(q): Params, Body(body): Body) -> ApiResult {
    let store = store(&sc, RawSegments::of(&uri).get(3)?)?;
    let request: Value = json(&body)?;
    let Value::Object(o) = &request else {
        return Err(ApiError::malformed("failed deserializing HTTP body: expected an object with `keys`"));
    };
    let keys: Vec<String> = match field(o, "keys") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::malformed(format!("every key must be a string, got `{k}`")))
            })
            .collect::<ApiResult<_>>()?,
        Some(other) => return Err(ApiError::malformed(format!("`keys` must be an array, got `{other}`"))),
    };
    let mut metadata = string_map(field(o, "metadata"), "metadata")?;
    metadata.extend(query_metadata(&q));
    let requests = keys
        .iter()
        .map(|k| Ok(GetRequest { key: store.key(k)?, metadata: metadata.clone(), consistency: Consistency::default() }))
        .collect::<ApiResult<Vec<_>>>()?;
    let items = store.store.bulk_get(requests).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_BULK_GET",
            format!("failed bulk get from state store {}: {e}", store.name),
        )
        .unless_coded(&e)
    })?;
    let answer: Vec<Value> = items
        .into_iter()
        .map(|bulk| {
            let mut entry = serde_json::Map::new();
            entry.insert("key".into(), Value::String(store.keys.unwrap(&bulk.key).to_owned()));
            if let Some(item) = bulk.item {
                entry.insert("data".into(), raw_json(&item.data));
                if let Some(etag) = item.etag {
                    entry.insert("etag".into(), Value::String(etag));
                }
                if !item.metadata.is_empty() {
                    entry.insert("metadata".into(), serde_json::json!(item.metadata));
                }
            }
            if let Some(error) = bulk.error.filter(|e| !e.is_empty()) {
                entry.insert("error".into(), Value::String(error));
            }
            Value::Object(entry)
        })
        .collect();
    Ok(axum::Json(answer).into_response())
}

async fn transaction(State(sc): State<Arc<Sidecar>>, uri: Uri, Query(q): Params, Body(body): Body) -> ApiResult {
    let store = store(&sc, RawSegments::of(&uri).get(3)?)?;
    if !store.store.features().contains(&StateFeature::Transactional) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_STORE_NOT_SUPPORTED",
            format!("state store {} doesn't support transaction", store.name),
        ));
    }
    let request: Value = json(&body)?;
    let Value::Object(o) = &request else {
        return Err(ApiError::malformed("failed deserializing HTTP body: expected an object with `operations`"));
    };
    let query_md = query_metadata(&q);
    let mut metadata = string_map(field(o, "metadata"), "metadata")?;
    metadata.extend(query_md.clone());
    let operations = match field(o, "operations") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ops)) => ops.clone(),
        Some(other) => return Err(ApiError::malformed(format!("`operations` must be an array, got `{other}`"))),
    };
    let mut parsed = Vec::with_capacity(operations.len());
    for op in &operations {
        let Value::Object(op) = op else {
            return Err(ApiError::malformed(format!("each operation must be an object, got `{op}`")));
        };
        let kind = opt_string(field(op, "operation"), "operation")?.unwrap_or_default();
        let request = field(op, "request").cloned().unwrap_or(Value::Null);
        match kind.as_str() {
            "upsert" => {
                parsed.push(TransactionOperation::Set(set_request(&store, &request, &query_md, "operation request")?))
            }
            "delete" => {
                let Value::Object(r) = &request else {
                    return Err(ApiError::malformed("a delete operation needs a `request` object"));
                };
                let key = opt_string(field(r, "key"), "key")?.filter(|k| !k.is_empty());
                let key = key.ok_or_else(|| ApiError::malformed("\"key\" is a required field"))?;
                let mut op_md = string_map(field(r, "metadata"), "metadata")?;
                op_md.extend(query_md.clone());
                parsed.push(TransactionOperation::Delete(DeleteRequest {
                    key: store.key(&key)?,
                    etag: opt_string(field(r, "etag"), "etag")?,
                    metadata: op_md,
                    options: parse_options(field(r, "options"))?,
                }));
            }
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "ERR_NOT_SUPPORTED_STATE_OPERATION",
                    format!("operation type {other} not supported"),
                ));
            }
        }
    }
    if let Some(max) = store.store.multi_max_size().filter(|max| parsed.len() > *max) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_STATE_STORE_TOO_MANY_TRANSACTIONS",
            format!("the transaction contains {} operations, more than the store's limit of {max}", parsed.len()),
        ));
    }
    if !parsed.is_empty() {
        store.store.transact(TransactionRequest { operations: parsed, metadata }).await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_STATE_TRANSACTION",
                format!("error while executing state transaction: {e}"),
            )
            .unless_coded(&e)
        })?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn query(State(sc): State<Arc<Sidecar>>, uri: Uri, Query(q): Params, Body(body): Body) -> ApiResult {
    let store = store(&sc, RawSegments::of(&uri).get(3)?)?;
    if !store.store.features().contains(&StateFeature::QueryApi) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_STORE_NOT_SUPPORTED",
            "state store does not support querying",
        ));
    }
    let failed = |e: Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_QUERY",
            format!("state store {} query failed: {e}", store.name),
        )
        .unless_coded(&e)
    };
    let parsed = StateQuery::from_slice(&body).map_err(failed)?;
    let response =
        store.store.query(QueryRequest { query: parsed, metadata: query_metadata(&q) }).await.map_err(failed)?;
    // Only keys under this app's prefix belong to it.
    let results: Vec<Value> = response
        .results
        .into_iter()
        .filter(|r| match store.keys {
            KeyScheme::Prefix(p) => r.key.starts_with(&format!("{p}||")),
            KeyScheme::None => true,
        })
        .map(|r| {
            let mut entry = serde_json::Map::new();
            entry.insert("key".into(), Value::String(store.keys.unwrap(&r.key).to_owned()));
            entry.insert("data".into(), raw_json(&r.data));
            if let Some(etag) = r.etag {
                entry.insert("etag".into(), Value::String(etag));
            }
            if let Some(error) = r.error.filter(|e| !e.is_empty()) {
                entry.insert("error".into(), Value::String(error));
            }
            Value::Object(entry)
        })
        .collect();
    if results.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut answer = serde_json::Map::new();
    answer.insert("results".into(), Value::Array(results));
    if let Some(token) = response.token {
        answer.insert("token".into(), Value::String(token));
    }
    if !response.metadata.is_empty() {
        answer.insert("metadata".into(), serde_json::json!(BTreeMap::from_iter(response.metadata)));
    }
    Ok(axum::Json(Value::Object(answer)).into_response())
}
