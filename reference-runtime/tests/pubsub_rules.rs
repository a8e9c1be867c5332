//! `pubsub.in-memory` against the pub/sub rules of conformance-rules.md (P1–P13) and the holes
//! the upstream suite leaves: redelivery is required, ordering is really checked, dead letters,
//! TTL, consumer groups. Test names start with the rule they check.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::pubsub::{
    BulkHandler, BulkMessageEntry, BulkPublishRequest, BulkSubscribeConfig, Handler, Message, Outcome, PublishRequest,
    SubscribeRequest,
};
use contract::{Error, ManualClock, PubSub, PubSubFeature};

const WAIT: Duration = Duration::from_secs(5);

async fn broker(metadata: &[(&str, &str)]) -> (Arc<dyn PubSub>, ManualClock) {
    let clock = ManualClock::new();
    let mut md = metadata.to_vec();
    if !md.iter().any(|(k, _)| *k == "redeliveryBackoff") {
        md.push(("redeliveryBackoff", "0"));
    }
    let c = common::build("pubsub.in-memory", &md, &clock).await;
    (c.as_pubsub().cloned().expect("a broker"), clock)
}

/// Records every delivery and answers with `decide(message)`.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Message>>>,
}

impl Recorder {
    fn handler(&self, decide: impl Fn(&Message) -> Outcome + Send + Sync + 'static) -> Handler {
        let seen = Arc::clone(&self.seen);
        Arc::new(move |m: Message| {
            let outcome = decide(&m);
            seen.lock().expect("lock").push(m);
            Box::pin(async move { outcome })
        })
    }

    fn ok(&self) -> Handler {
        self.handler(|_| Outcome::Success)
    }

    fn payloads(&self) -> Vec<String> {
        self.seen.lock().expect("lock").iter().map(|m| String::from_utf8_lossy(&m.data).into_owned()).collect()
    }

    fn count(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }

    async fn wait_for(&self, n: usize) -> bool {
        common::eventually(WAIT, || self.count() >= n).await
    }
}

async fn publish(p: &dyn PubSub, topic: &str, payload: &str) {
    p.publish(PublishRequest::new(topic, payload)).await.expect("publish");
}

#[tokio::test]
async fn p01_p02_builds_and_pings() {
    let (p, _) = broker(&[]).await;
    p.ping().await.expect("ping");
    assert!(p.features().contains(&PubSubFeature::BulkPublish));
}

#[tokio::test]
async fn p03_p04_p06_every_published_message_is_delivered() {
    let (p, _) = broker(&[]).await;
    let r = Recorder::default();
    let _sub = p.subscribe(SubscribeRequest::new("t"), r.ok()).await.expect("subscribe");
    for i in 1..=10 {
        publish(&*p, "t", &format!("message-{i}")).await;
    }
    assert!(r.wait_for(10).await);
    let got: BTreeSet<_> = r.payloads().into_iter().collect();
    assert_eq!(got, (1..=10).map(|i| format!("message-{i}")).collect());
}

#[tokio::test]
async fn p05_redelivery_after_retry_is_required_and_attempts_are_counted() {
    let (p, _) = broker(&[]).await;
    let r = Recorder::default();
    // Fail the first two deliveries of every message.
    let _sub = p
        .subscribe(
            SubscribeRequest::new("t"),
            r.handler(|m| if m.attempt < 3 { Outcome::Retry("not yet".into()) } else { Outcome::Success }),
        )
        .await
        .expect("subscribe");
    for i in 0..5 {
        publish(&*p, "t", &format!("m{i}")).await;
    }
    assert!(r.wait_for(15).await, "every message delivered three times, saw {}", r.count());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = r.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 15, "no delivery after success");
    let mut attempts: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for m in seen {
        attempts.entry(m.id).or_default().push(m.attempt);
    }
    assert!(attempts.values().all(|a| *a == [1, 2, 3]), "{attempts:?}");
}

