//! Fault scenarios of bindings: a write (`create`, or `exec` for SQL bindings) fails fast in a
//! black hole and works again after, and every acknowledged event is delivered by the input
//! side across a backend restart.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use contract::bindings::{BindingEvent, InvokeRequest};
use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{NetworkFault, bound, budget, control, recover};
use crate::Claim;
use crate::bindings::{keyed, listen, output, payload};
use crate::case::{CaseResult, Ctx, Finding};
use crate::ensure;
use contract::Block;

use super::scenario;
use crate::case::{Case, Requirement};

/// Every binding fault scenario.
pub(super) fn cases() -> Vec<Case> {
    vec![
        scenario!(
            Block::BINDINGS,
            "faults.bindings.black-hole-fails-fast",
            "While nothing gets through to the backend, an output binding's write (`create`, or `exec`) MUST fail within `faultCallTimeoutSeconds`, not hang, and work again within the recovery budget after; with `read`, what it sends after MUST arrive.",
            [],
            black_hole
        ),
        scenario!(
            Block::BINDINGS,
            "faults.bindings.acknowledged-events-delivered-across-restart",
            "Every event whose `create` was acknowledged, before or after a restart of a persistent backend, MUST be delivered by the input binding at least once.",
            [Requirement::Claimed(Claim::Create), Requirement::Claimed(Claim::Read)],
            across_restart
        ),
    ]
}

/// Sends payload `n` with `create` (or, for a binding certified for `exec` only, runs a
/// statement), once.
async fn create(ctx: &Ctx, n: u64) -> contract::Result<()> {
    let request = match ctx.claims.contains(&Claim::Create) {
        true => keyed(ctx, "create", payload(ctx, n), &ctx.key(&format!("fault-{n}"))),
        false => InvokeRequest::new("exec", Vec::new()).with_metadata("sql", format!("SELECT {n}")),
    };
    output(ctx).map_err(|_| contract::Error::unsupported("no output binding"))?.invoke(request).await.map(drop)
}

/// Sends payload `n` until a `create` is acknowledged within the recovery budget.
async fn create_until_acknowledged(ctx: &Ctx, what: &str, n: u64) -> CaseResult {
    recover(ctx, what, || create(ctx, n)).await.map(drop)
}

/// Waits until every payload in `wanted` arrived on `events`; answers those that did not.
async fn collect(
    ctx: &Ctx,
    events: &mut UnboundedReceiver<BindingEvent>,
    wanted: &[u64],
    within: Duration,
) -> Vec<u64> {
    let deadline = Instant::now() + within;
    let mut missing: BTreeSet<u64> = wanted.iter().copied().collect();
    while !missing.is_empty() {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline.into(), events.recv()).await else { break };
        missing.retain(|n| event.data != payload(ctx, *n));
    }
    missing.into_iter().collect()
}

pub(super) async fn black_hole(ctx: Ctx) -> CaseResult {
    if !ctx.claims.contains(&Claim::Create) && !ctx.claims.contains(&Claim::Exec) {
        return Err(Finding::Skip("the component claims neither `create` nor `exec`: nothing to write".into()));
    }
    let faults = control(&ctx)?;
    let reads = ctx.claims.contains(&Claim::Read);
    let mut events = if reads { Some(listen(&ctx)?) } else { None };
    create_until_acknowledged(&ctx, "before the fault, `create`", 0).await?;
    faults.network(Some(NetworkFault::BlackHole)).await?;
    let started = Instant::now();
    let during = tokio::time::timeout(bound(&ctx), create(&ctx, 1)).await;
    faults.network(None).await?;
    let failed_in = started.elapsed();
    match during {
        Err(_) => {
            return Err(Finding::Fail(format!(
                "a `create` into a network black hole did not return within {:?}: it must fail, not hang",
                bound(&ctx)
            )));
        }
        Ok(Ok(())) => return Err(Finding::Fail("a `create` succeeded though nothing could reach the backend".into())),
        Ok(Err(_)) => {}
    }
    let took = recover(&ctx, "`create`", || create(&ctx, 2)).await?;
    let undelivered = match &mut events {
        Some(events) => collect(&ctx, events, &[2], budget(&ctx).max(Duration::from_secs(30))).await,
        None => Vec::new(),
    };
    ctx.evidence.set(json!({
        "failed_in_ms": failed_in.as_secs_f64() * 1000.0, "recovery_ms": took.as_secs_f64() * 1000.0,
        "checked_delivery": reads,
    }));
    ensure!(undelivered.is_empty(), "after the network healed, an event sent with `create` was never delivered");
    Ok(())
}

pub(super) async fn across_restart(ctx: Ctx) -> CaseResult {
    let mut events = listen(&ctx)?;
    create_until_acknowledged(&ctx, "before the restart, `create`", 0).await?;
    let mut acknowledged = vec![0];
    for n in 1..=10 {
        if create(&ctx, n).await.is_ok() {
            acknowledged.push(n);
        }
    }
    control(&ctx)?.restart().await?;
    for n in 11..=20 {
        create_until_acknowledged(&ctx, "after the restart, `create`", n).await?;
        acknowledged.push(n);
    }
    let within = Duration::from_secs(ctx.settings.delivery_timeout_seconds.max(60));
    let missing = collect(&ctx, &mut events, &acknowledged, within).await;
    ctx.evidence.set(json!({"acknowledged": acknowledged.len(), "missing": missing}));
    ensure!(
        missing.is_empty(),
        "acknowledged events {missing:?} of {} were never delivered within {within:?} (0–10 sent before the restart, 11–20 after)",
        acknowledged.len()
    );
    Ok(())
}
