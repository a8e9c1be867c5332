//! Fault scenarios, tagged `faults`, run through the faults driver only: the component in
//! this process, connected to its backend through a fault proxy, with control over the
//! backend. They check what breaks in production: a restart must be recovered from within a
//! budget, a broken network must make calls fail (never hang) within a bound and work again
//! after, no acknowledged write may be lost across a restart of a persistent backend, and
//! every acknowledged publish must be delivered across a broker restart.
//!
//! Scenarios run after every other trial, one at a time, since they stop shared backends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contract::pubsub::PublishRequest;
use contract::state::{GetRequest, SetRequest};
use serde_json::json;

use crate::case::{Case, CaseResult, Ctx, DriverCapability, Finding, Requirement};
use crate::ensure;
use crate::pubsub::{Inbox, always_succeed, missing, published, settle, subscribe};

/// A fault of the network between the component and its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFault {
    /// Connections closed, new ones closed at once.
    Cut,
    /// Connections open, nothing passing.
    BlackHole,
}

/// Why a fault could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultError {
    /// Not possible for this component or backend; the scenario is skipped with the reason.
    Unsupported(String),
    /// It was tried and failed; the scenario fails with the reason.
    Failed(String),
}

/// What the faults driver gives a scenario.
#[async_trait]
pub trait FaultControl: Send + Sync {
    /// Applies `fault` to the component's network, or heals it (`None`).
    async fn network(&self, fault: Option<NetworkFault>) -> Result<(), FaultError>;

    /// Restarts the backend cleanly; it is ready again when this returns.
    async fn restart(&self) -> Result<(), FaultError>;
}

impl From<FaultError> for Finding {
    fn from(e: FaultError) -> Self {
        match e {
            FaultError::Unsupported(reason) => Finding::Skip(reason),
            FaultError::Failed(reason) => Finding::Fail(reason),
        }
    }
}

macro_rules! fault_case {
    ($id:literal, $block:expr, $rule:literal, $body:path) => {
        Case {
            id: $id,
            block: $block,
            rule: $rule,
            source: "certify",
            requires: &[Requirement::Driver(DriverCapability::Faults)],
            tags: &["faults", "slow"],
            timeout: Duration::from_secs(180),
            body: |ctx| Box::pin($body(ctx)),
        }
    };
}

/// Every fault scenario.
pub fn cases() -> Vec<Case> {
    use contract::Block::{PubSub, State};
    vec![
        fault_case!(
            "faults.state.recovers-after-restart",
            State,
            "After its backend restarts, a store MUST serve reads and writes again within the recovery budget (setting `recoveryBudgetSeconds`).",
            state_recovers
        ),
        fault_case!(
            "faults.state.acknowledged-writes-survive-restart",
            State,
            "Every write a store acknowledged MUST be read back exactly after its persistent backend restarts.",
            state_writes_survive
        ),
        fault_case!(
            "faults.state.black-hole-fails-fast",
            State,
            "While nothing gets through to the backend, calls MUST fail within `faultCallTimeoutSeconds`, not hang, and work again within the recovery budget after.",
            state_black_hole
        ),
        fault_case!(
            "faults.state.cut-fails-fast",
            State,
            "While connections to the backend are cut, calls MUST fail within `faultCallTimeoutSeconds`, and work again within the recovery budget after.",
            state_cut
        ),
        Case {
            requires: &[Requirement::Driver(DriverCapability::Faults), Requirement::Claimed(crate::Claim::Etag)],
            ..fault_case!(
                "faults.state.linearizable-under-cuts",
                State,
                "Concurrent clients' histories MUST stay linearizable while connections are cut and restored (failed calls count as indeterminate).",
                state_linearizable_under_cuts
            )
        },
        fault_case!(
            "faults.pubsub.acknowledged-publishes-delivered-across-restart",
            PubSub,
            "Every message whose publish was acknowledged, before or after a broker restart, MUST be delivered at least once.",
            pubsub_across_restart
        ),
        fault_case!(
            "faults.pubsub.black-hole-fails-fast",
            PubSub,
            "While nothing gets through to the broker, a publish MUST fail within `faultCallTimeoutSeconds`, not hang, and publishing MUST work again within the recovery budget after.",
            pubsub_black_hole
        ),
    ]
}

