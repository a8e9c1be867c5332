//! certify's workflow worker: it takes work items from a [`TaskHub`], runs the
//! [`catalogue`](super::catalogue)'s workflows by replay and its activities, and answers. It
//! keeps a log of what it was shown and what it did (every turn's request and actions, every
//! activity execution), which is what the cases judge the sidecar by. A stream that ends is
//! opened again until the worker is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::work_item::Request as Work;
use runtime_api::durabletask::workflow_action::WorkflowActionType as Action;
use runtime_api::durabletask::*;

use super::TaskHub;
use super::catalogue;
use super::replay::{Outcome, Replay, Wait, failure};

/// One turn as the worker saw it.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The work item's request.
    pub request: WorkflowRequest,
    /// The actions the worker answered with.
    pub actions: Vec<WorkflowAction>,
    /// When it arrived.
    pub at: SystemTime,
}

#[derive(Default)]
struct Log {
    turns: HashMap<String, Vec<Turn>>,
    /// Executions by (instance, task id).
    activities: HashMap<(String, i32), u32>,
    errors: Vec<String>,
}

/// The worker, connected to one hub.
pub struct Worker {
    hub: Arc<dyn TaskHub>,
    log: Mutex<Log>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Worker {
    /// A worker taking work from `hub` from now on.
    pub fn start(hub: Arc<dyn TaskHub>) -> Arc<Self> {
        let worker = Arc::new(Self { hub, log: Mutex::default(), stop: tokio::sync::watch::Sender::new(false) });
        tokio::spawn(listen(Arc::downgrade(&worker), worker.stop.subscribe()));
        worker
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub it works for.
    pub fn hub(&self) -> &Arc<dyn TaskHub> {
        &self.hub
    }

    /// The turns of instance `id` so far, in order.
    pub fn turns(&self, id: &str) -> Vec<Turn> {
        self.log().turns.get(id).cloned().unwrap_or_default()
    }

    /// How many times the activity of task `task` of instance `id` ran.
    pub fn executions(&self, id: &str, task: i32) -> u32 {
        self.log().activities.get(&(id.to_owned(), task)).copied().unwrap_or(0)
    }

    /// Answers the hub refused, naming the instance.
    pub fn errors(&self) -> Vec<String> {
        self.log().errors.clone()
    }

    async fn handle(self: Arc<Self>, item: WorkItem) {
        let token = item.completion_token;
        match item.request {
            Some(Work::WorkflowRequest(request)) => {
                let mut response = answer(&request);
                response.completion_token = token;
                let id = request.instance_id.clone();
                let turn = Turn { request, actions: response.actions.clone(), at: SystemTime::now() };
                self.log().turns.entry(id.clone()).or_default().push(turn);
                let answered = match id.contains(super::OLD_NAME_MARK) {
                    true => self.hub.complete_turn_by_old_name(response).await,
                    false => self.hub.complete_turn(response).await,
                };
                if let Err(e) = answered {
                    self.log().errors.push(format!("completing a turn of `{id}`: {e}"));
                }
            }
            Some(Work::ActivityRequest(request)) => {
                let id = request.workflow_instance.as_ref().map(|w| w.instance_id.clone()).unwrap_or_default();
                *self.log().activities.entry((id.clone(), request.task_id)).or_default() += 1;
                let outcome = catalogue::activity(&request.name, request.input.as_deref());
                let (result, failure_details) = match outcome {
                    Ok(result) => (result, None),
                    Err(failure) => (None, Some(failure)),
                };
                let response = ActivityResponse {
                    instance_id: id.clone(),
                    task_id: request.task_id,
                    result,
                    failure_details,
                    completion_token: token,
                };
                if let Err(e) = self.hub.complete_activity(response).await {
                    self.log().errors.push(format!("completing activity {} of `{id}`: {e}", request.task_id));
                }
            }
            None => {}
        }
    }
}

/// Takes work items until the worker is dropped, opening the stream again when it ends.
async fn listen(worker: Weak<Worker>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let Some(hub) = worker.upgrade().map(|w| Arc::clone(&w.hub)) else { return };
        let stream = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            stream = hub.work_items() => stream,
        };
        drop(hub);
        if let Ok(mut items) = stream {
            loop {
                let item = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    item = items.next() => item,
                };
                let Some(Ok(item)) = item else { break };
                let Some(worker) = worker.upgrade() else { return };
                tokio::spawn(worker.handle(item));
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// The worker's answer to a turn.
pub fn answer(request: &WorkflowRequest) -> WorkflowResponse {
    let (past, new) = (&request.past_events, &request.new_events);
    let all = || past.iter().chain(new).filter_map(|e| e.event_type.as_ref());
    let respond =
        |actions| WorkflowResponse { instance_id: request.instance_id.clone(), actions, ..Default::default() };
    if let Some(output) = all().find_map(|e| match e {
        EventType::ExecutionTerminated(t) => Some(t.input.clone()),
        _ => None,
    }) {
        return respond(vec![complete(0, OrchestrationStatus::Terminated, Ok(output))]);
    }
    let suspended = all()
        .rev()
        .find_map(|e| match e {
            EventType::ExecutionSuspended(_) => Some(true),
            EventType::ExecutionResumed(_) => Some(false),
            _ => None,
        })
        .unwrap_or(false);
    if suspended {
        return respond(Vec::new());
    }
    let name = all().find_map(|e| match e {
        EventType::ExecutionStarted(s) => Some(s.name.clone()),
        _ => None,
    });
    let Some(workflow) = name.as_deref().and_then(catalogue::workflow) else {
        let why = format!("certify's worker has no workflow `{}`", name.unwrap_or_default());
        return respond(vec![complete(0, OrchestrationStatus::Failed, Err(failure("WorkflowNotRegistered", why)))]);
    };
    let mut replay = Replay::new(&request.instance_id, past, new);
    let outcome = workflow(&mut replay);
    let id = replay.next_id();
    let mut actions = std::mem::take(&mut replay.actions);
    match outcome {
        Err(Wait::Pending) => {}
        Err(Wait::NonDeterminism(why)) => {
            return respond(vec![complete(id, OrchestrationStatus::Failed, Err(failure("NonDeterminism", why)))]);
        }
        Ok(Outcome::Done(Ok(output))) => actions.push(complete(id, OrchestrationStatus::Completed, Ok(output))),
        Ok(Outcome::Done(Err(failed))) => actions.push(complete(id, OrchestrationStatus::Failed, Err(failed))),
        Ok(Outcome::ContinueAsNew(input)) => actions.push(complete(id, OrchestrationStatus::ContinuedAsNew, Ok(input))),
    }
    respond(actions)
}

fn complete(id: i32, status: OrchestrationStatus, end: Result<Option<String>, TaskFailureDetails>) -> WorkflowAction {
    let (result, failure_details) = match end {
        Ok(result) => (result, None),
        Err(failure) => (None, Some(failure)),
    };
    let done = CompleteWorkflowAction { workflow_status: status as i32, result, failure_details, ..Default::default() };
    WorkflowAction { id, router: None, workflow_action_type: Some(Action::CompleteWorkflow(done)) }
}
