//! Committing a worker's answer to a turn: the new events join the history, then each action
//! writes its event (its id the action's) and yields the effects it has beyond this
//! instance, all at once (actors-workflows-jobs.md §2.5).

use std::time::SystemTime;

use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::workflow_action::WorkflowActionType as Action;
use runtime_api::durabletask::*;

use super::instance::{Activity, Instance, event};

/// What a committed turn asks of other instances and of time.
pub(crate) enum Effect {
    /// Start a child (or detached) instance.
    Start(CreateInstanceRequest, Option<ParentInstanceInfo>),
    /// Arm a durable timer.
    Timer { instance: String, execution: String, id: i32, fire_at: SystemTime },
    /// Raise an event on another instance.
    Raise { instance: String, name: String, input: Option<String> },
    /// Terminate another instance.
    Terminate { instance: String, output: Option<String>, recurse: bool },
    /// Tell the parent how its child ended.
    Parent { parent: String, event: HistoryEvent },
    /// Queue the activity scheduled with this id.
    Dispatch { instance: String, task: i32 },
}

/// The answer the engine commits for a worker whose answers keep being malformed: the
/// workflow fails with `why`.
pub(crate) fn failing(id: &str, why: &str) -> WorkflowResponse {
    let failure = TaskFailureDetails {
        error_type: "MalformedWorkerAnswer".into(),
        error_message: why.into(),
        ..Default::default()
    };
    let done = CompleteWorkflowAction {
        workflow_status: OrchestrationStatus::Failed as i32,
        failure_details: Some(failure),
        ..Default::default()
    };
    let action = WorkflowAction { id: -1, router: None, workflow_action_type: Some(Action::CompleteWorkflow(done)) };
    WorkflowResponse { instance_id: id.into(), actions: vec![action], ..Default::default() }
}

/// Why a worker's answer cannot be committed: an action without a kind, two actions with
/// one id, an id the history already gave a scheduled event, or a completion with a status
/// that does not end a workflow.
pub(crate) fn check(inst: &Instance, response: &WorkflowResponse) -> Result<(), String> {
    let mut ids = std::collections::BTreeSet::new();
    for action in &response.actions {
        let Some(kind) = &action.workflow_action_type else {
            return Err(format!("action {} has no kind", action.id));
        };
        if !ids.insert(action.id) {
            return Err(format!("two actions have id {}", action.id));
        }
        let completes = matches!(kind, Action::CompleteWorkflow(_) | Action::TerminateWorkflow(_));
        if !completes && inst.history.iter().any(|e| e.event_id == action.id && e.event_id >= 0 && scheduled(e)) {
            return Err(format!("action {} reuses an id the history already has", action.id));
        }
        if let Action::CompleteWorkflow(done) = kind {
            use OrchestrationStatus as S;
            let status = OrchestrationStatus::try_from(done.workflow_status);
            if !matches!(status, Ok(S::Completed | S::Failed | S::Terminated | S::Canceled | S::ContinuedAsNew)) {
                return Err(format!(
                    "action {} completes the workflow with status {}",
                    action.id, done.workflow_status
                ));
            }
        }
    }
    Ok(())
}

