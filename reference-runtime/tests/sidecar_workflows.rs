//! Workflows through the sidecar: an instance started over the HTTP facade, kept in the actor
//! state store, is back after the runtime restarts, and the first worker to connect to the new
//! runtime gets its turn (actors-workflows-jobs.md §2, W13).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use runtime_api::durabletask::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use runtime_api::durabletask::work_item::Request as Work;
use runtime_api::durabletask::workflow_action::WorkflowActionType as Action;
use runtime_api::durabletask::*;
use serde_json::Value;

mod common;

async fn runtime_over(store: Arc<reference_runtime::in_memory::state_memory::InMemoryStateStore>) -> Served {
    common::sidecar_env::runtime_over(store, "wfapp", None).await
}

type Served = (String, String, Arc<reference_runtime::sidecar::Sidecar>, tokio::task::JoinHandle<std::io::Result<()>>);

async fn get(http: &reqwest::Client, base: &str, id: &str) -> (u16, Value) {
    let r = http.get(format!("{base}/v1.0/workflows/dapr/{id}")).send().await.expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_kept_in_the_actor_state_store_outlives_the_runtime() {
    let store = Arc::new(reference_runtime::in_memory::state_memory::InMemoryStateStore::new(contract::system_clock()));
    let http = reqwest::Client::new();
    let (base, _, first, server) = runtime_over(Arc::clone(&store)).await;
    let started = http
        .post(format!("{base}/v1.0-beta1/workflows/dapr/greet/start?instanceID=kept"))
        .body("\"world\"")
        .send()
        .await
        .expect("start");
    assert_eq!(started.status(), 202);
    let (status, before) = get(&http, &base, "kept").await;
    assert_eq!((status, before["runtimeStatus"].as_str()), (200, Some("PENDING")), "{before}");
    first.shutdown();
    let _ = server.await;

    let (base, grpc, _second, _server) = runtime_over(store).await;
    let (status, after) = get(&http, &base, "kept").await;
    assert_eq!(status, 200, "the instance is gone after the restart: {after}");
    assert_eq!(after["createdAt"], before["createdAt"]);
    assert_eq!(after["properties"]["dapr.workflow.input"], "\"world\"");

    // The first worker on the new runtime gets the instance's first turn.
    let mut hub = TaskHubSidecarServiceClient::connect(grpc).await.expect("connect");
    let mut items = hub.get_work_items(GetWorkItemsRequest::default()).await.expect("work items").into_inner();
    let item = tokio::time::timeout(Duration::from_secs(5), items.next()).await.expect("a turn in time");
    let item = item.expect("the stream is open").expect("a work item");
    let Some(Work::WorkflowRequest(turn)) = item.request else { panic!("expected a turn, got {item:?}") };
    assert_eq!(turn.instance_id, "kept");
    let done = CompleteWorkflowAction {
        workflow_status: OrchestrationStatus::Completed as i32,
        result: Some("\"hello world\"".into()),
        ..Default::default()
    };
    let response = WorkflowResponse {
        instance_id: "kept".into(),
        actions: vec![WorkflowAction {
            id: 0,
            router: None,
            workflow_action_type: Some(Action::CompleteWorkflow(done)),
        }],
        completion_token: item.completion_token,
        ..Default::default()
    };
    hub.complete_workflow_task(response).await.expect("complete");
    let (status, finished) = get(&http, &base, "kept").await;
    assert_eq!((status, finished["runtimeStatus"].as_str()), (200, Some("COMPLETED")), "{finished}");
    assert_eq!(finished["properties"]["dapr.workflow.output"], "\"hello world\"");
}
