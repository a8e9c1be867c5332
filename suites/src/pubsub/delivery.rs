//! Delivery and redelivery: everything arrives; RETRY and handler errors are redelivered with
//! a growing attempt count; DROP and 404 are not; used-up attempts go to the dead-letter topic.

use std::sync::Arc;
use std::time::Duration;

use contract::pubsub::{Message, Outcome, PublishRequest};
use serde_json::json;

use super::inbox::{HANDLER_ERROR, Inbox, NOT_FOUND, Policy, always_succeed, published, settle};
use super::{missing, patience, subscribe};
use crate::case::{CaseResult, Ctx, Finding, Must};
use crate::{ensure, ensure_eq};

/// Ping, then a publish: through a sidecar, ping only finds the component listed (the Dapr API
/// has no ping), so the publish is what reaches the broker.
pub(super) async fn ping(ctx: Ctx) -> CaseResult {
    ctx.pubsub()?.ping().await.must("ping")?;
    let topics = ctx.topics()?;
    published(
        ctx.pubsub()?.publish(PublishRequest::new(&topics.other, topics.payload("ping", 1))).await,
        "a publish after the ping",
    )
}

async fn publish_series(ctx: &Ctx, topic: &str, tag: &str, range: std::ops::RangeInclusive<u64>) -> CaseResult {
    for n in range {
        published(ctx.pubsub()?.publish(PublishRequest::new(topic, ctx.topics()?.payload(tag, n))).await, "a message")?;
    }
    Ok(())
}

pub(super) async fn all_delivered(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    publish_series(&ctx, &ctx.topics()?.main, "m", 1..=10).await?;
    let arrived = inbox.wait_for(patience(&ctx), |_| inbox.handled(0, "m").len() == 10).await;
    ctx.evidence.set(inbox.summary());
    let handled = inbox.handled(0, "m");
    ensure!(arrived, "messages {:?} of 10 never arrived within {:?}", missing(1..=10, &handled), patience(&ctx));
    Ok(())
}

/// The first delivery of every message gets `first`; later ones succeed.
fn fail_first(first: Outcome) -> Policy {
    Arc::new(move |_: &Message, before: u32| if before == 0 { first.clone() } else { Outcome::Success })
}

async fn redelivered(ctx: Ctx, first: Outcome, what: &str) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, fail_first(first))).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    publish_series(&ctx, &ctx.topics()?.main, "r", 1..=3).await?;
    let arrived = inbox.wait_for(patience(&ctx), |_| inbox.handled(0, "r").len() == 3).await;
    ctx.evidence.set(inbox.summary());
    let handled = inbox.handled(0, "r");
    ensure!(
        arrived,
        "messages {:?} were answered {what} once and never delivered again within {:?}",
        missing(1..=3, &handled),
        patience(&ctx)
    );
    for n in 1..=3 {
        let attempts: Vec<Message> =
            inbox.deliveries().into_iter().filter(|d| d.tag == "r" && d.seq == n).map(|d| d.message).collect();
        let (Some(first), Some(again)) = (attempts.first(), attempts.get(1)) else {
            return Err(Finding::Fail(format!("message {n} was delivered only once")));
        };
        ensure_eq!(again.id, first.id, "the id of message {n} when redelivered");
    }
    Ok(())
}

/// The attempt count the component reports (only a driver that carries it runs this: over a
/// sidecar's HTTP API or the pluggable protocol the count would be certify's own).
pub(super) async fn attempts_grow(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let twice: Policy =
        Arc::new(|_: &Message, before: u32| if before < 2 { Outcome::Retry("RETRY".into()) } else { Outcome::Success });
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, twice)).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    publish_series(&ctx, &ctx.topics()?.main, "a", 1..=1).await?;
    let arrived = inbox.wait_for(patience(&ctx) * 2, |ds| ds.iter().filter(|d| d.tag == "a").count() >= 3).await;
    ctx.evidence.set(inbox.summary());
    let attempts: Vec<u32> = inbox.deliveries().iter().filter(|d| d.tag == "a").map(|d| d.message.attempt).collect();
    ensure!(arrived, "the message answered RETRY twice was delivered {} times, not 3", attempts.len());
    ensure!(attempts[0] >= 1, "the first delivery's attempt count is {}, not at least 1", attempts[0]);
    ensure!(
        attempts.windows(2).all(|w| w[1] > w[0]),
        "the attempt counts of the deliveries did not grow: {attempts:?}"
    );
    Ok(())
}

pub(super) async fn retry_redelivered(ctx: Ctx) -> CaseResult {
    redelivered(ctx, Outcome::Retry("RETRY".into()), "RETRY").await
}

