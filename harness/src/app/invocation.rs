//! Service invocation's echo: every call under `/certify-echo/…` answers with what arrived.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use suites::invocation::{ECHO_MODE, ECHO_PREFIX, ECHO_REPLY, ECHO_REPLY_WITH, ECHO_STATUS, Echoed};

use super::App;

/// The echo route.
pub(super) fn routes() -> Router<App> {
    Router::new().route(&format!("{ECHO_PREFIX}/{{*method}}"), any(echo))
}

/// Any call under the echo route: answers with what arrived (or the body itself), with the
/// status and reply header the call asks for.
async fn echo(method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let status = headers
        .get(ECHO_STATUS)
        .and_then(|v| v.to_str().ok()?.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut reply = HeaderMap::new();
    if let Some(v) = headers.get(ECHO_REPLY_WITH) {
        reply.insert(ECHO_REPLY, v.clone());
    }
    if headers.get(ECHO_MODE).is_some_and(|m| m == "body") {
        return (status, reply, body).into_response();
    }
    let mut seen: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for (k, v) in &headers {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        seen.entry(k.as_str().to_owned()).and_modify(|all| *all = format!("{all}, {v}")).or_insert(v);
    }
    let echoed = Echoed {
        verb: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: seen,
        body_len: body.len(),
    };
    (status, reply, axum::Json(echoed)).into_response()
}
