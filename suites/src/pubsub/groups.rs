//! Who gets what: per-key order, competing consumers within a group, fan-out across groups,
//! topic isolation, and unsubscribing.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use contract::pubsub::{Handler, Message, Outcome, PARTITION_KEY, PublishRequest};

use super::inbox::{Inbox, Policy, always_succeed, published, settle};
use super::{missing, patience, subscribe};
use crate::case::{CaseResult, Ctx};
use crate::{ensure, ensure_eq};

const KEYS: [&str; 3] = ["alpha", "beta", "gamma"];
const PER_KEY: u64 = 15;

pub(super) async fn per_key_order(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    // Some messages fail once, so a lane must hold its later messages back until they succeed.
    let policy: Policy = Arc::new(|m: &Message, before: u32| {
        let seq = m.data.rsplit(|b| *b == b':').next().and_then(|s| std::str::from_utf8(s).ok());
        match seq.and_then(|s| s.parse::<u64>().ok()) {
            Some(n) if n % 7 == 3 && before == 0 => Outcome::Retry("RETRY".into()),
            _ => Outcome::Success,
        }
    });
    let (handler, overlaps) = one_at_a_time(ctx.topics()?.clone(), inbox.handler(0, policy));
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, handler).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    for n in 1..=PER_KEY {
        for key in KEYS {
            let request = PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload(key, n))
                .with_metadata(PARTITION_KEY, key);
            published(ctx.pubsub()?.publish(request).await, "a keyed message")?;
        }
    }
    let all = |_: &[super::Delivery]| KEYS.iter().all(|k| inbox.handled(0, k).len() as u64 == PER_KEY);
    let arrived = inbox.wait_for(patience(&ctx) * 2, all).await;
    ctx.evidence.set(inbox.summary());
    for key in KEYS {
        // Walk the deliveries of one key in the order the handler saw them: the next one must
        // be the lowest not yet handled, or a duplicate of one already handled.
        let mut next = 1;
        for d in inbox.deliveries().iter().filter(|d| d.tag == key) {
            ensure!(
                d.seq <= next,
                "key `{key}`: message {} was delivered before message {next} had been handled",
                d.seq
            );
            if d.seq == next && d.outcome == Outcome::Success {
                next += 1;
            }
        }
        ensure!(
            arrived,
            "key `{key}`: messages {:?} never arrived within {:?}",
            missing(1..=PER_KEY, &inbox.handled(0, key)),
            patience(&ctx) * 2
        );
    }
    let overlaps = overlaps.lock().unwrap_or_else(PoisonError::into_inner).clone();
    ensure!(
        overlaps.is_empty(),
        "messages of one key were in the handler at once (a later one began before an earlier one was answered): {overlaps:?}"
    );
    Ok(())
}

pub(super) async fn competing_consumers(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let group = format!("{}-workers", ctx.topics()?.nonce);
    let _a = subscribe(&ctx, &ctx.topics()?.main, Some(&group), inbox.handler(0, always_succeed())).await?;
    let _b = subscribe(&ctx, &ctx.topics()?.main, Some(&group), inbox.handler(1, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, None).await?;
    for n in 1..=20 {
        published(
            ctx.pubsub()?.publish(PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload("w", n))).await,
            "a message",
        )?;
    }
    let union = || {
        let mut all: BTreeMap<u64, u32> = inbox.handled(0, "w");
        for (n, c) in inbox.handled(1, "w") {
            *all.entry(n).or_insert(0) += c;
        }
        all
    };
    let arrived = inbox.wait_for(patience(&ctx), |_| union().len() == 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a, b) = (inbox.handled(0, "w"), inbox.handled(1, "w"));
    let both: Vec<u64> = a.keys().filter(|n| b.contains_key(n)).copied().collect();
    // At-least-once allows a message again after a failure; this case causes none (every
    // delivery succeeds), so a message handled twice, by one member or both, is a duplicate.
    let twice: Vec<u64> = union().into_iter().filter(|(_, c)| *c > 1).map(|(n, _)| n).collect();
    ctx.evidence.set(serde_json::json!({
        "inbox": inbox.summary(), "subscriber_a": a.len(), "subscriber_b": b.len(), "handled_by_both": both.len(),
        "handled_more_than_once": twice,
    }));
    ensure!(
        arrived,
        "messages {:?} of 20 reached neither subscriber within {:?}",
        missing(1..=20, &union()),
        patience(&ctx)
    );
    ensure!(
        both.len() <= 10,
        "{} of 20 messages were handled by both subscribers of one consumer group ({both:?}): the group fans out instead of competing",
        both.len()
    );
    ensure!(
        twice.is_empty(),
        "messages {twice:?} were handled more than once by one consumer group, though no delivery failed"
    );
    Ok(())
}

