//! The workflows cases, one rule each (actors-workflows-jobs.md §2.6).

use std::time::{Duration, Instant, SystemTime};

use runtime_api::durabletask::history_event::EventType;
use runtime_api::durabletask::{CreateInstanceRequest, OrchestrationStatus};

use super::catalogue::*;
use super::checks::*;
use super::replay::kind_name;
use super::worker::Turn;
use super::{BLOCK, OLD_NAME_MARK, RESTARTS, WIRE, WORKER};
use crate::case::{Case, CaseResult, Ctx, Finding, Requirement};

/// Every case but the HTTP facade's runs its workflows on certify's worker.
const ON_WORKER: Requirement = Requirement::Reach(WORKER);
use crate::{case, ensure, ensure_eq};

pub(super) fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "workflows.protocol.old-completion-name",
            "W1",
            "`CompleteOrchestratorTask`, the older name of `CompleteWorkflowTask` that SDKs still call, MUST commit a turn the same way.",
            [ON_WORKER, Requirement::Reach(WIRE)],
            [],
            30,
            old_completion_name
        ),
        case!(
            BLOCK,
            "workflows.protocol.dropped-rpcs",
            "W1",
            "An RPC the protocol dropped (`AbandonTaskOrchestratorWorkItem`) MUST answer `UNIMPLEMENTED`.",
            [ON_WORKER, Requirement::Reach(WIRE)],
            [],
            10,
            dropped_rpcs
        ),
        case!(
            BLOCK,
            "workflows.activities.recorded-once",
            "W5",
            "Each scheduled activity MUST yield exactly one completion in history, and its result MUST reach the workflow: three chained activities complete the workflow with their result.",
            [ON_WORKER],
            [],
            30,
            activities_recorded_once
        ),
        case!(
            BLOCK,
            "workflows.replay.history",
            "W2",
            "Each turn MUST show the committed history as `pastEvents` and start its `newEvents` with `workflowStarted`; the events a turn's actions write MUST carry the actions' ids.",
            [ON_WORKER],
            [],
            30,
            replay_history
        ),
        case!(
            BLOCK,
            "workflows.timer.not-early",
            "W3",
            "A durable timer MUST fire no earlier than its time, and once.",
            [ON_WORKER],
            [],
            30,
            timer_not_early
        ),
        case!(
            BLOCK,
            "workflows.events.buffered",
            "W4",
            "An event raised before the workflow waits for it MUST be buffered and delivered once (its name as raised: matching names case-insensitively is the worker's part).",
            [ON_WORKER],
            [],
            30,
            events_buffered
        ),
        case!(
            BLOCK,
            "workflows.events.in-order",
            "W4",
            "Events of one name MUST reach the workflow once each, in the order raised.",
            [ON_WORKER],
            [],
            30,
            events_in_order
        ),
        case!(
            BLOCK,
            "workflows.events.unknown-instance",
            "W4",
            "Raising an event on an instance that does not exist MUST fail.",
            [ON_WORKER],
            [],
            10,
            events_unknown_instance
        ),
        case!(
            BLOCK,
            "workflows.activities.no-sidecar-retries",
            "W6",
            "A failed activity MUST reach the workflow as one `taskFailed`: retries are the workflow's, the sidecar adds none.",
            [ON_WORKER],
            [],
            30,
            no_sidecar_retries
        ),
        case!(
            BLOCK,
            "workflows.child.result",
            "W7",
            "A child workflow MUST start with its parent named, and its result MUST reach the parent.",
            [ON_WORKER],
            [],
            30,
            child_result
        ),
        case!(
            BLOCK,
            "workflows.continue-as-new",
            "W8",
            "Continue-as-new MUST keep the instance id, start a new execution id and reset the history.",
            [ON_WORKER],
            [],
            30,
            continue_as_new
        ),
        case!(
            BLOCK,
            "workflows.terminate",
            "W9",
            "Terminate MUST end a running instance as TERMINATED with the given output, and leave an ended one as it is.",
            [ON_WORKER],
            [],
            30,
            terminate
        ),
        case!(
            BLOCK,
            "workflows.suspend-resume",
            "W10",
            "A suspended instance MUST not progress, and its events MUST wait; resumed, it MUST take them and go on.",
            [ON_WORKER],
            [],
            30,
            suspend_resume
        ),
        case!(
            BLOCK,
            "workflows.purge",
            "W11",
            "Purge MUST refuse a running instance, delete an ended one entirely, and leave its id free for a new one.",
            [ON_WORKER],
            [],
            30,
            purge
        ),
        case!(
            BLOCK,
            "workflows.status.failure-kept",
            "W12",
            "A workflow the worker fails (an unregistered name) MUST end FAILED with the worker's failure details, and `createdAt` MUST not be after `lastUpdatedAt`.",
            [ON_WORKER],
            [],
            30,
            failure_kept
        ),
        case!(
            BLOCK,
            "workflows.start.duplicate-id",
            "W12",
            "Starting an instance with the id of a running one MUST fail with ALREADY_EXISTS.",
            [ON_WORKER],
            [],
            30,
            duplicate_id
        ),
        case!(
            BLOCK,
            "workflows.recovery.restart",
            "W13",
            "After the runtime restarts mid-workflow (during a timer, with three activities after it), the instance MUST end as it would have: the timer fired once, each activity's result recorded once.",
            [ON_WORKER, Requirement::Reach(RESTARTS)],
            [],
            40,
            recovery_restart
        ),
    ]
    .into_iter()
    .chain(crate::http_api::workflows::cases())
    .collect()
}

