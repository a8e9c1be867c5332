//! Workflows (actors-workflows-jobs.md §2): the engine behind `TaskHubSidecarService` and the
//! HTTP facade. Workers connect with `GetWorkItems` and get work items: a workflow turn (the
//! committed history and the events new since) or an activity. A worker's answer to a turn is
//! committed at once, history and effects together; an answer with a stale token is dropped.
//! Work a worker held when its stream ends goes to the next worker. Timers are tasks that put
//! `timerFired` into the inbox no earlier than due. The engine never runs workflow code: the
//! SDKs replay it. Over a state store ([`Engine::durable`]) every change is written before the
//! call that made it answers, and [`Engine::restore`] takes the instances up after a restart:
//! pending timers re-armed, unanswered activities and uncommitted events sent again.

mod durable;
mod instance;
mod ops;
mod store;
mod turn;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::SystemTime;

use runtime_api::durabletask::history_event::EventType;

use runtime_api::durabletask::*;
use tokio::sync::{mpsc, watch};

use contract::StateStore;
use instance::{Instance, WorkerId, event};
use ops::{Disconnect, enqueue_turn, fire, orphan, purge, raise, release, take_work, terminate};
use store::WorkflowStore;
use turn::Effect;

pub use instance::is_terminal as status_is_terminal;

/// The state store a `workflows.*` component keeps workflows in: an engine certify runs
/// in-process is built over it ([`Engine::durable`]).
pub struct WorkflowStateStore(pub Arc<dyn StateStore>);

/// Registers `workflows.<store>` for every `state.<store>` of `registry`: workflows kept in
/// that store (`workflows.redis` keeps them in Redis). Plain gets and sets suffice.
pub fn register_over_state_stores(registry: &mut contract::Registry) {
    crate::register_over_state_stores(registry, contract::Block::WORKFLOWS, |_, store| {
        Ok(contract::Component::new(contract::Block::WORKFLOWS).with(Arc::new(WorkflowStateStore(store))))
    });
}

/// What a workflow call fails with, by the status daprd answers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkflowError {
    /// No instance has this id.
    #[error("no such instance exists: {0}")]
    NotFound(String),
    /// A running instance already has this id.
    #[error("an active workflow with ID '{0}' already exists")]
    AlreadyExists(String),
    /// Purge of an instance still running.
    #[error("orchestration has not yet completed: {0}")]
    NotCompleted(String),
    /// A request the protocol rules out.
    #[error("{0}")]
    Invalid(String),
    /// The change is made but could not be kept in the state store.
    #[error("{0}")]
    Store(String),
}

/// Malformed answers in a row after which an instance fails instead of being offered again.
const MAX_REFUSALS: u32 = 3;

/// A work item on its way to a worker.
pub type WorkItemSender = mpsc::UnboundedSender<WorkItem>;

enum Queued {
    Turn(String),
    Activity(String, i32),
}

#[derive(Default)]
struct Inner {
    instances: HashMap<String, Instance>,
    workers: Vec<(WorkerId, WorkItemSender)>,
    next_worker: WorkerId,
    round_robin: usize,
    queue: VecDeque<Queued>,
    /// Completion tokens: a prefix of this engine's own and a counter, so an answer meant for
    /// an engine before a restart never matches.
    token_prefix: String,
    tokens: u64,
    /// Instances changed since the last write, and whether the set of ids changed.
    dirty: BTreeSet<String>,
    index_dirty: bool,
}

