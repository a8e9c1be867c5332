//! Workflows: in-process, the reference runtime's engine over a `workflows.*` component's state
//! store; through a sidecar, its `TaskHubSidecarService` on the gRPC port. Either way certify's
//! own worker connects and runs the catalogue's workflows. Over HTTP only the facade's cases
//! run: a worker needs the gRPC port.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use reference_runtime::workflows::{Engine, WorkflowError, WorkflowStateStore};
use runtime_api::durabletask::*;
use suites::workflows::{HubError, HubRestarts, HubResult, RestartableHub, TaskHub, Wire, Worker};

use super::{BlockDriver, GrpcLink};
use crate::grpc::GrpcTaskHub;
use crate::http::ConnectError;
use contract::{Block, Component, Parts};

/// The workflows block.
pub(super) struct Workflows;

/// Where a run's in-process engines keep their instances: a prefix of its own per run (and per
/// runtime a case restarts), so runs sharing a store never take up each other's instances.
fn run_prefix() -> String {
    format!("certify-workflows||{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

#[async_trait]
impl BlockDriver for Workflows {
    fn block(&self) -> Block {
        Block::WORKFLOWS
    }

    async fn local(&self, component: &Component, _reads: bool) -> Result<Parts, String> {
        let Some(store) = component.parts().get::<WorkflowStateStore>() else {
            return Err("this workflows component has no store certify can run an engine over in-process".into());
        };
        let prefix = run_prefix();
        let engine = Engine::durable(Arc::clone(&store.0), prefix.clone());
        let worker = Worker::start(Arc::new(LocalHub(engine)));
        let restarts = OwnEngines { store: Arc::clone(&store.0), prefix, opened: AtomicU64::new(0) };
        Ok(Parts::default().with(worker).with(Arc::new(restarts) as Arc<dyn HubRestarts>))
    }

    /// Over HTTP: the facade's cases only, which need no worker (the session adds the wire).
    async fn http(
        &self,
        _: &super::HttpLink<'_>,
        _: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        Some(Ok(Parts::default()))
    }

    async fn dapr_grpc(
        &self,
        link: &GrpcLink<'_>,
        _: &str,
        _: Option<&Component>,
    ) -> Option<Result<Parts, ConnectError>> {
        let hub: Arc<dyn TaskHub> = Arc::new(GrpcTaskHub::new(link.sidecar));
        Some(Ok(Parts::default().with(Worker::start(hub)).with(Arc::new(Wire))))
    }
}

/// An in-process engine as a [`TaskHub`].
struct LocalHub(Arc<Engine>);

fn hub_error(e: WorkflowError) -> HubError {
    let code = match e {
        WorkflowError::NotFound(_) => "NOT_FOUND",
        WorkflowError::AlreadyExists(_) => "ALREADY_EXISTS",
        WorkflowError::NotCompleted(_) => "FAILED_PRECONDITION",
        WorkflowError::Invalid(_) => "INVALID_ARGUMENT",
        WorkflowError::Store(_) => "INTERNAL",
    };
    HubError::new(code, e.to_string())
}

#[async_trait]
impl TaskHub for LocalHub {
    async fn start(&self, request: CreateInstanceRequest) -> HubResult<String> {
        self.0.start(request).await.map_err(hub_error)
    }
    async fn get(&self, id: &str) -> HubResult<Option<WorkflowState>> {
        Ok(self.0.get(id, true))
    }
    async fn wait(&self, id: &str) -> HubResult<Option<WorkflowState>> {
        Ok(self.0.wait(id, true, reference_runtime::workflows::status_is_terminal).await)
    }
    async fn raise(&self, id: &str, name: &str, input: Option<String>) -> HubResult<()> {
        self.0.raise(id, name, input).await.map_err(hub_error)
    }
    async fn terminate(&self, id: &str, output: Option<String>, recursive: bool) -> HubResult<()> {
        self.0.terminate(id, output, recursive).await.map_err(hub_error)
    }
    async fn suspend(&self, id: &str) -> HubResult<()> {
        self.0.suspend(id, None).await.map_err(hub_error)
    }
    async fn resume(&self, id: &str) -> HubResult<()> {
        self.0.resume(id, None).await.map_err(hub_error)
    }
    async fn purge(&self, id: &str, recursive: bool) -> HubResult<i32> {
        self.0.purge(id, recursive).await.map_err(hub_error)
    }
    async fn history(&self, id: &str) -> HubResult<Vec<HistoryEvent>> {
        self.0.history(id).ok_or_else(|| hub_error(WorkflowError::NotFound(id.into())))
    }
    async fn work_items(&self) -> HubResult<BoxStream<'static, HubResult<WorkItem>>> {
        Ok(self.0.work_items().map(Ok).boxed())
    }
    async fn complete_turn(&self, response: WorkflowResponse) -> HubResult<()> {
        self.0.complete_turn(response).await.map_err(hub_error)
    }
    async fn complete_activity(&self, response: ActivityResponse) -> HubResult<()> {
        self.0.complete_activity(response).await.map_err(hub_error)
    }
}

/// Engines of a case's own over the component's store, each under a prefix of its own.
struct OwnEngines {
    store: Arc<dyn contract::StateStore>,
    prefix: String,
    opened: AtomicU64,
}

#[async_trait]
impl HubRestarts for OwnEngines {
    async fn own(&self) -> HubResult<Arc<dyn RestartableHub>> {
        let prefix = format!("{}-own-{}", self.prefix, self.opened.fetch_add(1, Ordering::Relaxed));
        let engine = Engine::durable(Arc::clone(&self.store), prefix.clone());
        let worker = Worker::start(Arc::new(LocalHub(Arc::clone(&engine))));
        let current = Mutex::new((engine, worker));
        Ok(Arc::new(Restarting { store: Arc::clone(&self.store), prefix, current }))
    }
}

/// An engine the case may restart: a new engine over the same keys, which takes the instances
/// up, and a new worker on it.
struct Restarting {
    store: Arc<dyn contract::StateStore>,
    prefix: String,
    current: Mutex<(Arc<Engine>, Arc<Worker>)>,
}

#[async_trait]
impl RestartableHub for Restarting {
    fn worker(&self) -> Arc<Worker> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner).1)
    }

    async fn restart(&self) -> HubResult<()> {
        // The old engine stops first, so the new one is the store's only writer.
        let old = Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner).0);
        old.stop().await;
        let engine = Engine::durable(Arc::clone(&self.store), self.prefix.clone());
        engine.restore().await.map_err(|e| HubError::new("INTERNAL", e))?;
        let worker = Worker::start(Arc::new(LocalHub(Arc::clone(&engine))));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = (engine, worker);
        Ok(())
    }
}