async fn old_completion_name(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key(OLD_NAME_MARK));
    let hub = w.hub().as_ref();
    // A refused answer leaves the instance waiting (over gRPC, its start too): the worker's log
    // tells, while the calls wait.
    let refusal = async {
        loop {
            if let Some(refused) = w.errors().into_iter().find(|e| e.contains(id.as_str())) {
                return refused;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let run = async {
        start(hub, &id, CHAIN, Some("1")).await?;
        completes(hub, &id, "8").await.map(drop)
    };
    tokio::select! {
        done = run => done,
        refused = refusal => Err(Finding::Fail(format!("an answer under the older name was refused: {refused}"))),
    }
}

async fn dropped_rpcs(ctx: Ctx) -> CaseResult {
    match worker(&ctx)?.hub().call_dropped_rpc().await {
        Ok(()) => Err(Finding::Fail("`AbandonTaskOrchestratorWorkItem` answered OK".into())),
        Err(e) => {
            ensure_eq!(
                e.code.as_str(),
                "UNIMPLEMENTED",
                "status code of `AbandonTaskOrchestratorWorkItem` ({})",
                e.message
            );
            Ok(())
        }
    }
}

async fn activities_recorded_once(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("chain"));
    let hub = w.hub().as_ref();
    start(hub, &id, CHAIN, Some("1")).await?;
    completes(hub, &id, "8").await?;
    let history = hub.history(&id).await.called("reading the history")?;
    for task in recorded_once(&history, 3)? {
        ensure!(w.executions(&id, task) >= 1, "activity {task} completed without the worker running it");
    }
    Ok(())
}

async fn replay_history(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("replayed"));
    let hub = w.hub().as_ref();
    start(hub, &id, CHAIN, Some("2")).await?;
    completes(hub, &id, "16").await?;
    let turns = w.turns(&id);
    ensure!(turns.len() >= 4, "a chain of three activities took {} turns; it needs at least 4", turns.len());
    for (n, turn) in turns.iter().enumerate() {
        let first = turn.request.new_events.first().and_then(|e| e.event_type.as_ref()).map(kind_name);
        ensure_eq!(first, Some("workflowStarted"), "turn {n}'s first new event");
        if n > 0 {
            follows(&turns[n - 1], turn, n)?;
        }
    }
    let last = turns.last().ok_or_else(|| Finding::Fail("no turns".into()))?;
    let history = hub.history(&id).await.called("reading the history")?;
    let closing = Turn {
        request: runtime_api::durabletask::WorkflowRequest { past_events: history, ..Default::default() },
        actions: Vec::new(),
        at: SystemTime::now(),
    };
    follows(last, &closing, turns.len())
}

