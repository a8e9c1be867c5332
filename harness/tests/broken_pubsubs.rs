//! Deliberately broken brokers in the test tree: one acknowledges before the handler returns,
//! one drops a message its handler asked to retry, one reorders messages within a partition
//! key, one hands every member of a consumer group every message, one redelivers what its
//! handler dropped (after a backoff longer than the old fixed watch), one reports the same
//! attempt count on every delivery, one hands a bulk subscriber each message alone, one
//! forgets a consumer group with its last subscriber, one ignores message TTLs. The harness must report the cases of
//! those rules failed, through both drivers (the
//! HTTP one with certify as the sidecar's app), with reasons that name what went wrong.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use contract::pubsub::{
    BulkHandler, BulkSubscribeConfig, Handler, Message, Outcome, PARTITION_KEY, PublishRequest, SubscribeRequest,
    Subscription,
};
use contract::{Component, ComponentContext, FeatureSet, PubSub, PubSubFeature, Registry, Result};
use futures::FutureExt;
use harness::Filter;
use reference_runtime::in_memory::pubsub_memory::{DeliveryConfig, InMemoryPubSub};
use reports::Verdict;

mod common;

#[derive(Clone, Copy)]
enum Defect {
    /// Acknowledges each message as soon as it is handed over; the handler's answer is lost.
    AcksBeforeHandler,
    /// Treats RETRY (and handler errors) as done: the message is never seen again.
    DropsAfterRetry,
    /// Ignores partition keys, so messages of one key overtake each other.
    ReordersWithinKey,
    /// Puts every subscription in a group of its own, so a group's members each get everything.
    IgnoresGroups,
    /// Takes DROP (and 404) for RETRY; its redelivery backoff is 2 s.
    DropIsRetry,
    /// Says every delivery is attempt 1.
    ConstantAttempt,
    /// Hands a bulk subscriber each message alone, as soon as it comes.
    BulkOfOne,
    /// Answers ping while its broker is gone: every publish fails.
    PingLies,
    /// Publishes one message in ten (those whose payload ends in 0) twice.
    DuplicatesAQuarter,
    /// Forgets a consumer group with its last subscriber (as an auto-deleted queue does): the
    /// next subscriber starts a new, empty group.
    ForgetsEmptyGroups,
    /// Takes no notice of a message's TTL.
    IgnoresTtl,
    /// Works, but advertises no feature: daprd would never hand it a TTL.
    AdvertisesNothing,
}

struct Broken {
    inner: InMemoryPubSub,
    defect: Defect,
    /// Per topic and group: live subscriptions, and how many times the group was forgotten.
    groups: Arc<std::sync::Mutex<std::collections::HashMap<String, (usize, u64)>>>,
}

impl Broken {
    /// Renames the group of `request` to its current generation, starting a new one when the
    /// group has no subscriber; answers the key to release on close.
    fn next_generation(&self, request: &mut SubscribeRequest) -> String {
        let group = request.metadata.get(contract::pubsub::CONSUMER_ID).cloned().unwrap_or_default();
        let key = format!("{}|{group}", request.topic);
        let mut groups = self.groups.lock().expect("lock");
        let (live, generation) = groups.entry(key.clone()).or_insert((0, 0));
        if *live == 0 {
            *generation += 1;
        }
        *live += 1;
        request.metadata.insert(contract::pubsub::CONSUMER_ID.into(), format!("{group}#{generation}"));
        key
    }
}

