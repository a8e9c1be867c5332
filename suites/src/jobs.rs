//! The jobs suite (actors-workflows-jobs.md §3.4): a scheduler must fire a job when its
//! schedule says, as often as it says, with its data, retry a failed trigger as its policy
//! says, and keep `overwrite` and delete exactly. Dapr's conformance suite has no jobs.
//!
//! Triggers reach cases through a [`JobInbox`]: the app certify plays receives them (an HTTP
//! app's `POST /job/{name}`), stamps each with its arrival time, and answers with what the
//! case asked for. Each trial names its jobs after its namespace. Times are real: a trigger
//! may come `jobEarlyMs` before its due time at most, and `jobLateMs` after it (the spec's
//! settings; 100 ms and 1 s by default).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use contract::Block;
use contract::jobs::{FailurePolicy, JobSpec, Jobs};
use serde_json::{Value, json};

use crate::case::{Case, CaseResult, Ctx, DriverCapability, Finding, Must, Reach, Requirement};
use crate::suite::Suite;
use crate::{case, ensure, ensure_eq};

const BLOCK: Block = Block::JOBS;
/// The scheduler the cases call.
pub const SCHEDULER: Reach = Reach::of::<dyn Jobs>("scheduler");
/// Where the triggers arrive.
pub const INBOX: Reach = Reach::of::<JobInbox>("app receiving job triggers").hinted("give --app-port");

/// The jobs suite.
pub const SUITE: Suite = Suite { block: BLOCK, needs: &[SCHEDULER], cases, prepare: None };

/// One trigger as the app saw it.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// The job's name.
    pub name: String,
    /// The body.
    pub data: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// The `traceparent` it came with (a gRPC app's from `grpc-trace-bin`).
    pub traceparent: Option<String>,
}

/// The triggers the app received, by job name, and the answers it was told to give.
#[derive(Debug, Default)]
pub struct JobInbox {
    seen: Mutex<BTreeMap<String, Vec<Trigger>>>,
    /// Jobs whose triggers the app fails on purpose.
    failing: Mutex<BTreeSet<String>>,
}

impl JobInbox {
    /// Records a trigger of `name`; the app's answer is an error for a job told to fail.
    pub fn deliver(&self, name: &str, data: Vec<u8>, traceparent: Option<String>) -> Result<(), String> {
        let trigger = Trigger { name: name.to_owned(), data, at: Instant::now(), traceparent };
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).entry(name.to_owned()).or_default().push(trigger);
        match self.failing.lock().unwrap_or_else(PoisonError::into_inner).contains(name) {
            true => Err(format!("certify fails the triggers of `{name}` on purpose")),
            false => Ok(()),
        }
    }

    /// Makes every trigger of `name` fail.
    pub fn fail(&self, name: &str) {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner).insert(name.to_owned());
    }

    /// The triggers of `name` so far.
    pub fn of(&self, name: &str) -> Vec<Trigger> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned().unwrap_or_default()
    }
}

/// A scheduler of the case's own: no other trial's jobs are on it, so restarting it disturbs
/// nobody.
#[async_trait::async_trait]
pub trait Restarts: Send + Sync {
    /// A new scheduler whose triggers reach the app.
    async fn own(&self) -> contract::Result<Arc<dyn Restartable>>;
}

/// A scheduler that restarts as a runtime does: stopped, then started again over the same
/// storage.
#[async_trait::async_trait]
pub trait Restartable: Jobs {
    /// Stops it and starts it again.
    async fn restart(&self) -> contract::Result<()>;
}

/// Schedulers certify can restart.
pub const RESTARTS: Reach = Reach::of::<dyn Restarts>("scheduler certify can restart")
    .hinted("certify restarts only a scheduler it runs in-process")
    .inherent();

/// Every case watches the app for triggers.
const ON_APP: Requirement = Requirement::Reach(INBOX);