#[tokio::test]
async fn redelivery_waits_for_the_backoff() {
    let (p, clock) = broker(&[("redeliveryBackoff", "1s"), ("maxRedeliveryBackoff", "10s")]).await;
    let r = Recorder::default();
    let _sub = p
        .subscribe(
            SubscribeRequest::new("t"),
            r.handler(|m| if m.attempt == 1 { Outcome::Retry("x".into()) } else { Outcome::Success }),
        )
        .await
        .expect("subscribe");
    publish(&*p, "t", "m").await;
    assert!(r.wait_for(1).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.count(), 1, "no redelivery before the backoff passed");
    clock.advance(Duration::from_secs(1));
    assert!(r.wait_for(2).await, "redelivered after the backoff");
}

#[tokio::test]
async fn drop_is_not_redelivered_and_goes_to_the_dead_letter_topic() {
    let (p, _) = broker(&[]).await;
    let r = Recorder::default();
    let dlq = Recorder::default();
    let mut request = SubscribeRequest::new("t");
    request.dead_letter_topic = Some("t-dead".into());
    let _dead = p.subscribe(SubscribeRequest::new("t-dead"), dlq.ok()).await.expect("subscribe dlq");
    let _sub = p.subscribe(request, r.handler(|_| Outcome::Drop("poison".into()))).await.expect("subscribe");
    publish(&*p, "t", "poison").await;
    assert!(dlq.wait_for(1).await, "dead-lettered");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(r.count(), 1, "a dropped message is not redelivered");
    assert_eq!(dlq.payloads(), ["poison"], "same bytes");
}

#[tokio::test]
async fn dead_letter_after_the_maximum_attempts() {
    let (p, _) = broker(&[("maxDeliveryAttempts", "4")]).await;
    let r = Recorder::default();
    let dlq = Recorder::default();
    let _dead = p.subscribe(SubscribeRequest::new("dead"), dlq.ok()).await.expect("subscribe dlq");
    let mut request = SubscribeRequest::new("t");
    request.dead_letter_topic = Some("dead".into());
    let _sub = p.subscribe(request, r.handler(|_| Outcome::Retry("always".into()))).await.expect("subscribe");
    p.publish(PublishRequest::new("t", "doomed").with_metadata("traceparent", "00-abc-def-01")).await.expect("publish");
    assert!(dlq.wait_for(1).await);
    assert_eq!(r.count(), 4, "exactly the maximum attempts");
    let dead = dlq.seen.lock().expect("lock")[0].clone();
    assert_eq!(dead.data, b"doomed");
    assert_eq!(dead.metadata.get("traceparent").map(String::as_str), Some("00-abc-def-01"), "metadata carried");
}

#[tokio::test]
async fn a_panicking_handler_counts_as_a_failed_delivery() {
    let (p, _) = broker(&[]).await;
    let calls = Arc::new(Mutex::new(0u32));
    let c = Arc::clone(&calls);
    let handler: Handler = Arc::new(move |m: Message| {
        *c.lock().expect("lock") += 1;
        Box::pin(async move {
            assert!(m.attempt > 1, "first delivery panics");
            Outcome::Success
        })
    });
    let _sub = p.subscribe(SubscribeRequest::new("t"), handler).await.expect("subscribe");
    publish(&*p, "t", "m").await;
    assert!(common::eventually(WAIT, || *calls.lock().expect("lock") >= 2).await, "redelivered after the panic");
}

