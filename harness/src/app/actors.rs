//! The actors' host: `PUT /actors/{type}/{id}/method/…` (methods, `remind/{name}`,
//! `timer/{name}`) and `DELETE /actors/{type}/{id}`, into the app's [`ActorHost`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, put};
use contract::actors::{ActorId, REENTRANCY_HEADER};
use suites::actors::{ActorHost, Kind};
use suites::observability::TraceContext;

use super::App;

impl App {
    /// Where the actors live (created on first use).
    pub fn actor_host(&self) -> Arc<ActorHost> {
        self.part::<ActorHost>()
    }
}

/// The actor routes.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/actors/{actor_type}/{id}/method/{*rest}", put(callback))
        .route("/actors/{actor_type}/{id}", delete(deactivate))
}

async fn callback(
    State(app): State<App>,
    Path((actor_type, id, rest)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (kind, name) = match rest.split_once('/') {
        Some(("remind", name)) => (Kind::Reminder, name),
        Some(("timer", name)) => (Kind::Timer, name),
        _ => (Kind::Method, rest.as_str()),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (reentrancy, trace) = (header(REENTRANCY_HEADER), TraceContext::read(header));
    let actor = ActorId::new(actor_type, id);
    let reply = app.actor_host().callback(&actor, kind, name, body.to_vec(), reentrancy, trace).await;
    let mut response = (StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK), reply.body).into_response();
    for (k, v) in reply.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn deactivate(State(app): State<App>, Path((actor_type, id)): Path<(String, String)>) -> StatusCode {
    app.actor_host().deactivated(&ActorId::new(actor_type, id));
    StatusCode::OK
}
