//! What a message carries: bytes exactly, 1 MiB, metadata and content type, the CloudEvent
//! envelope and raw payloads; bulk publish and subscribe; message TTL.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use contract::pubsub::{
    BulkMessageEntry, BulkPublishRequest, BulkSubscribeConfig, Message, Outcome, PublishRequest, SubscribeRequest,
    TTL_IN_SECONDS,
};

use super::inbox::{Inbox, Policy, TopicSet, always_succeed, published, settle};
use super::{missing, patience, subscribe};
use crate::case::{CaseResult, Ctx, Finding};
use crate::{ensure, ensure_eq};

/// The nonce, a series line, then `len` bytes of every value, so any re-encoding shows.
fn binary_payload(topics: &TopicSet, tag: &str, len: usize) -> Vec<u8> {
    let mut data = format!("{}:{tag}:1\n", topics.nonce).into_bytes();
    data.extend((0..len).map(|i| (i % 251) as u8 ^ 0xA5));
    data
}

async fn one_arrives_exactly(ctx: Ctx, tag: &str, data: Vec<u8>, content_type: &str) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    let request = PublishRequest {
        content_type: Some(content_type.into()),
        ..PublishRequest::new(&ctx.topics()?.main, data.clone())
    };
    published(ctx.pubsub()?.publish(request).await, "the message")?;
    let arrived = inbox.wait_for(patience(&ctx), |ds| ds.iter().any(|d| d.tag == tag)).await;
    ctx.evidence.set(inbox.summary());
    ensure!(arrived, "the {} byte message never arrived within {:?}", data.len(), patience(&ctx));
    let seen = inbox.deliveries().into_iter().find(|d| d.tag == tag).map(|d| d.message.data).unwrap_or_default();
    if seen != data {
        let at = seen.iter().zip(&data).position(|(a, b)| a != b).unwrap_or(seen.len().min(data.len()));
        return Err(Finding::Fail(format!(
            "the payload changed in transit: published {} bytes, received {}, first difference at byte {at}",
            data.len(),
            seen.len()
        )));
    }
    Ok(())
}

pub(super) async fn binary_byte_exact(ctx: Ctx) -> CaseResult {
    let data = binary_payload(ctx.topics()?, "bin", 1024);
    one_arrives_exactly(ctx, "bin", data, "application/octet-stream").await
}

pub(super) async fn one_mebibyte(ctx: Ctx) -> CaseResult {
    let data = binary_payload(ctx.topics()?, "big", 1 << 20);
    one_arrives_exactly(ctx, "big", data, "application/octet-stream").await
}

pub(super) async fn metadata_and_content_type(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    let marker = format!("marker-{}", ctx.topics()?.nonce);
    let request = PublishRequest {
        content_type: Some("text/plain".into()),
        ..PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload("meta", 1))
            .with_metadata("certify-marker", &marker)
    };
    published(ctx.pubsub()?.publish(request).await, "the message")?;
    let arrived = inbox.wait_for(patience(&ctx), |ds| ds.iter().any(|d| d.tag == "meta")).await;
    ensure!(arrived, "the message never arrived within {:?}", patience(&ctx));
    let Some(seen) = inbox.deliveries().into_iter().find(|d| d.tag == "meta").map(|d| d.message) else {
        return Err(Finding::Fail("the message vanished from the inbox".into()));
    };
    ensure_eq!(seen.metadata.get("certify-marker"), Some(&marker), "the publish metadata `certify-marker` delivered");
    ensure_eq!(seen.content_type.as_deref(), Some("text/plain"), "the delivered content type");
    Ok(())
}