fn cases() -> Vec<Case> {
    vec![
        case!(
            BLOCK,
            "jobs.due-time.fires-once",
            "J1",
            "A job with a due time and no schedule MUST fire exactly once, at its due time (within 1 s).",
            [ON_APP],
            [],
            20,
            due_time_fires_once
        ),
        case!(
            BLOCK,
            "jobs.repeats.counted",
            "J2",
            "`@every P` without a due time MUST fire first one period after creation; `repeats: n` MUST fire exactly n times.",
            [ON_APP],
            [],
            20,
            repeats_counted
        ),
        case!(
            BLOCK,
            "jobs.ttl.bounds",
            "J2",
            "`ttl` MUST bound the triggers: `@every 1s` with `ttl: 2.5s` fires at 1 s and 2 s, then never again.",
            [ON_APP],
            [],
            20,
            ttl_bounds
        ),
        case!(
            BLOCK,
            "jobs.data.round-trip",
            "J3",
            "A trigger MUST carry the job's data as JSON, and an empty body for a job without data.",
            [ON_APP],
            [],
            20,
            data_round_trip
        ),
        case!(
            BLOCK,
            "jobs.failure-policy.bounded",
            "J4",
            "A failed trigger MUST be retried as the policy says: `constant` with `maxRetries: n` is n+1 attempts, `drop` one.",
            [ON_APP],
            [],
            20,
            failure_policy_bounded
        ),
        case!(
            BLOCK,
            "jobs.failure-policy.default",
            "J4",
            "A failed trigger of a job without a failure policy MUST be retried as daprd's default says: every 1 s, 3 retries, 4 attempts in all.",
            [ON_APP],
            [],
            20,
            failure_policy_default
        ),
        case!(
            BLOCK,
            "jobs.trace.carried",
            "O7",
            "A trigger MUST reach the app with trace context: a valid `traceparent` (a gRPC app: `grpc-trace-bin`).",
            [ON_APP, Requirement::Driver(DriverCapability::TraceContext)],
            ["observability"],
            20,
            trace_carried
        ),
        case!(
            BLOCK,
            "jobs.overwrite.and-delete",
            "J5",
            "Scheduling a taken name MUST fail unless `overwrite` is set; delete MUST stop future triggers, be idempotent, and leave nothing to get.",
            [ON_APP],
            [],
            20,
            overwrite_and_delete
        ),
        case!(
            BLOCK,
            "jobs.durable.restart",
            "J6",
            "Jobs MUST survive a restart of the runtime: a job due after the restart fires once, on time, with its data; a job that fired before it does not fire again.",
            [ON_APP, Requirement::Reach(RESTARTS)],
            [],
            20,
            durable_restart
        ),
    ]
    .into_iter()
    .chain(crate::http_api::jobs::cases())
    .collect()
}

fn scheduler(ctx: &Ctx) -> Result<&Arc<dyn Jobs>, Finding> {
    ctx.reach(SCHEDULER)
}

fn inbox(ctx: &Ctx) -> Result<&Arc<JobInbox>, Finding> {
    ctx.reach(INBOX)
}

fn job(name: &str) -> JobSpec {
    JobSpec { name: name.to_owned(), ..JobSpec::default() }
}

