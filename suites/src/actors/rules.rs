//! The bodies of the actors cases.

use std::time::{Duration, Instant};

use contract::actors::{ActorId, Invocation, Reminder, StateOp, Timer};
use contract::jobs::FailurePolicy;
use serde_json::{Value, json};

use super::ActorRestarts;
use super::{HOSTS, IDLE, IDLE_TIMEOUT, Kind, MAX_DEPTH, PLAIN, REENTRANT, RESTARTS, UNBACKED, Unbacked, api, host};
use crate::case::{CaseResult, Ctx, Finding, Must};
use crate::jobs::on_time;
use crate::{ensure, ensure_eq};

fn call(method: &str) -> Invocation {
    Invocation { method: method.to_owned(), ..Invocation::default() }
}

/// Checks `result` failed with Dapr's `status` and `code`.
fn refused<T: std::fmt::Debug>(result: contract::Result<T>, status: u16, code: &str, what: &str) -> CaseResult {
    match result {
        Err(contract::Error::Coded { status: s, code: c, .. }) if s == status && c == code => Ok(()),
        Err(contract::Error::Coded { status: s, code: c, message }) => {
            Err(Finding::Fail(format!("{what}: expected {status} `{code}`, got {s} `{c}`: {message}")))
        }
        Err(other) => Err(Finding::Fail(format!("{what}: expected {status} `{code}`, got {other}"))),
        Ok(v) => Err(Finding::Fail(format!("{what}: expected {status} `{code}`, it succeeded ({v:?})"))),
    }
}