pub(super) async fn fan_out(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let (g1, g2) = (format!("{}-one", ctx.topics()?.nonce), format!("{}-two", ctx.topics()?.nonce));
    let _a = subscribe(&ctx, &ctx.topics()?.main, Some(&g1), inbox.handler(0, always_succeed())).await?;
    let _b = subscribe(&ctx, &ctx.topics()?.main, Some(&g2), inbox.handler(1, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(1)).await?;
    for n in 1..=10 {
        published(
            ctx.pubsub()?.publish(PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload("f", n))).await,
            "a message",
        )?;
    }
    let arrived =
        inbox.wait_for(patience(&ctx), |_| inbox.handled(0, "f").len() == 10 && inbox.handled(1, "f").len() == 10);
    let arrived = arrived.await;
    ctx.evidence.set(inbox.summary());
    for (s, group) in [(0, &g1), (1, &g2)] {
        ensure!(
            arrived,
            "group `{group}` lacks messages {:?} of 10 after {:?}",
            missing(1..=10, &inbox.handled(s, "f")),
            patience(&ctx)
        );
    }
    Ok(())
}

pub(super) async fn topics_isolated(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let _a = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    let _b = subscribe(&ctx, &ctx.topics()?.other, None, inbox.handler(1, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    settle(&ctx, &ctx.topics()?.other, &inbox, Some(1)).await?;
    for n in 1..=10 {
        let (topic, tag) = if n % 2 == 0 { (&ctx.topics()?.main, "even") } else { (&ctx.topics()?.other, "odd") };
        published(ctx.pubsub()?.publish(PublishRequest::new(topic, ctx.topics()?.payload(tag, n))).await, "a message")?;
    }
    let done = |_: &[super::Delivery]| inbox.handled(0, "even").len() == 5 && inbox.handled(1, "odd").len() == 5;
    let arrived = inbox.wait_for(patience(&ctx), done).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ctx.evidence.set(inbox.summary());
    ensure!(arrived, "not every message reached its topic's subscriber within {:?}", patience(&ctx));
    ensure!(inbox.handled(0, "odd").is_empty(), "the subscriber of one topic received messages of the other");
    ensure!(inbox.handled(1, "even").is_empty(), "the subscriber of one topic received messages of the other");
    let dups: u32 = inbox.handled(0, "even").values().chain(inbox.handled(1, "odd").values()).map(|c| c - 1).sum();
    ensure_eq!(dups, 0, "duplicate deliveries (Dapr's suite compares exact sets)");
    Ok(())
}

pub(super) async fn unsubscribe_stops(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let first = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    let _second = subscribe(&ctx, &ctx.topics()?.other, None, inbox.handler(1, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    settle(&ctx, &ctx.topics()?.other, &inbox, Some(1)).await?;
    first.close();
    // Dapr's suite waits 5 s after cancelling; a closed subscription must stop far sooner.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in 1..=5 {
        published(
            ctx.pubsub()?.publish(PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload("late", n))).await,
            "a message",
        )?;
        published(
            ctx.pubsub()?.publish(PublishRequest::new(&ctx.topics()?.other, ctx.topics()?.payload("on", n))).await,
            "a message",
        )?;
    }
    let arrived = inbox.wait_for(patience(&ctx), |_| inbox.handled(1, "on").len() == 5).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ctx.evidence.set(inbox.summary());
    ensure!(
        arrived,
        "closing one subscription stopped another: messages {:?} of 5 missing",
        missing(1..=5, &inbox.handled(1, "on"))
    );
    let late = inbox.deliveries().iter().filter(|d| d.tag == "late").count();
    ensure_eq!(late, 0, "deliveries to the closed subscription");
    Ok(())
}

pub(super) async fn kept_for_next_subscriber(ctx: Ctx) -> CaseResult {
    let (topics, inbox) = (ctx.topics()?, Inbox::new(ctx.topics()?));
    let group = format!("{}-returning", topics.nonce);
    // The first subscriber takes a while over the one message it gets and then asks for it
    // again; it is gone by then, so the message is in the group's hands with nobody to give it to.
    let (started, finish) = (Arc::new(tokio::sync::Notify::new()), Duration::from_millis(500));
    let seen = Arc::clone(&started);
    let leaving: contract::pubsub::Handler = Arc::new(move |_: Message| {
        seen.notify_one();
        Box::pin(async move {
            tokio::time::sleep(finish).await;
            Outcome::Retry("certify's first subscriber left before acknowledging".into())
        })
    });
    let first = subscribe(&ctx, &topics.main, Some(&group), leaving).await?;
    published(ctx.pubsub()?.publish(PublishRequest::new(&topics.main, topics.payload("held", 1))).await, "a message")?;
    let delivered = tokio::time::timeout(patience(&ctx), started.notified()).await.is_ok();
    ensure!(delivered, "the group's first subscriber got nothing within {:?}", patience(&ctx));
    first.close();
    for n in 1..=3 {
        let request = PublishRequest::new(&topics.main, topics.payload("away", n));
        published(ctx.pubsub()?.publish(request).await, "a message while the group had no subscriber")?;
    }
    tokio::time::sleep(finish * 2).await;
    let _next = subscribe(&ctx, &topics.main, Some(&group), inbox.handler(1, always_succeed())).await?;
    let done = |_: &[super::Delivery]| inbox.handled(1, "held").len() == 1 && inbox.handled(1, "away").len() == 3;
    let arrived = inbox.wait_for(patience(&ctx), done).await;
    ctx.evidence.set(inbox.summary());
    ensure!(
        arrived,
        "the group's next subscriber did not get what was kept for it within {:?}: unacknowledged {:?} of [1], published while away {:?} of 1..=3",
        patience(&ctx),
        missing(1..=1, &inbox.handled(1, "held")),
        missing(1..=3, &inbox.handled(1, "away"))
    );
    Ok(())
}

/// Wraps `handler` so that each delivery takes a moment (so messages queue up behind it) and
/// notes every message that arrives while another of its key is still being handled: an
/// ordered lane hands over the next message only once the previous one is answered.
fn one_at_a_time(topics: super::TopicSet, handler: Handler) -> (Handler, Arc<Mutex<Vec<String>>>) {
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    let overlaps: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&overlaps);
    let wrapped: Handler = Arc::new(move |message: Message| {
        let key = topics.parse(&message.data);
        if let Some((tag, n)) = &key
            && !busy.lock().unwrap_or_else(PoisonError::into_inner).insert(tag.clone())
        {
            seen.lock().unwrap_or_else(PoisonError::into_inner).push(format!("{tag}:{n}"));
        }
        let answer = handler(message);
        let busy = Arc::clone(&busy);
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            let outcome = answer.await;
            if let Some((tag, _)) = key {
                busy.lock().unwrap_or_else(PoisonError::into_inner).remove(&tag);
            }
            outcome
        })
    });
    (wrapped, overlaps)
}
