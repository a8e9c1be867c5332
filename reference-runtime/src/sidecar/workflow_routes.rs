//! The workflow HTTP facade (actors-workflows-jobs.md §2.2) on `/v1.0-alpha1`, `/v1.0-beta1`
//! and `/v1.0`: start, get, raiseEvent, terminate, pause, resume, purge, over the sidecar's
//! [`crate::workflows::Engine`], with daprd's codes and bodies. The component segment is not
//! checked, as daprd does not check it. A start answers once the instance is created (its first
//! turn waits for a worker), as daprd's HTTP start does.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use runtime_api::durabletask::{CreateInstanceRequest, OrchestrationStatus};
use serde_json::{Map, Value, json};

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use super::request::Body;
use crate::workflows::WorkflowError;

const VERSIONS: [&str; 3] = ["v1.0-alpha1", "v1.0-beta1", "v1.0"];

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    let mut router = Router::new();
    for v in VERSIONS {
        let base = format!("/{v}/workflows/{{component}}/{{id}}");
        router = router
            .route(&format!("{base}/start"), post(start))
            .route(&base, get(fetch))
            .route(&format!("{base}/raiseEvent/{{event}}"), post(raise))
            .route(&format!("{base}/terminate"), post(terminate))
            .route(&format!("{base}/pause"), post(pause))
            .route(&format!("{base}/resume"), post(resume))
            .route(&format!("{base}/purge"), post(purge));
    }
    router
}

fn bad_request(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// daprd's instance id rules: never empty; when creating, at most 64 bytes of ASCII letters,
/// digits, `-` and `_`.
fn valid_id(id: &str, creating: bool) -> ApiResult<()> {
    if id.is_empty() {
        return Err(bad_request("ERR_INSTANCE_ID_PROVIDED_MISSING", "no instance ID was provided".into()));
    }
    if creating && id.len() > 64 {
        let message = "workflow instance ID exceeds the max length of 64 characters".into();
        return Err(bad_request("ERR_INSTANCE_ID_TOO_LONG", message));
    }
    if creating && !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
        let message =
            format!("workflow instance ID '{id}' is invalid: only alphanumeric and underscore characters are allowed");
        return Err(bad_request("ERR_INSTANCE_ID_INVALID", message));
    }
    Ok(())
}

fn failed(code: &'static str, id: &str, what: &str, e: &WorkflowError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, format!("error {what} workflow '{id}': {e}"))
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ERR_INSTANCE_ID_NOT_FOUND",
        format!("unable to find workflow with the provided instance ID: {id}"),
    )
}

fn accepted(body: Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// The body as the input, kept as the string it is (JSON text, as SDKs send it).
fn input(body: &[u8]) -> Option<String> {
    (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned())
}

async fn start(
    State(sc): State<Arc<Sidecar>>,
    Path((_, name)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    Body(body): Body,
) -> ApiResult {
    let given = query.iter().find(|(k, _)| k == "instanceID").map(|(_, v)| v.clone());
    let id = given.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    valid_id(&id, true)?;
    if name.is_empty() {
        return Err(bad_request("ERR_WORKFLOW_NAME_MISSING", "workflow name is not configured".into()));
    }
    let request = CreateInstanceRequest {
        instance_id: id.clone(),
        name: name.clone(),
        input: input(&body),
        ..Default::default()
    };
    let id = sc.workflows.start(request).await.map_err(|e| {
        let message = format!("error starting workflow '{name}': unable to start workflow: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_START_WORKFLOW", message)
    })?;
    Ok(accepted(json!({ "instanceID": id })))
}

/// daprd's status names; STALLED prints as UNKNOWN.
fn status_name(status: i32) -> &'static str {
    match OrchestrationStatus::try_from(status) {
        Ok(OrchestrationStatus::Stalled) | Err(_) => "UNKNOWN",
        Ok(s) => s.as_str_name().trim_start_matches("ORCHESTRATION_STATUS_"),
    }
}

fn rfc3339(t: Option<prost_types::Timestamp>) -> Value {
    t.and_then(|t| std::time::SystemTime::try_from(t).ok())
        .map(|t| Value::from(humantime::format_rfc3339_nanos(t).to_string()))
        .unwrap_or(Value::Null)
}

async fn fetch(State(sc): State<Arc<Sidecar>>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    valid_id(&id, false)?;
    let state = sc.workflows.get(&id, true).ok_or_else(|| not_found(&id))?;
    let mut properties = Map::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            properties.insert(key.into(), Value::from(v));
        }
    };
    put("dapr.workflow.custom_status", state.custom_status);
    put("dapr.workflow.input", state.input);
    let failure = state.failure_details;
    if failure.is_none() {
        put("dapr.workflow.output", state.output);
    }
    if let Some(f) = failure {
        put("dapr.workflow.failure.error_type", Some(f.error_type));
        put("dapr.workflow.failure.error_message", Some(f.error_message));
        put("dapr.workflow.failure.stack_trace", f.stack_trace);
    }
    let mut body = json!({
        "instanceID": id,
        "workflowName": state.name,
        "createdAt": rfc3339(state.created_timestamp),
        "lastUpdatedAt": rfc3339(state.last_updated_timestamp),
        "runtimeStatus": status_name(state.workflow_status),
    });
    // protojson leaves an empty map out.
    if !properties.is_empty() {
        body["properties"] = Value::Object(properties);
    }
    Ok(axum::Json(body).into_response())
}

async fn raise(
    State(sc): State<Arc<Sidecar>>,
    Path((_, id, event)): Path<(String, String, String)>,
    Body(body): Body,
) -> ApiResult {
    valid_id(&id, false)?;
    if event.is_empty() {
        return Err(bad_request("ERR_WORKFLOW_EVENT_NAME_MISSING", "missing workflow event name".into()));
    }
    let done = sc.workflows.raise(&id, &event, input(&body)).await;
    done.map_err(|e| failed("ERR_RAISE_EVENT_WORKFLOW", &id, "raising event on", &e))?;
    Ok(accepted(json!({})))
}

async fn terminate(State(sc): State<Arc<Sidecar>>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    valid_id(&id, false)?;
    let done = sc.workflows.terminate(&id, None, true).await;
    done.map_err(|e| failed("ERR_TERMINATE_WORKFLOW", &id, "terminating", &e))?;
    Ok(accepted(json!({})))
}

async fn pause(State(sc): State<Arc<Sidecar>>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    valid_id(&id, false)?;
    let done = sc.workflows.suspend(&id, None).await;
    done.map_err(|e| failed("ERR_PAUSE_WORKFLOW", &id, "pausing", &e))?;
    Ok(accepted(json!({})))
}

async fn resume(State(sc): State<Arc<Sidecar>>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    valid_id(&id, false)?;
    let done = sc.workflows.resume(&id, None).await;
    done.map_err(|e| failed("ERR_RESUME_WORKFLOW", &id, "resuming", &e))?;
    Ok(accepted(json!({})))
}

async fn purge(State(sc): State<Arc<Sidecar>>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    valid_id(&id, false)?;
    match sc.workflows.purge(&id, true).await {
        Ok(_) => Ok(accepted(json!({}))),
        Err(WorkflowError::NotFound(_)) => Err(not_found(&id)),
        Err(e) => Err(failed("ERR_PURGE_WORKFLOW", &id, "purging", &e)),
    }
}