/// Publishes one message with a trace context of the trial's own (its trace id is the trial's
/// nonce) and answers the delivery, with that trace id.
async fn traced_delivery(ctx: &Ctx, tag: &str) -> Result<(Message, String), Finding> {
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribe(ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    settle(ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    let trace_id = format!("{:0>32}", ctx.topics()?.nonce);
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let request = PublishRequest {
        content_type: Some("text/plain".into()),
        ..PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload(tag, 1))
            .with_metadata("traceparent", &traceparent)
            .with_metadata("tracestate", "congo=t61rcWkgMzE")
    };
    published(ctx.pubsub()?.publish(request).await, "the message")?;
    let arrived = inbox.wait_for(patience(ctx), |ds| ds.iter().any(|d| d.tag == tag)).await;
    ensure!(arrived, "the message never arrived within {:?}", patience(ctx));
    let Some(seen) = inbox.deliveries().into_iter().find(|d| d.tag == tag).map(|d| d.message) else {
        return Err(Finding::Fail("the message vanished from the inbox".into()));
    };
    ctx.evidence.set(serde_json::json!(seen.metadata));
    Ok((seen, trace_id))
}

pub(super) async fn trace_delivered(ctx: Ctx) -> CaseResult {
    let (seen, trace_id) = traced_delivery(&ctx, "traced").await?;
    let header = |name: &str| seen.metadata.get(name).cloned().unwrap_or_default();
    ensure_eq!(
        crate::observability::trace_id(&header("traceparent")),
        Some(trace_id.clone()),
        "the trace id of the delivery's traceparent `{}` (the publisher's is {trace_id})",
        header("traceparent")
    );
    ensure_eq!(header("tracestate"), "congo=t61rcWkgMzE", "the delivery's tracestate");
    Ok(())
}

pub(super) async fn cloudevent_envelope(ctx: Ctx) -> CaseResult {
    let (seen, trace_id) = traced_delivery(&ctx, "ce").await?;
    let field = |name: &str| seen.metadata.get(&format!("cloudevent.{name}")).cloned().unwrap_or_default();
    ensure_eq!(field("specversion"), "1.0", "the envelope's specversion");
    ensure_eq!(field("type"), "com.dapr.event.sent", "the envelope's type");
    ensure_eq!(field("topic"), ctx.topics()?.main, "the envelope's topic");
    ensure_eq!(field("pubsubname"), ctx.component, "the envelope's pubsubname");
    ensure_eq!(field("datacontenttype"), "text/plain", "the envelope's datacontenttype");
    ensure!(!field("id").is_empty(), "the envelope has no id");
    ensure!(!field("source").is_empty(), "the envelope has no source (the publishing app's id)");
    ensure!(
        field("traceparent").contains(&trace_id),
        "the envelope's traceparent `{}` does not carry the publisher's trace id {trace_id}",
        field("traceparent")
    );
    ensure_eq!(field("tracestate"), "congo=t61rcWkgMzE", "the envelope's tracestate (O6)");
    Ok(())
}

pub(super) async fn raw_payload(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let mut request = SubscribeRequest::new(&ctx.topics()?.raw);
    request.metadata.insert("rawPayload".into(), "true".into());
    let _sub = ctx
        .pubsub()?
        .subscribe(request, inbox.handler(0, always_succeed()))
        .await
        .map_err(|e| Finding::Fail(format!("subscribing with rawPayload failed: {e}")))?;
    let data = binary_payload(ctx.topics()?, "raw", 256);
    // Probes and the message are published raw too, as a raw subscriber expects them.
    let raw_topic = ctx.topics()?.raw.clone();
    let raw = |data: Vec<u8>| PublishRequest::new(&raw_topic, data).with_metadata("rawPayload", "true");
    let mut arrived = false;
    for n in 0..(ctx.settings.delivery_timeout_seconds.max(1) * 2) {
        published(ctx.pubsub()?.publish(raw(ctx.topics()?.payload("probe", n))).await, "a raw probe")?;
        if inbox.wait_for(Duration::from_millis(500), |ds| ds.iter().any(|d| d.tag == "probe")).await {
            arrived = true;
            break;
        }
    }
    ensure!(arrived, "no raw message reached the rawPayload subscriber within {:?}", patience(&ctx));
    published(ctx.pubsub()?.publish(raw(data.clone())).await, "the raw message")?;
    let arrived = inbox.wait_for(patience(&ctx), |ds| ds.iter().any(|d| d.tag == "raw")).await;
    ensure!(arrived, "the raw message never arrived within {:?}", patience(&ctx));
    let Some(seen) = inbox.deliveries().into_iter().find(|d| d.tag == "raw").map(|d| d.message) else {
        return Err(Finding::Fail("the message vanished from the inbox".into()));
    };
    // A publisher that wrapped the bytes in an envelope shows here as JSON instead of them.
    ensure!(
        seen.data == data,
        "the raw payload changed in transit ({} bytes sent, {} received: {:?}…)",
        data.len(),
        seen.data.len(),
        String::from_utf8_lossy(&seen.data[..seen.data.len().min(60)])
    );
    Ok(())
}

fn entry(topics: &TopicSet, n: u64) -> BulkMessageEntry {
    BulkMessageEntry {
        entry_id: format!("e{n}"),
        event: topics.payload("bulk", n),
        content_type: Some("text/plain".into()),
        metadata: Default::default(),
    }
}

pub(super) async fn bulk_publish(ctx: Ctx) -> CaseResult {
    let topics = ctx.topics()?;
    let inbox = Inbox::new(topics);
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    let request = BulkPublishRequest {
        topic: ctx.topics()?.main.clone(),
        entries: (1..=10).map(|n| entry(topics, n)).collect(),
        metadata: Default::default(),
    };
    let response =
        ctx.pubsub()?.bulk_publish(request).await.map_err(|e| Finding::Fail(format!("bulk publish failed: {e}")))?;
    ensure!(response.failed_entries.is_empty(), "entries failed: {:?}", response.failed_entries);
    let arrived = inbox.wait_for(patience(&ctx), |_| inbox.handled(0, "bulk").len() == 10).await;
    ctx.evidence.set(inbox.summary());
    ensure!(
        arrived,
        "entries {:?} of 10 never arrived within {:?}",
        missing(1..=10, &inbox.handled(0, "bulk")),
        patience(&ctx)
    );
    Ok(())
}

pub(super) async fn bulk_publish_partial(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let _sub = subscribe(&ctx, &ctx.topics()?.main, None, inbox.handler(0, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    let topics = ctx.topics()?;
    let mut entries: Vec<BulkMessageEntry> = (1..=5).map(|n| entry(topics, n)).collect();
    entries[2].metadata.insert(TTL_IN_SECONDS.into(), "soon".into());
    let request = BulkPublishRequest { topic: ctx.topics()?.main.clone(), entries, metadata: Default::default() };
    let response = ctx.pubsub()?.bulk_publish(request).await.map_err(|e| {
        Finding::Fail(format!("one malformed entry (ttlInSeconds `soon`) failed the whole bulk publish: {e}"))
    })?;
    let failed: Vec<&str> = response.failed_entries.iter().map(|f| f.entry_id.as_str()).collect();
    ensure_eq!(failed, vec!["e3"], "the entries reported failed");
    let arrived = inbox.wait_for(patience(&ctx), |_| inbox.handled(0, "bulk").len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ctx.evidence.set(inbox.summary());
    let handled = inbox.handled(0, "bulk");
    ensure!(arrived, "entries {:?} of the 4 good ones never arrived", missing([1, 2, 4, 5], &handled));
    ensure!(!handled.contains_key(&3), "the entry reported failed was delivered anyway");
    Ok(())
}

pub(super) async fn bulk_subscribe(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let batches = Arc::new(Mutex::new(Vec::new()));
    let policy: Policy = Arc::new(|m: &Message, before: u32| {
        if before == 0 && (m.data.ends_with(b":b:1") || m.data.ends_with(b":b:6")) {
            Outcome::Retry("RETRY".into())
        } else {
            Outcome::Success
        }
    });
    let config = BulkSubscribeConfig { max_messages_count: 5, max_await_duration: Duration::from_millis(500) };
    let handler = inbox.bulk_handler(0, policy, Arc::clone(&batches));
    let _sub = ctx
        .pubsub()?
        .bulk_subscribe(SubscribeRequest::new(&ctx.topics()?.bulk), config, handler)
        .await
        .map_err(|e| Finding::Fail(format!("bulk subscribe failed: {e}")))?;
    settle(&ctx, &ctx.topics()?.bulk, &inbox, Some(0)).await?;
    let ctx = &ctx;
    let publish = |n: u64| async move {
        let topics = ctx.topics()?;
        published(ctx.pubsub()?.publish(PublishRequest::new(&topics.bulk, topics.payload("b", n))).await, "a message")
    };
    // Ten at once: they wait together, so they must come in batches.
    for n in 1..=10 {
        publish(n).await?;
    }
    let arrived = inbox.wait_for(patience(ctx), |_| inbox.handled(0, "b").len() == 10).await;
    let together = batches.lock().unwrap_or_else(PoisonError::into_inner).clone();
    // Then one alone: it must be held for maxAwaitDurationMs in case more come.
    let sent = inbox.now();
    publish(11).await?;
    let lone = inbox.wait_for(patience(ctx) + config.max_await_duration, |_| inbox.handled(0, "b").len() == 11).await;
    let waited = inbox.deliveries().iter().find(|d| d.tag == "b" && d.seq == 11).map(|d| d.at.saturating_sub(sent));
    let sizes = batches.lock().unwrap_or_else(PoisonError::into_inner).clone();
    ctx.evidence.set(serde_json::json!({
        "inbox": inbox.summary(),
        "batch_sizes": sizes,
        "lone_message_waited_ms": waited.map(|w| w.as_millis() as u64),
    }));
    ensure!(
        arrived && lone,
        "messages {:?} of 11 never arrived within {:?}",
        missing(1..=11, &inbox.handled(0, "b")),
        patience(ctx)
    );
    ensure!(sizes.iter().all(|s| (1..=5).contains(s)), "batch sizes {sizes:?} break maxMessagesCount 5");
    ensure!(
        together.iter().any(|s| *s > 1),
        "10 messages published at once came in batches of {together:?}: bulkSubscribe was not honoured"
    );
    let held = config.max_await_duration * 4 / 5;
    let waited = waited.unwrap_or_default();
    ensure!(
        waited >= held,
        "a message published alone was delivered after {waited:?}, not held for maxAwaitDurationMs ({:?})",
        config.max_await_duration
    );
    let retried = inbox.deliveries().iter().filter(|d| d.tag == "b" && (d.seq == 1 || d.seq == 6)).count();
    ensure!(retried >= 4, "the two entries answered RETRY were not delivered again");
    Ok(())
}

pub(super) async fn ttl_expired(ctx: Ctx) -> CaseResult {
    let inbox = Inbox::new(ctx.topics()?);
    let group = format!("{}-ttl", ctx.topics()?.nonce);
    let first = subscribe(&ctx, &ctx.topics()?.main, Some(&group), inbox.handler(0, always_succeed())).await?;
    settle(&ctx, &ctx.topics()?.main, &inbox, Some(0)).await?;
    first.close();
    // While the group has no subscriber, one message expires and one does not.
    let request = PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload("expires", 1))
        .with_metadata(TTL_IN_SECONDS, "1");
    published(ctx.pubsub()?.publish(request).await, "the message with a 1 s TTL")?;
    published(
        ctx.pubsub()?.publish(PublishRequest::new(&ctx.topics()?.main, ctx.topics()?.payload("keeps", 1))).await,
        "the message without TTL",
    )?;
    tokio::time::sleep(Duration::from_secs(2 + ctx.settings.ttl_slack_seconds)).await;
    let _second = subscribe(&ctx, &ctx.topics()?.main, Some(&group), inbox.handler(1, always_succeed())).await?;
    let arrived = inbox.wait_for(patience(&ctx), |_| !inbox.handled(1, "keeps").is_empty()).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ctx.evidence.set(inbox.summary());
    ensure!(arrived, "the message without TTL was lost while the group had no subscriber");
    let expired = inbox.deliveries().iter().filter(|d| d.tag == "expires").count();
    ensure_eq!(expired, 0, "deliveries of the message whose TTL had passed");
    Ok(())
}

/// A message whose TTL passes while its first delivery is being handled MUST NOT be delivered
/// again: a subscriber answering RETRY holds it past its TTL. No unsubscribing, so this runs
/// through a sidecar too (the expiry is the broker's, or the CloudEvent `expiration` the
/// sidecar adds and checks).
pub(super) async fn ttl_not_redelivered(ctx: Ctx) -> CaseResult {
    let topics = ctx.topics()?;
    let inbox = Inbox::new(topics);
    let hold = Duration::from_millis(1500 + 1000 * ctx.settings.ttl_slack_seconds);
    let retry_expiring: Policy = Arc::new(|m: &Message, _| match m.data.windows(9).any(|w| w == b":expires:") {
        true => Outcome::Retry("certify holds this message past its TTL".into()),
        false => Outcome::Success,
    });
    let recorded = inbox.handler(0, retry_expiring);
    let holding: contract::pubsub::Handler = Arc::new(move |message: Message| {
        let expiring = message.data.windows(9).any(|w| w == b":expires:");
        let answer = recorded(message);
        Box::pin(async move {
            if expiring {
                tokio::time::sleep(hold).await;
            }
            answer.await
        })
    });
    let _sub = subscribe(&ctx, &topics.main, None, holding).await?;
    settle(&ctx, &topics.main, &inbox, Some(0)).await?;
    let request = PublishRequest::new(&topics.main, topics.payload("expires", 1)).with_metadata(TTL_IN_SECONDS, "1");
    published(ctx.pubsub()?.publish(request).await, "the message with a 1 s TTL")?;
    let first = inbox.wait_for(patience(&ctx), |seen| seen.iter().any(|d| d.tag == "expires")).await;
    ensure!(first, "the message with a 1 s TTL was never delivered (within {:?})", patience(&ctx));
    // After the held answer, any delivery is one after the TTL passed.
    let watch = hold + ctx.settings.quiet().max(Duration::from_secs(1));
    tokio::time::sleep(watch).await;
    let mut evidence = inbox.summary();
    evidence["held_ms"] = serde_json::json!(hold.as_millis() as u64);
    evidence["watched_ms"] = serde_json::json!(watch.as_millis() as u64);
    ctx.evidence.set(evidence);
    let deliveries = inbox.deliveries().iter().filter(|d| d.tag == "expires").count();
    ensure_eq!(deliveries, 1, "deliveries of the message (its TTL passed while the first was held {hold:?})");
    Ok(())
}
