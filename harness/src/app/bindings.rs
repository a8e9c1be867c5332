//! Input binding events: `OPTIONS /{binding}` (does the app want them) and `POST /{binding}`
//! (one event), into the binding's inbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use contract::bindings::BindingEvent;
use suites::bindings::BindingInbox;

use super::{App, header_metadata};

/// The bindings part of the app: inboxes by binding name (their route).
#[derive(Default)]
pub(crate) struct BindingRoutes {
    inboxes: Mutex<HashMap<String, Arc<BindingInbox>>>,
}

impl App {
    /// Takes the input events of binding `name` (posted to `/{name}`, the binding's default
    /// route) into the returned inbox.
    pub fn add_binding(&self, name: &str) -> Arc<BindingInbox> {
        let routes = self.part::<BindingRoutes>();
        let mut inboxes = routes.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(inboxes.entry(name.to_owned()).or_default())
    }

    /// The bindings the app takes events of.
    pub(crate) fn binding_names(&self) -> Vec<String> {
        let routes = self.part::<BindingRoutes>();
        let inboxes = routes.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
        inboxes.keys().cloned().collect()
    }

    pub(crate) fn binding(&self, name: &str) -> Option<Arc<BindingInbox>> {
        let routes = self.part::<BindingRoutes>();
        let inboxes = routes.inboxes.lock().unwrap_or_else(PoisonError::into_inner);
        inboxes.get(name).cloned()
    }
}

/// The bindings routes.
pub(super) fn routes() -> Router<App> {
    Router::new().route("/{binding}", post(binding_event).options(binding_wanted))
}

/// `OPTIONS /{binding}`: a sidecar asks whether the app wants a binding's events.
async fn binding_wanted(State(app): State<App>, Path(name): Path<String>) -> StatusCode {
    match app.binding(&name) {
        Some(_) => StatusCode::OK,
        None => StatusCode::NOT_FOUND,
    }
}

/// `POST /{binding}`: one input event.
async fn binding_event(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(inbox) = app.binding(&name) else { return StatusCode::NOT_FOUND };
    match inbox.deliver(BindingEvent { data: body.to_vec(), metadata: header_metadata(&headers) }) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
