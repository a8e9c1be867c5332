//! Tracing on (a daprd Configuration with `spec.tracing`): each API call is a span, the child
//! of the caller's context; the answer and the app's call carry the span's context (same trace
//! id, the sidecar's span id), and the spans reach an OTLP/HTTP collector.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use reference_runtime::otel::{Tracer, TracingConfig};
use reference_runtime::sidecar::{Sidecar, SidecarConfig};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// A collector that keeps every export's body.
async fn collector() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            kept.lock().expect("lock").push(body);
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

fn bytes_of(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_spans_children_of_the_caller_exported_over_otlp() {
    let (endpoint, exported) = collector().await;
    let tracer = Tracer::start(&TracingConfig { endpoint, sampling_rate: 1.0 }, "traced").expect("tracer");
    let config = SidecarConfig { app_id: "traced".into(), tracer: Some(tracer), ..SidecarConfig::default() };
    let sidecar = Sidecar::new(config, Default::default(), Vec::new());
    let (base, _, server) = Arc::clone(&sidecar).serve_both_on_loopback().await.expect("serve");
    let answer = reqwest::Client::new()
        .get(format!("{base}/v1.0/metadata"))
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .send()
        .await
        .expect("answer");
    let ours = answer.headers()["traceparent"].to_str().expect("ascii").to_owned();
    let parts: Vec<&str> = ours.split('-').collect();
    assert_eq!(parts[1], TRACE, "the trace id stays: {ours}");
    assert_ne!(parts[2], CALLER_SPAN, "the parent id is the sidecar's span: {ours}");
    assert_eq!(parts[3], "01", "sampled, as the caller asked");
    sidecar.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let bodies = exported.lock().expect("lock").clone();
    let all: Vec<u8> = bodies.iter().flat_map(|b| b.to_vec()).collect();
    let has = |hex: &str| all.windows(hex.len() / 2).any(|w| w == bytes_of(hex).as_slice());
    assert!(has(TRACE), "the collector got no span of trace {TRACE} ({} exports)", bodies.len());
    assert!(has(CALLER_SPAN), "the exported span's parent is not the caller's span");
    assert!(has(parts[2]), "the exported span is not the one the answer carries");
}
