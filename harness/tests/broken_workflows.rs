//! Workflow runtimes that break the rules, in the test tree: the workflows suite must catch each
//! by the rule it breaks, and pass an honest one. Three are the reference sidecar behind a
//! lying `TaskHubSidecarService` proxy, certified black-box over gRPC; one is an engine over a
//! store that keeps no workflow, certified in-process across a restart.

mod common;

use std::sync::Arc;

use contract::{Block, ComponentContext, Registry};
use futures::StreamExt;
use harness::Filter;
use reports::Verdict;
use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use runtime_api::durabletask::task_hub_sidecar_service_server::{TaskHubSidecarService, TaskHubSidecarServiceServer};
use runtime_api::durabletask::work_item::Request as Work;
use runtime_api::durabletask::workflow_action::WorkflowActionType as Action;
use runtime_api::durabletask::*;
use runtime_api::runtime::dapr_client::DaprClient;
use runtime_api::runtime::dapr_server::{Dapr, DaprServer};
use runtime_api::runtime::{GetMetadataRequest, GetMetadataResponse};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

type Answer<T> = Result<Response<T>, Status>;

/// What a proxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    Honest,
    /// Every durable timer a worker asks for is set to fire at once.
    FiresTimersEarly,
    /// Work items show no `eventRaised` among past events: an event that came before the
    /// workflow waited for it is gone by the turn that waits.
    LosesBufferedEvents,
    /// Every `taskCompleted` is in the history twice, in work items and in `GetInstanceHistory`.
    RecordsCompletionsTwice,
    /// `CompleteOrchestratorTask`, the older name SDKs still call, is `UNIMPLEMENTED`.
    KnowsOnlyTheNewName,
}

#[derive(Clone)]
struct Liar {
    hub: TaskHubSidecarServiceClient<Channel>,
    dapr: DaprClient<Channel>,
    lie: Lie,
}

fn twice(events: Vec<HistoryEvent>) -> Vec<HistoryEvent> {
    events
        .into_iter()
        .flat_map(|e| {
            let copies = if matches!(e.event_type, Some(EventType::TaskCompleted(_))) { 2 } else { 1 };
            std::iter::repeat_n(e, copies)
        })
        .collect()
}

impl Liar {
    fn item(&self, mut item: WorkItem) -> WorkItem {
        if let Some(Work::WorkflowRequest(request)) = &mut item.request {
            match self.lie {
                Lie::LosesBufferedEvents => {
                    request.past_events.retain(|e| !matches!(e.event_type, Some(EventType::EventRaised(_))));
                }
                Lie::RecordsCompletionsTwice => {
                    request.past_events = twice(std::mem::take(&mut request.past_events));
                    request.new_events = twice(std::mem::take(&mut request.new_events));
                }
                _ => {}
            }
        }
        item
    }
}

#[tonic::async_trait]
impl Dapr for Liar {
    async fn get_metadata(&self, r: Request<GetMetadataRequest>) -> Answer<GetMetadataResponse> {
        self.dapr.clone().get_metadata(r.into_inner()).await
    }
}

