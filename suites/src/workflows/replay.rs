//! How certify's worker runs a workflow: from the start on every turn, over the whole history
//! (actors-workflows-jobs.md §2.5). Each scheduling call takes the next sequence number; the
//! history event with that id says whether it was scheduled and how it ended, and a call with
//! no event yet becomes an action. A call that must wait returns [`Wait::Pending`], so a
//! workflow is written with `?` as straight-line code. A history event of another kind at a
//! call's id is non-determinism, and the workflow fails.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::workflow_action::WorkflowActionType as Action;
use runtime_api::durabletask::*;

/// Why a workflow cannot go on this turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// It waits on something not yet in history.
    Pending,
    /// The history does not match what the workflow does now.
    NonDeterminism(String),
}

/// A step of a workflow: its value, or why it stops here.
pub type Step<T> = Result<T, Wait>;

/// How a workflow ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Completed with this output, or failed with these details.
    Done(Result<Option<String>, TaskFailureDetails>),
    /// Starts again with this input.
    ContinueAsNew(Option<String>),
}

/// A failure, as a workflow or activity reports one.
pub fn failure(kind: &str, message: impl Into<String>) -> TaskFailureDetails {
    TaskFailureDetails { error_type: kind.into(), error_message: message.into(), ..Default::default() }
}

/// One run of a workflow over its history.
pub struct Replay<'h> {
    events: Vec<&'h HistoryEvent>,
    /// The input of its execution.
    pub input: Option<String>,
    /// Its instance id.
    pub instance_id: String,
    now: SystemTime,
    next_id: i32,
    consumed: HashMap<String, usize>,
    /// Actions new this turn.
    pub actions: Vec<WorkflowAction>,
}

impl<'h> Replay<'h> {
    /// A run over `past` then `new`.
    pub fn new(instance_id: &str, past: &'h [HistoryEvent], new: &'h [HistoryEvent]) -> Self {
        let events: Vec<&HistoryEvent> = past.iter().chain(new).collect();
        let now = events
            .iter()
            .rev()
            .find(|e| matches!(e.event_type, Some(EventType::WorkflowStarted(_))))
            .and_then(|e| e.timestamp)
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or_else(SystemTime::now);
        let input = events.iter().find_map(|e| match &e.event_type {
            Some(EventType::ExecutionStarted(s)) => Some(s.input.clone()),
            _ => None,
        });
        Self {
            events,
            input: input.flatten(),
            instance_id: instance_id.to_owned(),
            now,
            next_id: 0,
            consumed: HashMap::new(),
            actions: Vec::new(),
        }
    }

    /// The turn's time: the last `workflowStarted`.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// The execution's first turn's time: the first `workflowStarted`.
    pub fn started(&self) -> SystemTime {
        self.events
            .iter()
            .find(|e| matches!(e.event_type, Some(EventType::WorkflowStarted(_))))
            .and_then(|e| e.timestamp)
            .and_then(|t| SystemTime::try_from(t).ok())
            .unwrap_or(self.now)
    }

    /// The next sequence number.
    pub fn next_id(&self) -> i32 {
        self.next_id
    }

