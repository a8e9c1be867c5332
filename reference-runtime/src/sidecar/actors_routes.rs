//! The actors API over HTTP (`/v1.0/actors/{type}/{id}/…`, actors-workflows-jobs.md §1.2):
//! method calls, state, reminders and timers over the runtime's [`Engine`]; and the HTTP app
//! as the actors' host ([`HttpHost`]: `GET /dapr/config`, `PUT /actors/{type}/{id}/method/…`,
//! `DELETE /actors/{type}/{id}`).

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};
use contract::Actors;
use contract::actors::{ActorId, Reminder, StateOp, Timer};
use contract::jobs::FailurePolicy;
use serde_json::{Value, json};

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use super::jobs_routes::text;
use crate::actors::{ActorApp, Callback, Reply};

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    let base = "/v1.0/actors/{actor_type}/{id}";
    Router::new()
        .route(&format!("{base}/method/{{*method}}"), any(invoke))
        .route(&format!("{base}/state"), post(transact).put(transact))
        .route(&format!("{base}/state/{{key}}"), get(get_state))
        .route(
            &format!("{base}/reminders/{{name}}"),
            post(set_reminder).put(set_reminder).get(get_reminder).delete(delete_reminder),
        )
        .route(&format!("{base}/timers/{{name}}"), post(set_timer).put(set_timer).delete(delete_timer))
}

/// A contract error as daprd's answer.
fn api_error(e: contract::Error) -> ApiError {
    match e {
        contract::Error::Coded { status, code, message } => {
            ApiError::new(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), code, message)
        }
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_ACTOR_INVOKE_METHOD", other.to_string()),
    }
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))
}

async fn invoke(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id, method)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    if method.contains(['#', '?', '\0']) || method.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_BAD_REQUEST",
            format!("invalid method name {method:?}"),
        ));
    }
    sc.app_listening().await;
    let forwarded = headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length" | "connection" | "dapr-api-token"))
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let actor = ActorId::new(actor_type, id);
    let reply = sc.actors.invoke_method(&actor, &method, body.to_vec(), forwarded).await.map_err(api_error)?;
    let mut response = (StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK), reply.body).into_response();
    for (k, v) in &reply.headers {
        if matches!(k.as_str(), "content-length" | "transfer-encoding" | "connection" | "date") {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}

async fn get_state(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id, key)): Path<(String, String, String)>,
) -> ApiResult {
    sc.app_listening().await;
    match sc.actors.state(&ActorId::new(actor_type, id), &key).await.map_err(api_error)? {
        Some(bytes) => Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// The transaction body: `[{"operation": "upsert"|"delete", "request": {"key", "value"}}]`.
fn state_ops(body: &[u8]) -> Result<Vec<StateOp>, ApiError> {
    let ops: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("the body is not JSON: {e}")))?;
    let Some(ops) = ops.as_array() else {
        return Err(ApiError::malformed("the body must be a JSON array of operations"));
    };
    let save_error =
        |m: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_ACTOR_STATE_TRANSACTION_SAVE", m);
    ops.iter()
        .map(|op| {
            let request = op.get("request").ok_or_else(|| save_error("an operation has no `request`".into()))?;
            let key = request
                .get("key")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .ok_or_else(|| save_error("an operation has no `key`".into()))?
                .to_owned();
            match op.get("operation").and_then(Value::as_str) {
                Some("upsert") => {
                    Ok(StateOp::Upsert { key, value: request.get("value").cloned().unwrap_or(Value::Null) })
                }
                Some("delete") => Ok(StateOp::Delete { key }),
                other => Err(save_error(format!("unknown operation {other:?}: `upsert` or `delete`"))),
            }
        })
        .collect()
}

