//! The workflows suite (actors-workflows-jobs.md §2.6, W1–W14): a sidecar's workflow runtime
//! must keep each instance's history exactly, replay it to the worker turn by turn, fire durable
//! timers no earlier than due, buffer external events, record each activity's result once,
//! follow its status model, and survive a restart. Dapr's conformance suite has no workflows.
//!
//! Cases reach the runtime through a [`TaskHub`]: the durabletask protocol's calls, over gRPC
//! (`TaskHubSidecarService`) or straight to an engine in-process. certify's own [`Worker`] takes
//! its work items and runs a fixed [`catalogue`] of workflows, logging what it was shown; the
//! cases judge the runtime by that log and by the history and state the hub reports. Each
//! trial names its instances after its namespace.

pub mod catalogue;
mod checks;
pub mod replay;
mod rules;
pub mod worker;

use std::sync::Arc;

use contract::Block;
use futures::stream::BoxStream;
use runtime_api::durabletask::*;

use crate::case::Reach;
use crate::suite::Suite;
pub use worker::Worker;

const BLOCK: Block = Block::WORKFLOWS;

/// What a hub call fails with: the gRPC status code's name (`NOT_FOUND`, `ALREADY_EXISTS`, …)
/// and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HubError {
    /// The status code, as gRPC names it.
    pub code: String,
    /// What the runtime said.
    pub message: String,
}

impl HubError {
    /// An error with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// The result of a hub call.
pub type HubResult<T> = Result<T, HubError>;

/// A workflow runtime as the durabletask protocol reaches it (`TaskHubSidecarService`).
#[async_trait::async_trait]
pub trait TaskHub: Send + Sync {
    /// Starts an instance: its id.
    async fn start(&self, request: CreateInstanceRequest) -> HubResult<String>;
    /// The instance's state with its payloads; `None` when there is no such instance.
    async fn get(&self, id: &str) -> HubResult<Option<WorkflowState>>;
    /// Waits until the instance ends (COMPLETED, FAILED, TERMINATED or CANCELED): its state
    /// then, with its payloads; `None` when there is no such instance.
    async fn wait(&self, id: &str) -> HubResult<Option<WorkflowState>>;
    /// Raises event `name` on the instance.
    async fn raise(&self, id: &str, name: &str, input: Option<String>) -> HubResult<()>;
    /// Terminates the instance with `output`.
    async fn terminate(&self, id: &str, output: Option<String>, recursive: bool) -> HubResult<()>;
    /// Suspends the instance.
    async fn suspend(&self, id: &str) -> HubResult<()>;
    /// Resumes the instance.
    async fn resume(&self, id: &str) -> HubResult<()>;
    /// Purges the instance: how many instances went.
    async fn purge(&self, id: &str, recursive: bool) -> HubResult<i32>;
    /// The instance's committed history.
    async fn history(&self, id: &str) -> HubResult<Vec<HistoryEvent>>;
    /// Connects a worker: its work items.
    async fn work_items(&self) -> HubResult<BoxStream<'static, HubResult<WorkItem>>>;
    /// A worker's answer to a turn.
    async fn complete_turn(&self, response: WorkflowResponse) -> HubResult<()>;
    /// A worker's answer to an activity.
    async fn complete_activity(&self, response: ActivityResponse) -> HubResult<()>;
    /// A worker's answer to a turn under the RPC's older name, `CompleteOrchestratorTask`,
    /// which SDKs still call. Only a hub on the wire has names.
    async fn complete_turn_by_old_name(&self, response: WorkflowResponse) -> HubResult<()> {
        let _ = response;
        Err(HubError::new("UNIMPLEMENTED", "this hub is not on the wire: its calls have no names"))
    }
    /// Calls `AbandonTaskOrchestratorWorkItem`, an RPC the protocol dropped: a runtime must
    /// answer `UNIMPLEMENTED`. Only a hub on the wire has it.
    async fn call_dropped_rpc(&self) -> HubResult<()> {
        Err(HubError::new("UNIMPLEMENTED", "this hub is not on the wire: its calls have no names"))
    }
}

/// The mark of a hub reached on the wire (`TaskHubSidecarService` over gRPC), where RPC names
/// matter (W1).
#[derive(Debug, Default)]
pub struct Wire;

/// Cases about the protocol's names need the hub on the wire.
pub const WIRE: Reach = Reach::of::<Wire>("TaskHubSidecarService on the wire").inherent();

/// Instances whose id contains this get their turns answered with `CompleteOrchestratorTask`.
pub const OLD_NAME_MARK: &str = "old-rpc-name";

/// The worker the cases' instances run on (it holds the hub).
pub const WORKER: Reach = Reach::of::<Worker>("workflow runtime with certify's worker connected")
    .hinted("a worker speaks the gRPC port: certify the sidecar as grpc://HOST:PORT with --workflows")
    .inherent();

/// A workflow runtime of the case's own, which it may restart.
#[async_trait::async_trait]
pub trait RestartableHub: Send + Sync {
    /// The worker on it.
    fn worker(&self) -> Arc<Worker>;
    /// Stops the runtime, dropping what it holds in memory, and starts it again over the same
    /// storage; the worker goes with it and a new one connects.
    async fn restart(&self) -> HubResult<()>;
}

/// Workflow runtimes a case can have of its own.
#[async_trait::async_trait]
pub trait HubRestarts: Send + Sync {
    /// A new runtime, over the component's storage, with a worker connected.
    async fn own(&self) -> HubResult<Arc<dyn RestartableHub>>;
}

/// Runtimes certify can restart.
pub const RESTARTS: Reach = Reach::of::<dyn HubRestarts>("workflow runtime certify can restart")
    .hinted("certify restarts only a workflow engine it runs in-process")
    .inherent();

/// The workflows suite. Its cases need certify's worker, but for the HTTP facade's.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[], cases: rules::cases, prepare: None };