fn control(ctx: &Ctx) -> Result<&Arc<dyn FaultControl>, Finding> {
    ctx.faults.as_ref().ok_or_else(|| Finding::Fail("no fault control for this target".into()))
}

fn budget(ctx: &Ctx) -> Duration {
    Duration::from_secs(ctx.settings.recovery_budget_seconds)
}

fn bound(ctx: &Ctx) -> Duration {
    Duration::from_secs(ctx.settings.fault_call_timeout_seconds)
}

/// Retries `attempt` until it succeeds or the recovery budget is spent; answers how long it took.
async fn recover<F, Fut>(ctx: &Ctx, what: &str, mut attempt: F) -> Result<Duration, Finding>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = contract::Result<()>>,
{
    let started = Instant::now();
    let deadline = started + budget(ctx);
    let mut last: String;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), attempt()).await {
            Ok(Ok(())) => return Ok(started.elapsed()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "the call was still running when the budget ran out".into(),
        }
        if Instant::now() >= deadline {
            return Err(Finding::Fail(format!(
                "{what} did not work again within the recovery budget of {:?}; last: {last}",
                budget(ctx)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the store works before a scenario faults it: an earlier scenario may have just
/// restarted the same backend, and a store may fail a call or two while it reconnects.
async fn working(ctx: &Ctx, key: &str) -> CaseResult {
    recover(ctx, "before the fault, the store", || write_read(ctx, key, b"before")).await.map(drop)
}

/// Subscribes once the broker takes subscriptions again (see [`working`]).
async fn subscribed(ctx: &Ctx, inbox: &Inbox) -> Result<contract::pubsub::Subscription, Finding> {
    let started = Instant::now();
    loop {
        match subscribe(ctx, &ctx.topics.main, None, inbox.handler(0, always_succeed())).await {
            Ok(sub) => return Ok(sub),
            Err(e) if started.elapsed() >= budget(ctx) => {
                return Err(Finding::Fail(format!("before the fault, within {:?}: {e:?}", budget(ctx))));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One write and one read of `key`, checked.
async fn write_read(ctx: &Ctx, key: &str, value: &[u8]) -> contract::Result<()> {
    ctx.state.set(SetRequest::new(key, value.to_vec())).await?;
    match ctx.state.get(GetRequest::new(key)).await? {
        Some(item) if item.data == value => Ok(()),
        other => Err(contract::Error::Backend(format!("read back {other:?} after writing `{key}`"))),
    }
}

async fn state_recovers(ctx: Ctx) -> CaseResult {
    let key = ctx.key("recover");
    working(&ctx, &key).await?;
    control(&ctx)?.restart().await?;
    let took = recover(&ctx, "the store", || write_read(&ctx, &key, b"after")).await?;
    ctx.evidence.set(json!({"recovery_ms": took.as_secs_f64() * 1000.0, "budget_s": budget(&ctx).as_secs()}));
    Ok(())
}

async fn state_writes_survive(ctx: Ctx) -> CaseResult {
    const WRITES: usize = 100;
    working(&ctx, &ctx.key("kept-first")).await?;
    let mut acknowledged = Vec::new();
    for n in 0..WRITES {
        let (key, value) = (ctx.key(&format!("kept-{n}")), format!("{}-{n}", ctx.namespace).into_bytes());
        if ctx.state.set(SetRequest::new(&key, value.clone())).await.is_ok() {
            acknowledged.push((key, value));
        }
    }
    ensure!(!acknowledged.is_empty(), "no write was acknowledged before the restart");
    control(&ctx)?.restart().await?;
    let probe = ctx.key("kept-probe");
    let took = recover(&ctx, "the store", || write_read(&ctx, &probe, b"probe")).await?;
    let mut lost = Vec::new();
    for (key, value) in &acknowledged {
        match ctx.state.get(GetRequest::new(key)).await {
            Ok(Some(item)) if item.data == *value => {}
            Ok(other) => {
                lost.push(format!("{key}: {:?}", other.map(|i| String::from_utf8_lossy(&i.data).into_owned())))
            }
            Err(e) => lost.push(format!("{key}: {e}")),
        }
    }
    ctx.evidence.set(json!({
        "acknowledged": acknowledged.len(), "lost": lost.len(), "recovery_ms": took.as_secs_f64() * 1000.0,
    }));
    ensure!(
        lost.is_empty(),
        "{} of {} acknowledged writes were not read back after the restart: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(5)]
    );
    Ok(())
}

/// Under `fault`, a read and a write must each fail within the bound; after healing, the store
/// must recover within the budget.
async fn state_under(ctx: Ctx, fault: NetworkFault) -> CaseResult {
    let faults = control(&ctx)?;
    let key = ctx.key("net");
    working(&ctx, &key).await?;
    faults.network(Some(fault)).await?;
    let outcome = async {
        let mut failed_in = Vec::new();
        for (what, call) in [("a write", true), ("a read", false)] {
            let started = Instant::now();
            let attempt = async {
                match call {
                    true => ctx.state.set(SetRequest::new(&key, b"during".to_vec())).await,
                    false => ctx.state.get(GetRequest::new(&key)).await.map(drop),
                }
            };
            match tokio::time::timeout(bound(&ctx), attempt).await {
                Err(_) => {
                    return Err(Finding::Fail(format!(
                        "{what} during a {fault:?} did not return within {:?}: a call must fail, not hang",
                        bound(&ctx)
                    )));
                }
                Ok(Ok(())) => {
                    return Err(Finding::Fail(format!(
                        "{what} during a {fault:?} succeeded, though nothing could reach the backend"
                    )));
                }
                Ok(Err(_)) => failed_in.push(started.elapsed()),
            }
        }
        Ok(failed_in)
    }
    .await;
    faults.network(None).await?;
    let failed_in = outcome?;
    let took = recover(&ctx, "the store", || write_read(&ctx, &key, b"after")).await?;
    ctx.evidence.set(json!({
        "failed_in_ms": failed_in.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>(),
        "recovery_ms": took.as_secs_f64() * 1000.0,
    }));
    Ok(())
}

async fn state_black_hole(ctx: Ctx) -> CaseResult {
    state_under(ctx, NetworkFault::BlackHole).await
}

async fn state_cut(ctx: Ctx) -> CaseResult {
    state_under(ctx, NetworkFault::Cut).await
}

async fn state_linearizable_under_cuts(ctx: Ctx) -> CaseResult {
    let faults = control(&ctx)?;
    working(&ctx, &ctx.key("hot-probe")).await?;
    // Cut twice while the clients run; each call during a cut is indeterminate.
    let schedule = async {
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = faults.network(Some(NetworkFault::Cut)).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = faults.network(None).await;
        }
    };
    let indeterminate = crate::state::concurrency::check_clients(&ctx, schedule).await;
    faults.network(None).await?;
    let indeterminate = indeterminate?;
    ctx.evidence.set(json!({"indeterminate": indeterminate}));
    if indeterminate == 0 {
        return Err(Finding::Inconclusive(
            "no operation overlapped a cut (the clients finished first), so the faults were not exercised".into(),
        ));
    }
    Ok(())
}

/// Message `seq` of series `tag` on the main topic; all with one partition key when the
/// component claims ordering, so their order is checked too.
fn message(ctx: &Ctx, tag: &str, seq: u64) -> PublishRequest {
    let request = PublishRequest::new(&ctx.topics.main, ctx.topics.payload(tag, seq));
    match ctx.claims.contains(&crate::Claim::Ordering) {
        true => request.with_metadata(contract::pubsub::PARTITION_KEY, ctx.namespace.clone()),
        false => request,
    }
}

/// Publishes message `seq` of series `tag`, retrying until acknowledged within the budget.
async fn publish_until_acknowledged(ctx: &Ctx, tag: &str, seq: u64) -> CaseResult {
    recover(ctx, "publishing", || ctx.pubsub.publish(message(ctx, tag, seq))).await.map(drop)
}

async fn pubsub_across_restart(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(&ctx.topics);
    let _sub = subscribed(&ctx, &inbox).await?;
    settle(&ctx, &ctx.topics.main, &inbox, Some(0)).await?;
    for seq in 1..=20 {
        published(ctx.pubsub.publish(message(&ctx, "m", seq)).await, "before the restart")?;
    }
    control(&ctx)?.restart().await?;
    for seq in 21..=40 {
        publish_until_acknowledged(&ctx, "m", seq).await?;
    }
    let within = Duration::from_secs(ctx.settings.delivery_timeout_seconds.max(60));
    let arrived = inbox.wait_for(within, |_| inbox.handled(0, "m").len() == 40).await;
    ctx.evidence.set(inbox.summary());
    let handled = inbox.handled(0, "m");
    ensure!(
        arrived,
        "acknowledged messages {:?} of 40 were never delivered within {within:?} (1–20 published before the restart, 21–40 after)",
        missing(1..=40, &handled)
    );
    if ctx.claims.contains(&crate::Claim::Ordering) {
        // In publish order, counting each message's first successful delivery.
        let mut first: Vec<u64> = Vec::new();
        for d in inbox.deliveries().iter().filter(|d| d.tag == "m" && d.outcome == contract::pubsub::Outcome::Success) {
            if !first.contains(&d.seq) {
                first.push(d.seq);
            }
        }
        let out_of_order = first.windows(2).find(|w| w[0] > w[1]);
        ensure!(
            out_of_order.is_none(),
            "with one partition key, message {} was first handled after message {} across the restart",
            out_of_order.map_or(0, |w| w[1]),
            out_of_order.map_or(0, |w| w[0])
        );
    }
    Ok(())
}

async fn pubsub_black_hole(ctx: Ctx) -> CaseResult {
    let faults = control(&ctx)?;
    let inbox = Inbox::new(&ctx.topics);
    let _sub = subscribed(&ctx, &inbox).await?;
    settle(&ctx, &ctx.topics.main, &inbox, Some(0)).await?;
    faults.network(Some(NetworkFault::BlackHole)).await?;
    let started = Instant::now();
    let during = tokio::time::timeout(
        bound(&ctx),
        ctx.pubsub.publish(PublishRequest::new(&ctx.topics.main, ctx.topics.payload("during", 1))),
    )
    .await;
    faults.network(None).await?;
    let failed_in = started.elapsed();
    match during {
        Err(_) => {
            return Err(Finding::Fail(format!(
                "a publish into a network black hole did not return within {:?}: it must fail, not hang",
                bound(&ctx)
            )));
        }
        Ok(Ok(())) => {
            return Err(Finding::Fail("a publish succeeded though nothing could reach the broker".into()));
        }
        Ok(Err(_)) => {}
    }
    publish_until_acknowledged(&ctx, "after", 1).await?;
    let arrived = inbox.wait_for(budget(&ctx), |_| inbox.handled(0, "after").contains_key(&1)).await;
    ctx.evidence.set(json!({"failed_in_ms": failed_in.as_secs_f64() * 1000.0, "inbox": inbox.summary()}));
    ensure!(arrived, "after the network healed, a message published was not delivered within {:?}", budget(&ctx));
    Ok(())
}
