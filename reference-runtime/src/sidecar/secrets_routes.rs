//! Secrets: `GET /v1.0/secrets/{store}/{name}` and `/bulk` (dapr-http-api.md §4).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use contract::secrets::GetSecretRequest;
use contract::{Block, Component, SecretStore};

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use super::request::query_metadata;

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    Router::new().route("/v1.0/secrets/{store}/bulk", get(bulk)).route("/v1.0/secrets/{store}/{name}", get(single))
}

fn store(sc: &Sidecar, name: &str) -> ApiResult<Arc<dyn SecretStore>> {
    if !sc.components.has_block(Block::SECRET_STORES) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_SECRET_STORES_NOT_CONFIGURED",
            "secret store is not configured",
        ));
    }
    match sc.components.get(name, Block::SECRET_STORES).and_then(Component::as_secrets) {
        Some(s) => Ok(Arc::clone(s)),
        // 401, as daprd answers (its docs say 400).
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ERR_SECRET_STORE_NOT_FOUND",
            format!("failed finding secret store with key {name}"),
        )),
    }
}

async fn single(
    State(sc): State<Arc<Sidecar>>,
    Path((store_name, name)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let s = store(&sc, &store_name)?;
    let data = s.get(GetSecretRequest { name: name.clone(), metadata: query_metadata(&q) }).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_SECRET_GET",
            format!("failed getting secret with key {name} from secret store {store_name}: {e}"),
        )
    })?;
    Ok(axum::Json(data).into_response())
}

async fn bulk(
    State(sc): State<Arc<Sidecar>>,
    Path(store_name): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let s = store(&sc, &store_name)?;
    let data = s.bulk_get(query_metadata(&q)).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_SECRET_GET",
            format!("failed getting secrets from secret store {store_name}: {e}"),
        )
    })?;
    Ok(axum::Json(data).into_response())
}
