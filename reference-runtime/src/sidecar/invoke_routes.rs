//! Service invocation to the local app: `/v1.0/invoke/{app-id}/method/{method}` and the
//! `dapr-app-id` header on any other path (dapr-http-api.md §7).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::Sidecar;
use super::api_error::{ApiError, ApiResult};
use super::request::Body;

pub(super) fn routes() -> Router<Arc<Sidecar>> {
    Router::new().route("/v1.0/invoke/{app_id}/method/{*method}", any(invoke))
}

/// Headers that belong to one hop and are never forwarded.
pub(crate) const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
    "host",
];
/// Headers the sidecar consumes or sets itself.
const SIDECAR_HEADERS: &[&str] = &[
    "dapr-app-id",
    "dapr-api-token",
    "destination-app-id",
    "dapr-caller-app-id",
    "dapr-callee-app-id",
    "dapr-caller-namespace",
];

fn invoke_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, "ERR_DIRECT_INVOKE", message)
}

/// `path.Clean` of the method: no empty, `.` or `..` segments, a leading `/`.
pub(crate) fn clean(method: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in method.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// daprd's `NormalizeMethod`, at the edge of every invocation: no `#`, `?`, NUL or control
/// character, then [`clean`]ed, keeping a rootless method rootless (the form a gRPC app sees).
pub(crate) fn normalize_method(method: &str) -> Result<String, String> {
    if let Some((at, c)) = method.char_indices().find(|(_, c)| matches!(c, '#' | '?') || c.is_ascii_control()) {
        return Err(format!("method contains forbidden character {c:?} at position {at}: {method:?}"));
    }
    let cleaned = clean(method);
    Ok(if method.starts_with('/') { cleaned } else { cleaned.trim_start_matches('/').to_owned() })
}

fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let named_in_connection: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            !HOP_BY_HOP.contains(&n) && !SIDECAR_HEADERS.contains(&n) && !named_in_connection.iter().any(|c| c == n)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

async fn forward(
    sc: &Sidecar,
    target: &str,
    method: Method,
    path: &str,
    query: Option<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let target_app = target.split('.').next().unwrap_or(target);
    if target_app != sc.config.app_id {
        return Err(invoke_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "failed to invoke, id: {target}, err: the reference runtime only reaches its own app `{}`",
                sc.config.app_id
            ),
        ));
    }
    if let Some(app) = sc.grpc_app() {
        let mut headers = headers;
        for (name, value) in [("dapr-caller-app-id", sc.config.app_id.as_str()), ("dapr-callee-app-id", target_app)] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        return Ok(invoke_grpc_app(app, &headers, method, path, query, body).await);
    }
    let Some(app) = sc.app() else {
        return Err(invoke_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to invoke, id: {target}, err: no app port was given (--app-port)"),
        ));
    };
    let mut headers = forwardable(&headers);
    for (name, value) in [("dapr-caller-app-id", sc.config.app_id.as_str()), ("dapr-callee-app-id", target_app)] {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let path_and_query = match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{}?{q}", clean(path)),
        None => clean(path),
    };
    let response = app.call(method, &path_and_query, headers, body).await.map_err(|e| {
        invoke_error(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to invoke, id: {target}, err: {e}"))
    })?;
    let headers: HeaderMap = forwardable(&response.headers);
    Ok((response.status, headers, response.body).into_response())
}

/// An HTTP caller's call to a gRPC app's `OnInvoke`: the verb and query in `http_extension`, the
/// headers as metadata; the answer's status is the HTTP status the app's gRPC code stands for.
async fn invoke_grpc_app(
    app: &crate::grpc::app_callback::GrpcApp,
    headers: &HeaderMap,
    method: Method,
    path: &str,
    query: Option<String>,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut forwarded = forwardable(headers);
    forwarded.remove(axum::http::header::CONTENT_TYPE);
    // Added after the caller's own were filtered out, so a forged one never passes.
    for name in ["dapr-caller-app-id", "dapr-callee-app-id"] {
        if let Some(v) = headers.get(name) {
            forwarded.insert(HeaderName::from_static(name), v.clone());
        }
    }
    let metadata = tonic::metadata::MetadataMap::from_headers(forwarded);
    let reply =
        app.invoke(method.as_str(), &clean(path), query.as_deref(), content_type, metadata, body.to_vec()).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut answer = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&reply.content_type)
        && !reply.content_type.is_empty()
    {
        answer.insert(axum::http::header::CONTENT_TYPE, v);
    }
    (status, answer, reply.body).into_response()
}

async fn invoke(
    State(sc): State<Arc<Sidecar>>,
    Path((app_id, method_path)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    forward(&sc, &app_id, method, &method_path, query, headers, body).await
}

/// Any path no route matched: invocation when `dapr-app-id` names an app, else 404.
pub(super) async fn fallback(
    State(sc): State<Arc<Sidecar>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Body, ApiError>,
) -> Response {
    let Some(app_id) = headers.get("dapr-app-id").and_then(|v| v.to_str().ok()).map(str::to_owned) else {
        return invoke_error(
            StatusCode::NOT_FOUND,
            "failed getting app id either from the URL path or the header dapr-app-id",
        )
        .into_response();
    };
    let body = match body {
        Ok(Body(b)) => b,
        Err(e) => return e.into_response(),
    };
    let query = uri.query().map(str::to_owned);
    forward(&sc, &app_id, method, uri.path(), query, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::{clean, normalize_method};

    #[test]
    fn methods_are_normalized_as_daprd_does() {
        assert_eq!(normalize_method("a//b/./c/../d"), Ok("a/b/d".to_owned()));
        assert_eq!(normalize_method("/a/../../b"), Ok("/b".to_owned()));
        assert_eq!(normalize_method("../.."), Ok(String::new()));
        for bad in ["a#b", "a?b", "a\0b", "a\u{7f}"] {
            assert!(normalize_method(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn method_paths_are_cleaned() {
        assert_eq!(clean("api/v1/add"), "/api/v1/add");
        assert_eq!(clean("a//b/./c/../d"), "/a/b/d");
        assert_eq!(clean("../../etc"), "/etc");
    }
}
