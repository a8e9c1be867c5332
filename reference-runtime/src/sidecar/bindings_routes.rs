//! Output bindings: `POST|PUT /v1.0/bindings/{name}` (dapr-http-api.md §3.1).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use contract::bindings::InvokeRequest;
use contract::{Block, Component, Metadata};
use serde_json::Value;

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use super::request::{Body, json};

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    Router::new().route("/v1.0/bindings/{name}", post(invoke).put(invoke))
}

fn failed(name: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_INVOKE_OUTPUT_BINDING",
        format!("error invoking output binding {name}: {message}"),
    )
}

async fn invoke(
    State(sc): State<Arc<Sidecar>>,
    Path(name): Path<String>,
    request_headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    let request: Value = json(&body)?;
    let Value::Object(o) = request else {
        return Err(ApiError::malformed(
            "failed deserializing HTTP body: expected an object with `operation`, `data` and `metadata`",
        ));
    };
    let operation = o.get("operation").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut metadata = Metadata::new();
    if let Some(Value::Object(m)) = o.get("metadata") {
        for (k, v) in m {
            metadata.insert(k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
        }
    }
    // O7: the call's trace context reaches the binding in its metadata; the caller's own
    // `traceparent` there wins.
    if let Some(traceparent) = request_headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        metadata.entry("traceparent".into()).or_insert_with(|| traceparent.to_owned());
    }
    // `data` reaches the binding re-marshalled: a JSON string keeps its quotes.
    let data = match o.get("data") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::to_vec(v).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ERR_MALFORMED_REQUEST_DATA", e.to_string())
        })?,
    };
    let output = match sc.components.get(&name, Block::BINDINGS).and_then(Component::as_output_binding) {
        Some(output) => Arc::clone(output),
        _ => return Err(failed(&name, format!("couldn't find output binding {name}"))),
    };
    let supported = output.operations();
    if !supported.iter().any(|op| op.eq_ignore_ascii_case(&operation)) {
        return Err(failed(
            &name,
            format!(
                "binding {name} does not support operation {operation}. supported operations:{}",
                supported.join(" ")
            ),
        ));
    }
    let response = output.invoke(InvokeRequest { operation, data, metadata }).await.map_err(|e| failed(&name, e))?;
    let mut headers = HeaderMap::new();
    for (k, v) in &response.metadata {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(format!("metadata.{k}").as_bytes()), HeaderValue::from_str(v)) {
            headers.insert(n, v);
        }
    }
    Ok(match response.data {
        None => (StatusCode::NO_CONTENT, headers).into_response(),
        Some(data) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            (StatusCode::OK, headers, data).into_response()
        }
    })
}