async fn timer_not_early(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("sleeper"));
    let hub = w.hub().as_ref();
    let began = Instant::now();
    start(hub, &id, SLEEP, Some("1500")).await?;
    let state = settle(hub, &id, "the workflow's end", ended).await?;
    ensure_eq!(status_name(&state), "COMPLETED", "status");
    let history = hub.history(&id).await.called("reading the history")?;
    let fired = fired_at(&history);
    ensure_eq!(fired.len(), 1, "timerFired events in history");
    // The turn that showed the timer fired began no earlier than the time the worker asked for.
    let turns = w.turns(&id);
    let asked = turns.iter().flat_map(|t| &t.actions).find_map(|a| match &a.workflow_action_type {
        Some(runtime_api::durabletask::workflow_action::WorkflowActionType::CreateTimer(t)) => {
            t.fire_at.and_then(|t| SystemTime::try_from(t).ok())
        }
        _ => None,
    });
    let asked = asked.ok_or_else(|| Finding::Fail("the worker never asked for a timer".into()))?;
    let turn = turns
        .iter()
        .find(|t| t.request.new_events.iter().any(|e| matches!(e.event_type, Some(EventType::TimerFired(_)))));
    let turn = turn.ok_or_else(|| Finding::Fail("no turn showed the timer fired".into()))?;
    // The turn's own time (its `workflowStarted`), on the runtime's clock as the timer is.
    let turn_time =
        turn.request.new_events.first().and_then(|e| e.timestamp).and_then(|t| SystemTime::try_from(t).ok());
    let turn_time = turn_time.ok_or_else(|| Finding::Fail("the timer's turn has no workflowStarted time".into()))?;
    ensure!(
        turn_time >= asked,
        "the timer's turn came {:?} before the time the worker asked for",
        asked.duration_since(turn_time).unwrap_or_default()
    );
    let waited = began.elapsed();
    ensure!(waited >= Duration::from_millis(1500), "a 1.5 s timer's workflow ended after {waited:?}");
    Ok(())
}

async fn events_buffered(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("early"));
    let hub = w.hub().as_ref();
    start(hub, &id, AWAIT, Some("1000")).await?;
    hub.raise(&id, "GO", Some("\"early\"".into())).await.called("raising `GO`")?;
    completes(hub, &id, "\"early\"").await?;
    let history = hub.history(&id).await.called("reading the history")?;
    ensure_eq!(count(&history, |e| matches!(e, EventType::EventRaised(_))), 1, "eventRaised events in history");
    Ok(())
}

async fn events_in_order(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("ticks"));
    let hub = w.hub().as_ref();
    start(hub, &id, TWO_TICKS, None).await?;
    hub.raise(&id, "tick", Some("a".into())).await.called("raising the first `tick`")?;
    hub.raise(&id, "tick", Some("b".into())).await.called("raising the second `tick`")?;
    completes(hub, &id, "a,b").await?;
    Ok(())
}

async fn events_unknown_instance(ctx: Ctx) -> CaseResult {
    let hub = worker(&ctx)?.hub();
    let outcome = hub.raise(&ctx.key("nobody"), "go", None).await;
    match outcome {
        Ok(()) => Err(Finding::Fail("raising an event on an instance that does not exist succeeded".into())),
        Err(e) => refused(&e, "raising an event on an instance that does not exist"),
    }
}

async fn no_sidecar_retries(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("catcher"));
    let hub = w.hub().as_ref();
    start(hub, &id, CATCH, None).await?;
    completes(hub, &id, "caught: certify fails this activity on purpose").await?;
    let history = hub.history(&id).await.called("reading the history")?;
    ensure_eq!(count(&history, |e| matches!(e, EventType::TaskFailed(_))), 1, "taskFailed events in history");
    let task = history.iter().find(|e| matches!(e.event_type, Some(EventType::TaskScheduled(_)))).map(|e| e.event_id);
    let task = task.ok_or_else(|| Finding::Fail("no taskScheduled in history".into()))?;
    ensure_eq!(w.executions(&id, task), 1, "runs of the failing activity");
    Ok(())
}

