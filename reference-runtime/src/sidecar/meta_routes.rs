//! Metadata, health, shutdown, and the API-token check (dapr-http-api.md §0.1, §8).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::api_error::{ApiError, ApiResult};
use super::request::{Body, query_value};
use super::{RUNTIME_VERSION, Sidecar, locked};

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    Router::new()
        .route("/v1.0/metadata", get(metadata))
        .route("/v1.0/metadata/{key}", put(set_attribute))
        .route("/v1.0/healthz", get(healthz))
        .route("/v1.0/healthz/outbound", get(outbound))
        .route("/v1.0/shutdown", post(shutdown))
}

const EXEMPT: &[&str] = &["/v1.0/healthz", "/v1.0/healthz/outbound"];

/// With `DAPR_API_TOKEN` set, every call but the health checks needs the `dapr-api-token`
/// header; the header is not passed on.
pub(super) async fn require_api_token(State(sc): State<Arc<Sidecar>>, mut request: Request, next: Next) -> Response {
    if let Some(expected) = &sc.config.api_token
        && !EXEMPT.contains(&request.uri().path())
    {
        let given = request.headers().get("dapr-api-token").and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return (StatusCode::UNAUTHORIZED, [(axum::http::header::CONTENT_TYPE, "text/plain")], "invalid api token")
                .into_response();
        }
        request.headers_mut().remove("dapr-api-token");
    }
    next.run(request).await
}

async fn metadata(State(sc): State<Arc<Sidecar>>) -> ApiResult {
    let components: Vec<Value> = sc
        .components
        .by_name
        .values()
        .map(|c| {
            json!({
                "name": c.manifest.name,
                "type": c.manifest.type_name,
                "version": c.manifest.version,
                "capabilities": c.component.capabilities(),
            })
        })
        .collect();
    let subscriptions: Vec<Value> = sc
        .subscription_specs()
        .iter()
        .map(|spec| {
            json!({
                "pubsubname": spec.pubsub,
                "topic": spec.topic,
                "metadata": spec.metadata,
                "rules": spec.rules.iter().map(|r| json!({"match": r.text, "path": r.path})).collect::<Vec<_>>(),
                "deadLetterTopic": spec.dead_letter_topic.clone().unwrap_or_default(),
                "type": spec.origin.as_str(),
            })
        })
        .collect();
    let mut extended = locked(&sc.extended).clone();
    extended.insert("daprRuntimeVersion".into(), RUNTIME_VERSION.into());
    let mut body = json!({
        "id": sc.config.app_id,
        "runtimeVersion": RUNTIME_VERSION,
        "components": components,
        "extended": extended,
        "subscriptions": subscriptions,
        "actorRuntime": actor_runtime(&sc.actors.status()),
    });
    if let Some(port) = sc.config.app_port {
        body["appConnectionProperties"] =
            json!({"port": port, "protocol": sc.config.app_protocol.as_str(), "channelAddress": "127.0.0.1"});
    }
    Ok(axum::Json(body).into_response())
}

async fn set_attribute(State(sc): State<Arc<Sidecar>>, Path(key): Path<String>, Body(body): Body) -> ApiResult {
    locked(&sc.extended).insert(key, String::from_utf8_lossy(&body).into_owned());
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn healthz(State(sc): State<Arc<Sidecar>>, Query(q): Query<Vec<(String, String)>>) -> ApiResult {
    if let Some(app_id) = query_value(&q, "appid").filter(|id| *id != sc.config.app_id) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_APPID_NOT_MATCH",
            format!("dapr app-id does not match: asked `{app_id}`"),
        ));
    }
    // Ready once the app is connected, when there is an app to wait for.
    if sc.config.app_port.is_some() && !sc.app_ready.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_NOT_READY",
            "dapr is not ready: [app channel]",
        ));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn outbound() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn shutdown(State(sc): State<Arc<Sidecar>>) -> StatusCode {
    sc.shutdown();
    StatusCode::NO_CONTENT
}

/// `actorRuntime` as daprd writes it.
fn actor_runtime(status: &crate::actors::ActorStatus) -> serde_json::Value {
    if !status.running {
        return json!({"runtimeStatus": "DISABLED"});
    }
    let active: Vec<_> = status.active.iter().map(|(t, n)| json!({"type": t, "count": n})).collect();
    json!({"runtimeStatus": "RUNNING", "activeActors": active, "hostReady": status.host_ready, "placement": ""})
}