#[tokio::test]
async fn p07_per_key_order_holds_across_retries() {
    let (p, _) = broker(&[]).await;
    let r = Recorder::default();
    // Every third message fails once; its successors must wait for it.
    let _sub = p
        .subscribe(
            SubscribeRequest::new("t"),
            r.handler(|m| {
                let n: u32 =
                    String::from_utf8_lossy(&m.data).split('-').nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
                if n.is_multiple_of(3) && m.attempt == 1 { Outcome::Retry("once".into()) } else { Outcome::Success }
            }),
        )
        .await
        .expect("subscribe");
    for key in ["a", "b"] {
        for i in 0..30 {
            p.publish(PublishRequest::new("t", format!("{key}-{i}")).with_metadata("partitionKey", key))
                .await
                .expect("publish");
        }
    }
    assert!(r.wait_for(60 + 20).await, "saw {}", r.count());
    let seen = r.seen.lock().expect("lock").clone();
    for key in ["a", "b"] {
        let successes: Vec<u32> = seen
            .iter()
            .filter(|m| m.metadata.get("partitionKey").map(String::as_str) == Some(key))
            .filter_map(|m| {
                let n: u32 = String::from_utf8_lossy(&m.data).split('-').nth(1)?.parse().ok()?;
                (!(n.is_multiple_of(3) && m.attempt == 1)).then_some(n)
            })
            .collect();
        assert_eq!(successes, (0..30).collect::<Vec<_>>(), "key `{key}` handled in publish order");
    }
}

