//! Proxy-mode service invocation (dapr-grpc-api.md §3.1): a call to any service the runtime
//! does not serve, carrying `dapr-callee-app-id` or `dapr-app-id`, goes to the app's own gRPC
//! server with the method name unchanged; the frames pass through as they are, both ways, so
//! unary and streaming calls alike work. The caller's `dapr-api-token` is checked and removed;
//! the app's token, if any, is sent instead.

use std::sync::Arc;

use axum::body::Body;
use tonic::Status;
use tonic::codegen::http;
use tower::ServiceExt;

use crate::sidecar::Sidecar;

/// `routes` with the proxy as the fallback for every service they do not name.
pub(super) fn with_proxy(routes: tonic::service::Routes, sc: &Arc<Sidecar>) -> tonic::service::Routes {
    let sc = Arc::clone(sc);
    let router = routes.into_axum_router().fallback(move |request: http::Request<Body>| {
        let sc = Arc::clone(&sc);
        async move { forward(&sc, request).await }
    });
    tonic::service::Routes::from(router)
}

/// The app the call names, from `dapr-callee-app-id` first, then `dapr-app-id` (daprd's order).
fn target(headers: &http::HeaderMap) -> Option<String> {
    ["dapr-callee-app-id", "dapr-app-id"]
        .into_iter()
        .find_map(|key| headers.get(key).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

async fn forward(sc: &Sidecar, request: http::Request<Body>) -> http::Response<tonic::body::Body> {
    match proxied(sc, request).await {
        Ok(response) => response,
        Err(status) => status.into_http(),
    }
}

async fn proxied(sc: &Sidecar, request: http::Request<Body>) -> Result<http::Response<tonic::body::Body>, Status> {
    let (mut parts, body) = request.into_parts();
    let mut metadata = tonic::metadata::MetadataMap::from_headers(std::mem::take(&mut parts.headers));
    super::check_token(sc.config.api_token.as_deref(), &mut metadata)?;
    let mut headers = metadata.into_headers();
    let Some(app_id) = target(&headers) else {
        // What daprd's proxy answers: a plain error, so `Unknown`.
        return Err(Status::unknown(
            "failed to proxy request: required metadata dapr-callee-app-id or dapr-app-id not found",
        ));
    };
    if app_id != sc.config.app_id {
        return Err(Status::unknown(format!(
            "failed to proxy request: the reference runtime only reaches its own app `{}`, not `{app_id}`",
            sc.config.app_id
        )));
    }
    let Some(app) = sc.grpc_app() else {
        return Err(Status::unavailable(format!(
            "failed to proxy request to `{app_id}`: its app does not speak gRPC (start the runtime with --app-protocol grpc)"
        )));
    };
    headers.remove("dapr-app-id");
    if let Some(token) = app.token().and_then(|t| http::HeaderValue::from_str(t).ok()) {
        headers.insert("dapr-api-token", token);
    }
    parts.headers = headers;
    let request = http::Request::from_parts(parts, tonic::body::Body::new(body));
    let channel = app.channel().clone();
    let response = channel.oneshot(request).await.map_err(|e| {
        Status::unavailable(format!("failed to proxy request to `{app_id}`: the app cannot be reached: {e}"))
    })?;
    Ok(response)
}