#[tonic::async_trait]
impl TaskHubSidecarService for Liar {
    async fn start_instance(&self, r: Request<CreateInstanceRequest>) -> Answer<CreateInstanceResponse> {
        self.hub.clone().start_instance(r.into_inner()).await
    }
    async fn get_instance(&self, r: Request<GetInstanceRequest>) -> Answer<GetInstanceResponse> {
        self.hub.clone().get_instance(r.into_inner()).await
    }
    async fn raise_event(&self, r: Request<RaiseEventRequest>) -> Answer<RaiseEventResponse> {
        self.hub.clone().raise_event(r.into_inner()).await
    }
    async fn terminate_instance(&self, r: Request<TerminateRequest>) -> Answer<TerminateResponse> {
        self.hub.clone().terminate_instance(r.into_inner()).await
    }
    async fn suspend_instance(&self, r: Request<SuspendRequest>) -> Answer<SuspendResponse> {
        self.hub.clone().suspend_instance(r.into_inner()).await
    }
    async fn resume_instance(&self, r: Request<ResumeRequest>) -> Answer<ResumeResponse> {
        self.hub.clone().resume_instance(r.into_inner()).await
    }
    async fn purge_instances(&self, r: Request<PurgeInstancesRequest>) -> Answer<PurgeInstancesResponse> {
        self.hub.clone().purge_instances(r.into_inner()).await
    }
    async fn get_instance_history(&self, r: Request<GetInstanceHistoryRequest>) -> Answer<GetInstanceHistoryResponse> {
        let mut answer = self.hub.clone().get_instance_history(r.into_inner()).await?;
        if self.lie == Lie::RecordsCompletionsTwice {
            let events = std::mem::take(&mut answer.get_mut().events);
            answer.get_mut().events = twice(events);
        }
        Ok(answer)
    }
    async fn get_work_items(
        &self,
        r: Request<GetWorkItemsRequest>,
    ) -> Answer<futures::stream::BoxStream<'static, Result<WorkItem, Status>>> {
        let upstream = self.hub.clone().get_work_items(r.into_inner()).await?.into_inner();
        let liar = self.clone();
        Ok(Response::new(upstream.map(move |item| item.map(|i| liar.item(i))).boxed()))
    }
    async fn complete_workflow_task(&self, r: Request<WorkflowResponse>) -> Answer<CompleteTaskResponse> {
        let mut response = r.into_inner();
        if self.lie == Lie::FiresTimersEarly {
            for action in &mut response.actions {
                if let Some(Action::CreateTimer(timer)) = &mut action.workflow_action_type {
                    timer.fire_at = Some(std::time::SystemTime::now().into());
                }
            }
        }
        self.hub.clone().complete_workflow_task(response).await
    }
    async fn complete_orchestrator_task(&self, r: Request<WorkflowResponse>) -> Answer<CompleteTaskResponse> {
        if self.lie == Lie::KnowsOnlyTheNewName {
            return Err(Status::unimplemented("CompleteOrchestratorTask is not served"));
        }
        #[allow(deprecated)]
        let answer = self.hub.clone().complete_orchestrator_task(r.into_inner()).await;
        answer
    }
    async fn complete_activity_task(&self, r: Request<ActivityResponse>) -> Answer<CompleteTaskResponse> {
        self.hub.clone().complete_activity_task(r.into_inner()).await
    }
}

