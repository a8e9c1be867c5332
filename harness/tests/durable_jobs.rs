//! Jobs kept in a real actor state store survive a restart of the runtime (J6): scheduled on
//! one reference runtime over Redis, fired by the next one over the same Redis.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use reference_runtime::sidecar::{Sidecar, SidecarConfig};

/// An app that records the job triggers it gets.
async fn app() -> (u16, Arc<Mutex<Vec<(String, Bytes)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    let router = axum::Router::new().route(
        "/job/{name}",
        axum::routing::post(move |axum::extract::Path(name): axum::extract::Path<String>, body: Bytes| {
            kept.lock().expect("lock").push((name, body));
            async { "" }
        }),
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_kept_in_redis_survive_a_restart_of_the_runtime() {
    let options = fixtures::Options {
        ready_timeout: Duration::from_secs(30),
        run_id: "durable-jobs".into(),
        settings: Default::default(),
    };
    let redis = match fixtures::provision(fixtures::BackendKind::Redis, fixtures::Provider::Process, &options).await {
        Ok(r) => r,
        Err(e) if std::env::var("CERTIFY_REQUIRE_BACKENDS").is_err() => {
            fixtures::skip_test(&e.to_string());
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let host = redis.endpoint.host.clone();
    let (app_port, seen) = app().await;
    let (base, first, server) = runtime(&host, app_port).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/v1.0-alpha1/jobs/kept"))
        .json(&serde_json::json!({"dueTime": "2s", "data": {"survives": true}}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(r.status(), 204);
    first.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(seen.lock().expect("lock").is_empty(), "fired before its time");
    let (_base, _second, _server) = runtime(&host, app_port).await;
    let until = Instant::now() + Duration::from_secs(10);
    while seen.lock().expect("lock").is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "the job kept in Redis fired once after the restart: {seen:?}");
    assert_eq!(seen[0].0, "kept");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&seen[0].1).ok(),
        Some(serde_json::json!({"survives": true}))
    );
}