/// Waits until `name` has `n` triggers, or `within` and the spec's lateness (`jobLateMs`) pass;
/// answers what arrived.
async fn wait_for(ctx: &Ctx, name: &str, n: usize, within: Duration) -> Result<Vec<Trigger>, Finding> {
    let until = Instant::now() + within + Duration::from_millis(ctx.settings.job_late_ms);
    loop {
        let seen = inbox(ctx)?.of(name);
        if seen.len() >= n || Instant::now() >= until {
            return Ok(seen);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks that `at` is within the spec's tolerance of `due` (`jobEarlyMs`, `jobLateMs`).
pub(crate) fn on_time(ctx: &Ctx, what: &str, at: Instant, due: Instant) -> CaseResult {
    let (early, late) =
        (Duration::from_millis(ctx.settings.job_early_ms), Duration::from_millis(ctx.settings.job_late_ms));
    ensure!(at + early >= due, "{what} came {:?} before its due time (jobEarlyMs {early:?})", due - at);
    ensure!(at <= due + late, "{what} came {:?} after its due time (jobLateMs {late:?})", at - due);
    Ok(())
}

async fn due_time_fires_once(ctx: Ctx) -> CaseResult {
    let name = ctx.key("once");
    let created = Instant::now();
    scheduler(&ctx)?.schedule(JobSpec { due_time: Some("1s".into()), ..job(&name) }).await.must("scheduling")?;
    let seen = wait_for(&ctx, &name, 1, Duration::from_secs(2)).await?;
    ensure!(!seen.is_empty(), "no trigger of a 1 s due time within its lateness (jobLateMs) and 1 s more");
    on_time(&ctx, "the trigger", seen[0].at, created + Duration::from_secs(1))?;
    // Long enough for a second trigger to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(inbox(&ctx)?.of(&name).len(), 1, "triggers of a job with a due time only");
    Ok(())
}

async fn repeats_counted(ctx: Ctx) -> CaseResult {
    let name = ctx.key("twice");
    let created = Instant::now();
    let spec = JobSpec { schedule: Some("@every 1s".into()), repeats: Some(2), ..job(&name) };
    scheduler(&ctx)?.schedule(spec).await.must("scheduling")?;
    let seen = wait_for(&ctx, &name, 2, Duration::from_secs(3)).await?;
    ensure!(!seen.is_empty(), "no trigger of `@every 1s` within 3 s and its lateness (jobLateMs)");
    on_time(&ctx, "the first trigger", seen[0].at, created + Duration::from_secs(1))?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(inbox(&ctx)?.of(&name).len(), 2, "triggers of `@every 1s` with `repeats: 2`");
    Ok(())
}

async fn ttl_bounds(ctx: Ctx) -> CaseResult {
    let name = ctx.key("bounded");
    let created = Instant::now();
    let spec = JobSpec { schedule: Some("@every 1s".into()), ttl: Some("2.5s".into()), ..job(&name) };
    scheduler(&ctx)?.schedule(spec).await.must("scheduling")?;
    let seen = wait_for(&ctx, &name, 2, Duration::from_secs(2)).await?;
    ensure_eq!(seen.len(), 2, "triggers of `@every 1s` within 2 s and its lateness (jobLateMs)");
    on_time(&ctx, "the second trigger", seen[1].at, created + Duration::from_secs(2))?;
    // Past the third period, which the ttl cuts off.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(inbox(&ctx)?.of(&name).len(), 2, "triggers of `@every 1s` with `ttl: 2.5s`");
    Ok(())
}

async fn data_round_trip(ctx: Ctx) -> CaseResult {
    let (with, without) = (ctx.key("with-data"), ctx.key("no-data"));
    let data = json!({"expression": "val", "n": 7, "list": [true, null, "x"]});
    let jobs = scheduler(&ctx)?;
    jobs.schedule(JobSpec { due_time: Some("0s".into()), data: Some(data.clone()), ..job(&with) })
        .await
        .must("scheduling")?;
    jobs.schedule(JobSpec { due_time: Some("0s".into()), ..job(&without) }).await.must("scheduling")?;
    let seen = wait_for(&ctx, &with, 1, Duration::from_secs(2)).await?;
    let first = seen.first().ok_or_else(|| Finding::Fail("no trigger of the job with data".into()))?;
    let body: Value = serde_json::from_slice(&first.data).map_err(|e| {
        Finding::Fail(format!("the trigger's body is not JSON ({e}): {:?}", String::from_utf8_lossy(&first.data)))
    })?;
    ensure_eq!(body, data, "the trigger's data");
    let seen = wait_for(&ctx, &without, 1, Duration::from_secs(2)).await?;
    let first = seen.first().ok_or_else(|| Finding::Fail("no trigger of the job without data".into()))?;
    ensure!(first.data.is_empty(), "a job without data triggered with {:?}", String::from_utf8_lossy(&first.data));
    Ok(())
}

async fn failure_policy_bounded(ctx: Ctx) -> CaseResult {
    let (constant, dropped) = (ctx.key("constant"), ctx.key("drop"));
    let inbox = inbox(&ctx)?;
    inbox.fail(&constant);
    inbox.fail(&dropped);
    let retry = FailurePolicy::Constant { interval: Duration::from_millis(200), max_retries: Some(2) };
    let jobs = scheduler(&ctx)?;
    let spec = JobSpec { due_time: Some("0s".into()), failure_policy: Some(retry), ..job(&constant) };
    jobs.schedule(spec).await.must("scheduling with a constant policy")?;
    let spec = JobSpec { due_time: Some("0s".into()), failure_policy: Some(FailurePolicy::Drop), ..job(&dropped) };
    jobs.schedule(spec).await.must("scheduling with the drop policy")?;
    wait_for(&ctx, &constant, 3, Duration::from_secs(3)).await?;
    // Time for one retry too many to show up.
    tokio::time::sleep(Duration::from_millis(800)).await;
    ensure_eq!(inbox.of(&constant).len(), 3, "attempts with `constant`, `maxRetries: 2`");
    ensure_eq!(inbox.of(&dropped).len(), 1, "attempts with `drop`");
    Ok(())
}

async fn failure_policy_default(ctx: Ctx) -> CaseResult {
    let name = ctx.key("default-policy");
    let inbox = inbox(&ctx)?;
    inbox.fail(&name);
    let created = Instant::now();
    scheduler(&ctx)?.schedule(JobSpec { due_time: Some("0s".into()), ..job(&name) }).await.must("scheduling")?;
    let seen = wait_for(&ctx, &name, 4, Duration::from_secs(3)).await?;
    ensure_eq!(seen.len(), 4, "attempts of a failing job without a policy within 3 s and its lateness (jobLateMs)");
    on_time(&ctx, "the last retry", seen[3].at, created + Duration::from_secs(3))?;
    // Long enough for a fifth attempt to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(inbox.of(&name).len(), 4, "attempts of a failing job without a policy");
    Ok(())
}

async fn trace_carried(ctx: Ctx) -> CaseResult {
    let name = ctx.key("traced");
    scheduler(&ctx)?.schedule(JobSpec { due_time: Some("0s".into()), ..job(&name) }).await.must("scheduling")?;
    let seen = wait_for(&ctx, &name, 1, Duration::from_secs(1)).await?;
    let trigger = seen.first().ok_or_else(|| Finding::Fail("no trigger of a job due now".into()))?;
    let received = trigger.traceparent.clone().unwrap_or_default();
    ensure!(
        crate::observability::trace_id(&received).is_some(),
        "the trigger reached the app with `{received}`, not a valid traceparent"
    );
    Ok(())
}

async fn overwrite_and_delete(ctx: Ctx) -> CaseResult {
    let name = ctx.key("kept");
    let jobs = scheduler(&ctx)?;
    let hourly = JobSpec { schedule: Some("@every 1h".into()), ..job(&name) };
    jobs.schedule(hourly.clone()).await.must("scheduling")?;
    ensure!(
        jobs.schedule(hourly.clone()).await.is_err(),
        "a second job of the same name was accepted without `overwrite`"
    );
    let soon = JobSpec { schedule: Some("@every 1s".into()), overwrite: true, ..hourly };
    jobs.schedule(soon).await.must("scheduling with `overwrite`")?;
    let kept = jobs.get(&name).await.must("reading the job")?;
    ensure_eq!(kept.and_then(|j| j.schedule), Some("@every 1s".to_owned()), "the schedule after `overwrite`");
    wait_for(&ctx, &name, 1, Duration::from_secs(2)).await?;
    jobs.delete(&name).await.must("deleting")?;
    let fired = inbox(&ctx)?.of(&name).len();
    jobs.delete(&name).await.must("deleting again")?;
    ensure!(jobs.get(&name).await.is_ok_and(|j| j.is_none()), "the job can still be read after delete");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(inbox(&ctx)?.of(&name).len(), fired, "triggers after delete");
    Ok(())
}

async fn durable_restart(ctx: Ctx) -> CaseResult {
    let restarts: &Arc<dyn Restarts> = ctx.reach(RESTARTS)?;
    let own = restarts.own().await.must("opening a scheduler of the case's own")?;
    let (later, done) = (ctx.key("after-restart"), ctx.key("before-restart"));
    let created = Instant::now();
    let kept = JobSpec { due_time: Some("3s".into()), data: Some(json!({"kept": true})), ..job(&later) };
    own.schedule(kept).await.must("scheduling a job due in 3 s")?;
    own.schedule(JobSpec { due_time: Some("0s".into()), ..job(&done) }).await.must("scheduling a job due now")?;
    let fired = wait_for(&ctx, &done, 1, Duration::from_secs(2)).await?;
    ensure!(!fired.is_empty(), "the job due now did not fire within 2 s and its lateness (jobLateMs)");
    // Once a fired job is gone it is gone from storage too; a restart before that may fire it
    // again (triggers are at least once), which is not what this case looks at.
    let until = Instant::now() + Duration::from_secs(2);
    while own.get(&done).await.must("getting the fired job")?.is_some() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    own.restart().await.must("restarting the scheduler")?;
    ensure!(
        own.get(&later).await.must("getting a job after the restart")?.is_some(),
        "after the restart, job `{later}` is gone"
    );
    if created.elapsed() >= Duration::from_secs(3) {
        return Err(Finding::Inconclusive("the restart took until the job was due: it may have fired before".into()));
    }
    let seen = wait_for(&ctx, &later, 1, Duration::from_secs(4)).await?;
    ensure!(!seen.is_empty(), "the job due 3 s after its creation never fired after the restart");
    on_time(&ctx, "the trigger after the restart", seen[0].at, created + Duration::from_secs(3))?;
    ensure_eq!(String::from_utf8_lossy(&seen[0].data), r#"{"kept":true}"#, "the data of the job after the restart");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ensure_eq!(inbox(&ctx)?.of(&later).len(), 1, "triggers of the job due after the restart");
    ensure_eq!(inbox(&ctx)?.of(&done).len(), 1, "triggers of the job that fired before the restart");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_certify_cannot_make_is_not_a_gap_of_the_run() {
        let case = cases().into_iter().find(|c| c.id == "jobs.durable.restart").expect("the case");
        let inbox = Arc::new(JobInbox::default());
        let driver = crate::case::DriverInfo::new("http", &[]);
        let skip = case.skip(&Default::default(), &driver, Some(&contract::Parts::default().with(inbox)));
        assert_eq!(skip.map(|s| s.could_not_run), Some(false));
    }
}