async fn child_result(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("parent"));
    let hub = w.hub().as_ref();
    start(hub, &id, PARENT, Some("5")).await?;
    completes(hub, &id, "11").await?;
    let child = format!("{id}-child");
    let state = hub.get(&child).await.called("getting the child")?;
    let state = state.ok_or_else(|| Finding::Fail(format!("no instance `{child}`")))?;
    ensure_eq!(status_name(&state), "COMPLETED", "the child's status");
    let history = hub.history(&child).await.called("reading the child's history")?;
    let parent = history.iter().find_map(|e| match &e.event_type {
        Some(EventType::ExecutionStarted(s)) => s.parent_instance.clone(),
        _ => None,
    });
    let parent = parent.and_then(|p| p.workflow_instance).map(|w| w.instance_id);
    ensure_eq!(parent.as_deref(), Some(id.as_str()), "the parent the child's executionStarted names");
    Ok(())
}

async fn continue_as_new(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("counter"));
    let hub = w.hub().as_ref();
    start(hub, &id, COUNT, Some("0")).await?;
    let state = completes(hub, &id, "3").await?;
    let history = hub.history(&id).await.called("reading the history")?;
    ensure_eq!(
        count(&history, |e| matches!(e, EventType::ExecutionStarted(_))),
        1,
        "executionStarted events in the last execution's history"
    );
    let input = history.iter().find_map(|e| match &e.event_type {
        Some(EventType::ExecutionStarted(s)) => Some(s.input.clone()),
        _ => None,
    });
    let input = input.flatten();
    ensure_eq!(input.as_deref(), Some("3"), "the last execution's input");
    let executions: std::collections::BTreeSet<String> =
        w.turns(&id).iter().filter_map(|t| t.request.execution_id.clone()).collect();
    ensure_eq!(executions.len(), 4, "execution ids across the continues ({executions:?})");
    ensure!(
        state.execution_id.as_ref().is_some_and(|e| executions.contains(e)),
        "the state's execution id is none the worker saw"
    );
    Ok(())
}

async fn terminate(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("doomed"));
    let hub = w.hub().as_ref();
    start(hub, &id, FOREVER, None).await?;
    settle(hub, &id, "RUNNING", |s| s == OrchestrationStatus::Running).await?;
    hub.terminate(&id, Some("\"stop\"".into()), false).await.called("terminating")?;
    let state = settle(hub, &id, "the workflow's end", ended).await?;
    ensure_eq!(status_name(&state), "TERMINATED", "status");
    ensure_eq!(state.output.as_deref(), Some("\"stop\""), "output");
    hub.terminate(&id, Some("\"again\"".into()), false).await.called("terminating an ended instance")?;
    let state = hub.get(&id).await.called("getting the instance")?;
    ensure_eq!(
        state.as_ref().map(|s| (status_name(s), s.output.clone())),
        Some(("TERMINATED", Some("\"stop\"".into()))),
        "the ended instance after another terminate"
    );
    Ok(())
}

async fn suspend_resume(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("paused"));
    let hub = w.hub().as_ref();
    start(hub, &id, AWAIT, Some("0")).await?;
    settle(hub, &id, "RUNNING", |s| s == OrchestrationStatus::Running).await?;
    hub.suspend(&id).await.called("suspending")?;
    settle(hub, &id, "SUSPENDED", |s| s == OrchestrationStatus::Suspended).await?;
    hub.raise(&id, "go", Some("\"later\"".into())).await.called("raising `go` while suspended")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = hub.get(&id).await.called("getting the instance")?;
    ensure_eq!(
        state.as_ref().map(status_name),
        Some("SUSPENDED"),
        "status 500 ms after an event raised while suspended"
    );
    hub.resume(&id).await.called("resuming")?;
    completes(hub, &id, "\"later\"").await?;
    // The event waited: no turn showed it before the turn that showed the resume.
    let turns = w.turns(&id);
    let shows = |t: &Turn, pick: fn(&EventType) -> bool| {
        t.request.new_events.iter().any(|e| e.event_type.as_ref().is_some_and(pick))
    };
    let raised = turns.iter().position(|t| shows(t, |e| matches!(e, EventType::EventRaised(_))));
    let resumed = turns.iter().position(|t| shows(t, |e| matches!(e, EventType::ExecutionResumed(_))));
    match (raised, resumed) {
        (Some(r), Some(s)) => {
            ensure!(r >= s, "turn {r} showed the event raised while suspended, before turn {s} showed the resume")
        }
        _ => return Err(Finding::Fail(format!("no turn showed the event ({raised:?}) or the resume ({resumed:?})"))),
    }
    Ok(())
}

