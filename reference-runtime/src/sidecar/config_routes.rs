//! Configuration: get, subscribe (updates POSTed to the app), unsubscribe
//! (dapr-http-api.md §5), under `/v1.0` and `/v1.0-alpha1`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use contract::configuration::{GetConfigurationRequest, SubscribeConfigurationRequest};
use contract::{Block, Component, ConfigurationStore};
use serde_json::Value;

use super::api_error::{ApiError, ApiResult};
use super::request::query_metadata;
use super::{Sidecar, delivery, locked};

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    let mut router = Router::new();
    for version in ["v1.0", "v1.0-alpha1"] {
        router = router
            .route(&format!("/{version}/configuration/{{store}}"), get(get_items))
            .route(&format!("/{version}/configuration/{{store}}/subscribe"), get(subscribe))
            .route(&format!("/{version}/configuration/{{store}}/{{id}}/unsubscribe"), get(unsubscribe));
    }
    router
}

fn store(sc: &Sidecar, name: &str) -> ApiResult<Arc<dyn ConfigurationStore>> {
    if !sc.components.has_block(Block::CONFIGURATION) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_CONFIGURATION_STORE_NOT_CONFIGURED",
            "configuration stores not configured",
        ));
    }
    match sc.components.get(name, Block::CONFIGURATION).and_then(Component::as_configuration) {
        Some(store) => Ok(Arc::clone(store)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_CONFIGURATION_STORE_NOT_FOUND",
            format!("configuration store {name} not found"),
        )),
    }
}

fn keys(q: &[(String, String)]) -> Vec<String> {
    q.iter()
        .filter(|(k, _)| k == "key")
        .flat_map(|(_, v)| v.split(','))
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn get_items(
    State(sc): State<Arc<Sidecar>>,
    Path(name): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let s = store(&sc, &name)?;
    let keys = keys(&q);
    let items =
        s.get(GetConfigurationRequest { keys: keys.clone(), metadata: query_metadata(&q) }).await.map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_CONFIGURATION_GET",
                format!("failed to get {keys:?} from Configuration store {name}: {e}"),
            )
        })?;
    if items.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let update = contract::configuration::ConfigurationUpdate { id: String::new(), items };
    let body = delivery::configuration_update_body(&update);
    Ok(axum::Json(body.get("items").cloned().unwrap_or(Value::Null)).into_response())
}

async fn subscribe(
    State(sc): State<Arc<Sidecar>>,
    Path(name): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
) -> ApiResult {
    let s = store(&sc, &name)?;
    if sc.app().is_none() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_APP_CHANNEL_NIL",
            "app channel is not initialized: start the sidecar with --app-port",
        ));
    }
    let mut subscription = s
        .subscribe(SubscribeConfigurationRequest { keys: keys(&q), metadata: query_metadata(&q) })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_CONFIGURATION_SUBSCRIBE",
                format!("failed to subscribe to Configuration store {name}: {e}"),
            )
        })?;
    let id = subscription.id.clone();
    let weak = Arc::downgrade(&sc);
    let store_name = name.clone();
    let task = tokio::spawn(async move {
        while let Some(update) = subscription.updates.recv().await {
            let Some(sc) = weak.upgrade() else { return };
            let Some(app) = sc.app() else { return };
            let _in_flight = sc.in_flight.start();
            let body = delivery::configuration_update_body(&update).to_string().into_bytes();
            // One POST per key, on the key's own path.
            let key = update.items.keys().next().cloned().unwrap_or_default();
            // A transport failure (say, a pooled connection the app just closed) is retried: an
            // update is sent once, and losing it would leave the app's view stale for good.
            let path = format!("/configuration/{store_name}/{key}");
            for attempt in 1..=3 {
                match app.post(&path, "application/json", &[], body.clone()).await {
                    Ok(r) if r.status == StatusCode::OK => break,
                    Ok(r) => {
                        tracing::warn!(status = %r.status, %key, "the app did not accept a configuration update");
                        break;
                    }
                    Err(e) if attempt < 3 => {
                        tracing::debug!(error = %e, %key, attempt, "configuration update not delivered; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                    }
                    Err(e) => tracing::warn!(error = %e, %key, "configuration update not delivered"),
                }
            }
        }
    });
    // Ids are only unique within a store: a subscription is known by both.
    locked(&sc.config_subscriptions).insert((name.clone(), id.clone()), task);
    Ok(axum::Json(serde_json::json!({ "id": id })).into_response())
}

async fn unsubscribe(State(sc): State<Arc<Sidecar>>, Path((name, id)): Path<(String, String)>) -> ApiResult {
    let s = store(&sc, &name)?;
    match s.unsubscribe(&id).await {
        Ok(()) => {
            if let Some(task) = locked(&sc.config_subscriptions).remove(&(name.clone(), id.clone())) {
                task.abort();
            }
            Ok(axum::Json(serde_json::json!({ "ok": true })).into_response())
        }
        Err(e) => Ok((
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(serde_json::json!({ "ok": false, "message": format!("failed to unsubscribe to configuration request {id}: {e}") })),
        )
            .into_response()),
    }
}