fn scheduled(e: &HistoryEvent) -> bool {
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

/// Commits `turn_events` and `response` into `inst`, returning the effects.
pub(crate) fn commit(inst: &mut Instance, turn_events: Vec<HistoryEvent>, response: WorkflowResponse) -> Vec<Effect> {
    inst.status_after(&turn_events);
    inst.history.extend(turn_events);
    inst.updated = SystemTime::now();
    if let Some(custom) = response.custom_status {
        inst.custom_status = Some(custom);
    }
    let mut effects = Vec::new();
    for action in response.actions {
        let id = action.id;
        let Some(kind) = action.workflow_action_type else { continue };
        match kind {
            Action::ScheduleTask(task) => schedule(inst, id, task, &mut effects),
            Action::CreateTimer(timer) => {
                let fire_at = timer.fire_at.and_then(|t| SystemTime::try_from(t).ok()).unwrap_or_else(SystemTime::now);
                effects.push(Effect::Timer {
                    instance: inst.id.clone(),
                    execution: inst.execution_id.clone(),
                    id,
                    fire_at,
                });
                let origin = timer.origin.map(|o| match o {
                    create_timer_action::Origin::CreateTimer(x) => timer_created_event::Origin::CreateTimer(x),
                    create_timer_action::Origin::ExternalEvent(x) => timer_created_event::Origin::ExternalEvent(x),
                    create_timer_action::Origin::ActivityRetry(x) => timer_created_event::Origin::ActivityRetry(x),
                    create_timer_action::Origin::ChildWorkflowRetry(x) => {
                        timer_created_event::Origin::ChildWorkflowRetry(x)
                    }
                });
                let created = TimerCreatedEvent {
                    fire_at: Some(fire_at.into()),
                    name: timer.name,
                    rerun_parent_instance_info: None,
                    origin,
                };
                inst.history.push(event(id, EventType::TimerCreated(created)));
            }
            Action::CreateChildWorkflow(child) => {
                let child_id = if child.instance_id.is_empty() {
                    format!("{}:{:04x}", inst.id, id)
                } else {
                    child.instance_id.clone()
                };
                inst.history.push(event(
                    id,
                    EventType::ChildWorkflowInstanceCreated(ChildWorkflowInstanceCreatedEvent {
                        instance_id: child_id.clone(),
                        name: child.name.clone(),
                        version: child.version.clone(),
                        input: child.input.clone(),
                        ..Default::default()
                    }),
                ));
                let parent = ParentInstanceInfo {
                    task_scheduled_id: id,
                    name: Some(inst.name.clone()),
                    version: None,
                    workflow_instance: Some(inst.workflow_instance()),
                    app_id: None,
                    app_namespace: None,
                };
                let request = CreateInstanceRequest {
                    instance_id: child_id,
                    name: child.name,
                    version: child.version,
                    input: child.input,
                    ..Default::default()
                };
                effects.push(Effect::Start(request, Some(parent)));
            }
            Action::CreateDetachedWorkflow(detached) => {
                inst.history.push(event(
                    id,
                    EventType::DetachedWorkflowInstanceCreated(DetachedWorkflowInstanceCreatedEvent {
                        instance_id: detached.instance_id.clone(),
                    }),
                ));
                let request = CreateInstanceRequest {
                    instance_id: detached.instance_id,
                    name: detached.name,
                    version: detached.version,
                    input: detached.input,
                    scheduled_start_timestamp: detached.scheduled_start_timestamp,
                    execution_id: detached.execution_id,
                    tags: detached.tags,
                    parent_trace_context: detached.parent_trace_context,
                };
                effects.push(Effect::Start(request, None));
            }
            Action::SendEvent(send) => {
                let target = send.instance.map(|i| i.instance_id).unwrap_or_default();
                inst.history.push(event(
                    id,
                    EventType::EventSent(EventSentEvent {
                        instance_id: target.clone(),
                        name: send.name.clone(),
                        input: send.data.clone(),
                    }),
                ));
                effects.push(Effect::Raise { instance: target, name: send.name, input: send.data });
            }
            Action::TerminateWorkflow(t) => {
                effects.push(Effect::Terminate { instance: t.instance_id, output: t.reason, recurse: t.recurse });
            }
            Action::WorkflowVersionNotAvailable(_) => {
                inst.history.push(event(
                    id,
                    EventType::ExecutionStalled(ExecutionStalledEvent {
                        reason: StalledReason::VersionNotAvailable as i32,
                        description: None,
                    }),
                ));
                inst.status = OrchestrationStatus::Stalled;
            }
            Action::CompleteWorkflow(done) => {
                complete(inst, id, done, &mut effects);
                break;
            }
        }
    }
    effects
}

fn schedule(inst: &mut Instance, id: i32, task: ScheduleTaskAction, effects: &mut Vec<Effect>) {
    inst.history.push(event(
        id,
        EventType::TaskScheduled(TaskScheduledEvent {
            name: task.name.clone(),
            version: task.version.clone(),
            input: task.input.clone(),
            task_execution_id: task.task_execution_id.clone(),
            ..Default::default()
        }),
    ));
    let request = ActivityRequest {
        name: task.name,
        version: task.version,
        input: task.input,
        workflow_instance: Some(inst.workflow_instance()),
        task_id: id,
        parent_trace_context: None,
        task_execution_id: task.task_execution_id,
        propagated_history: None,
    };
    inst.activities.insert(id, Activity { request, dispatch: None });
    effects.push(Effect::Dispatch { instance: inst.id.clone(), task: id });
}

/// The workflow's last action: final, or a new execution for continue-as-new.
fn complete(inst: &mut Instance, id: i32, done: CompleteWorkflowAction, effects: &mut Vec<Effect>) {
    let status = OrchestrationStatus::try_from(done.workflow_status).unwrap_or(OrchestrationStatus::Failed);
    if status == OrchestrationStatus::ContinuedAsNew {
        inst.execution_id = uuid::Uuid::new_v4().simple().to_string();
        inst.history.clear();
        inst.activities.clear();
        inst.input = done.result.clone();
        inst.custom_status = None;
        let started = ExecutionStartedEvent {
            name: inst.name.clone(),
            input: done.result,
            workflow_instance: Some(inst.workflow_instance()),
            parent_instance: inst.parent.clone(),
            tags: inst.tags.clone(),
            ..Default::default()
        };
        let mut inbox = vec![event(-1, EventType::ExecutionStarted(started))];
        inbox.extend(done.carryover_events);
        inbox.append(&mut inst.inbox);
        inst.inbox = inbox;
        inst.status = OrchestrationStatus::Running;
        return;
    }
    inst.history.push(event(
        id,
        EventType::ExecutionCompleted(ExecutionCompletedEvent {
            workflow_status: status as i32,
            result: done.result.clone(),
            failure_details: done.failure_details.clone(),
        }),
    ));
    inst.status = status;
    inst.output = done.result.clone();
    inst.failure = done.failure_details.clone();
    inst.completed = Some(SystemTime::now());
    inst.activities.clear();
    inst.inbox.clear();
    let Some(parent) = &inst.parent else { return };
    let Some(parent_id) = parent.workflow_instance.as_ref().map(|w| w.instance_id.clone()) else { return };
    let event = child_ended(parent.task_scheduled_id, status, done.result, done.failure_details);
    effects.push(Effect::Parent { parent: parent_id, event });
}

/// The event a parent gets when its child (scheduled as `task_scheduled_id`) ends.
pub(crate) fn child_ended(
    task_scheduled_id: i32,
    status: OrchestrationStatus,
    result: Option<String>,
    failure: Option<TaskFailureDetails>,
) -> HistoryEvent {
    let kind = if status == OrchestrationStatus::Completed {
        EventType::ChildWorkflowInstanceCompleted(ChildWorkflowInstanceCompletedEvent {
            task_scheduled_id,
            result,
            ..Default::default()
        })
    } else {
        let failure = failure.unwrap_or_else(|| TaskFailureDetails {
            error_type: "WorkflowEnded".into(),
            error_message: format!("the child workflow ended {}", status.as_str_name()),
            ..Default::default()
        });
        EventType::ChildWorkflowInstanceFailed(ChildWorkflowInstanceFailedEvent {
            task_scheduled_id,
            failure_details: Some(failure),
            ..Default::default()
        })
    };
    event(-1, kind)
}
