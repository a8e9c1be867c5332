//! One workflow instance: its committed history, its inbox of events not yet shown to a
//! worker, the turn in flight, and the activities scheduled and not yet answered
//! (actors-workflows-jobs.md §2.5). Pure data and its rules; the engine moves it.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::{
    ActivityRequest, HistoryEvent, OrchestrationStatus, ParentInstanceInfo, TaskFailureDetails, WorkflowInstance,
    WorkflowState,
};

/// A worker's stream, by the number it got when it connected.
pub(crate) type WorkerId = u64;

/// The turn a worker holds: what it was shown as new, and the token its answer must echo.
pub(crate) struct Turn {
    pub token: String,
    pub worker: WorkerId,
    pub new_events: Vec<HistoryEvent>,
}

/// An activity scheduled by a committed turn and not yet answered.
pub(crate) struct Activity {
    pub request: ActivityRequest,
    /// The token of its current dispatch, and the worker holding it; `None` while queued.
    pub dispatch: Option<(String, WorkerId)>,
}

pub(crate) struct Instance {
    pub id: String,
    pub name: String,
    pub execution_id: String,
    pub status: OrchestrationStatus,
    pub created: SystemTime,
    pub updated: SystemTime,
    pub completed: Option<SystemTime>,
    pub scheduled_start: Option<SystemTime>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub custom_status: Option<String>,
    pub failure: Option<TaskFailureDetails>,
    pub parent: Option<ParentInstanceInfo>,
    pub tags: HashMap<String, String>,
    pub history: Vec<HistoryEvent>,
    pub inbox: Vec<HistoryEvent>,
    /// An `executionStarted` held back until the scheduled start time.
    pub deferred: Option<HistoryEvent>,
    pub turn: Option<Turn>,
    pub activities: BTreeMap<i32, Activity>,
    /// A turn for it is queued for a worker.
    pub queued: bool,
}

/// An event of the given type, stamped now.
pub(crate) fn event(event_id: i32, kind: EventType) -> HistoryEvent {
    HistoryEvent { event_id, timestamp: Some(SystemTime::now().into()), router: None, event_type: Some(kind) }
}

/// The status is final: completed, failed, terminated or canceled.
pub fn is_terminal(status: OrchestrationStatus) -> bool {
    use OrchestrationStatus as S;
    matches!(status, S::Completed | S::Failed | S::Terminated | S::Canceled)
}

impl Instance {
    pub fn workflow_instance(&self) -> WorkflowInstance {
        WorkflowInstance { instance_id: self.id.clone(), execution_id: Some(self.execution_id.clone()) }
    }

    pub fn terminal(&self) -> bool {
        is_terminal(self.status)
    }

    /// A turn can start: events wait, none is in flight, and the instance takes them (a
    /// suspended one only for a resume or a terminate; a finished one never).
    pub fn runnable(&self) -> bool {
        if self.turn.is_some() || self.inbox.is_empty() || self.terminal() {
            return false;
        }
        self.status != OrchestrationStatus::Suspended
            || self.inbox.iter().any(|e| {
                matches!(e.event_type, Some(EventType::ExecutionResumed(_) | EventType::ExecutionTerminated(_)))
            })
    }

    /// The status the committed history gives, before any completion.
    pub fn status_after(&mut self, events: &[HistoryEvent]) {
        for e in events {
            match e.event_type {
                Some(EventType::ExecutionStarted(_) | EventType::ExecutionResumed(_)) => {
                    self.status = OrchestrationStatus::Running;
                }
                Some(EventType::ExecutionSuspended(_)) => self.status = OrchestrationStatus::Suspended,
                _ => {}
            }
        }
    }

    /// The child instances its history created.
    pub fn children(&self) -> Vec<String> {
        self.history
            .iter()
            .filter_map(|e| match &e.event_type {
                Some(EventType::ChildWorkflowInstanceCreated(c)) => Some(c.instance_id.clone()),
                _ => None,
            })
            .collect()
    }

    /// The state `GetInstance` answers; payloads only when asked for.
    pub fn state(&self, payloads: bool) -> WorkflowState {
        let payload = |v: &Option<String>| if payloads { v.clone() } else { None };
        WorkflowState {
            instance_id: self.id.clone(),
            name: self.name.clone(),
            workflow_status: self.status as i32,
            scheduled_start_timestamp: self.scheduled_start.map(Into::into),
            created_timestamp: Some(self.created.into()),
            last_updated_timestamp: Some(self.updated.into()),
            input: payload(&self.input),
            output: payload(&self.output),
            custom_status: payload(&self.custom_status),
            failure_details: self.failure.clone(),
            execution_id: Some(self.execution_id.clone()),
            completed_timestamp: self.completed.map(Into::into),
            parent_instance_id: self
                .parent
                .as_ref()
                .and_then(|p| p.workflow_instance.as_ref())
                .map(|w| w.instance_id.clone()),
            tags: self.tags.clone(),
            ..WorkflowState::default()
        }
    }
}
