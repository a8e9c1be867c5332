//! Jobs (J6) and actor reminders (A8) kept in a real actor state store survive a restart of the
//! runtime: scheduled on one reference runtime over Redis, fired by the next one over the same
//! Redis.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use reference_runtime::sidecar::{Sidecar, SidecarConfig};

/// An app that records the job triggers and reminder fires it gets; it hosts actors of type
/// `Durable`.
async fn app() -> (u16, Arc<Mutex<Vec<(String, Bytes)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (kept, reminded) = (Arc::clone(&seen), Arc::clone(&seen));
    let router = axum::Router::new()
        .route(
            "/job/{name}",
            axum::routing::post(move |axum::extract::Path(name): axum::extract::Path<String>, body: Bytes| {
                kept.lock().expect("lock").push((name, body));
                async { "" }
            }),
        )
        .route(
            "/dapr/config",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"entities": ["Durable"]})) }),
        )
        .route(
            "/actors/{actor_type}/{id}/method/remind/{name}",
            axum::routing::put(
                move |axum::extract::Path((_, _, name)): axum::extract::Path<(String, String, String)>, body: Bytes| {
                    reminded.lock().expect("lock").push((name, body));
                    async { "" }
                },
            ),
        )
        .route("/actors/{actor_type}/{id}", axum::routing::delete(|| async { "" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, seen)
}

/// A runtime whose actor state store is the Redis at `host`.
async fn runtime(host: &str, app_port: u16) -> (String, Arc<Sidecar>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{name: actors}}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - {{name: redisHost, value: \"{host}\"}}\n  - {{name: actorStateStore, value: \"true\"}}\n"
    );
    let resources = contract::Resources::parse(std::path::Path::new("actors.yaml"), &yaml).expect("resources");
    let components = reference_runtime::builtin_registry()
        .build_all(&resources.components, Arc::new(contract::SystemClock))
        .await
        .expect("components");
    let config = SidecarConfig { app_id: "durable".into(), app_port: Some(app_port), ..SidecarConfig::default() };
    let sidecar = Sidecar::new(config, components, Vec::new());
    let (base, _, server) = Arc::clone(&sidecar).serve_both_on_loopback().await.expect("serve");
    (base, sidecar, server)
}

/// A Redis of the test's own, or `None` (the test skips) when none can run here.
async fn redis(run_id: &str) -> Option<fixtures::Backend> {
    let options = fixtures::Options {
        ready_timeout: Duration::from_secs(30),
        run_id: run_id.into(),
        settings: Default::default(),
    };
    match fixtures::provision(fixtures::BackendKind::Redis, fixtures::Provider::Process, &options).await {
        Ok(r) => Some(r),
        Err(e) if std::env::var("CERTIFY_REQUIRE_BACKENDS").is_err() => {
            fixtures::skip_test(&e.to_string());
            None
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_kept_in_redis_survive_a_restart_of_the_runtime() {
    kept_across_a_restart("durable-jobs", "/v1.0-alpha1/jobs/kept").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_kept_in_redis_survive_a_restart_of_the_runtime() {
    kept_across_a_restart("durable-reminders", "/v1.0/actors/Durable/one/reminders/kept").await;
}

/// Schedules, at `path` of one runtime, something due in 2 s named `kept` (a job or a
/// reminder); restarts the runtime over the same Redis; it must fire once, with its data.
async fn kept_across_a_restart(run_id: &str, path: &str) {
    let Some(redis) = redis(run_id).await else { return };
    let host = redis.endpoint.host.clone();
    let (app_port, seen) = app().await;
    let (base, first, server) = runtime(&host, app_port).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}{path}"))
        .json(&serde_json::json!({"dueTime": "2s", "data": {"survives": true}}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap_or_default());
    first.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(seen.lock().expect("lock").is_empty(), "fired before its time");
    let (_base, _second, _server) = runtime(&host, app_port).await;
    let until = Instant::now() + Duration::from_secs(10);
    while seen.lock().expect("lock").is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "what was kept in Redis fired once after the restart: {seen:?}");
    assert_eq!(seen[0].0, "kept");
    // A job's trigger is its data; a reminder's fire carries it under `data`.
    let body = serde_json::from_slice::<serde_json::Value>(&seen[0].1).expect("JSON");
    let data = body.get("data").cloned().unwrap_or(body);
    assert_eq!(data, serde_json::json!({"survives": true}));
}
