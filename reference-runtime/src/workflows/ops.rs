//! What the engine's calls do to its instances, under its lock: raise, terminate, purge, fire
//! a timer, release a scheduled start, queue a turn, hand a work item out, and take back what a
//! worker that went held.

use std::sync::Arc;
use std::time::SystemTime;

use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::work_item::Request as Work;
use runtime_api::durabletask::*;

use super::instance::{self, WorkerId, event, is_terminal};
use super::{Engine, Inner, Queued, WorkflowError};

/// Tells the engine when a worker's stream is dropped.
pub(super) struct Disconnect {
    pub(super) engine: Arc<Engine>,
    pub(super) worker: WorkerId,
}

impl Drop for Disconnect {
    fn drop(&mut self) {
        self.engine.disconnect(self.worker);
    }
}

/// Marks the work as held by `worker` and builds its request; `None` if it is no longer due.
pub(super) fn take_work(inner: &mut Inner, work: &Queued, worker: WorkerId, token: &str) -> Option<Work> {
    match work {
        Queued::Turn(id) => {
            let inst = inner.instances.get_mut(id)?;
            inst.queued = false;
            if !inst.runnable() {
                return None;
            }
            let mut new_events = vec![event(-1, EventType::WorkflowStarted(WorkflowStartedEvent { version: None }))];
            new_events.append(&mut inst.inbox);
            let request = WorkflowRequest {
                instance_id: id.clone(),
                execution_id: Some(inst.execution_id.clone()),
                past_events: inst.history.clone(),
                new_events: new_events.clone(),
                ..Default::default()
            };
            inst.turn = Some(instance::Turn { token: token.to_owned(), worker, new_events });
            Some(Work::WorkflowRequest(request))
        }
        Queued::Activity(id, task) => {
            let activity = inner.instances.get_mut(id)?.activities.get_mut(task)?;
            activity.dispatch = Some((token.to_owned(), worker));
            Some(Work::ActivityRequest(activity.request.clone()))
        }
    }
}

/// Queues a turn for the instance if it can take one, and marks it changed.
pub(super) fn enqueue_turn(inner: &mut Inner, id: &str) {
    inner.dirty.insert(id.to_owned());
    if let Some(inst) = inner.instances.get_mut(id)
        && inst.runnable()
        && !inst.queued
    {
        inst.queued = true;
        inner.queue.push_back(Queued::Turn(id.to_owned()));
    }
}

/// Takes back what `worker` held: a turn's events return to the front of the inbox (less
/// its `workflowStarted`), activities to the queue.
pub(super) fn orphan(inner: &mut Inner, worker: WorkerId) {
    inner.workers.retain(|(w, _)| *w != worker);
    let mut again = Vec::new();
    for inst in inner.instances.values_mut() {
        if let Some(turn) = inst.turn.take_if(|t| t.worker == worker) {
            let mut events: Vec<HistoryEvent> = turn.new_events.into_iter().skip(1).collect();
            events.append(&mut inst.inbox);
            inst.inbox = events;
            again.push(Queued::Turn(inst.id.clone()));
        }
        for (task, activity) in &mut inst.activities {
            if activity.dispatch.as_ref().is_some_and(|(_, w)| *w == worker) {
                activity.dispatch = None;
                again.push(Queued::Activity(inst.id.clone(), *task));
            }
        }
    }
    for work in again {
        match work {
            Queued::Turn(id) => enqueue_turn(inner, &id),
            activity => inner.queue.push_back(activity),
        }
    }
}

pub(super) fn release(inner: &mut Inner, id: &str, execution: &str) {
    if let Some(inst) = inner.instances.get_mut(id).filter(|i| i.execution_id == execution)
        && let Some(started) = inst.deferred.take()
    {
        inst.inbox.insert(0, started);
        enqueue_turn(inner, id);
    }
}

pub(super) fn fire(inner: &mut Inner, id: &str, execution: &str, timer: i32, fire_at: SystemTime) {
    let Some(inst) = inner.instances.get_mut(id) else { return };
    if inst.execution_id != execution || inst.terminal() {
        return;
    }
    let fired = TimerFiredEvent { fire_at: Some(fire_at.into()), timer_id: timer };
    inst.inbox.push(event(-1, EventType::TimerFired(fired)));
    enqueue_turn(inner, id);
}

pub(super) fn raise(inner: &mut Inner, id: &str, name: &str, input: Option<String>) -> Result<(), WorkflowError> {
    let inst = inner.instances.get_mut(id).ok_or_else(|| WorkflowError::NotFound(id.into()))?;
    if inst.terminal() {
        return Ok(());
    }
    inst.inbox.push(event(-1, EventType::EventRaised(EventRaisedEvent { name: name.into(), input })));
    enqueue_turn(inner, id);
    Ok(())
}

pub(super) fn terminate(
    inner: &mut Inner,
    id: &str,
    output: Option<String>,
    recurse: bool,
) -> Result<(), WorkflowError> {
    let inst = inner.instances.get_mut(id).ok_or_else(|| WorkflowError::NotFound(id.into()))?;
    if inst.terminal() {
        return Ok(());
    }
    if inst.deferred.take().is_some() {
        // Never started: nothing to replay, so it ends here.
        inst.status = OrchestrationStatus::Terminated;
        inst.output = output;
        inst.completed = Some(SystemTime::now());
        inst.updated = SystemTime::now();
        inner.dirty.insert(id.to_owned());
        return Ok(());
    }
    let ended = ExecutionTerminatedEvent { input: output.clone(), recurse };
    inst.inbox.push(event(-1, EventType::ExecutionTerminated(ended)));
    let children = if recurse { inst.children() } else { Vec::new() };
    enqueue_turn(inner, id);
    for child in children {
        let _ = terminate(inner, &child, output.clone(), true);
    }
    Ok(())
}

pub(super) fn purge(inner: &mut Inner, id: &str, recurse: bool) -> Result<i32, WorkflowError> {
    let inst = inner.instances.get(id).ok_or_else(|| WorkflowError::NotFound(id.into()))?;
    if !is_terminal(inst.status) {
        return Err(WorkflowError::NotCompleted(id.into()));
    }
    let children = if recurse { inst.children() } else { Vec::new() };
    inner.instances.remove(id);
    inner.dirty.insert(id.to_owned());
    inner.index_dirty = true;
    let mut count = 1;
    for child in children {
        count += purge(inner, &child, true).unwrap_or(0);
    }
    Ok(count)
}