pub(super) async fn error_redelivered(ctx: Ctx) -> CaseResult {
    redelivered(ctx, Outcome::Retry(HANDLER_ERROR.into()), "with a handler error").await
}

/// How long after its first delivery the control message came again.
fn control_backoff(deliveries: &[super::inbox::Delivery]) -> Option<Duration> {
    let mut control = deliveries.iter().filter(|d| d.tag == "control");
    let (first, again) = (control.next()?, control.next()?);
    Some(again.at.saturating_sub(first.at))
}

/// A message answered `answer` must not come back. Beside it goes a control message answered
/// RETRY once: a component that took `answer` for RETRY would redeliver the message about when
/// it redelivers the control, so the message is watched for the control's backoff again after
/// that (at least [`Settings::quiet_ms`](crate::Settings)).
async fn not_redelivered(ctx: Ctx, answer: Outcome, what: &str) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let policy: Policy = Arc::new(move |m: &Message, before| {
        if m.data.ends_with(b":drop:1") {
            answer.clone()
        } else if m.data.ends_with(b":control:1") && before == 0 {
            Outcome::Retry("RETRY".into())
        } else {
            Outcome::Success
        }
    });
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, policy)).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    for tag in ["drop", "control", "keep"] {
        publish_series(&ctx, &ctx.topics()?.main, tag, 1..=1).await?;
    }
    let arrived = inbox.wait_for(patience(&ctx) * 2, |ds| {
        ds.iter().any(|d| d.tag == "drop") && ds.iter().any(|d| d.tag == "keep") && control_backoff(ds).is_some()
    });
    let arrived = arrived.await;
    let deliveries = inbox.deliveries();
    ensure!(
        deliveries.iter().any(|d| d.tag == "drop") && deliveries.iter().any(|d| d.tag == "keep"),
        "the messages did not all arrive within {:?}",
        patience(&ctx) * 2
    );
    let Some(backoff) = control_backoff(&deliveries).filter(|_| arrived) else {
        return Err(Finding::Inconclusive(format!(
            "the control message answered RETRY was not delivered again within {:?}, so how long a redelivery takes here is unknown",
            patience(&ctx) * 2
        )));
    };
    let watch = backoff.max(ctx.settings.quiet());
    tokio::time::sleep(watch).await;
    let mut evidence = inbox.summary();
    evidence["control_backoff_ms"] = json!(backoff.as_millis() as u64);
    evidence["watched_after_control_ms"] = json!(watch.as_millis() as u64);
    ctx.evidence.set(evidence);
    let drops = inbox.deliveries().iter().filter(|d| d.tag == "drop").count();
    ensure_eq!(
        drops,
        1,
        "deliveries of the message answered {what} (watched {watch:?} after the control's redelivery, which took {backoff:?})"
    );
    Ok(())
}

pub(super) async fn drop_not_redelivered(ctx: Ctx) -> CaseResult {
    not_redelivered(ctx, Outcome::Drop("DROP".into()), "DROP").await
}

pub(super) async fn not_found_not_redelivered(ctx: Ctx) -> CaseResult {
    not_redelivered(ctx, Outcome::Drop(NOT_FOUND.into()), "404").await
}

pub(super) async fn dead_letter(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let always_retry: Policy =
        Arc::new(
            |m: &Message, _| {
                if m.data.ends_with(b":doomed:1") { Outcome::Retry("RETRY".into()) } else { Outcome::Success }
            },
        );
    let _main = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_retry)).await?;
    let _dlq = subscribe(&ctx, &ctx.topics()?.dead_letter, None, inbox.handler(1, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    settle(&ctx, &ctx.topics()?.dead_letter, &inbox, Some(1)).await?;
    publish_series(&ctx, &ctx.topics()?.main, "doomed", 1..=1).await?;
    let arrived = inbox.wait_for(patience(&ctx) * 2, |_| !inbox.handled(1, "doomed").is_empty()).await;
    tokio::time::sleep(ctx.settings.quiet()).await;
    ctx.evidence.set(inbox.summary());
    let attempts: Vec<u32> = inbox
        .deliveries()
        .iter()
        .filter(|d| d.subscriber == 0 && d.tag == "doomed")
        .map(|d| d.message.attempt)
        .collect();
    ensure!(
        arrived,
        "the message was delivered {} times, answered RETRY each time, and never reached the dead-letter topic",
        attempts.len()
    );
    match ctx.settings.max_delivery_attempts {
        Some(max) => ensure_eq!(attempts.len() as u32, max, "deliveries before dead-lettering"),
        None => ensure!(attempts.len() >= 2, "the message went to the dead-letter topic without being redelivered"),
    }
    Ok(())
}
