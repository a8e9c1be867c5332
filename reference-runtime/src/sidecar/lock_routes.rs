//! Distributed lock: `POST /v1.0-alpha1/lock/{store}` and `/unlock/{store}` (dapr-http-api.md §6).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use contract::lock::{TryLockRequest, UnlockRequest};
use contract::{Block, Component, LockStore};
use serde_json::Value;

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use super::request::{Body, json};

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    Router::new().route("/v1.0-alpha1/lock/{store}", post(lock)).route("/v1.0-alpha1/unlock/{store}", post(unlock))
}

/// A field by its camelCase or snake_case name, as protojson accepts both.
fn field<'v>(body: &'v Value, camel: &str, snake: &str) -> Option<&'v Value> {
    body.get(camel).or_else(|| body.get(snake))
}

fn text(body: &Value, camel: &str, snake: &str) -> ApiResult<String> {
    match field(body, camel, snake) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::malformed(format!("`{camel}` must be a string, got `{other}`"))),
    }
}

fn store(sc: &Sidecar, name: &str) -> ApiResult<Arc<dyn LockStore>> {
    match sc.components.get(name, Block::LOCK).and_then(Component::as_lock) {
        Some(l) => Ok(Arc::clone(l)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_LOCK_STORE_NOT_FOUND",
            format!("lock store {name} not found"),
        )),
    }
}

/// Checks, in daprd's order, that a lock store is configured, that the request names a
/// resource and an owner, and that the store exists.
fn validated(sc: &Sidecar, name: &str, body: &Value) -> ApiResult<(Arc<dyn LockStore>, String, String)> {
    not_configured(sc)?;
    let resource_id = text(body, "resourceId", "resource_id")?;
    if resource_id.is_empty() {
        return Err(ApiError::malformed(format!("ResourceId is empty in lock store {name}")));
    }
    let lock_owner = text(body, "lockOwner", "lock_owner")?;
    if lock_owner.is_empty() {
        return Err(ApiError::malformed(format!("LockOwner is empty in lock store {name}")));
    }
    Ok((store(sc, name)?, resource_id, lock_owner))
}

fn not_configured(sc: &Sidecar) -> ApiResult<()> {
    if sc.components.has_block(Block::LOCK) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_LOCK_STORE_NOT_CONFIGURED",
            "lock store is not configured",
        ))
    }
}

async fn lock(State(sc): State<Arc<Sidecar>>, Path(name): Path<String>, Body(body): Body) -> ApiResult {
    let body: Value = json(&body)?;
    // Validation in daprd's order: expiry, configured, resource, owner, store.
    let expiry = match field(&body, "expiryInSeconds", "expiry_in_seconds") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse::<i64>().unwrap_or(0),
        Some(other) => return Err(ApiError::malformed(format!("`expiryInSeconds` must be a number, got `{other}`"))),
    };
    if expiry <= 0 {
        return Err(ApiError::malformed(format!("ExpiryInSeconds is not positive in lock store {name}")));
    }
    let (s, resource_id, lock_owner) = validated(&sc, &name, &body)?;
    let expiry_in_seconds = i32::try_from(expiry).unwrap_or(i32::MAX);
    let success = s.try_lock(TryLockRequest { resource_id, lock_owner, expiry_in_seconds }).await.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_TRY_LOCK", format!("failed to try acquiring lock: {e}"))
    })?;
    Ok(axum::Json(serde_json::json!({ "success": success })).into_response())
}

async fn unlock(State(sc): State<Arc<Sidecar>>, Path(name): Path<String>, Body(body): Body) -> ApiResult {
    let body: Value = json(&body)?;
    let (s, resource_id, lock_owner) = validated(&sc, &name, &body)?;
    let status = s.unlock(UnlockRequest { resource_id, lock_owner }).await.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_UNLOCK", format!("failed to release lock: {e}"))
    })?;
    Ok(axum::Json(serde_json::json!({ "status": status as i32 })).into_response())
}