    fn at(&self, id: i32) -> Option<&'h EventType> {
        self.events.iter().find(|e| e.event_id == id && is_scheduling(e)).and_then(|e| e.event_type.as_ref())
    }

    fn find<T>(&self, pick: impl Fn(&'h EventType) -> Option<T>) -> Option<T> {
        self.events.iter().filter_map(|e| e.event_type.as_ref()).find_map(pick)
    }

    fn claim(&mut self, expected: &str, matches: impl Fn(&EventType) -> bool, action: Action) -> Step<(i32, bool)> {
        let id = self.next_id;
        self.next_id += 1;
        match self.at(id) {
            Some(event) if matches(event) => Ok((id, true)),
            Some(other) => Err(Wait::NonDeterminism(format!(
                "history has {} at id {id} where the workflow now does {expected}",
                kind_name(other)
            ))),
            None => {
                self.actions.push(WorkflowAction { id, router: None, workflow_action_type: Some(action) });
                Ok((id, false))
            }
        }
    }

    /// Runs activity `name` with `input`: its result, or its failure.
    pub fn activity(&mut self, name: &str, input: Option<String>) -> Step<Result<Option<String>, TaskFailureDetails>> {
        // Derived, not random: a turn sent again yields the same id.
        let task_execution_id = format!("{}:{}", self.instance_id, self.next_id);
        let action = Action::ScheduleTask(ScheduleTaskAction {
            name: name.into(),
            input,
            task_execution_id,
            ..Default::default()
        });
        let (id, scheduled) = self.claim(
            &format!("activity `{name}`"),
            |e| matches!(e, EventType::TaskScheduled(t) if t.name == name),
            action,
        )?;
        if !scheduled {
            return Err(Wait::Pending);
        }
        self.find(|e| match e {
            EventType::TaskCompleted(c) if c.task_scheduled_id == id => Some(Ok(c.result.clone())),
            EventType::TaskFailed(f) if f.task_scheduled_id == id => {
                Some(Err(f.failure_details.clone().unwrap_or_default()))
            }
            _ => None,
        })
        .ok_or(Wait::Pending)
    }

    /// Waits `delay` on a durable timer.
    pub fn timer(&mut self, delay: Duration) -> Step<()> {
        let fire_at = self.now.checked_add(delay).unwrap_or(self.now);
        let action = Action::CreateTimer(CreateTimerAction {
            fire_at: Some(fire_at.into()),
            name: None,
            origin: Some(create_timer_action::Origin::CreateTimer(TimerOriginCreateTimer {})),
        });
        let (id, created) = self.claim("a timer", |e| matches!(e, EventType::TimerCreated(_)), action)?;
        if !created {
            return Err(Wait::Pending);
        }
        self.find(|e| matches!(e, EventType::TimerFired(f) if f.timer_id == id).then_some(())).ok_or(Wait::Pending)
    }

    /// Runs child workflow `name` as instance `child_id`: its output, or its failure.
    pub fn child(
        &mut self,
        name: &str,
        child_id: &str,
        input: Option<String>,
    ) -> Step<Result<Option<String>, TaskFailureDetails>> {
        let action = Action::CreateChildWorkflow(CreateChildWorkflowAction {
            instance_id: child_id.into(),
            name: name.into(),
            input,
            ..Default::default()
        });
        let (id, created) = self.claim(
            &format!("child workflow `{name}`"),
            |e| matches!(e, EventType::ChildWorkflowInstanceCreated(c) if c.name == name),
            action,
        )?;
        if !created {
            return Err(Wait::Pending);
        }
        self.find(|e| match e {
            EventType::ChildWorkflowInstanceCompleted(c) if c.task_scheduled_id == id => Some(Ok(c.result.clone())),
            EventType::ChildWorkflowInstanceFailed(f) if f.task_scheduled_id == id => {
                Some(Err(f.failure_details.clone().unwrap_or_default()))
            }
            _ => None,
        })
        .ok_or(Wait::Pending)
    }

    /// Waits for the next event named `name` (case-insensitive): each event is taken once, in
    /// the order raised.
    pub fn event(&mut self, name: &str) -> Step<Option<String>> {
        let key = name.to_lowercase();
        let taken = self.consumed.get(&key).copied().unwrap_or(0);
        let found = self
            .events
            .iter()
            .filter_map(|e| match &e.event_type {
                Some(EventType::EventRaised(r)) if r.name.to_lowercase() == key => Some(r.input.clone()),
                _ => None,
            })
            .nth(taken);
        match found {
            Some(input) => {
                self.consumed.insert(key, taken + 1);
                Ok(input)
            }
            None => Err(Wait::Pending),
        }
    }
}

/// The events a scheduling call's id names (as opposed to their completions).
fn is_scheduling(e: &HistoryEvent) -> bool {
    matches!(
        e.event_type,
        Some(
            EventType::TaskScheduled(_)
                | EventType::TimerCreated(_)
                | EventType::ChildWorkflowInstanceCreated(_)
                | EventType::EventSent(_)
                | EventType::DetachedWorkflowInstanceCreated(_)
        )
    )
}

/// An event kind's name, for messages.
pub fn kind_name(e: &EventType) -> &'static str {
    match e {
        EventType::ExecutionStarted(_) => "executionStarted",
        EventType::ExecutionCompleted(_) => "executionCompleted",
        EventType::ExecutionTerminated(_) => "executionTerminated",
        EventType::TaskScheduled(_) => "taskScheduled",
        EventType::TaskCompleted(_) => "taskCompleted",
        EventType::TaskFailed(_) => "taskFailed",
        EventType::ChildWorkflowInstanceCreated(_) => "childWorkflowInstanceCreated",
        EventType::ChildWorkflowInstanceCompleted(_) => "childWorkflowInstanceCompleted",
        EventType::ChildWorkflowInstanceFailed(_) => "childWorkflowInstanceFailed",
        EventType::TimerCreated(_) => "timerCreated",
        EventType::TimerFired(_) => "timerFired",
        EventType::WorkflowStarted(_) => "workflowStarted",
        EventType::WorkflowCompleted(_) => "workflowCompleted",
        EventType::EventSent(_) => "eventSent",
        EventType::EventRaised(_) => "eventRaised",
        EventType::ContinueAsNew(_) => "continueAsNew",
        EventType::ExecutionSuspended(_) => "executionSuspended",
        EventType::ExecutionResumed(_) => "executionResumed",
        EventType::ExecutionStalled(_) => "executionStalled",
        EventType::DetachedWorkflowInstanceCreated(_) => "detachedWorkflowInstanceCreated",
    }
}
