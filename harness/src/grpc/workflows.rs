//! Workflows through a sidecar's gRPC port: `TaskHubSidecarService`, the durabletask protocol
//! SDK workers and clients speak, as certify's [`TaskHub`]. The calls that wait on the server
//! (start, terminate, suspend, resume) wait there as they do for an SDK.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use runtime_api::durabletask::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use runtime_api::durabletask::*;
use runtime_api::tonic::transport::Channel;
use suites::workflows::{HubError, HubResult, TaskHub};

use super::GrpcSidecar;

/// A sidecar's workflow runtime, over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcTaskHub {
    sidecar: GrpcSidecar,
}

impl GrpcTaskHub {
    /// The workflow runtime on `sidecar`'s gRPC port.
    pub fn new(sidecar: &GrpcSidecar) -> Self {
        Self { sidecar: sidecar.clone() }
    }

    fn client(&self) -> TaskHubSidecarServiceClient<Channel> {
        TaskHubSidecarServiceClient::new(self.sidecar.channel())
    }
}

fn hub_error(status: runtime_api::tonic::Status) -> HubError {
    let code = format!("{:?}", status.code());
    // tonic spells codes in CamelCase; gRPC names them in SCREAMING_SNAKE_CASE.
    let mut name = String::new();
    for (i, c) in code.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    HubError::new(&name, status.message())
}

#[async_trait]
impl TaskHub for GrpcTaskHub {
    async fn start(&self, request: CreateInstanceRequest) -> HubResult<String> {
        let answer = self.client().start_instance(self.sidecar.request(request)).await.map_err(hub_error)?;
        Ok(answer.into_inner().instance_id)
    }

    async fn get(&self, id: &str) -> HubResult<Option<WorkflowState>> {
        let call = GetInstanceRequest { instance_id: id.into(), get_inputs_and_outputs: true };
        let answer = self.client().get_instance(self.sidecar.request(call)).await.map_err(hub_error)?.into_inner();
        Ok(answer.workflow_state.filter(|_| answer.exists))
    }

    async fn wait(&self, id: &str) -> HubResult<Option<WorkflowState>> {
        let call = GetInstanceRequest { instance_id: id.into(), get_inputs_and_outputs: true };
        let answer = self.client().wait_for_instance_completion(self.sidecar.request(call)).await;
        let answer = answer.map_err(hub_error)?.into_inner();
        Ok(answer.workflow_state.filter(|_| answer.exists))
    }

    async fn raise(&self, id: &str, name: &str, input: Option<String>) -> HubResult<()> {
        let call = RaiseEventRequest { instance_id: id.into(), name: name.into(), input };
        self.client().raise_event(self.sidecar.request(call)).await.map(drop).map_err(hub_error)
    }

    async fn terminate(&self, id: &str, output: Option<String>, recursive: bool) -> HubResult<()> {
        let call = TerminateRequest { instance_id: id.into(), output, recursive };
        self.client().terminate_instance(self.sidecar.request(call)).await.map(drop).map_err(hub_error)
    }

    async fn suspend(&self, id: &str) -> HubResult<()> {
        let call = SuspendRequest { instance_id: id.into(), reason: None };
        self.client().suspend_instance(self.sidecar.request(call)).await.map(drop).map_err(hub_error)
    }

    async fn resume(&self, id: &str) -> HubResult<()> {
        let call = ResumeRequest { instance_id: id.into(), reason: None };
        self.client().resume_instance(self.sidecar.request(call)).await.map(drop).map_err(hub_error)
    }

    async fn purge(&self, id: &str, recursive: bool) -> HubResult<i32> {
        let request = Some(purge_instances_request::Request::InstanceId(id.into()));
        let call = PurgeInstancesRequest { request, recursive, force: None };
        let answer = self.client().purge_instances(self.sidecar.request(call)).await.map_err(hub_error)?;
        Ok(answer.into_inner().deleted_instance_count)
    }

    async fn history(&self, id: &str) -> HubResult<Vec<HistoryEvent>> {
        let call = GetInstanceHistoryRequest { instance_id: id.into() };
        let answer = self.client().get_instance_history(self.sidecar.request(call)).await.map_err(hub_error)?;
        Ok(answer.into_inner().events)
    }

    async fn work_items(&self) -> HubResult<BoxStream<'static, HubResult<WorkItem>>> {
        let call = GetWorkItemsRequest { capabilities: Vec::new() };
        let stream = self.client().get_work_items(self.sidecar.request(call)).await.map_err(hub_error)?;
        Ok(stream.into_inner().map(|item| item.map_err(hub_error)).boxed())
    }

    /// `CompleteWorkflowTask`, or its older name `CompleteOrchestratorTask` on a sidecar that
    /// knows only that one.
    async fn complete_turn(&self, response: WorkflowResponse) -> HubResult<()> {
        match self.client().complete_workflow_task(self.sidecar.request(response.clone())).await {
            Err(status) if status.code() == runtime_api::tonic::Code::Unimplemented => {
                #[allow(deprecated)]
                let older = self.client().complete_orchestrator_task(self.sidecar.request(response)).await;
                older.map(drop).map_err(hub_error)
            }
            answer => answer.map(drop).map_err(hub_error),
        }
    }

    async fn complete_turn_by_old_name(&self, response: WorkflowResponse) -> HubResult<()> {
        #[allow(deprecated)]
        let answer = self.client().complete_orchestrator_task(self.sidecar.request(response)).await;
        answer.map(drop).map_err(hub_error)
    }

    async fn call_dropped_rpc(&self) -> HubResult<()> {
        use runtime_api::tonic::codegen::http::uri::PathAndQuery;
        let mut grpc = runtime_api::tonic::client::Grpc::new(self.sidecar.channel());
        grpc.ready().await.map_err(|e| HubError::new("UNAVAILABLE", e.to_string()))?;
        let path = PathAndQuery::from_static("/TaskHubSidecarService/AbandonTaskOrchestratorWorkItem");
        let codec = runtime_api::tonic_prost::ProstCodec::<(), ()>::default();
        grpc.unary(self.sidecar.request(()), path, codec).await.map(drop).map_err(hub_error)
    }

    async fn complete_activity(&self, response: ActivityResponse) -> HubResult<()> {
        self.client().complete_activity_task(self.sidecar.request(response)).await.map(drop).map_err(hub_error)
    }
}
