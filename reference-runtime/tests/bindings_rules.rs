//! Bindings against the B-rules of conformance-rules.md and the holes upstream leaves:
//! byte-exact round trips, the created payload arriving as the input event, delete checked.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::bindings::{BindingEvent, BindingHandler, InvokeRequest};
use contract::{Error, InputBinding, ManualClock, OutputBinding};

async fn binding(
    type_name: &str,
    metadata: &[(&str, &str)],
) -> (Option<Arc<dyn InputBinding>>, Arc<dyn OutputBinding>) {
    binding_on(type_name, metadata, &ManualClock::new()).await
}

async fn binding_on(
    type_name: &str,
    metadata: &[(&str, &str)],
    clock: &ManualClock,
) -> (Option<Arc<dyn InputBinding>>, Arc<dyn OutputBinding>) {
    let c = common::build(type_name, metadata, clock).await;
    (c.as_input_binding().cloned(), c.as_output_binding().cloned().expect("output side"))
}

fn recorder(fail_first: bool) -> (BindingHandler, Arc<Mutex<Vec<BindingEvent>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let handler: BindingHandler = Arc::new(move |event: BindingEvent| {
        let mut seen = s.lock().expect("lock");
        let fail = fail_first && seen.is_empty();
        seen.push(event);
        Box::pin(async move { if fail { Err("not yet".to_owned()) } else { Ok(b"ack".to_vec()) } })
    });
    (handler, seen)
}

#[tokio::test]
async fn b02_b03_b04_operations_are_listed_and_ping_answers() {
    let (input, output) = binding("bindings.in-memory", &[]).await;
    assert_eq!(output.operations(), ["create"]);
    output.ping().await.expect("ping");
    input.expect("both directions").ping().await.expect("ping");
    let dir = tempfile::tempdir().expect("tempdir");
    let (input, output) = binding("bindings.localstorage", &[("rootPath", dir.path().to_str().expect("utf8"))]).await;
    assert!(input.is_none(), "local storage is output-only");
    assert_eq!(output.operations(), ["create", "get", "list", "delete"]);
}

#[tokio::test]
async fn b05_b06_b09_created_payload_arrives_as_input_event_in_order() {
    let clock = ManualClock::new();
    let (input, output) = binding_on("bindings.in-memory", &[], &clock).await;
    // Created before anyone reads: kept, then delivered.
    output
        .invoke(InvokeRequest::new("create", vec![0u8, 159, 146, 150]).with_metadata("key", "k0"))
        .await
        .expect("create");
    let (handler, seen) = recorder(true);
    let _sub = input.expect("input").read(handler).await.expect("read");
    for i in 1..5u8 {
        output.invoke(InvokeRequest::new("create", vec![i])).await.expect("create");
    }
    // The failed first delivery is retried after a backoff on the component's clock.
    let mut delivered = false;
    for _ in 0..100 {
        clock.advance(Duration::from_millis(20));
        if common::eventually(Duration::from_millis(20), || seen.lock().expect("lock").len() >= 6).await {
            delivered = true;
            break;
        }
    }
    assert!(delivered, "saw {:?}", seen.lock().expect("lock"));
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen[0].data, [0u8, 159, 146, 150], "byte-exact, failed once");
    assert_eq!(seen[1].data, seen[0].data, "redelivered after the handler failed");
    assert_eq!(seen[0].metadata.get("key").map(String::as_str), Some("k0"));
    let rest: Vec<u8> = seen[2..].iter().map(|e| e.data[0]).collect();
    assert_eq!(rest, [1, 2, 3, 4], "in creation order");
}

#[tokio::test]
async fn unlisted_operations_are_unsupported() {
    let (_, output) = binding("bindings.in-memory", &[]).await;
    assert!(matches!(output.invoke(InvokeRequest::new("delete", "")).await, Err(Error::Unsupported { .. })));
}

#[tokio::test]
async fn b06_b07_b08_b10_local_storage_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, out) = binding("bindings.localstorage", &[("rootPath", dir.path().to_str().expect("utf8"))]).await;
    let payload: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let created = out
        .invoke(InvokeRequest::new("create", payload.clone()).with_metadata("fileName", "dir/blob.bin"))
        .await
        .expect("create");
    let answer: serde_json::Value = serde_json::from_slice(&created.data.expect("body")).expect("json");
    assert_eq!(answer["fileName"], "dir/blob.bin");
    let got = out.invoke(InvokeRequest::new("get", "").with_metadata("fileName", "dir/blob.bin")).await.expect("get");
    assert_eq!(got.data, Some(payload), "byte-exact");
    out.invoke(InvokeRequest::new("create", "x").with_metadata("fileName", "a.txt")).await.expect("create");
    let listed = out.invoke(InvokeRequest::new("list", "")).await.expect("list");
    let names: Vec<String> = serde_json::from_slice(&listed.data.expect("body")).expect("json");
    assert_eq!(names, ["a.txt", "dir/blob.bin"]);
    out.invoke(InvokeRequest::new("delete", "").with_metadata("fileName", "dir/blob.bin")).await.expect("delete");
    let gone = out.invoke(InvokeRequest::new("get", "").with_metadata("fileName", "dir/blob.bin")).await;
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
    let unnamed = out.invoke(InvokeRequest::new("create", "anon")).await.expect("create without a name");
    let answer: serde_json::Value = serde_json::from_slice(&unnamed.data.expect("body")).expect("json");
    assert!(answer["fileName"].as_str().is_some_and(|n| !n.is_empty()), "a name is generated");
}

#[tokio::test]
async fn local_storage_refuses_paths_outside_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let (_, out) = binding("bindings.localstorage", &[("rootPath", root.to_str().expect("utf8"))]).await;
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path(), root.join("escape")).expect("symlink");
    for name in ["../outside.txt", "/etc/passwd", "a/../../outside.txt", "escape/outside.txt"] {
        let r = out.invoke(InvokeRequest::new("create", "x").with_metadata("fileName", name)).await;
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "`{name}`: {r:?}");
    }
    assert!(!dir.path().join("outside.txt").exists(), "nothing written outside the root");
    let r = out.invoke(InvokeRequest::new("get", "")).await;
    assert!(matches!(r, Err(Error::InvalidArgument(ref m)) if m.contains("fileName")), "{r:?}");
}
