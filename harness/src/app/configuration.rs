//! Configuration updates: `POST /configuration/{store}/{key}` goes to the subscription's
//! channel by store and id.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use contract::configuration::{ConfigurationItem, ConfigurationUpdate};
use serde_json::Value;

use super::App;

/// Where configuration updates for one subscription id go; updates that arrive before the
/// subscriber has its id (the sidecar may send them first) wait here.
enum ConfigSink {
    Waiting(Vec<ConfigurationUpdate>),
    Open(tokio::sync::mpsc::UnboundedSender<ConfigurationUpdate>),
}

/// The configuration part of the app: sinks by store and subscription id (ids are only unique
/// within a store).
#[derive(Default)]
pub(crate) struct ConfigurationRoutes {
    sinks: Mutex<HashMap<(String, String), ConfigSink>>,
}

impl App {
    /// Delivers the configuration updates of subscription `id` to `updates`, starting with any
    /// that arrived before. Kept after an unsubscribe, so a sidecar that goes on sending is
    /// seen doing so.
    pub fn register_configuration(
        &self,
        store: &str,
        id: &str,
        updates: tokio::sync::mpsc::UnboundedSender<ConfigurationUpdate>,
    ) {
        let key = (store.to_owned(), id.to_owned());
        let routes = self.part::<ConfigurationRoutes>();
        let mut sinks = routes.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ConfigSink::Waiting(early)) = sinks.remove(&key) {
            for update in early {
                let _ = updates.send(update);
            }
        }
        sinks.insert(key, ConfigSink::Open(updates));
    }

    fn configuration_update(&self, store: String, update: ConfigurationUpdate) {
        let routes = self.part::<ConfigurationRoutes>();
        let mut sinks = routes.sinks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (store, update.id.clone());
        match sinks.entry(key).or_insert_with(|| ConfigSink::Waiting(Vec::new())) {
            ConfigSink::Open(tx) => {
                let _ = tx.send(update);
            }
            ConfigSink::Waiting(early) => early.push(update),
        }
    }
}

/// The configuration routes.
pub(super) fn routes() -> Router<App> {
    Router::new().route("/configuration/{store}/{key}", post(configuration_update))
}

/// Configuration items as the Dapr HTTP API writes them: `{key: {value, version, metadata}}`.
pub fn configuration_items(value: &Value) -> std::collections::BTreeMap<String, ConfigurationItem> {
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, item)| {
            let metadata = item
                .get("metadata")
                .and_then(Value::as_object)
                .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                .unwrap_or_default();
            (key.clone(), ConfigurationItem { value: text(item, "value"), version: text(item, "version"), metadata })
        })
        .collect()
}

/// `POST /configuration/{store}/{key}`: one configuration update from the sidecar.
async fn configuration_update(
    State(app): State<App>,
    Path((store, _key)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    let id = parsed.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let items = configuration_items(parsed.get("items").unwrap_or(&Value::Null));
    app.configuration_update(store, ConfigurationUpdate { id, items });
    StatusCode::OK
}
