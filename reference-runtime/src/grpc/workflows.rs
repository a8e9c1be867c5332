//! `TaskHubSidecarService` (durabletask, no proto package) on the Dapr gRPC port: workflow
//! workers and clients, over the sidecar's [`crate::workflows::Engine`]
//! (actors-workflows-jobs.md §2.3). Calls that wait (start, terminate, suspend, resume, the
//! long polls) wait as daprd does; the caller's deadline bounds them.

use std::sync::Arc;

use runtime_api::durabletask::task_hub_sidecar_service_server::{TaskHubSidecarService, TaskHubSidecarServiceServer};
use runtime_api::durabletask::*;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use super::{Answer, Stream, TokenCheck};
use crate::sidecar::Sidecar;
use crate::workflows::{Engine, WorkflowError, status_is_terminal};
use OrchestrationStatus as S;

/// The service over a sidecar's workflow engine.
#[derive(Clone)]
pub struct TaskHub {
    sc: Arc<Sidecar>,
}

/// The service behind the sidecar's token check and message limits.
pub fn service(sc: &Arc<Sidecar>) -> InterceptedService<TaskHubSidecarServiceServer<TaskHub>, TokenCheck> {
    let limit = sc.config.max_body_size;
    let server = TaskHubSidecarServiceServer::new(TaskHub { sc: Arc::clone(sc) })
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    InterceptedService::new(server, TokenCheck(sc.config.api_token.as_deref().map(Arc::from)))
}

fn status(e: WorkflowError) -> Status {
    match e {
        WorkflowError::NotFound(_) => Status::not_found(e.to_string()),
        WorkflowError::AlreadyExists(_) => Status::already_exists(e.to_string()),
        WorkflowError::NotCompleted(_) => Status::failed_precondition(e.to_string()),
        WorkflowError::Invalid(_) => Status::invalid_argument(e.to_string()),
        WorkflowError::Store(_) => Status::internal(e.to_string()),
    }
}

impl TaskHub {
    fn engine(&self) -> &Arc<Engine> {
        &self.sc.workflows
    }

    async fn wait(&self, id: &str, payloads: bool, until: impl Fn(S) -> bool) -> Answer<GetInstanceResponse> {
        let state = self.engine().wait(id, payloads, until).await;
        Ok(Response::new(GetInstanceResponse { exists: state.is_some(), workflow_state: state }))
    }
}

#[tonic::async_trait]
impl TaskHubSidecarService for TaskHub {
    async fn hello(&self, _: Request<()>) -> Answer<()> {
        Ok(Response::new(()))
    }

    async fn start_instance(&self, r: Request<CreateInstanceRequest>) -> Answer<CreateInstanceResponse> {
        let request = r.into_inner();
        let scheduled = request.scheduled_start_timestamp.is_some();
        let instance_id = self.engine().start(request).await.map_err(status)?;
        if !scheduled {
            self.engine().wait(&instance_id, false, |s| s != S::Pending).await;
        }
        Ok(Response::new(CreateInstanceResponse { instance_id }))
    }

    async fn get_instance(&self, r: Request<GetInstanceRequest>) -> Answer<GetInstanceResponse> {
        let r = r.into_inner();
        let state = self.engine().get(&r.instance_id, r.get_inputs_and_outputs);
        Ok(Response::new(GetInstanceResponse { exists: state.is_some(), workflow_state: state }))
    }

    async fn wait_for_instance_start(&self, r: Request<GetInstanceRequest>) -> Answer<GetInstanceResponse> {
        let r = r.into_inner();
        self.wait(&r.instance_id, r.get_inputs_and_outputs, |s| s != S::Pending).await
    }

    async fn wait_for_instance_completion(&self, r: Request<GetInstanceRequest>) -> Answer<GetInstanceResponse> {
        let r = r.into_inner();
        self.wait(&r.instance_id, r.get_inputs_and_outputs, status_is_terminal).await
    }

    async fn raise_event(&self, r: Request<RaiseEventRequest>) -> Answer<RaiseEventResponse> {
        let r = r.into_inner();
        self.engine().raise(&r.instance_id, &r.name, r.input).await.map_err(status)?;
        Ok(Response::new(RaiseEventResponse {}))
    }

    async fn terminate_instance(&self, r: Request<TerminateRequest>) -> Answer<TerminateResponse> {
        let r = r.into_inner();
        self.engine().terminate(&r.instance_id, r.output, r.recursive).await.map_err(status)?;
        self.engine().wait(&r.instance_id, false, status_is_terminal).await;
        Ok(Response::new(TerminateResponse {}))
    }

    async fn suspend_instance(&self, r: Request<SuspendRequest>) -> Answer<SuspendResponse> {
        let r = r.into_inner();
        self.engine().suspend(&r.instance_id, r.reason).await.map_err(status)?;
        self.engine().wait(&r.instance_id, false, |s| s == S::Suspended || status_is_terminal(s)).await;
        Ok(Response::new(SuspendResponse {}))
    }

    async fn resume_instance(&self, r: Request<ResumeRequest>) -> Answer<ResumeResponse> {
        let r = r.into_inner();
        self.engine().resume(&r.instance_id, r.reason).await.map_err(status)?;
        self.engine().wait(&r.instance_id, false, |s| s != S::Suspended).await;
        Ok(Response::new(ResumeResponse {}))
    }

    async fn purge_instances(&self, r: Request<PurgeInstancesRequest>) -> Answer<PurgeInstancesResponse> {
        let r = r.into_inner();
        let Some(purge_instances_request::Request::InstanceId(id)) = r.request else {
            return Err(Status::unimplemented("purging by filter is not supported: name the instance"));
        };
        let deleted_instance_count = self.engine().purge(&id, r.recursive).await.map_err(status)?;
        Ok(Response::new(PurgeInstancesResponse { deleted_instance_count, is_complete: Some(true) }))
    }

    async fn get_work_items(&self, _: Request<GetWorkItemsRequest>) -> Answer<Stream<WorkItem>> {
        let items = futures::StreamExt::map(self.engine().work_items(), Ok);
        Ok(Response::new(Box::pin(futures::StreamExt::take_until(items, self.sc.stopped()))))
    }

    async fn complete_activity_task(&self, r: Request<ActivityResponse>) -> Answer<CompleteTaskResponse> {
        self.engine().complete_activity(r.into_inner()).await.map_err(status)?;
        Ok(Response::new(CompleteTaskResponse {}))
    }

    async fn complete_orchestrator_task(&self, r: Request<WorkflowResponse>) -> Answer<CompleteTaskResponse> {
        self.engine().complete_turn(r.into_inner()).await.map_err(status)?;
        Ok(Response::new(CompleteTaskResponse {}))
    }

    async fn complete_workflow_task(&self, r: Request<WorkflowResponse>) -> Answer<CompleteTaskResponse> {
        self.engine().complete_turn(r.into_inner()).await.map_err(status)?;
        Ok(Response::new(CompleteTaskResponse {}))
    }

    async fn get_instance_history(&self, r: Request<GetInstanceHistoryRequest>) -> Answer<GetInstanceHistoryResponse> {
        let id = r.into_inner().instance_id;
        let events = self.engine().history(&id).ok_or_else(|| status(WorkflowError::NotFound(id)))?;
        Ok(Response::new(GetInstanceHistoryResponse { events }))
    }
}