/// The workflows of one runtime.
pub struct Engine {
    me: Weak<Engine>,
    inner: Mutex<Inner>,
    /// Bumped on every change, for the calls that wait on a status.
    changed: watch::Sender<u64>,
    store: Option<WorkflowStore>,
    /// Held while a batch of changes is written, so batches land in order.
    writer: tokio::sync::Mutex<()>,
    /// Stopped: nothing more is written, and its timers do nothing.
    stopped: std::sync::atomic::AtomicBool,
    /// Why the kept instances could not be taken up: then nothing is written (it would
    /// overwrite them) and no instance starts.
    unusable: std::sync::OnceLock<String>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Engine {
    /// An engine keeping its instances in memory only.
    pub fn new() -> Arc<Self> {
        Self::with_store(None)
    }

    /// An engine keeping its instances in `store` under keys starting `prefix`; call
    /// [`Engine::restore`] to take up those kept by an earlier run.
    pub fn durable(store: Arc<dyn StateStore>, prefix: String) -> Arc<Self> {
        Self::with_store(Some(WorkflowStore::new(store, prefix)))
    }

    fn with_store(store: Option<WorkflowStore>) -> Arc<Self> {
        let inner =
            Inner { token_prefix: uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(), ..Inner::default() };
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            inner: Mutex::new(inner),
            changed: watch::Sender::new(0),
            store,
            writer: tokio::sync::Mutex::new(()),
            stopped: std::sync::atomic::AtomicBool::new(false),
            unusable: std::sync::OnceLock::new(),
        })
    }

    fn mutate<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = {
            let mut inner = locked(&self.inner);
            let out = f(&mut inner);
            self.pump(&mut inner);
            out
        };
        self.changed.send_modify(|n| *n += 1);
        out
    }

    /// Starts an instance; its id (generated when empty).
    pub async fn start(&self, request: CreateInstanceRequest) -> Result<String, WorkflowError> {
        if request.name.is_empty() {
            return Err(WorkflowError::Invalid("a workflow name is required".into()));
        }
        if let Some(why) = self.unusable.get() {
            return Err(WorkflowError::Store(format!("workflows are not kept: {why}")));
        }
        let id = self.mutate(|inner| self.create(inner, request, None, false))?;
        self.flush().await?;
        Ok(id)
    }

    fn create(
        &self,
        inner: &mut Inner,
        request: CreateInstanceRequest,
        parent: Option<ParentInstanceInfo>,
        idempotent: bool,
    ) -> Result<String, WorkflowError> {
        let id = if request.instance_id.is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            request.instance_id.clone()
        };
        if let Some(existing) = inner.instances.get(&id)
            && !existing.terminal()
        {
            return if idempotent { Ok(id) } else { Err(WorkflowError::AlreadyExists(id)) };
        }
        let now = SystemTime::now();
        let execution_id = request.execution_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let scheduled_start = request.scheduled_start_timestamp.and_then(|t| SystemTime::try_from(t).ok());
        let started = ExecutionStartedEvent {
            name: request.name.clone(),
            version: request.version.clone(),
            input: request.input.clone(),
            workflow_instance: Some(WorkflowInstance {
                instance_id: id.clone(),
                execution_id: Some(execution_id.clone()),
            }),
            parent_instance: parent.clone(),
            scheduled_start_timestamp: request.scheduled_start_timestamp,
            parent_trace_context: request.parent_trace_context.clone(),
            tags: request.tags.clone(),
            ..Default::default()
        };
        let started = event(-1, EventType::ExecutionStarted(started));
        let later = scheduled_start.filter(|at| *at > now);
        let mut inst = Instance {
            id: id.clone(),
            name: request.name,
            execution_id,
            status: OrchestrationStatus::Pending,
            created: now,
            updated: now,
            completed: None,
            scheduled_start,
            input: request.input,
            output: None,
            custom_status: None,
            failure: None,
            parent,
            tags: request.tags,
            history: Vec::new(),
            inbox: Vec::new(),
            deferred: None,
            turn: None,
            activities: Default::default(),
            queued: false,
            refusals: 0,
        };
        match later {
            Some(at) => {
                inst.deferred = Some(started);
                let execution = inst.execution_id.clone();
                self.arm(at, id.clone(), move |engine, id| engine.mutate(|inner| release(inner, &id, &execution)));
            }
            None => inst.inbox.push(started),
        }
        inner.instances.insert(id.clone(), inst);
        inner.index_dirty = true;
        inner.dirty.insert(id.clone());
        enqueue_turn(inner, &id);
        Ok(id)
    }

    /// Runs `then` at `at` (no earlier), if the engine still exists.
    fn arm(&self, at: SystemTime, id: String, then: impl FnOnce(&Engine, String) + Send + 'static) {
        let me = self.me.clone();
        tokio::spawn(async move {
            while let Ok(left) = at.duration_since(SystemTime::now()) {
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left).await;
            }
            if let Some(engine) = me.upgrade().filter(|e| !e.is_stopped()) {
                then(&engine, id);
                let _ = engine.flush().await;
            }
        });
    }

    /// The instance's state, `None` when there is none.
    pub fn get(&self, id: &str, payloads: bool) -> Option<WorkflowState> {
        locked(&self.inner).instances.get(id).map(|i| i.state(payloads))
    }

    /// The instance's committed history.
    pub fn history(&self, id: &str) -> Option<Vec<HistoryEvent>> {
        locked(&self.inner).instances.get(id).map(|i| i.history.clone())
    }

    /// Waits until the instance's status satisfies `until` (or it is gone): its state then.
    pub async fn wait(
        &self,
        id: &str,
        payloads: bool,
        until: impl Fn(OrchestrationStatus) -> bool,
    ) -> Option<WorkflowState> {
        let mut changes = self.changed.subscribe();
        loop {
            changes.borrow_and_update();
            let state = self.get(id, payloads)?;
            let status = OrchestrationStatus::try_from(state.workflow_status).unwrap_or_default();
            if until(status) {
                return Some(state);
            }
            if changes.changed().await.is_err() {
                return Some(state);
            }
        }
    }

    /// Puts `eventRaised` into the instance's inbox; dropped if it has ended.
    pub async fn raise(&self, id: &str, name: &str, input: Option<String>) -> Result<(), WorkflowError> {
        self.mutate(|inner| raise(inner, id, name, input))?;
        self.flush().await
    }

    /// Asks the instance to end as TERMINATED with `output`; its children too if `recurse`.
    /// Ended instances are left as they are.
    pub async fn terminate(&self, id: &str, output: Option<String>, recurse: bool) -> Result<(), WorkflowError> {
        self.mutate(|inner| terminate(inner, id, output, recurse))?;
        self.flush().await
    }

    /// Suspends a running instance: its events wait until it resumes.
    pub async fn suspend(&self, id: &str, reason: Option<String>) -> Result<(), WorkflowError> {
        self.mutate(|inner| {
            let inst = inner.instances.get_mut(id).ok_or_else(|| WorkflowError::NotFound(id.into()))?;
            if !inst.terminal() {
                inst.inbox.push(event(-1, EventType::ExecutionSuspended(ExecutionSuspendedEvent { input: reason })));
                enqueue_turn(inner, id);
            }
            Ok(())
        })?;
        self.flush().await
    }

    /// Resumes a suspended instance.
    pub async fn resume(&self, id: &str, reason: Option<String>) -> Result<(), WorkflowError> {
        self.mutate(|inner| {
            let inst = inner.instances.get_mut(id).ok_or_else(|| WorkflowError::NotFound(id.into()))?;
            if !inst.terminal() {
                inst.inbox.push(event(-1, EventType::ExecutionResumed(ExecutionResumedEvent { input: reason })));
                enqueue_turn(inner, id);
            }
            Ok(())
        })?;
        self.flush().await
    }

    /// Deletes an ended instance (and its children if `recurse`): how many were deleted.
    pub async fn purge(&self, id: &str, recurse: bool) -> Result<i32, WorkflowError> {
        let count = self.mutate(|inner| purge(inner, id, recurse))?;
        self.flush().await?;
        Ok(count)
    }

    /// A worker connects: the work items it is to run, until the stream is dropped (then what
    /// it held goes to the next worker).
    pub fn work_items(self: &Arc<Self>) -> impl futures::Stream<Item = WorkItem> + Send + 'static {
        let (worker, rx) = self.connect();
        let gone = Disconnect { engine: Arc::clone(self), worker };
        futures::StreamExt::map(tokio_stream::wrappers::UnboundedReceiverStream::new(rx), move |item| {
            let _held = &gone;
            item
        })
    }

    fn connect(&self) -> (WorkerId, mpsc::UnboundedReceiver<WorkItem>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.mutate(|inner| {
            inner.next_worker += 1;
            inner.workers.push((inner.next_worker, tx));
            inner.next_worker
        });
        (id, rx)
    }

    /// A worker's stream ended: what it held goes to the queue again.
    fn disconnect(&self, worker: WorkerId) {
        self.mutate(|inner| orphan(inner, worker));
    }

    /// How many workers are connected.
    pub fn workers(&self) -> usize {
        locked(&self.inner).workers.len()
    }

    /// A worker's answer to a turn. An answer with another turn's token, or for no turn, is
    /// stale and dropped.
    pub async fn complete_turn(&self, response: WorkflowResponse) -> Result<(), WorkflowError> {
        self.mutate(|inner| {
            let id = response.instance_id.clone();
            let inst = inner.instances.get_mut(&id).ok_or_else(|| WorkflowError::NotFound(id.clone()))?;
            let Some(turn) =
                inst.turn.take_if(|t| response.completion_token.is_empty() || t.token == response.completion_token)
            else {
                tracing::debug!(instance = %id, "a stale workflow answer, dropped");
                return Ok(());
            };
            let response = match turn::check(inst, &response) {
                Ok(()) => {
                    inst.refusals = 0;
                    response
                }
                Err(why) if inst.refusals + 1 < MAX_REFUSALS => {
                    // Nothing is committed: the turn's events wait for the next one.
                    inst.refusals += 1;
                    let mut events: Vec<HistoryEvent> = turn.new_events.into_iter().skip(1).collect();
                    events.append(&mut inst.inbox);
                    inst.inbox = events;
                    enqueue_turn(inner, &id);
                    return Err(WorkflowError::Invalid(format!("a malformed answer to a turn of `{id}`: {why}")));
                }
                // A worker that keeps answering wrong would loop forever: the instance fails.
                Err(why) => turn::failing(&id, &format!("{MAX_REFUSALS} malformed answers in a row, the last: {why}")),
            };
            let effects = turn::commit(inst, turn.new_events, response);
            for effect in effects {
                self.apply(inner, effect);
            }
            inner.dirty.insert(id.clone());
            enqueue_turn(inner, &id);
            Ok(())
        })?;
        self.flush().await
    }

    /// A worker's answer to an activity; one for a task no longer pending is dropped.
    pub async fn complete_activity(&self, response: ActivityResponse) -> Result<(), WorkflowError> {
        self.mutate(|inner| {
            let id = response.instance_id.clone();
            let Some(inst) = inner.instances.get_mut(&id) else { return Ok(()) };
            let current = inst.activities.get(&response.task_id).is_some_and(|a| {
                response.completion_token.is_empty()
                    || a.dispatch.as_ref().is_some_and(|(token, _)| *token == response.completion_token)
            });
            if !current {
                tracing::debug!(instance = %id, task = response.task_id, "a stale activity answer, dropped");
                return Ok(());
            }
            let Some(activity) = inst.activities.remove(&response.task_id) else { return Ok(()) };
            let execution_id = activity.request.task_execution_id;
            let kind = match response.failure_details {
                Some(failure) => EventType::TaskFailed(TaskFailedEvent {
                    task_scheduled_id: response.task_id,
                    failure_details: Some(failure),
                    task_execution_id: execution_id,
                    ..Default::default()
                }),
                None => EventType::TaskCompleted(TaskCompletedEvent {
                    task_scheduled_id: response.task_id,
                    result: response.result,
                    task_execution_id: execution_id,
                    ..Default::default()
                }),
            };
            inst.inbox.push(event(-1, kind));
            enqueue_turn(inner, &id);
            Ok(())
        })?;
        self.flush().await
    }

    fn apply(&self, inner: &mut Inner, effect: Effect) {
        match effect {
            Effect::Start(request, parent) => {
                if let Err(e) = self.create(inner, request, parent, true) {
                    tracing::warn!(error = %e, "a workflow's child could not start");
                }
            }
            Effect::Timer { instance, execution, id, fire_at } => {
                self.arm(fire_at, instance, move |engine, instance| {
                    engine.mutate(|inner| fire(inner, &instance, &execution, id, fire_at));
                });
            }
            Effect::Raise { instance, name, input } => {
                let _ = raise(inner, &instance, &name, input);
            }
            Effect::Terminate { instance, output, recurse } => {
                let _ = terminate(inner, &instance, output, recurse);
            }
            Effect::Parent { parent, event } => {
                if let Some(p) = inner.instances.get_mut(&parent).filter(|p| !p.terminal()) {
                    p.inbox.push(event);
                    enqueue_turn(inner, &parent);
                }
            }
            Effect::Dispatch { instance, task } => inner.queue.push_back(Queued::Activity(instance, task)),
        }
    }

    /// Sends queued work to the workers, round robin, while there are both.
    fn pump(&self, inner: &mut Inner) {
        while !inner.workers.is_empty() {
            let Some(work) = inner.queue.pop_front() else { return };
            inner.round_robin = (inner.round_robin + 1) % inner.workers.len();
            let (worker, tx) = inner.workers[inner.round_robin].clone();
            inner.tokens += 1;
            let token = format!("{}-{}", inner.token_prefix, inner.tokens);
            let Some(item) = take_work(inner, &work, worker, &token) else { continue };
            if tx.send(WorkItem { request: Some(item), completion_token: token }).is_err() {
                orphan(inner, worker);
            }
        }
    }
}

#[cfg(test)]
mod tests;
