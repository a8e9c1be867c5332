//! Job triggers: `POST /job/{name}`, into the app's [`JobInbox`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use suites::jobs::JobInbox;

use super::App;

impl App {
    /// Where job triggers arrive (created on first use).
    pub fn job_inbox(&self) -> Arc<JobInbox> {
        self.part::<JobInbox>()
    }
}

/// The jobs route.
pub(super) fn routes() -> Router<App> {
    Router::new().route("/job/{name}", post(trigger))
}

/// One trigger: recorded, answered 200 (500 for a job the case fails on purpose).
async fn trigger(State(app): State<App>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let traceparent = headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned);
    match app.job_inbox().deliver(&name, body.to_vec(), traceparent) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
