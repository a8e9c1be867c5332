//! One workflow instance: its committed history, its inbox of events not yet shown to a
//! worker, the turn in flight, and the activities scheduled and not yet answered
//! (actors-workflows-jobs.md §2.5). Pure data and its rules; the engine moves it.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use runtime_api::durabletask::history_event::EventType;

use super::store::Snapshot;
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
    /// Answers to its current turn refused as malformed, in a row.
    pub refusals: u32,
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
    /// suspended one only for a resume or a terminate; a finished one, or one whose scheduled
    /// start has not come, never).
    pub fn runnable(&self) -> bool {
        if self.turn.is_some() || self.inbox.is_empty() || self.terminal() || self.deferred.is_some() {
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

impl Instance {
    /// Its kept form: a turn in flight counts as not yet committed.
    pub fn snapshot(&self) -> Snapshot {
        let mut inbox: Vec<HistoryEvent> =
            self.turn.iter().flat_map(|t| t.new_events.iter().skip(1).cloned()).collect();
        inbox.extend(self.inbox.iter().cloned());
        Snapshot {
            state: Some(self.state(true)),
            history: self.history.clone(),
            inbox,
            deferred: self.deferred.clone(),
            activities: self.activities.values().map(|a| a.request.clone()).collect(),
            parent: self.parent.clone(),
        }
    }

    /// An instance taken up from its kept form: nothing dispatched, nothing queued.
    pub fn restored(snapshot: Snapshot) -> Option<Self> {
        let state = snapshot.state?;
        let time = |t: Option<prost_types::Timestamp>| t.and_then(|t| SystemTime::try_from(t).ok());
        let now = SystemTime::now();
        Some(Self {
            id: state.instance_id,
            name: state.name,
            execution_id: state.execution_id.unwrap_or_default(),
            status: OrchestrationStatus::try_from(state.workflow_status).unwrap_or_default(),
            created: time(state.created_timestamp).unwrap_or(now),
            updated: time(state.last_updated_timestamp).unwrap_or(now),
            completed: time(state.completed_timestamp),
            scheduled_start: time(state.scheduled_start_timestamp),
            input: state.input,
            output: state.output,
            custom_status: state.custom_status,
            failure: state.failure_details,
            parent: snapshot.parent,
            tags: state.tags,
            history: snapshot.history,
            inbox: snapshot.inbox,
            deferred: snapshot.deferred,
            turn: None,
            activities: snapshot
                .activities
                .into_iter()
                .map(|request| (request.task_id, Activity { request, dispatch: None }))
                .collect(),
            queued: false,
            refusals: 0,
        })
    }

    /// Durable timers created and not yet fired: (id, due).
    pub fn pending_timers(&self) -> Vec<(i32, SystemTime)> {
        let fired: Vec<i32> = self
            .history
            .iter()
            .chain(&self.inbox)
            .filter_map(|e| match &e.event_type {
                Some(EventType::TimerFired(f)) => Some(f.timer_id),
                _ => None,
            })
            .collect();
        self.history
            .iter()
            .filter_map(|e| match &e.event_type {
                Some(EventType::TimerCreated(t)) if !fired.contains(&e.event_id) => {
                    Some((e.event_id, t.fire_at.and_then(|t| SystemTime::try_from(t).ok())?))
                }
                _ => None,
            })
            .collect()
    }
}