async fn purge(ctx: Ctx) -> CaseResult {
    let (w, id, running) = (worker(&ctx)?, ctx.key("purged"), ctx.key("running"));
    let hub = w.hub().as_ref();
    start(hub, &running, FOREVER, None).await?;
    settle(hub, &running, "RUNNING", |s| s == OrchestrationStatus::Running).await?;
    match hub.purge(&running, false).await {
        Ok(_) => return Err(Finding::Fail("purging a running instance succeeded".into())),
        Err(e) => refused(&e, "purging a running instance")?,
    }
    ensure!(
        hub.get(&running).await.called("getting the running instance")?.is_some(),
        "a refused purge deleted the instance"
    );
    hub.terminate(&running, None, false).await.called("terminating")?;
    start(hub, &id, CHAIN, Some("1")).await?;
    completes(hub, &id, "8").await?;
    ensure_eq!(hub.purge(&id, false).await.called("purging")?, 1, "instances purged");
    ensure!(hub.get(&id).await.called("getting the purged instance")?.is_none(), "the purged instance is still there");
    start(hub, &id, CHAIN, Some("2")).await?;
    completes(hub, &id, "16").await?;
    Ok(())
}

async fn failure_kept(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("unknown"));
    let hub = w.hub().as_ref();
    start(hub, &id, "certify.no-such-workflow", None).await?;
    let state = settle(hub, &id, "the workflow's end", ended).await?;
    ensure_eq!(status_name(&state), "FAILED", "status");
    let kind = state.failure_details.as_ref().map(|f| f.error_type.as_str());
    ensure_eq!(kind, Some("WorkflowNotRegistered"), "the failure's error type, as the worker gave it");
    let time = |t: Option<runtime_api::prost_types::Timestamp>| t.and_then(|t| SystemTime::try_from(t).ok());
    let (created, updated) = (time(state.created_timestamp), time(state.last_updated_timestamp));
    ensure!(created.is_some() && updated.is_some(), "createdAt or lastUpdatedAt missing");
    ensure!(created <= updated, "createdAt {created:?} is after lastUpdatedAt {updated:?}");
    Ok(())
}

async fn duplicate_id(ctx: Ctx) -> CaseResult {
    let (w, id) = (worker(&ctx)?, ctx.key("twin"));
    let hub = w.hub().as_ref();
    start(hub, &id, FOREVER, None).await?;
    let request = CreateInstanceRequest { instance_id: id.clone(), name: FOREVER.into(), ..Default::default() };
    let again = hub.start(request).await;
    let _ = hub.terminate(&id, None, false).await;
    match again {
        Ok(_) => Err(Finding::Fail("a second start with a running instance's id succeeded".into())),
        Err(e) => {
            ensure_eq!(e.code.as_str(), "ALREADY_EXISTS", "status code ({})", e.message);
            Ok(())
        }
    }
}

async fn recovery_restart(ctx: Ctx) -> CaseResult {
    let restarts = ctx.reach::<dyn super::HubRestarts>(RESTARTS)?;
    let own = restarts.own().await.called("starting a runtime of the case's own")?;
    let id = ctx.key("survivor");
    let hub = own.worker().hub().clone();
    // A timer long enough to restart under, then three activities after it.
    start(hub.as_ref(), &id, SLEEP_THEN_CHAIN, Some("1500")).await?;
    settle(hub.as_ref(), &id, "RUNNING", |s| s == OrchestrationStatus::Running).await?;
    drop(hub);
    own.restart().await.called("restarting the runtime")?;
    let hub = own.worker().hub().clone();
    let state = hub.get(&id).await.called("getting the instance after the restart")?;
    ensure!(state.is_some(), "the restarted runtime forgot the running instance");
    completes(hub.as_ref(), &id, "8").await?;
    let history = hub.history(&id).await.called("reading the history")?;
    ensure_eq!(fired_at(&history).len(), 1, "timerFired events in history");
    recorded_once(&history, 3).map(drop)
}
