//! Fault scenarios of brokers: acknowledged publishes delivered across a restart (in order,
//! when claimed), and publishes that fail fast in a black hole.

use std::time::{Duration, Instant};

use contract::pubsub::PublishRequest;
use serde_json::json;

use super::{NetworkFault, bound, budget, control, recover};
use crate::case::{CaseResult, Ctx, Finding};
use crate::ensure;
use crate::pubsub::{Inbox, always_succeed, missing, published, settle, subscribe};
use contract::Block;

use super::scenario;
use crate::case::Case;

/// Every broker fault scenario.
pub(super) fn cases() -> Vec<Case> {
    vec![
        scenario!(
            Block::PUBSUB,
            "faults.pubsub.acknowledged-publishes-delivered-across-restart",
            "Every message whose publish was acknowledged, before or after a broker restart, MUST be delivered at least once.",
            [],
            across_restart
        ),
        scenario!(
            Block::PUBSUB,
            "faults.pubsub.black-hole-fails-fast",
            "While nothing gets through to the broker, a publish MUST fail within `faultCallTimeoutSeconds`, not hang, and publishing MUST work again within the recovery budget after.",
            [],
            black_hole
        ),
    ]
}

/// Subscribes once the broker takes subscriptions again (see [`working`]).
async fn subscribed(ctx: &Ctx, inbox: &Inbox) -> Result<contract::pubsub::Subscription, Finding> {
    let started = Instant::now();
    loop {
        match subscribe(ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await {
            Ok(sub) => return Ok(sub),
            Err(e) if started.elapsed() >= budget(ctx) => {
                return Err(Finding::Fail(format!("before the fault, within {:?}: {e:?}", budget(ctx))));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Message `seq` of series `tag` on the main topic; all with one partition key when the
/// component claims ordering, so their order is checked too.
fn message(ctx: &Ctx, tag: &str, seq: u64) -> Result<PublishRequest, Finding> {
    let request = PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload(tag, seq));
    Ok(match ctx.claims.contains(&crate::Claim::Ordering) {
        true => request.with_metadata(contract::pubsub::PARTITION_KEY, ctx.namespace.clone()),
        false => request,
    })
}

/// Publishes message `seq` of series `tag`, retrying until acknowledged within the budget.
async fn publish_until_acknowledged(ctx: &Ctx, tag: &str, seq: u64) -> CaseResult {
    let broker = ctx.pubsub()?;
    let request = message(ctx, tag, seq)?;
    recover(ctx, "publishing", || broker.publish(request.clone())).await.map(drop)
}

pub(super) async fn across_restart(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribed(&ctx, &inbox).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    for seq in 1..=20 {
        published(ctx.pubsub()?.publish(message(&ctx, "m", seq)?).await, "before the restart")?;
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

pub(super) async fn black_hole(ctx: Ctx) -> CaseResult {
    let faults = control(&ctx)?;
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribed(&ctx, &inbox).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    faults.network(Some(NetworkFault::BlackHole)).await?;
    let started = Instant::now();
    let during = tokio::time::timeout(
        bound(&ctx),
        ctx.pubsub()?.publish(PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload("during", 1))),
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
