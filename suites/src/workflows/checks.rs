//! What the workflows cases check with: starting an instance and waiting for a status, reading
//! its history (events counted, activities recorded once, timers fired), a turn against the
//! turn before it, and a refusal that is one.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::{CreateInstanceRequest, HistoryEvent, OrchestrationStatus, WorkflowState};

use super::replay::kind_name;
use super::worker::Turn;
use super::{HubResult, TaskHub, WORKER, Worker};
use crate::case::{CaseResult, Ctx, Finding};
use crate::{ensure, ensure_eq};

/// How long an instance may take to reach a status the case waits for.
pub(super) const SETTLE: Duration = Duration::from_secs(15);

pub(super) fn worker(ctx: &Ctx) -> Result<&Arc<Worker>, Finding> {
    ctx.reach(WORKER)
}

pub(super) trait Called<T> {
    fn called(self, what: &str) -> Result<T, Finding>;
}

impl<T> Called<T> for HubResult<T> {
    fn called(self, what: &str) -> Result<T, Finding> {
        self.map_err(|e| Finding::Fail(format!("{what} failed: {e}")))
    }
}

pub(super) fn status_of(state: &WorkflowState) -> OrchestrationStatus {
    OrchestrationStatus::try_from(state.workflow_status).unwrap_or_default()
}

pub(super) fn status_name(state: &WorkflowState) -> &'static str {
    status_of(state).as_str_name().trim_start_matches("ORCHESTRATION_STATUS_")
}

/// Starts `name` as instance `id` with `input`.
pub(super) async fn start(hub: &dyn TaskHub, id: &str, name: &str, input: Option<&str>) -> Result<(), Finding> {
    let request = CreateInstanceRequest {
        instance_id: id.into(),
        name: name.into(),
        input: input.map(str::to_owned),
        ..Default::default()
    };
    let started = hub.start(request).await.called(&format!("starting `{name}`"))?;
    ensure_eq!(started, id, "the instance id the start answered");
    Ok(())
}

/// Polls the instance until `until` holds of its status, for [`SETTLE`] at most.
pub(super) async fn settle(
    hub: &dyn TaskHub,
    id: &str,
    what: &str,
    until: impl Fn(OrchestrationStatus) -> bool,
) -> Result<WorkflowState, Finding> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let state = hub.get(id).await.called("getting the instance")?;
        match state {
            Some(state) if until(status_of(&state)) => return Ok(state),
            Some(state) if Instant::now() >= deadline => {
                return Err(Finding::Fail(format!("{what}: still {} after {SETTLE:?}", status_name(&state))));
            }
            None if Instant::now() >= deadline => {
                return Err(Finding::Fail(format!("{what}: the instance is gone")));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

pub(super) fn ended(s: OrchestrationStatus) -> bool {
    use OrchestrationStatus as S;
    matches!(s, S::Completed | S::Failed | S::Terminated | S::Canceled)
}

/// Waits for the instance to end and checks it COMPLETED with `output`.
pub(super) async fn completes(hub: &dyn TaskHub, id: &str, output: &str) -> Result<WorkflowState, Finding> {
    let state = settle(hub, id, "the workflow's end", ended).await?;
    let failure = state.failure_details.as_ref().map(|f| f.error_message.clone()).unwrap_or_default();
    ensure_eq!(status_name(&state), "COMPLETED", "status (failure: {failure:?})");
    ensure_eq!(state.output.as_deref(), Some(output), "output");
    Ok(state)
}

pub(super) fn count(history: &[HistoryEvent], pick: impl Fn(&EventType) -> bool) -> usize {
    history.iter().filter(|e| e.event_type.as_ref().is_some_and(&pick)).count()
}

/// Checks that `history` scheduled `n` activities and recorded one completion for each: their
/// task ids.
pub(super) fn recorded_once(history: &[HistoryEvent], n: usize) -> Result<Vec<i32>, Finding> {
    let scheduled: Vec<i32> = history
        .iter()
        .filter(|e| matches!(e.event_type, Some(EventType::TaskScheduled(_))))
        .map(|e| e.event_id)
        .collect();
    ensure_eq!(scheduled.len(), n, "activities scheduled in history");
    for &task in &scheduled {
        let done = count(history, |e| matches!(e, EventType::TaskCompleted(c) if c.task_scheduled_id == task));
        ensure_eq!(done, 1, "completions of activity {task} in history");
    }
    Ok(scheduled)
}

/// The (id, kind) of the event an action writes.
pub(super) fn written(action: &runtime_api::durabletask::WorkflowAction) -> Option<(i32, &'static str)> {
    use runtime_api::durabletask::workflow_action::WorkflowActionType as A;
    let kind = match action.workflow_action_type.as_ref()? {
        A::ScheduleTask(_) => "taskScheduled",
        A::CreateTimer(_) => "timerCreated",
        A::CreateChildWorkflow(_) => "childWorkflowInstanceCreated",
        A::SendEvent(_) => "eventSent",
        A::CompleteWorkflow(_) => "executionCompleted",
        _ => return None,
    };
    Some((action.id, kind))
}

pub(super) fn kinds(events: &[HistoryEvent]) -> Vec<(i32, &'static str)> {
    events.iter().filter_map(|e| Some((e.event_id, kind_name(e.event_type.as_ref()?)))).collect()
}

/// Checks turn `next` against turn `prev`: its past is `prev`'s past and new events, then the
/// events `prev`'s actions wrote, ids and kinds.
pub(super) fn follows(prev: &Turn, next: &Turn, n: usize) -> CaseResult {
    let (p, q) = (&prev.request, &next.request);
    let carried = p.past_events.len() + p.new_events.len();
    ensure!(q.past_events.len() >= carried, "turn {n}'s pastEvents lost events of turn {}", n - 1);
    let expected: Vec<&HistoryEvent> = p.past_events.iter().chain(&p.new_events).collect();
    for (i, (seen, want)) in q.past_events.iter().zip(expected).enumerate() {
        ensure!(seen == want, "turn {n}'s pastEvents[{i}] is not what turn {} committed", n - 1);
    }
    let wrote: Vec<(i32, &str)> = prev.actions.iter().filter_map(written).collect();
    ensure_eq!(
        kinds(&q.past_events[carried..]),
        wrote,
        "turn {n}: the events turn {}'s actions wrote (id, kind)",
        n - 1
    );
    Ok(())
}

pub(super) fn fired_at(history: &[HistoryEvent]) -> Vec<(i32, Option<SystemTime>)> {
    history
        .iter()
        .filter_map(|e| match &e.event_type {
            Some(EventType::TimerFired(f)) => Some((f.timer_id, f.fire_at.and_then(|t| SystemTime::try_from(t).ok()))),
            _ => None,
        })
        .collect()
}

/// A refusal, not a call the runtime could not take: `UNIMPLEMENTED` or `UNAVAILABLE` says
/// nothing about the rule.
pub(super) fn refused(e: &super::HubError, what: &str) -> CaseResult {
    ensure!(
        !["UNIMPLEMENTED", "UNAVAILABLE", "UNKNOWN"].contains(&e.code.as_str()),
        "{what} failed with {e}, which is not a refusal"
    );
    Ok(())
}