#[async_trait]
impl PubSub for Broken {
    fn features(&self) -> FeatureSet<PubSubFeature> {
        match self.defect {
            Defect::AdvertisesNothing => FeatureSet::new(),
            _ => self.inner.features(),
        }
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn publish(&self, mut request: PublishRequest) -> Result<()> {
        if let Defect::PingLies = self.defect {
            return Err(contract::Error::Backend("connection refused".into()));
        }
        if let Defect::IgnoresTtl = self.defect {
            request.metadata.remove(contract::pubsub::TTL_IN_SECONDS);
        }
        if let Defect::DuplicatesAQuarter = self.defect
            && request.data.ends_with(b"0")
        {
            self.inner.publish(request.clone()).await?;
        }
        if let Defect::ReordersWithinKey = self.defect {
            request.metadata.remove(PARTITION_KEY);
        }
        self.inner.publish(request).await
    }

    async fn subscribe(&self, mut request: SubscribeRequest, handler: Handler) -> Result<Subscription> {
        let defect = self.defect;
        if let Defect::IgnoresGroups = defect {
            request.metadata.insert(contract::pubsub::CONSUMER_ID.into(), uuid::Uuid::new_v4().to_string());
        }
        if let Defect::ForgetsEmptyGroups = defect {
            let key = self.next_generation(&mut request);
            let inner = self.inner.subscribe(request, handler).await?;
            let groups = Arc::clone(&self.groups);
            return Ok(Subscription::new(inner.id().to_owned(), move || {
                inner.close();
                if let Some((live, _)) = groups.lock().expect("lock").get_mut(&key) {
                    *live -= 1;
                }
            }));
        }
        let wrapped: Handler = Arc::new(move |message: Message| {
            let handler = Arc::clone(&handler);
            async move {
                match defect {
                    Defect::AcksBeforeHandler => {
                        tokio::spawn(handler(message));
                        Outcome::Success
                    }
                    Defect::DropsAfterRetry => match handler(message).await {
                        Outcome::Retry(_) => Outcome::Success,
                        other => other,
                    },
                    Defect::DropIsRetry => match handler(message).await {
                        Outcome::Drop(reason) => Outcome::Retry(reason),
                        other => other,
                    },
                    Defect::ConstantAttempt => handler(Message { attempt: 1, ..message }).await,
                    Defect::ReordersWithinKey
                    | Defect::IgnoresGroups
                    | Defect::BulkOfOne
                    | Defect::PingLies
                    | Defect::DuplicatesAQuarter
                    | Defect::ForgetsEmptyGroups
                    | Defect::IgnoresTtl
                    | Defect::AdvertisesNothing => handler(message).await,
                }
            }
            .boxed()
        });
        self.inner.subscribe(request, wrapped).await
    }

    async fn bulk_subscribe(
        &self,
        request: SubscribeRequest,
        config: BulkSubscribeConfig,
        handler: BulkHandler,
    ) -> Result<Subscription> {
        if !matches!(self.defect, Defect::BulkOfOne) {
            return self.inner.bulk_subscribe(request, config, handler).await;
        }
        let single: Handler = Arc::new(move |message: Message| {
            let handler = Arc::clone(&handler);
            async move {
                let id = message.id.clone();
                let answers = handler(vec![message]).await;
                answers.into_iter().find(|(i, _)| *i == id).map_or(Outcome::Retry("no answer".into()), |(_, o)| o)
            }
            .boxed()
        });
        self.inner.subscribe(request, single).await
    }
}

fn registry() -> Registry {
    let mut registry = reference_runtime::builtin_registry();
    for (type_name, defect) in [
        ("pubsub.broken-early-ack", Defect::AcksBeforeHandler),
        ("pubsub.broken-drops-retry", Defect::DropsAfterRetry),
        ("pubsub.broken-reorders", Defect::ReordersWithinKey),
        ("pubsub.broken-groups", Defect::IgnoresGroups),
        ("pubsub.broken-drop-is-retry", Defect::DropIsRetry),
        ("pubsub.broken-attempts", Defect::ConstantAttempt),
        ("pubsub.broken-bulk-of-one", Defect::BulkOfOne),
        ("pubsub.broken-ping", Defect::PingLies),
        ("pubsub.broken-duplicates", Defect::DuplicatesAQuarter),
        ("pubsub.broken-forgets", Defect::ForgetsEmptyGroups),
        ("pubsub.broken-ttl", Defect::IgnoresTtl),
        ("pubsub.broken-mute", Defect::AdvertisesNothing),
    ] {
        registry.register(type_name, move |ctx: ComponentContext| async move {
            let backoff = if let Defect::DropIsRetry = defect { 2000 } else { 20 };
            let config = DeliveryConfig {
                max_attempts: 3,
                backoff: Duration::from_millis(backoff),
                ..DeliveryConfig::default()
            };
            let inner = InMemoryPubSub::new(config, ctx.clock);
            Ok(Component::pubsub(Arc::new(Broken { inner, defect, groups: Arc::default() })))
        });
    }
    registry
}

const SPEC: &str = r#"
components:
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: early-ack}, spec: {type: pubsub.broken-early-ack, version: v1}}
    claims: [ordering]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: drops-retry}, spec: {type: pubsub.broken-drops-retry, version: v1}}
    claims: [ordering]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: reorders}, spec: {type: pubsub.broken-reorders, version: v1}}
    claims: [ordering, bulksubscribe, durable-groups]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: no-groups}, spec: {type: pubsub.broken-groups, version: v1}}
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
    drivers: [in-process]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: drop-is-retry}, spec: {type: pubsub.broken-drop-is-retry, version: v1}}
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 5}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: same-attempt}, spec: {type: pubsub.broken-attempts, version: v1}}
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: bulk-of-one}, spec: {type: pubsub.broken-bulk-of-one, version: v1}}
    claims: [bulksubscribe]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: duplicates}, spec: {type: pubsub.broken-duplicates, version: v1}}
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
    drivers: [in-process]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: forgets}, spec: {type: pubsub.broken-forgets, version: v1}}
    claims: [durable-groups]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
    drivers: [in-process]
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: no-ttl}, spec: {type: pubsub.broken-ttl, version: v1}}
    claims: [ttl]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: mute}, spec: {type: pubsub.broken-mute, version: v1}}
    claims: [ttl, bulkpublish]
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 3}
  - component: {apiVersion: dapr.io/v1alpha1, kind: Component, metadata: {name: ping-lies}, spec: {type: pubsub.broken-ping, version: v1}}
    settings: {maxDeliveryAttempts: 3, deliveryTimeoutSeconds: 1}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_brokers_are_caught_through_both_drivers() {
    let patterns =
        ["redelivery", "ordering", "all-delivered", "groups", "bulk.subscribe", "basic.ping", "ttl", "features"]
            .map(String::from)
            .to_vec();
    let report = common::certify(&registry(), SPEC, &Filter { patterns, ..Filter::default() }).await;
    let verdict = |trial: &str| common::record(&report, trial).verdict;
    for prefix in ["", "@http"] {
        let t = |component: &str, case: &str| format!("{component}{prefix}::{case}");
        for broken in ["early-ack", "drops-retry"] {
            common::expect_fail(&report, &t(broken, "pubsub.redelivery.retry-redelivered"), "never delivered again");
            common::expect_fail(&report, &t(broken, "pubsub.redelivery.error-redelivered"), "never delivered again");
            common::expect_fail(
                &report,
                &t(broken, "pubsub.redelivery.dead-letter-after-max-attempts"),
                "never reached the dead-letter topic",
            );
            // What they do not break still passes.
            assert_eq!(verdict(&t(broken, "pubsub.delivery.all-delivered")), Verdict::Pass);
        }
        common::expect_fail(
            &report,
            &t("reorders", "pubsub.ordering.per-partition-key"),
            "was delivered before message",
        );
        assert_eq!(verdict(&t("reorders", "pubsub.redelivery.retry-redelivered")), Verdict::Pass);
        // Redelivered 2 s after DROP: the old fixed 1.5 s watch let it through.
        let cases: &[&str] = if prefix.is_empty() {
            &["drop"]
        } else {
            &["drop", "not-found"] /* 404 is an HTTP answer */
        };
        for case in cases {
            common::expect_fail(
                &report,
                &t("drop-is-retry", &format!("pubsub.redelivery.{case}-not-redelivered")),
                "watched",
            );
        }
        assert_eq!(verdict(&t("drop-is-retry", "pubsub.redelivery.retry-redelivered")), Verdict::Pass);
        assert_eq!(verdict(&t("same-attempt", "pubsub.redelivery.retry-redelivered")), Verdict::Pass);
        // Batches of one passed while only their size limit was checked.
        common::expect_fail(
            &report,
            &t("bulk-of-one", "pubsub.bulk.subscribe-batches"),
            "bulkSubscribe was not honoured",
        );
        assert_eq!(verdict(&t("reorders", "pubsub.bulk.subscribe-batches")), Verdict::Pass);
        // Over HTTP, ping only found the component listed; the publish after it reaches the broker.
        common::expect_fail(&report, &t("ping-lies", "pubsub.basic.ping"), "a publish after the ping failed");
        assert_eq!(verdict(&t("reorders", "pubsub.basic.ping")), Verdict::Pass);
        // Over HTTP no case could see message TTL before: the old one needs to unsubscribe.
        common::expect_fail(&report, &t("no-ttl", "pubsub.ttl.expired-not-redelivered"), "deliveries of the message");
        common::expect_fail(&report, &t("mute", "pubsub.features.claims-advertised"), "`ttl` without MESSAGE_TTL");
        assert_eq!(verdict(&t("no-ttl", "pubsub.features.claims-advertised")), Verdict::Pass);
        assert_eq!(verdict(&t("no-ttl", "pubsub.redelivery.retry-redelivered")), Verdict::Pass);
    }
    common::expect_fail(&report, "no-ttl::pubsub.ttl.expired-not-delivered", "whose TTL had passed");
    // The attempt count is the component's in-process; over HTTP certify would be counting.
    common::expect_fail(&report, "same-attempt::pubsub.redelivery.attempts-grow", "did not grow");
    let over_http = common::record(&report, "same-attempt@http::pubsub.redelivery.attempts-grow");
    assert_eq!(over_http.verdict, Verdict::Skipped, "{over_http:?}");
    assert_eq!(verdict("reorders::pubsub.redelivery.attempts-grow"), Verdict::Pass);
    common::expect_fail(&report, "no-groups::pubsub.groups.competing-consumers", "fans out instead of competing");
    assert_eq!(verdict("no-groups::pubsub.groups.fan-out"), Verdict::Pass);
    // Two of 20 messages (10 and 20) handled twice: under the old bound of half, it passed.
    common::expect_fail(&report, "duplicates::pubsub.groups.competing-consumers", "handled more than once");
    assert_eq!(verdict("reorders::pubsub.groups.competing-consumers"), Verdict::Pass);
    // A group forgotten with its last subscriber keeps nothing for the next one.
    common::expect_fail(&report, "forgets::pubsub.groups.kept-for-next-subscriber", "did not get what was kept");
    assert_eq!(verdict("forgets::pubsub.groups.competing-consumers"), Verdict::Pass);
    assert_eq!(verdict("reorders::pubsub.groups.kept-for-next-subscriber"), Verdict::Pass);
    assert!(!report.summary.ok());
}