/// Waits until `count()` reaches `n` or `within` and the spec's lateness pass; answers it.
async fn wait_count(ctx: &Ctx, n: usize, within: Duration, count: impl Fn() -> usize) -> usize {
    let until = Instant::now() + within + Duration::from_millis(ctx.settings.job_late_ms);
    loop {
        let seen = count();
        if seen >= n || Instant::now() >= until {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) async fn one_at_a_time(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(PLAIN, ctx.key("turns"));
    let others: Vec<ActorId> = (0..2).map(|n| ActorId::new(PLAIN, ctx.key(&format!("other-{n}")))).collect();
    let calls = (0..20).map(|_| api.invoke(&actor, call("sleep-20")));
    let beside = others.iter().map(|other| api.invoke(other, call("sleep-100")));
    let (answers, _) = futures::future::join(futures::future::join_all(calls), futures::future::join_all(beside)).await;
    for answer in answers {
        ensure_eq!(answer.must("a call")?.status, 200, "the status of a call");
    }
    // A runtime that answers before the actor ends may still be running turns.
    wait_count(&ctx, 20, Duration::from_secs(2), || host.named(&actor, Kind::Method, "sleep-20").len()).await;
    let mut turns = host.named(&actor, Kind::Method, "sleep-20");
    ensure!(!turns.is_empty(), "none of 20 calls reached the actor");
    turns.sort_by_key(|t| t.began);
    let origin = turns[0].began;
    let ms = |at: Instant| at.duration_since(origin).as_secs_f64() * 1000.0;
    for pair in turns.windows(2) {
        ensure!(
            pair[1].began >= pair[0].ended,
            "two turns of {actor} overlapped: one ran {:.1}–{:.1} ms, the next began at {:.1} ms",
            ms(pair[0].began),
            ms(pair[0].ended),
            ms(pair[1].began)
        );
    }
    ensure_eq!(turns.len(), 20, "callbacks of 20 calls");
    Ok(())
}

pub(super) async fn reentrancy_chain(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(REENTRANT, ctx.key("chain"));
    let deepest = format!("nest-{}", MAX_DEPTH - 1);
    let chain = tokio::time::timeout(Duration::from_secs(10), api.invoke(&actor, call(&deepest))).await;
    let answer = chain
        .map_err(|_| Finding::Fail(format!("a chain of {MAX_DEPTH} reentrant calls did not end in 10 s: a call of the chain waited for the chain's own turn")))?
        .must("a reentrant chain within maxStackDepth")?;
    ensure_eq!(
        (answer.status, String::from_utf8_lossy(&answer.body).into_owned()),
        (200, "bottom".to_owned()),
        "the chain's answer"
    );
    let ids: Vec<Option<String>> = host.turns_of(&actor).into_iter().map(|t| t.reentrancy).collect();
    ensure_eq!(ids.len(), MAX_DEPTH as usize, "callbacks of the chain");
    ensure!(ids[0].is_some(), "the chain's callbacks came without a `Dapr-Reentrancy-Id`");
    ensure!(ids.iter().all(|id| *id == ids[0]), "the chain's callbacks carried different reentrancy ids: {ids:?}");
    let too_deep = format!("nest-{MAX_DEPTH}");
    let answer = tokio::time::timeout(Duration::from_secs(10), api.invoke(&actor, call(&too_deep)))
        .await
        .map_err(|_| Finding::Fail("a chain deeper than maxStackDepth did not end in 10 s".into()))?;
    ensure!(
        !matches!(&answer, Ok(a) if a.status == 200),
        "a chain of {} calls succeeded though `maxStackDepth` is {MAX_DEPTH}",
        MAX_DEPTH + 1
    );
    // The deepest call fails with the code; each level above relays it in its own error.
    let told = match &answer {
        Ok(a) => String::from_utf8_lossy(&a.body).into_owned(),
        Err(e) => e.to_string(),
    };
    ensure!(told.contains("ERR_ACTOR_STACK_DEPTH"), "a chain too deep failed without `ERR_ACTOR_STACK_DEPTH`: {told}");
    // With reentrancy off, the nested call waits for the turn its caller holds.
    let plain = ActorId::new(PLAIN, ctx.key("no-reentrancy"));
    let blocked = tokio::time::timeout(Duration::from_secs(1), api.invoke(&plain, call("nest-1"))).await;
    ensure!(
        blocked.is_err(),
        "with reentrancy off, a nested call entered the turn its caller held: {:?}",
        blocked.map(|a| a.map(|a| a.status))
    );
    Ok(())
}

pub(super) async fn needs_activation(ctx: Ctx) -> CaseResult {
    let api = api(&ctx)?;
    let actor = ActorId::new(PLAIN, ctx.key("fresh"));
    let write = || vec![StateOp::Upsert { key: "k".into(), value: json!("v") }];
    refused(api.transact(&actor, write()).await, 400, "ERR_ACTOR_INSTANCE_MISSING", "a transaction before activation")?;
    api.invoke(&actor, call("echo")).await.must("the call that activates")?;
    api.transact(&actor, write()).await.must("a transaction once active")?;
    let read = api.state(&actor, "k").await.must("reading back")?;
    ensure_eq!(read.as_deref(), Some(&b"\"v\""[..]), "the value read back");
    Ok(())
}

pub(super) async fn idle_deactivation(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(IDLE, ctx.key("idle"));
    api.invoke(&actor, call("echo")).await.must("the first call")?;
    tokio::time::sleep(IDLE_TIMEOUT * 6 / 10).await;
    api.invoke(&actor, call("echo")).await.must("the call that resets the idle clock")?;
    let last = Instant::now();
    let gone = || host.turns_of(&actor).into_iter().filter(|t| t.kind == Kind::Deactivation).count();
    wait_count(&ctx, 1, IDLE_TIMEOUT + Duration::from_secs(1), gone).await;
    let deactivations: Vec<Instant> =
        host.turns_of(&actor).into_iter().filter(|t| t.kind == Kind::Deactivation).map(|t| t.began).collect();
    let Some(first) = deactivations.first() else {
        return Err(Finding::Fail(format!(
            "no deactivation within {IDLE_TIMEOUT:?} of idleness, 1 s and the lateness (jobLateMs)"
        )));
    };
    ensure!(
        *first + Duration::from_millis(ctx.settings.job_early_ms) >= last + IDLE_TIMEOUT,
        "deactivated {:?} after its last turn: the idle clock did not restart with it ({IDLE_TIMEOUT:?})",
        first.duration_since(last)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(gone(), 1, "deactivations of an actor idle once");
    Ok(())
}

pub(super) async fn state_isolated(ctx: Ctx) -> CaseResult {
    let api = api(&ctx)?;
    let actors = [
        ActorId::new(PLAIN, ctx.key("one")),
        ActorId::new(PLAIN, ctx.key("two")),
        ActorId::new(REENTRANT, ctx.key("one")),
    ];
    for (n, actor) in actors.iter().enumerate() {
        api.invoke(actor, call("echo")).await.must("activating")?;
        let ops = vec![
            StateOp::Upsert { key: "shared".into(), value: json!({"owner": n}) },
            StateOp::Upsert { key: "gone".into(), value: json!(n) },
            StateOp::Delete { key: "gone".into() },
        ];
        api.transact(actor, ops).await.must("a transaction")?;
    }
    for (n, actor) in actors.iter().enumerate() {
        let read = api.state(actor, "shared").await.must("reading back")?;
        let value: Option<Value> = read.as_deref().and_then(|b| serde_json::from_slice(b).ok());
        ensure_eq!(value, Some(json!({"owner": n})), "{actor}'s `shared` key");
        ensure_eq!(
            api.state(actor, "gone").await.must("reading a deleted key")?,
            None,
            "{actor}'s key deleted in the transaction"
        );
    }
    Ok(())
}

pub(super) async fn reminder_schedule(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(PLAIN, ctx.key("reminded"));
    let created = Instant::now();
    let reminder = Reminder {
        name: "tick".into(),
        due_time: Some("1s".into()),
        period: Some("R3/1s".into()),
        data: Some(json!({"n": 1})),
        ..Reminder::default()
    };
    api.set_reminder(&actor, reminder).await.must("registering a reminder")?;
    wait_count(&ctx, 3, Duration::from_secs(3), || host.named(&actor, Kind::Reminder, "tick").len()).await;
    let fires = host.named(&actor, Kind::Reminder, "tick");
    ensure!(!fires.is_empty(), "no fire of a reminder due in 1 s within 3 s and the lateness (jobLateMs)");
    on_time(&ctx, "the first fire", fires[0].began, created + Duration::from_secs(1))?;
    let body: Value = serde_json::from_slice(&fires[0].body).map_err(|e| {
        Finding::Fail(format!("a reminder's fire is not JSON ({e}): {:?}", String::from_utf8_lossy(&fires[0].body)))
    })?;
    ensure_eq!(body.get("data"), Some(&json!({"n": 1})), "the fire's data");
    ensure_eq!(
        (body.get("dueTime"), body.get("period")),
        (Some(&json!("")), Some(&json!(""))),
        "the fire's `dueTime` and `period` (empty in Scheduler fires)"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(host.named(&actor, Kind::Reminder, "tick").len(), 3, "fires of `R3/1s`");
    Ok(())
}

pub(super) async fn reminder_end(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(PLAIN, ctx.key("ended"));
    let every = |name: &str| Reminder {
        name: name.into(),
        due_time: Some("0s".into()),
        period: Some("1s".into()),
        ..Reminder::default()
    };
    api.set_reminder(&actor, every("stopped")).await.must("registering a reminder")?;
    api.set_reminder(&actor, every("cancel-me")).await.must("registering a reminder the app cancels")?;
    wait_count(&ctx, 1, Duration::from_secs(1), || host.named(&actor, Kind::Reminder, "stopped").len()).await;
    api.delete_reminder(&actor, "stopped").await.must("deleting the reminder")?;
    let fired = host.named(&actor, Kind::Reminder, "stopped").len();
    ensure!(fired > 0, "a reminder due now did not fire within 1 s and the lateness (jobLateMs)");
    ensure_eq!(api.reminder(&actor, "stopped").await.must("reading a deleted reminder")?, None, "a deleted reminder");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ensure_eq!(host.named(&actor, Kind::Reminder, "stopped").len(), fired, "fires after the delete");
    ensure_eq!(
        host.named(&actor, Kind::Reminder, "cancel-me").len(),
        1,
        "fires of a reminder whose first fire answered `X-DaprReminderCancel: true`"
    );
    Ok(())
}

pub(super) async fn reminder_retried(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(PLAIN, ctx.key("retried"));
    let once = |name: &str, policy| Reminder {
        name: name.into(),
        due_time: Some("0s".into()),
        failure_policy: Some(policy),
        ..Reminder::default()
    };
    let constant = FailurePolicy::Constant { interval: Duration::from_millis(200), max_retries: Some(2) };
    api.set_reminder(&actor, once("fail-constant", constant)).await.must("registering with a constant policy")?;
    api.set_reminder(&actor, once("fail-drop", FailurePolicy::Drop)).await.must("registering with the drop policy")?;
    wait_count(&ctx, 3, Duration::from_secs(2), || host.named(&actor, Kind::Reminder, "fail-constant").len()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    ensure_eq!(
        host.named(&actor, Kind::Reminder, "fail-constant").len(),
        3,
        "attempts with `constant`, `max_retries: 2`"
    );
    ensure_eq!(host.named(&actor, Kind::Reminder, "fail-drop").len(), 1, "attempts with `drop`");
    Ok(())
}

pub(super) async fn reminder_api(ctx: Ctx) -> CaseResult {
    let api = api(&ctx)?;
    let actor = ActorId::new(PLAIN, ctx.key("api"));
    let hourly = Reminder {
        name: "hourly".into(),
        due_time: Some("1h".into()),
        period: Some("1h".into()),
        data: Some(json!({"x": 1})),
        ..Reminder::default()
    };
    api.set_reminder(&actor, hourly.clone()).await.must("registering")?;
    api.set_reminder(&actor, Reminder { period: Some("2h".into()), ..hourly.clone() })
        .await
        .must("registering the same name again (overwrite by default)")?;
    let kept = api
        .reminder(&actor, "hourly")
        .await
        .must("reading")?
        .ok_or_else(|| Finding::Fail("a registered reminder reads as not found".into()))?;
    let period = kept.period.unwrap_or_default();
    ensure_eq!(period, "@every 2h0m0s", "the period of the replacing reminder, read back");
    ensure_eq!(kept.data, Some(json!({"x": 1})), "the reminder's data");
    refused(
        api.set_reminder(&actor, Reminder { overwrite: Some(false), ..hourly.clone() }).await,
        409,
        "ERR_ACTOR_REMINDER_ALREADY_EXISTS",
        "`overwrite: false` on a taken name",
    )?;
    refused(
        api.set_reminder(&ActorId::new("certify-not-hosted", "1"), hourly.clone()).await,
        403,
        "ERR_ACTOR_REMINDER_NON_HOSTED",
        "a reminder of a type the app does not host",
    )?;
    refused(
        api.set_reminder(
            &actor,
            Reminder { name: "bad".into(), period: Some("every so often".into()), ..hourly.clone() },
        )
        .await,
        500,
        "ERR_ACTOR_REMINDER_CREATE",
        "a malformed period",
    )?;
    ensure_eq!(
        api.reminder(&actor, "bad").await.must("reading the refused reminder")?,
        None,
        "a refused reminder (nothing half-registered)"
    );
    api.delete_reminder(&actor, "hourly").await.must("deleting")?;
    api.delete_reminder(&actor, "hourly").await.must("deleting again")?;
    ensure_eq!(api.reminder(&actor, "hourly").await.must("reading after delete")?, None, "a deleted reminder");
    Ok(())
}

pub(super) async fn timer_schedule(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(PLAIN, ctx.key("timed"));
    api.invoke(&actor, call("echo")).await.must("activating")?;
    let created = Instant::now();
    let timer = Timer {
        name: "tick".into(),
        due_time: Some("1s".into()),
        period: Some("R3/1s".into()),
        data: Some(json!("payload")),
        callback: Some("onTick".into()),
        ..Timer::default()
    };
    api.set_timer(&actor, timer).await.must("registering a timer")?;
    let stopped =
        Timer { name: "stopped".into(), due_time: Some("0s".into()), period: Some("1s".into()), ..Timer::default() };
    api.set_timer(&actor, stopped).await.must("registering a second timer")?;
    wait_count(&ctx, 1, Duration::from_secs(1), || host.named(&actor, Kind::Timer, "stopped").len()).await;
    api.delete_timer(&actor, "stopped").await.must("deleting a timer")?;
    let fired = host.named(&actor, Kind::Timer, "stopped").len();
    ensure!(fired > 0, "a timer due now did not fire within 1 s and the lateness (jobLateMs)");
    wait_count(&ctx, 3, Duration::from_secs(3), || host.named(&actor, Kind::Timer, "tick").len()).await;
    let fires = host.named(&actor, Kind::Timer, "tick");
    ensure!(!fires.is_empty(), "no fire of a timer due in 1 s within 3 s and the lateness (jobLateMs)");
    on_time(&ctx, "the timer's first fire", fires[0].began, created + Duration::from_secs(1))?;
    let body: Value = serde_json::from_slice(&fires[0].body).unwrap_or(Value::Null);
    ensure_eq!(
        (body.get("data"), body.get("callback")),
        (Some(&json!("payload")), Some(&json!("onTick"))),
        "the fire's data and callback"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(host.named(&actor, Kind::Timer, "tick").len(), 3, "fires of `R3/1s`");
    ensure_eq!(host.named(&actor, Kind::Timer, "stopped").len(), fired, "fires after the delete");
    Ok(())
}

pub(super) async fn errors_passthrough(ctx: Ctx) -> CaseResult {
    let api = api(&ctx)?;
    let actor = ActorId::new(PLAIN, ctx.key("errors"));
    match api.invoke(&actor, call("fail-503")).await {
        Err(contract::Error::Coded { status: 500, code, message }) if code == "ERR_ACTOR_INVOKE_METHOD" => {
            ensure!(message.contains("503"), "the error does not name the app's status (503): {message}");
        }
        other => {
            return Err(Finding::Fail(format!("an app's 503: expected 500 `ERR_ACTOR_INVOKE_METHOD`, got {other:?}")));
        }
    }
    let answer = api.invoke(&actor, call("app-error")).await.must("a call the app answers with its own error")?;
    ensure_eq!(
        (answer.status, String::from_utf8_lossy(&answer.body).into_owned()),
        (400, "certify's own error".to_owned()),
        "an answer with `X-DaprErrorResponseHeader`"
    );
    Ok(())
}

pub(super) async fn trace_propagated(ctx: Ctx) -> CaseResult {
    use crate::observability::{TRACE_ID, TRACESTATE, TraceContext, trace_id, traced};
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(PLAIN, ctx.key("traced"));
    let answer = traced(TraceContext::certify(), api.invoke(&actor, call("traced"))).await.must("a traced call")?;
    ensure_eq!(answer.status, 200, "the status of a traced call");
    let turns = host.named(&actor, Kind::Method, "traced");
    let turn = turns.first().ok_or_else(|| Finding::Fail("the traced call never reached the actor".into()))?;
    let received = turn.trace.traceparent.clone().unwrap_or_default();
    ensure_eq!(
        trace_id(&received),
        Some(TRACE_ID.to_owned()),
        "the trace id of the traceparent `{received}` the actor received"
    );
    ensure_eq!(turn.trace.tracestate.as_deref(), Some(TRACESTATE), "the tracestate the actor received");
    Ok(())
}

pub(super) async fn reserved_types(ctx: Ctx) -> CaseResult {
    let api = api(&ctx)?;
    let actor = ActorId::new("dapr.internal.certify.workflow", ctx.key("reserved"));
    let code = "ERR_ACTOR_TYPE_RESERVED";
    refused(api.state(&actor, "k").await, 403, code, "reading state of a reserved type")?;
    let reminder = Reminder { name: "r".into(), due_time: Some("1h".into()), ..Reminder::default() };
    refused(api.set_reminder(&actor, reminder).await, 403, code, "a reminder of a reserved type")?;
    let timer = Timer { name: "t".into(), due_time: Some("1h".into()), ..Timer::default() };
    refused(api.set_timer(&actor, timer).await, 403, code, "a timer of a reserved type")?;
    Ok(())
}

pub(super) async fn store_required(ctx: Ctx) -> CaseResult {
    let unbacked: &std::sync::Arc<Unbacked> = ctx.reach(UNBACKED)?;
    let api = &unbacked.0;
    let actor = ActorId::new(PLAIN, ctx.key("unbacked"));
    api.invoke(&actor, call("echo")).await.must("a method call without a store")?;
    let write = vec![StateOp::Upsert { key: "k".into(), value: json!(1) }];
    refused(
        api.transact(&actor, write).await,
        500,
        "ERR_ACTOR_RUNTIME_NOT_FOUND",
        "a state transaction without a store",
    )?;
    refused(api.state(&actor, "k").await, 500, "ERR_ACTOR_RUNTIME_NOT_FOUND", "a state read without a store")?;
    Ok(())
}

pub(super) async fn reminder_outlives_deactivation(ctx: Ctx) -> CaseResult {
    let (api, host) = (api(&ctx)?, host(&ctx)?);
    let actor = ActorId::new(IDLE, ctx.key("sleeper"));
    api.invoke(&actor, call("echo")).await.must("activating")?;
    let due = IDLE_TIMEOUT * 5 / 2;
    let reminder =
        Reminder { name: "wake".into(), due_time: Some(format!("{}ms", due.as_millis())), ..Reminder::default() };
    api.set_reminder(&actor, reminder).await.must("registering a reminder")?;
    wait_count(&ctx, 1, due + Duration::from_secs(1), || host.named(&actor, Kind::Reminder, "wake").len()).await;
    let turns = host.turns_of(&actor);
    let slept = turns.iter().position(|t| t.kind == Kind::Deactivation);
    let woke = turns.iter().position(|t| t.kind == Kind::Reminder);
    ensure!(slept.is_some(), "the actor was not deactivated within {due:?} though idle for {IDLE_TIMEOUT:?}");
    ensure!(woke.is_some(), "the reminder never fired after its actor was deactivated");
    ensure!(slept < woke, "the reminder fired before the deactivation, so the case proved nothing: {turns:?}");
    Ok(())
}

pub(super) async fn reminder_durable(ctx: Ctx) -> CaseResult {
    let restarts: &std::sync::Arc<dyn ActorRestarts> = ctx.reach(RESTARTS)?;
    let host = host(&ctx)?;
    let own = restarts.own().await.must("opening a runtime of the case's own")?;
    let actor = ActorId::new(PLAIN, ctx.key("durable"));
    let created = Instant::now();
    let later = Reminder {
        name: "later".into(),
        due_time: Some("3s".into()),
        data: Some(json!({"kept": true})),
        ..Reminder::default()
    };
    own.set_reminder(&actor, later).await.must("registering a reminder due in 3 s")?;
    let now = Reminder { name: "now".into(), due_time: Some("0s".into()), ..Reminder::default() };
    own.set_reminder(&actor, now).await.must("registering a reminder due now")?;
    wait_count(&ctx, 1, Duration::from_secs(1), || host.named(&actor, Kind::Reminder, "now").len()).await;
    ensure!(
        !host.named(&actor, Kind::Reminder, "now").is_empty(),
        "the reminder due now did not fire within 1 s and the lateness (jobLateMs)"
    );
    // A fired reminder leaves the store a moment after its fire; a restart before may fire it
    // again (fires are at least once), which is not what this case looks at.
    let until = Instant::now() + Duration::from_secs(2);
    while own.reminder(&actor, "now").await.must("reading the fired reminder")?.is_some() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    own.restart().await.must("restarting the runtime")?;
    ensure!(
        own.reminder(&actor, "later").await.must("reading a reminder after the restart")?.is_some(),
        "after the restart, reminder `later` is gone"
    );
    if created.elapsed() >= Duration::from_secs(3) {
        return Err(Finding::Inconclusive(
            "the restart took until the reminder was due: it may have fired before".into(),
        ));
    }
    wait_count(&ctx, 1, Duration::from_secs(4), || host.named(&actor, Kind::Reminder, "later").len()).await;
    let fires = host.named(&actor, Kind::Reminder, "later");
    ensure!(!fires.is_empty(), "the reminder due 3 s after its creation never fired after the restart");
    on_time(&ctx, "the fire after the restart", fires[0].began, created + Duration::from_secs(3))?;
    let body: Value = serde_json::from_slice(&fires[0].body).unwrap_or(Value::Null);
    ensure_eq!(body.get("data"), Some(&json!({"kept": true})), "the data of the fire after the restart");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(host.named(&actor, Kind::Reminder, "later").len(), 1, "fires of the reminder due after the restart");
    ensure_eq!(
        host.named(&actor, Kind::Reminder, "now").len(),
        1,
        "fires of the reminder that fired before the restart"
    );
    Ok(())
}

pub(super) async fn single_activation(ctx: Ctx) -> CaseResult {
    // Planned only where a second host is in reach; none is yet (see `HOSTS`).
    let _second: &std::sync::Arc<super::SecondHost> = ctx.reach(HOSTS)?;
    Err(Finding::Inconclusive("no driver gives a second host yet".into()))
}