/// The reference sidecar behind a proxy telling `lie`, certified over gRPC for the workflows
/// cases `only` names.
async fn certify(lie: Lie, only: &str) -> reports::Report {
    let app_port = common::free_port();
    let sidecar = common::liar_sidecar(app_port).await;
    let (_, upstream, _) = sidecar.serve_both_on_loopback().await.expect("serve the sidecar");
    let channel = Channel::from_shared(upstream).expect("url").connect().await.expect("connect upstream");
    let liar = Liar { hub: TaskHubSidecarServiceClient::new(channel.clone()), dapr: DaprClient::new(channel), lie };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("grpc://{}", listener.local_addr().expect("addr"));
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .add_service(DaprServer::new(liar.clone()))
        .add_service(TaskHubSidecarServiceServer::new(liar));
    tokio::spawn(server.serve_with_incoming(incoming));
    let filter = Filter { patterns: vec![only.into()], ..Filter::default() };
    common::certify_sidecar(url, &[(Block::WORKFLOWS, "")], app_port, &filter).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_workflow_runtime_passes_every_case() {
    let report = certify(Lie::Honest, "workflows.").await;
    assert_eq!(report.cases.len(), 19, "{:?}", report.cases);
    for case in &report.cases {
        // Only a runtime certify runs can be restarted; the facade's cases are HTTP's.
        let elsewhere = case.id == "workflows.recovery.restart" || case.id.starts_with("workflows.http-api");
        let expected = if elsewhere { Verdict::Skipped } else { Verdict::Pass };
        assert_eq!(case.verdict, expected, "{case:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_fires_timers_early_is_caught() {
    let report = certify(Lie::FiresTimersEarly, "workflows.timer").await;
    common::expect_fail(&report, "liar@grpc::workflows.timer.not-early", "before the time the worker asked for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_loses_an_event_raised_before_the_wait_is_caught() {
    let report = certify(Lie::LosesBufferedEvents, "workflows.events.buffered").await;
    common::expect_fail(&report, "liar@grpc::workflows.events.buffered", "still RUNNING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_records_an_activity_completion_twice_is_caught() {
    let report = certify(Lie::RecordsCompletionsTwice, "workflows.activities.recorded-once").await;
    common::expect_fail(&report, "liar@grpc::workflows.activities.recorded-once", "completions of activity");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_without_the_older_completion_name_is_caught() {
    let report = certify(Lie::KnowsOnlyTheNewName, "workflows.protocol").await;
    common::expect_fail(&report, "liar@grpc::workflows.protocol.old-completion-name", "UNIMPLEMENTED");
}

/// A store that takes every write but keeps nothing of the workflows (their keys).
struct ForgetsWorkflows(reference_runtime::in_memory::state_memory::InMemoryStateStore);

#[async_trait::async_trait]
impl contract::StateStore for ForgetsWorkflows {
    fn features(&self) -> contract::FeatureSet<contract::StateFeature> {
        self.0.features()
    }
    async fn get(&self, request: contract::state::GetRequest) -> contract::Result<Option<contract::state::Item>> {
        self.0.get(request).await
    }
    async fn set(&self, request: contract::state::SetRequest) -> contract::Result<()> {
        if request.key.contains("workflows") {
            return Ok(());
        }
        self.0.set(request).await
    }
    async fn delete(&self, request: contract::state::DeleteRequest) -> contract::Result<()> {
        self.0.delete(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_forgets_running_instances_on_restart_is_caught() {
    let mut registry: Registry = reference_runtime::builtin_registry();
    registry.register("state.forgets-workflows", |ctx: ComponentContext| async move {
        let store = ForgetsWorkflows(reference_runtime::in_memory::state_memory::InMemoryStateStore::new(ctx.clock));
        Ok(contract::Component::state(Arc::new(store)))
    });
    reference_runtime::workflows::register_over_state_stores(&mut registry);
    let spec = r#"
components:
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: amnesiac}
      spec: {type: workflows.forgets-workflows, version: v1}
    drivers: [in-process]
  - component:
      apiVersion: dapr.io/v1alpha1
      kind: Component
      metadata: {name: honest}
      spec: {type: workflows.in-memory, version: v1}
    drivers: [in-process]
"#;
    let filter = Filter { patterns: vec!["workflows.recovery".into()], ..Filter::default() };
    let report = common::certify(&registry, spec, &filter).await;
    common::expect_fail(&report, "amnesiac::workflows.recovery.restart", "forgot the running instance");
    assert_eq!(common::record(&report, "honest::workflows.recovery.restart").verdict, Verdict::Pass);
}

/// The reference sidecar's HTTP API behind a proxy that answers a missing instance's 404 as
/// daprd's generic 500: the facade's error case must catch it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_facade_that_answers_a_missing_instance_500_is_caught() {
    use axum::extract::{Request as HttpRequest, State};
    use axum::response::IntoResponse;

    async fn forward(State(upstream): State<String>, request: HttpRequest) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
        let mut headers = parts.headers.clone();
        headers.remove("content-length");
        let sent = reqwest::Client::new()
            .request(parts.method, format!("{upstream}{path}"))
            .headers(headers)
            .body(body)
            .send();
        let Ok(answer) = sent.await else { return axum::http::StatusCode::BAD_GATEWAY.into_response() };
        if answer.status() == 404 && path.contains("/workflows/") {
            let lie = r#"{"errorCode":"ERR_GET_WORKFLOW","message":"error while getting workflow info"}"#;
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, lie).into_response();
        }
        let status = answer.status();
        let mut headers = answer.headers().clone();
        headers.remove("content-length");
        (status, headers, answer.bytes().await.unwrap_or_default()).into_response()
    }

    let app_port = common::free_port();
    let sidecar = common::liar_sidecar(app_port).await;
    let (upstream, _) = sidecar.serve_on_loopback().await.expect("serve the sidecar");
    let router = axum::Router::new().fallback(forward).with_state(upstream);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let filter = Filter { patterns: vec!["workflows.http-api".into()], ..Filter::default() };
    let report = common::certify_sidecar(url, &[(Block::WORKFLOWS, "")], app_port, &filter).await;
    assert_eq!(common::record(&report, "liar@http::workflows.http-api.start-and-get").verdict, Verdict::Pass);
    common::expect_fail(&report, "liar@http::workflows.http-api.errors", "expected status 404, got 500");
}
