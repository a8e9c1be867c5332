//! A sidecar on a loopback port and a small axum app that records what the sidecar sends it
//! and answers from per-path scripts.

#![allow(dead_code, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use contract::{Resources, SystemClock};
use reference_runtime::sidecar::{Sidecar, SidecarConfig, subscriptions};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
pub struct AppState {
    pub seen: Mutex<Vec<Recorded>>,
    /// Scripted answers per path, used in order; the last one repeats.
    pub scripts: Mutex<HashMap<String, VecDeque<(u16, String)>>>,
    pub subscriptions: Mutex<String>,
    /// Makes every answer wait, to test graceful shutdown.
    pub delay: Mutex<Duration>,
}

pub struct TestApp {
    pub port: u16,
    pub state: Arc<AppState>,
}

impl TestApp {
    pub async fn start(subscriptions: serde_json::Value) -> TestApp {
        let state = Arc::new(AppState::default());
        *state.subscriptions.lock().expect("lock") = subscriptions.to_string();
        let s = Arc::clone(&state);
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = Arc::clone(&s);
            async move {
                if uri.path() == "/dapr/subscribe" {
                    let subs = s.subscriptions.lock().expect("lock").clone();
                    return (StatusCode::OK, [("content-type", "application/json")], subs).into_response();
                }
                let delay = *s.delay.lock().expect("lock");
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let answer = {
                    let mut scripts = s.scripts.lock().expect("lock");
                    scripts
                        .get_mut(uri.path())
                        .map(|q| if q.len() > 1 { q.pop_front().expect("answer") } else { q[0].clone() })
                };
                s.seen.lock().expect("lock").push(Recorded {
                    method: method.clone(),
                    path: uri.path().to_owned(),
                    query: uri.query().map(str::to_owned),
                    headers: headers.clone(),
                    body,
                });
                let (status, body) = answer.unwrap_or((200, "{}".to_owned()));
                let status = StatusCode::from_u16(status).expect("status");
                (status, [("content-type", "application/json"), ("x-app-header", "from-app")], body).into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind app");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await.expect("app serves") });
        TestApp { port, state }
    }

    pub fn script(&self, path: &str, answers: &[(u16, &str)]) {
        self.state
            .scripts
            .lock()
            .expect("lock")
            .insert(path.to_owned(), answers.iter().map(|(s, b)| (*s, (*b).to_owned())).collect());
    }

    pub fn seen(&self, path: &str) -> Vec<Recorded> {
        self.state.seen.lock().expect("lock").iter().filter(|r| r.path == path).cloned().collect()
    }

    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Recorded> {
        super::eventually(Duration::from_secs(10), || self.seen(path).len() >= n).await;
        self.seen(path)
    }
}

pub struct Env {
    pub base: String,
    /// The gRPC API's base URL.
    pub grpc: String,
    pub app: Option<TestApp>,
    pub sidecar: Arc<Sidecar>,
    pub http: reqwest::Client,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub const RESOURCES: &str = r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: statestore}
spec: {type: state.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec:
  type: pubsub.in-memory
  version: v1
  metadata:
  - {name: redeliveryBackoff, value: 10ms}
  - {name: maxDeliveryAttempts, value: "3"}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: events}
spec: {type: bindings.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: configstore}
spec: {type: configuration.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: lockstore}
spec: {type: lock.in-memory, version: v1}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: secretstore}
spec:
  type: secretstores.local.env
  version: v1
  metadata:
  - {name: prefix, value: CARGO_PKG_}
"#;

pub async fn start(subscriptions_json: Option<serde_json::Value>, extra_yaml: &str, token: Option<&str>) -> Env {
    let app = match subscriptions_json {
        Some(subs) => Some(TestApp::start(subs).await),
        None => None,
    };
    let text = format!("{RESOURCES}{extra_yaml}");
    let resources = Resources::parse(Path::new("test-resources.yaml"), &text).expect("resources");
    let declarative = subscriptions::parse_declarative(&resources.others).expect("subscriptions");
    let components = reference_runtime::builtin_registry()
        .build_all(&resources.components, Arc::new(SystemClock))
        .await
        .expect("components");
    let config = SidecarConfig {
        app_id: "testapp".into(),
        app_port: app.as_ref().map(|a| a.port),
        api_token: token.map(str::to_owned),
        app_api_token: Some("app-secret".into()),
        app_protocol: reference_runtime::sidecar::AppProtocol::Http,
        max_body_size: 1 << 20,
        graceful_shutdown: Duration::from_secs(5),
        tracer: None,
    };
    let sidecar = Sidecar::new(config, components, declarative);
    let (base, grpc, server) = Arc::clone(&sidecar).serve_both_on_loopback().await.expect("serve sidecar");
    let http = reqwest::Client::new();
    // Ready once healthz answers 204 (after the app's subscriptions are in place).
    let mut ready = false;
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{base}/v1.0/healthz")).send().await
            && r.status() == 204
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "sidecar became healthy");
    Env { base, grpc, app, sidecar, http, server }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn app(&self) -> &TestApp {
        self.app.as_ref().expect("an app")
    }
}

/// A runtime of app `app_id` whose actor state store is `store` (so jobs, reminders and
/// workflows are kept there), delivering to the app on `app_port` if any: its HTTP and gRPC
/// base URLs, the sidecar and its serving task.
pub async fn runtime_over(
    store: Arc<reference_runtime::in_memory::state_memory::InMemoryStateStore>,
    app_id: &str,
    app_port: Option<u16>,
) -> (String, String, Arc<Sidecar>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let mut registry = reference_runtime::builtin_registry();
    registry.register("state.shared", move |_: contract::ComponentContext| {
        let store = Arc::clone(&store);
        async move { Ok(contract::Component::state(store)) }
    });
    let yaml = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: actors}\nspec:\n  type: state.shared\n  version: v1\n  metadata:\n  - {name: actorStateStore, value: \"true\"}\n";
    let resources = Resources::parse(Path::new("r.yaml"), yaml).expect("resources");
    let components = registry.build_all(&resources.components, Arc::new(SystemClock)).await.expect("built");
    let config = SidecarConfig { app_id: app_id.into(), app_port, ..Default::default() };
    let sidecar = Sidecar::new(config, components, Vec::new());
    let (http, grpc, server) = Arc::clone(&sidecar).serve_both_on_loopback().await.expect("serve");
    (http, grpc, sidecar, server)
}