#[tokio::test]
async fn competing_consumers_share_a_group_without_loss_or_duplicates() {
    let (p, _) = broker(&[]).await;
    let (a, b) = (Recorder::default(), Recorder::default());
    let _sa = p.subscribe(SubscribeRequest::new("t").in_group("g"), a.ok()).await.expect("subscribe");
    let _sb = p.subscribe(SubscribeRequest::new("t").in_group("g"), b.ok()).await.expect("subscribe");
    for i in 0..100 {
        publish(&*p, "t", &i.to_string()).await;
    }
    assert!(common::eventually(WAIT, || a.count() + b.count() >= 100).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut all: Vec<String> = a.payloads().into_iter().chain(b.payloads()).collect();
    all.sort();
    let mut want: Vec<String> = (0..100).map(|i: i32| i.to_string()).collect();
    want.sort();
    assert_eq!(all, want, "each message handled by exactly one consumer");
    assert!(a.count() > 0 && b.count() > 0, "both consumers got work: {} / {}", a.count(), b.count());
}

#[tokio::test]
async fn fan_out_across_groups() {
    let (p, _) = broker(&[]).await;
    let (a, b) = (Recorder::default(), Recorder::default());
    let _sa = p.subscribe(SubscribeRequest::new("t").in_group("g1"), a.ok()).await.expect("subscribe");
    let _sb = p.subscribe(SubscribeRequest::new("t").in_group("g2"), b.ok()).await.expect("subscribe");
    for i in 0..20 {
        publish(&*p, "t", &i.to_string()).await;
    }
    assert!(a.wait_for(20).await && b.wait_for(20).await);
}

#[tokio::test]
async fn content_type_metadata_and_binary_payloads_are_carried_byte_exact() {
    let (p, _) = broker(&[]).await;
    let r = Recorder::default();
    let _sub = p.subscribe(SubscribeRequest::new("t"), r.ok()).await.expect("subscribe");
    let mut payload = vec![0u8; 1 << 20];
    payload.iter_mut().enumerate().for_each(|(i, b)| *b = (i % 256) as u8);
    let mut request = PublishRequest::new("t", payload.clone()).with_metadata("custom", "value");
    request.content_type = Some("application/octet-stream".into());
    p.publish(request).await.expect("publish");
    assert!(r.wait_for(1).await);
    let m = r.seen.lock().expect("lock")[0].clone();
    assert_eq!(m.data, payload, "1 MiB binary payload intact");
    assert_eq!(m.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(m.metadata.get("custom").map(String::as_str), Some("value"));
    assert_eq!((m.topic.as_str(), m.attempt), ("t", 1));
    assert!(!m.id.is_empty());
}

#[tokio::test]
async fn expired_messages_are_not_delivered() {
    let (p, clock) = broker(&[]).await;
    let r = Recorder::default();
    // Publish while the only subscriber is away, so the messages wait in the group.
    let sub = p.subscribe(SubscribeRequest::new("t"), r.ok()).await.expect("subscribe");
    sub.close();
    p.publish(PublishRequest::new("t", "short").with_metadata("ttlInSeconds", "5")).await.expect("publish");
    p.publish(PublishRequest::new("t", "long").with_metadata("ttlInSeconds", "60")).await.expect("publish");
    p.publish(PublishRequest::new("t", "forever").with_metadata("ttlInSeconds", "-1")).await.expect("publish");
    clock.advance(Duration::from_secs(10));
    let _sub = p.subscribe(SubscribeRequest::new("t"), r.ok()).await.expect("resubscribe");
    assert!(r.wait_for(2).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got: BTreeSet<_> = r.payloads().into_iter().collect();
    assert_eq!(got, ["forever".to_owned(), "long".to_owned()].into());
}

#[tokio::test]
async fn invalid_ttl_is_rejected_at_publish() {
    let (p, _) = broker(&[]).await;
    let r = p.publish(PublishRequest::new("t", "x").with_metadata("ttlInSeconds", "soon")).await;
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
}

#[tokio::test]
async fn p10_bulk_publish_delivers_to_a_normal_subscriber_with_per_entry_failures() {
    let (p, _) = broker(&[]).await;
    let r = Recorder::default();
    let _sub = p.subscribe(SubscribeRequest::new("t"), r.ok()).await.expect("subscribe");
    let entry = |id: &str, ttl: Option<&str>| BulkMessageEntry {
        entry_id: id.into(),
        event: format!("e{id}").into_bytes(),
        content_type: Some("text/plain".into()),
        metadata: ttl.map(|t| [("ttlInSeconds".to_owned(), t.to_owned())].into()).unwrap_or_default(),
    };
    let response = p
        .bulk_publish(BulkPublishRequest {
            topic: "t".into(),
            entries: vec![entry("11", None), entry("12", Some("bogus")), entry("13", None)],
            metadata: Default::default(),
        })
        .await
        .expect("bulk publish");
    assert_eq!(response.failed_entries.len(), 1);
    assert_eq!(response.failed_entries[0].entry_id, "12");
    assert!(r.wait_for(2).await);
    let got: BTreeSet<_> = r.payloads().into_iter().collect();
    assert_eq!(got, ["e11".to_owned(), "e13".to_owned()].into());
}

#[tokio::test]
async fn bulk_publish_rejects_duplicate_or_empty_entry_ids() {
    let (p, _) = broker(&[]).await;
    for ids in [["a", "a"], ["a", ""]] {
        let entries = ids.iter().map(|id| BulkMessageEntry { entry_id: (*id).into(), ..Default::default() }).collect();
        let r = p.bulk_publish(BulkPublishRequest { topic: "t".into(), entries, metadata: Default::default() }).await;
        assert!(matches!(r, Err(Error::InvalidArgument(_))), "{ids:?}");
    }
}

#[tokio::test]
async fn p08_p09_bulk_subscribe_batches_and_retries_failed_entries() {
    let (p, clock) = broker(&[]).await;
    type Batches = Arc<Mutex<Vec<Vec<(String, u32)>>>>;
    let batches: Batches = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&batches);
    let handler: BulkHandler = Arc::new(move |batch: Vec<Message>| {
        b.lock()
            .expect("lock")
            .push(batch.iter().map(|m| (String::from_utf8_lossy(&m.data).into_owned(), m.attempt)).collect());
        // Fail `m2` once; answer nothing for `m4` once (both must come back).
        let statuses = batch
            .into_iter()
            .filter(|m| !(m.data == b"m4" && m.attempt == 1))
            .map(|m| {
                let outcome =
                    if m.data == b"m2" && m.attempt == 1 { Outcome::Retry("once".into()) } else { Outcome::Success };
                (m.id, outcome)
            })
            .collect();
        Box::pin(async move { statuses })
    });
    let config = BulkSubscribeConfig { max_messages_count: 5, max_await_duration: Duration::from_millis(500) };
    let _sub = p.bulk_subscribe(SubscribeRequest::new("bulk"), config, handler).await.expect("bulk subscribe");
    for i in 0..11 {
        publish(&*p, "bulk", &format!("m{i}")).await;
    }
    let delivered = |b: &Batches| b.lock().expect("lock").iter().map(Vec::len).sum::<usize>();
    // Full batches flush at once; the rest waits for the await duration on the clock.
    for _ in 0..20 {
        if delivered(&batches) >= 13 {
            break;
        }
        clock.advance(Duration::from_millis(500));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = batches.lock().expect("lock").clone();
    assert!(all.iter().all(|batch| batch.len() <= 5), "batches respect the maximum: {all:?}");
    let successes: BTreeSet<String> =
        all.iter().flatten().filter(|(d, a)| !((d == "m2" || d == "m4") && *a == 1)).map(|(d, _)| d.clone()).collect();
    assert_eq!(successes, (0..11).map(|i| format!("m{i}")).collect(), "{all:?}");
}

#[tokio::test]
async fn p11_each_topic_handler_receives_exactly_its_topic() {
    let (p, _) = broker(&[]).await;
    let (one, two) = (Recorder::default(), Recorder::default());
    let _s1 = p.subscribe(SubscribeRequest::new("topic-1"), one.ok()).await.expect("subscribe");
    let _s2 = p.subscribe(SubscribeRequest::new("topic-2"), two.ok()).await.expect("subscribe");
    for i in 11..=20 {
        publish(&*p, if i % 2 == 0 { "topic-1" } else { "topic-2" }, &i.to_string()).await;
    }
    assert!(one.wait_for(5).await && two.wait_for(5).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut a = one.payloads();
    a.sort();
    let mut b = two.payloads();
    b.sort();
    assert_eq!(a, ["12", "14", "16", "18", "20"]);
    assert_eq!(b, ["11", "13", "15", "17", "19"]);
}

#[tokio::test]
async fn p12_unsubscribe_stops_delivery_without_disturbing_others() {
    let (p, _) = broker(&[]).await;
    let (one, two) = (Recorder::default(), Recorder::default());
    let s1 = p.subscribe(SubscribeRequest::new("topic-1").in_group("g1"), one.ok()).await.expect("subscribe");
    let _s2 = p.subscribe(SubscribeRequest::new("topic-2").in_group("g2"), two.ok()).await.expect("subscribe");
    publish(&*p, "topic-1", "before").await;
    assert!(one.wait_for(1).await);
    s1.close();
    publish(&*p, "topic-1", "after").await;
    publish(&*p, "topic-2", "still").await;
    assert!(two.wait_for(1).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(one.payloads(), ["before"], "nothing after unsubscribe");
}

#[tokio::test]
async fn a_group_keeps_messages_until_a_subscriber_returns() {
    let (p, _) = broker(&[]).await;
    let r = Recorder::default();
    drop(p.subscribe(SubscribeRequest::new("t").in_group("g"), r.ok()).await.expect("subscribe"));
    publish(&*p, "t", "kept").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(r.count(), 0);
    let _again = p.subscribe(SubscribeRequest::new("t").in_group("g"), r.ok()).await.expect("resubscribe");
    assert!(r.wait_for(1).await, "delivered to the returning subscriber");
}

#[tokio::test]
async fn empty_topics_are_rejected() {
    let (p, _) = broker(&[]).await;
    assert!(matches!(p.publish(PublishRequest::new("", "x")).await, Err(Error::InvalidArgument(_))));
    assert!(matches!(
        p.subscribe(SubscribeRequest::new(""), Recorder::default().ok()).await,
        Err(Error::InvalidArgument(_))
    ));
}