async fn transact(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    sc.app_listening().await;
    let ops = state_ops(&body)?;
    sc.actors.transact(&ActorId::new(actor_type, id), ops).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The reminder's `failure_policy`, read as the Jobs API reads one.
fn failure_policy(body: &Value) -> Result<Option<FailurePolicy>, ApiError> {
    Ok(super::jobs_routes::failure_policy(body)?.as_ref().and_then(crate::jobs::policy_from))
}

async fn set_reminder(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let doc = json_body(&body)?;
    let overwrite = match doc.get("overwrite") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => return Err(ApiError::malformed(format!("`overwrite` must be true or false, not {other}"))),
    };
    let reminder = Reminder {
        name,
        due_time: text(&doc, "dueTime", "due_time")?,
        period: text(&doc, "period", "period")?,
        ttl: text(&doc, "ttl", "ttl")?,
        data: doc.get("data").cloned(),
        overwrite,
        failure_policy: failure_policy(&doc)?,
    };
    sc.app_listening().await;
    sc.actors.set_reminder(&ActorId::new(actor_type, id), reminder).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_reminder(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
) -> ApiResult {
    sc.app_listening().await;
    let actor = ActorId::new(actor_type, id);
    let Some(reminder) = sc.actors.reminder(&actor, &name).await.map_err(api_error)? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_ACTOR_REMINDER_NOT_FOUND",
            format!("actor reminder not found: {name}"),
        ));
    };
    let mut body = json!({"actorID": actor.id, "actorType": actor.actor_type});
    for (field, value) in [("dueTime", reminder.due_time), ("period", reminder.period), ("ttl", reminder.ttl)] {
        if let Some(value) = value {
            body[field] = Value::String(value);
        }
    }
    if let Some(data) = reminder.data {
        body["data"] = data;
    }
    Ok(axum::Json(body).into_response())
}

async fn delete_reminder(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
) -> ApiResult {
    sc.app_listening().await;
    sc.actors.delete_reminder(&ActorId::new(actor_type, id), &name).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn set_timer(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let doc = json_body(&body)?;
    let timer = Timer {
        name,
        due_time: text(&doc, "dueTime", "due_time")?,
        period: text(&doc, "period", "period")?,
        ttl: text(&doc, "ttl", "ttl")?,
        data: doc.get("data").cloned(),
        callback: text(&doc, "callback", "callback")?,
    };
    sc.app_listening().await;
    sc.actors.set_timer(&ActorId::new(actor_type, id), timer).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_timer(
    State(sc): State<Arc<Sidecar>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
) -> ApiResult {
    sc.actors.delete_timer(&ActorId::new(actor_type, id), &name).await.map_err(api_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The HTTP app, hosting actors.
pub(crate) struct HttpHost(pub(crate) super::AppChannel);

#[async_trait]
impl ActorApp for HttpHost {
    async fn config(&self) -> Result<Value, String> {
        let reply = self.0.call(Method::GET, "/dapr/config", HeaderMap::new(), Bytes::new()).await?;
        if reply.status != StatusCode::OK {
            return Err(format!("/dapr/config answered {}", reply.status));
        }
        serde_json::from_slice(&reply.body).map_err(|e| format!("/dapr/config is not JSON: {e}"))
    }

    async fn call(
        &self,
        actor: &ActorId,
        callback: Callback<'_>,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Reply, String> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
                map.append(name, value);
            }
        }
        let reply = self.0.call(Method::PUT, &callback.path(actor), map, Bytes::from(body)).await?;
        let headers = reply
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        Ok(Reply { status: reply.status.as_u16(), headers, body: reply.body.to_vec() })
    }

    async fn deactivate(&self, actor: &ActorId) -> Result<(), String> {
        let path = format!("/actors/{}/{}", crate::actors::enc(&actor.actor_type), crate::actors::enc(&actor.id));
        let reply = self.0.call(Method::DELETE, &path, HeaderMap::new(), Bytes::new()).await?;
        match reply.status.is_success() {
            true => Ok(()),
            false => Err(format!("DELETE {path} answered {}", reply.status)),
        }
    }
}
